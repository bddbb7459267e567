"""Layer-contrast generation shared by the thin model and the Hugging Face adapter (SPEC §7).

One loop, one set of keywords. A model adapter supplies:
    num_layers, tied, eos_token_ids, pad_token_id, device
    start(batch, max_len) -> state                 (a KV cache)
    step(state, input_ids, attention_mask, exit_layers, exit_norm) -> (state, logits [L, B, V])
where logits stacks the early exits of `exit_layers` and the final layer (last), at the last
position only, computed in one matmul with the output head.
"""
from __future__ import annotations

import time
from typing import Sequence

import torch

from .api import contrast_logits


def candidate_layers(spec, num_layers: int, tied_embeddings: bool) -> list[int]:
    """Candidate premature layers, Hugging Face's rules (layer 0 = the embedding output).

    "low" / "high" buckets, or an explicit list of layers in [0, N).
    """
    N = num_layers
    if isinstance(spec, str):
        start = (2 if N > 2 else 1 if N == 2 else 0) if tied_embeddings else 0
        if spec == "low":
            if start == N // 2:
                return [start]
            return list(range(start, N // 2, 2)) if N <= 40 else list(range(start, 20, 2))
        if spec == "high":
            return list(range(N // 2, N, 2)) if N <= 40 else list(range(N - 20, N, 2))
        raise ValueError(f"candidate_layers={spec!r} is not supported; expected 'low', 'high' or a list of layers")
    layers = [int(j) for j in spec]
    if not layers:
        raise ValueError("candidate_layers is an empty list; expected at least one layer in [0, N)")
    for j in layers:
        if not 0 <= j < N:
            raise ValueError(f"candidate_layers holds layer {j}, outside [0, {N}) for a model with N = {N} layers")
    return layers


def apply_repetition_penalty(scores, sequences, penalty: float):
    """HF's rule: a seen token's score is divided by penalty if positive, multiplied if negative."""
    if penalty == 1.0:
        return scores
    seen = torch.gather(scores, 1, sequences)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter(1, sequences, seen)


def sample_or_argmax(scores, do_sample: bool, temperature: float, top_k: int, top_p: float, generator=None):
    if not do_sample:
        return scores.argmax(-1)
    scores = scores / max(temperature, 1e-6)
    if top_k and top_k > 0:
        kth = torch.topk(scores, min(top_k, scores.shape[-1]), dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, idx = torch.sort(scores, descending=True)
        cum = sorted_scores.softmax(-1).cumsum(-1)
        remove = cum - sorted_scores.softmax(-1) > top_p  # keep the smallest set with mass >= top_p
        scores = scores.scatter(1, idx, sorted_scores.masked_fill(remove, float("-inf")))
    return torch.multinomial(scores.softmax(-1), 1, generator=generator).squeeze(1)


def generate(adapter, input_ids, attention_mask=None, max_new_tokens: int = 32, candidate_layers="high",
             alpha: float = 0.1, divergence: str = "jsd", select: str = "row", exit_norm: bool = True,
             repetition_penalty: float = 1.0, do_sample: bool = False, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, eos_token_id=None, pad_token_id=None, streamer=None, return_dict: bool = False,
             backend: str = "auto", strategy: str = "contrast", generator=None):
    """Generate up to max_new_tokens per row. input_ids [B, P] (left-padded, with attention_mask).

    Returns LongTensor [B, P + new]; with return_dict=True a dict with "sequences",
    "premature_layers" [B, new] (model layer numbers, -1 for greedy / finished rows), "scores"
    (list of [B, V] processed scores per step) and "tokens_per_s".
    """
    if strategy not in ("contrast", "greedy"):
        raise ValueError(f"strategy={strategy!r} is not supported; expected 'contrast' or 'greedy'")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(f"input_ids must be a LongTensor [B, P]; got {getattr(input_ids, 'shape', type(input_ids))}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}")
    device = adapter.device
    input_ids = input_ids.to(device)
    B, P = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    attention_mask = attention_mask.to(device).long()
    layers = candidate_layers_for(adapter, candidate_layers) if strategy == "contrast" else []
    eos = _as_list(eos_token_id) if eos_token_id is not None else list(adapter.eos_token_ids)
    pad = pad_token_id if pad_token_id is not None else adapter.pad_token_id
    if pad is None:
        pad = eos[0] if eos else 0
    eos_t = torch.tensor(eos, device=device, dtype=torch.long)

    state = adapter.start(B, P + max_new_tokens)
    sequences, mask = input_ids, attention_mask
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    step_inputs = input_ids
    prem_steps, score_steps = [], []
    t0 = time.perf_counter()
    for _ in range(max_new_tokens):
        state, logits = adapter.step(state, step_inputs, mask, layers, exit_norm)
        if layers:
            scores, q = contrast_logits(logits, alpha=alpha, divergence=divergence, select=select, backend=backend)
            prem = torch.tensor(layers, device=device)[q]
        else:
            scores, prem = logits[-1].float(), torch.full((B,), -1, device=device)
        scores = apply_repetition_penalty(scores, sequences, repetition_penalty)
        nxt = sample_or_argmax(scores, do_sample, temperature, top_k, top_p, generator)
        nxt = torch.where(finished, torch.full_like(nxt, pad), nxt)
        prem_steps.append(torch.where(finished, -1, prem))
        if return_dict:
            score_steps.append(scores)
        sequences = torch.cat([sequences, nxt[:, None]], 1)
        mask = torch.cat([mask, (~finished).long()[:, None]], 1)
        if streamer is not None:
            streamer.put(nxt.cpu())
        finished = finished | torch.isin(nxt, eos_t)
        step_inputs = nxt[:, None]
        if bool(finished.all()):
            break
    if streamer is not None:
        streamer.end()
    if not return_dict:
        return sequences
    new = sequences.shape[1] - P
    elapsed = time.perf_counter() - t0
    return {"sequences": sequences,
            "premature_layers": torch.stack(prem_steps, 1) if prem_steps else torch.zeros(B, 0, dtype=torch.long),
            "scores": score_steps, "tokens_per_s": B * new / elapsed if elapsed > 0 else float("nan")}


def candidate_layers_for(adapter, spec) -> list[int]:
    return candidate_layers(spec, adapter.num_layers, adapter.tied)


def _as_list(x) -> list[int]:
    if isinstance(x, int):
        return [x]
    if isinstance(x, torch.Tensor):
        return [int(v) for v in x.reshape(-1)]
    if isinstance(x, Sequence):
        return [int(v) for v in x]
    raise TypeError(f"eos_token_id must be an int or a list of ints; got {type(x).__name__}")
