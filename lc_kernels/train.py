"""Fine-tuning with the layer-contrast loss (`lc-kernels train`).

Data: a JSONL of {"prompt", "answer"}; the loss covers the answer tokens (and the end-of-turn
token), prompt tokens are ignored (-100). Key factors from a typed-triples JSONL. AdamW, gradient
accumulation with the global valid-token count (num_items_in_batch), a tqdm bar with loss and
tokens/s, safetensors checkpoints with resume, and a final answer-accuracy evaluation under
greedy and layer-contrast decoding.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .api import layer_contrast_loss
from .generation import candidate_layers as resolve_candidates
from .jsonl import read_jsonl
from .key_factors import KeyFactors


@dataclass
class TrainConfig:
    epochs: int = 1
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 5e-5
    weight_decay: float = 0.0
    max_steps: int | None = None        # optimizer steps; None = all epochs
    max_len: int = 128
    candidate_layers: str | list = "high"
    exit_norm: bool = True
    alpha: float = 0.1
    top_u: int = 10
    lambda_entity: float = 1.0
    lambda_relation: float = 1.0
    backend: str = "auto"
    seed: int = 0
    save_every: int = 0                 # optimizer steps between checkpoints (0: only at the end)


def load_qa(path) -> list[dict]:
    """Read {"prompt", "answer"} lines; a bad line raises ValueError naming file and line."""
    rows = []
    for where, rec in read_jsonl(path):
        if not isinstance(rec.get("prompt"), str) or not isinstance(rec.get("answer"), str) \
                or not rec["prompt"].strip() or not rec["answer"].strip():
            raise ValueError(f"{where}: expected an object with non-empty string fields 'prompt' and "
                             f"'answer'; got {json.dumps(rec)[:80]}")
        rows.append({"prompt": rec["prompt"], "answer": rec["answer"]})
    if not rows:
        raise ValueError(f"{path}: no examples")
    return rows


def encode_example(tokenizer, prompt: str, answer: str, max_len: int):
    """(ids, labels): prompt tokens labelled -100, answer tokens (+ end of turn) labelled."""
    p = tokenizer.encode(tokenizer.chat_prompt(prompt))
    a = tokenizer.encode(answer)
    a = a + tokenizer.eos_token_ids[:1]
    ids = (p + a)[:max_len]
    labels = ([-100] * len(p) + a)[:max_len]
    return ids, labels


def collate(batch, pad_id: int):
    T = max(len(ids) for ids, _ in batch)
    ids = torch.full((len(batch), T), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), T), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), T), dtype=torch.long)
    for i, (x, y) in enumerate(batch):  # right padding for training
        ids[i, :len(x)] = torch.tensor(x)
        labels[i, :len(y)] = torch.tensor(y)
        mask[i, :len(x)] = 1
    return ids, labels, mask


def step_loss(model, ids, labels, mask, layers, cfg: TrainConfig, key_factors, num_items):
    logits = model(ids, attention_mask=mask, exit_layers=layers, exit_norm=cfg.exit_norm)  # [L, B, T, V]
    return layer_contrast_loss(logits[:, :, :-1], labels[:, 1:], key_factors=key_factors, alpha=cfg.alpha,
                               top_u=cfg.top_u, lambda_entity=cfg.lambda_entity,
                               lambda_relation=cfg.lambda_relation, num_items_in_batch=num_items,
                               backend=cfg.backend)


def save_checkpoint(out: Path, model, optimizer, state: dict):
    from safetensors.torch import save_model
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / "model.safetensors"))
    torch.save(optimizer.state_dict(), out / "optimizer.pt")
    (out / "trainer_state.json").write_text(json.dumps(state, indent=1))
    (out / "config.json").write_text(json.dumps(model.config.to_dict(), indent=1))


def load_checkpoint(path: Path, model, optimizer) -> dict:
    from safetensors.torch import load_model
    path = Path(path)
    for name in ("model.safetensors", "optimizer.pt", "trainer_state.json"):
        if not (path / name).exists():
            raise FileNotFoundError(f"resume: {path / name} is missing (not an lc-kernels train checkpoint?)")
    load_model(model, str(path / "model.safetensors"))
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    return json.loads((path / "trainer_state.json").read_text())


def train(model, tokenizer, data, cfg: TrainConfig, key_factors: KeyFactors | None = None, out_dir=None,
          resume=None, progress: bool = True) -> dict:
    """Fine-tune in place; return the trainer state (steps, last loss, tokens/s)."""
    from tqdm import tqdm

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    layers = resolve_candidates(cfg.candidate_layers, model.config.n_layers, model.config.tie_embeddings)
    examples = [encode_example(tokenizer, r["prompt"], r["answer"], cfg.max_len) for r in data]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    state = {"step": 0, "epoch": 0, "loss": None, "config": asdict(cfg), "layers": layers}
    if resume:
        state.update(load_checkpoint(Path(resume), model, opt))
    per_epoch = math.ceil(len(examples) / (cfg.batch_size * cfg.grad_accum))
    total = cfg.max_steps or per_epoch * cfg.epochs
    model.train()
    bar = tqdm(total=total, initial=state["step"], desc="train", unit="step", disable=not progress)
    t0, tokens = time.perf_counter(), 0
    while state["step"] < total:
        order = list(range(len(examples)))
        random.Random(cfg.seed + state["epoch"]).shuffle(order)
        skip = (state["step"] % per_epoch) * cfg.batch_size * cfg.grad_accum  # resume mid-epoch
        batches = [order[i:i + cfg.batch_size] for i in range(skip, len(order), cfg.batch_size)]
        for k in range(0, len(batches), cfg.grad_accum):
            group = [collate([examples[i] for i in b], pad) for b in batches[k:k + cfg.grad_accum]]
            num_items = sum(int((lab[:, 1:] != -100).sum()) for _, lab, _ in group)
            opt.zero_grad(set_to_none=True)
            total_loss = 0.0
            for ids, labels, mask in group:
                loss = step_loss(model, ids, labels, mask, layers, cfg, key_factors, num_items)
                loss.backward()
                total_loss += loss.item()
                tokens += int(mask.sum())
            opt.step()
            state["step"] += 1
            state["loss"] = total_loss
            rate = tokens / (time.perf_counter() - t0)
            bar.set_postfix(loss=f"{total_loss:.4f}", tok_s=f"{rate:.0f}")
            bar.update(1)
            if out_dir and cfg.save_every and state["step"] % cfg.save_every == 0:
                save_checkpoint(Path(out_dir), model, opt, state)
            if state["step"] >= total:
                break
        else:
            state["epoch"] += 1
    bar.close()
    state["tokens_per_s"] = tokens / max(time.perf_counter() - t0, 1e-9)
    model.eval()
    if out_dir:
        save_checkpoint(Path(out_dir), model, opt, state)
    return state


def answer_accuracy(model, tokenizer, data, strategy: str, max_new_tokens: int = 16, batch_size: int = 8,
                    candidate_layers="high", repetition_penalty: float = 1.0, backend: str = "auto",
                    progress: bool = False) -> float:
    """Share of questions whose generated answer contains the reference answer (case-insensitive)."""
    from tqdm import tqdm
    hits = 0
    for i in tqdm(range(0, len(data), batch_size), desc=f"eval {strategy}", disable=not progress):
        rows = data[i:i + batch_size]
        ids, mask = tokenizer.batch([tokenizer.chat_prompt(r["prompt"]) for r in rows])
        out = model.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens, strategy=strategy,
                             candidate_layers=candidate_layers, repetition_penalty=repetition_penalty,
                             backend=backend)
        for r, seq in zip(rows, out[:, ids.shape[1]:]):
            hits += r["answer"].lower() in tokenizer.decode(seq).lower()
    return hits / max(len(data), 1)
