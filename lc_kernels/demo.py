"""A synthetic walk-through of layer-contrast decoding and the loss (no model needed).

Six "early exits" of a toy model over a 12-word vocabulary answer "The capital of France is":
the early layers lean to a fluent but wrong word, and the final layer, which has learnt the fact,
still ranks the wrong word first. Contrasting with the most-different early layer recovers it.
"""
from __future__ import annotations

import torch

import lc_kernels as lck

VOCAB = ["Paris", "Lyon", "France", "the", "a", "city", "beautiful", "Marseille", "Europe", "of", "in", "known"]


def _layer_logits() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    L, V = 6, len(VOCAB)
    z = torch.randn(L, 2, V, generator=g) * 0.5
    # row 0: "The capital of France is" — early layers are sure of "Lyon"; the final layer has
    # learnt "Paris" but still ranks "Lyon" a little higher
    for j, (paris, lyon, the) in enumerate([(0, 2, 3), (0.5, 2.5, 2), (1, 2.5, 1), (2, 2.6, 0.5), (2.8, 3.0, 0), (3.0, 3.2, 0)]):
        z[j, 0, 0], z[j, 0, 1], z[j, 0, 3] = paris, lyon, the
    # row 1: "Marseille is a port in" — a fact every layer agrees on
    z[:, 1, 8] += torch.linspace(1, 4, L)
    return z


def synthetic_walkthrough() -> None:
    z = _layer_logits()
    print("lc_kernels demo — synthetic early-exit logits, L = 6 layers (5 candidates + final), V = 12\n")
    for r, prompt in enumerate(["The capital of France is", "Marseille is a port in"]):
        greedy = VOCAB[int(z[-1, r].argmax())]
        out = lck.contrast_decode(z[:, r], alpha=0.1)
        print(f"  {prompt!r}")
        print(f"    greedy (final layer): {greedy!r}    layer contrast: {VOCAB[int(out.tokens)]!r}    "
              f"premature layer: {int(out.premature)}")
        print("    JSD of candidates vs final: " + "  ".join(f"{float(d):.3f}" for d in out.divergence))
    F, q = lck.contrast_logits(z, alpha=0.1)
    print(f"\n  contrast logits F: shape {tuple(F.shape)}, finite (in the head) per row: {torch.isfinite(F).sum(-1).tolist()}")
    targets = torch.tensor([0, 8])  # "Paris", "Europe"
    kf = lck.KeyFactors(entity_ids=[0, 1, 7], relation_ids=[10])
    zg = z.clone().requires_grad_()
    loss, info = lck.layer_contrast_loss(zg, targets, key_factors=kf, top_u=3, return_info=True)
    loss.backward()
    print(f"  layer-contrast loss: {loss.item():.4f}  gate per row: {info.gate.tolist()}  premature: {info.premature.tolist()}")
    print(f"  gradient reaches the final layer only (detach_premature=True): "
          f"|grad| per layer = {[round(float(g), 4) for g in zg.grad.abs().sum((1, 2))]}")
    from lc_kernels.backends import resolve
    print(f"\n  backend used: {resolve('auto', z.device)}  (lc-kernels info lists them all)")


DEMO_QUESTIONS = ["What is the capital of France?", "Which organ produces insulin?",
                  "Deficiency of which vitamin causes scurvy?"]


def smollm2_demo(questions=DEMO_QUESTIONS, max_new_tokens: int = 24) -> None:
    """Greedy vs layer-contrast answers from SmolLM2-135M-Instruct, offline, side by side."""
    import time
    from types import SimpleNamespace

    from .cli_model import print_side_by_side, run_generation
    from .model import load_pretrained

    t = time.perf_counter()
    model, tok = load_pretrained("smollm2-135m")
    print(f"lc_kernels demo — SmolLM2-135M-Instruct (30 layers, V = 49152), loaded offline in "
          f"{time.perf_counter() - t:.1f} s; candidate layers 'high' (15, 17, …, 29), alpha 0.1, "
          f"repetition penalty 1.2, backend {__import__('lc_kernels').backends.resolve('auto', torch.device('cpu'))}")
    args = SimpleNamespace(no_chat=False, max_new_tokens=max_new_tokens, layers="high", alpha=0.1,
                           repetition_penalty=1.2, backend="auto")
    for q in questions:
        print(f"\nQ: {q}")
        print_side_by_side({s: run_generation(model, tok, q, s, args, stream=False) for s in ("greedy", "contrast")})
