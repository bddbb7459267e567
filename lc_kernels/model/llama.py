"""A readable Llama-style decoder with a KV cache and early exits (nanoGPT / llama2.c level).

Shapes: B batch, T time, C model width, H query heads, K key/value heads, D head dim, V vocab.
Layer numbering follows Hugging Face's hidden_states: layer 0 is the embedding output, layer j
(1 ≤ j ≤ N) the output of block j; the final logits come from norm(layer N).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import LlamaConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):  # (..., C)
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_tables(cfg: LlamaConfig, device=None):
    """cos, sin [max_seq_len, D] for rotate-half rotary embeddings."""
    D = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_theta ** (torch.arange(0, D, 2, dtype=torch.float32, device=device) / D))
    t = torch.arange(cfg.max_seq_len, dtype=torch.float32, device=device)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):  # x (B, h, T, D); cos/sin (B, 1, T, D)
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


class KVCache:
    """Preallocated keys/values for every block: [N, B, K, max_len, D] each; `length` filled."""

    def __init__(self, cfg: LlamaConfig, batch: int, max_len: int, dtype, device):
        shape = (cfg.n_layers, batch, cfg.n_kv_heads, max_len, cfg.head_dim)
        self.k = torch.zeros(shape, dtype=dtype, device=device)
        self.v = torch.zeros(shape, dtype=dtype, device=device)
        self.length = 0
        self.max_len = max_len

    def update(self, layer: int, k, v):  # k, v (B, K, T, D) -> all cached (B, K, length+T, D)
        T = k.shape[2]
        end = self.length + T
        if end > self.max_len:
            raise ValueError(f"KV cache of {self.max_len} positions is full (needs {end})")
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, index: int):
        super().__init__()
        self.index, self.H, self.K, self.D = index, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, self.H * self.D, bias=False)
        self.k_proj = nn.Linear(cfg.dim, self.K * self.D, bias=False)
        self.v_proj = nn.Linear(cfg.dim, self.K * self.D, bias=False)
        self.o_proj = nn.Linear(self.H * self.D, cfg.dim, bias=False)

    def forward(self, x, cos, sin, mask, cache: KVCache | None):
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.D).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.K, self.D).transpose(1, 2)  # (B, K, T, D)
        v = self.v_proj(x).view(B, T, self.K, self.D).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(self.index, k, v)
        # mask (B, 1, T, S) bool, True = attend; GQA by repeating K/V heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=self.H != self.K)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.H * self.D))


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.down_proj = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.self_attn = Attention(cfg, index)
        self.post_attention_layernorm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def new_cache(self, batch: int, max_len: int) -> KVCache:
        p = self.embed_tokens.weight
        return KVCache(self.config, batch, max_len, p.dtype, p.device)

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache: KVCache | None = None,
                exit_layers=(), exit_norm: bool = True, last_only: bool = False, positions=None):
        """Run the decoder; return the final logits and the early-exit logits of `exit_layers`.

        input_ids (B, T); attention_mask (B, S) 1 = token, 0 = padding, over all S = cached + T
        positions; position_ids (B, T) (default: count of real tokens before each position).
        Returns logits [L, B, T', V] for the L = len(exit_layers) + 1 exits (final last), with
        T' = 1 if last_only, len(positions) if a position index is given, else T — computed in ONE matmul with the output head over the stacked
        hidden states, so the head weight is read once, not once per layer.
        """
        B, T = input_ids.shape
        past = cache.length if cache is not None else 0
        S = past + T
        if S > self.config.max_seq_len:
            raise ValueError(f"sequence of {S} positions exceeds the model's max_seq_len = {self.config.max_seq_len}")
        if attention_mask is None:
            attention_mask = torch.ones(B, S, dtype=torch.long, device=input_ids.device)
        if position_ids is None:
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
        cos = self.rope_cos[position_ids].unsqueeze(1)  # (B, 1, T, D)
        sin = self.rope_sin[position_ids].unsqueeze(1)
        causal = torch.ones(T, S, dtype=torch.bool, device=input_ids.device).tril(past)
        mask = causal[None, None] & attention_mask.bool()[:, None, None, :]  # (B, 1, T, S)
        mask = mask | ~mask.any(-1, keepdim=True)  # a fully padded query row attends to all (unused)

        x = self.embed_tokens(input_ids)
        wanted = set(exit_layers)
        if last_only:
            positions = slice(T - 1, T)
        take = (lambda h: h) if positions is None else (lambda h: h[:, positions])
        exits = {0: take(x)} if 0 in wanted else {}
        for i, block in enumerate(self.layers):
            x = block(x, cos, sin, mask, cache)
            if i + 1 in wanted:
                exits[i + 1] = take(x)
        if cache is not None:
            cache.length = S
        hidden = [exits[j] for j in exit_layers]
        stacked = torch.stack(hidden + [take(x)])  # (L, B, T', C)
        if exit_norm:
            stacked = self.norm(stacked)
        else:  # the original DoLa / Hugging Face convention: only the final layer is normed
            stacked = torch.cat([stacked[:-1], self.norm(stacked[-1:])])
        return self.lm_head(stacked)  # (L, B, T', V)

    @torch.no_grad()
    def generate(self, input_ids, **kwargs):
        """Layer-contrast (or greedy) generation: the keywords of SPEC §7 plus strategy=; see
        lc_kernels.generation.generate."""
        from ..generation import generate
        return generate(_ThinModelAdapter(self), input_ids, **kwargs)


class _ThinModelAdapter:
    """The interface lc_kernels.generation.generate drives (shared with the HF adapter)."""

    def __init__(self, model: LlamaModel):
        self.model = model
        cfg = model.config
        self.num_layers = cfg.n_layers
        self.tied = cfg.tie_embeddings
        self.eos_token_ids = list(cfg.eos_token_ids)
        self.pad_token_id = cfg.pad_token_id
        self.max_len = cfg.max_seq_len
        self.device = model.embed_tokens.weight.device

    def start(self, batch: int, max_len: int):
        return self.model.new_cache(batch, min(max_len, self.max_len))

    def step(self, state, input_ids, attention_mask, exit_layers, exit_norm):
        """Feed new tokens; return the last position's logits [L, B, V] (exits then final)."""
        logits = self.model(input_ids, attention_mask=attention_mask, cache=state, exit_layers=exit_layers,
                            exit_norm=exit_norm, last_only=True)
        return state, logits[:, :, -1]
