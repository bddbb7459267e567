"""The plain torch reference of SPEC §3–§5: the oracle for every fused backend.

Short and obviously right, never optimised. Every function takes the early-exit logits as one
tensor ``z`` of shape [L, R, V] (L layers, index L-1 the final one; R flattened rows; V the
vocabulary), already checked by :mod:`lc_kernels.validation`. float16/bfloat16/float32 inputs are
computed in float32, float64 in float64. Everything is differentiable through autograd.

Memory traffic (for the benchmarks' sake): every step below materialises full [L, R, V] or
[L-1, R, V] intermediates — log-softmax, probabilities, log m, the terms — so the eager reference
reads and writes the logits roughly a dozen times.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .validation import accumulation_dtype


class ContrastParts(NamedTuple):
    F: torch.Tensor  # [R, V] contrast logits, -inf outside the head
    premature: torch.Tensor  # [R] int64 candidate index Q
    divergence: torch.Tensor  # [L-1, R]


class LossParts(NamedTuple):
    loss: torch.Tensor  # [R] weighted per-row loss w·ℓ (0 on ignored rows)
    premature: torch.Tensor  # [R] int64, -1 on ignored rows
    gate: torch.Tensor  # [R] bool, False on ignored rows
    divergence: torch.Tensor  # [L-1, R], 0 on ignored rows


def log_probs(z: torch.Tensor) -> torch.Tensor:
    """lp_j = log_softmax(z_j) in the accumulation dtype. [L, R, V] -> [L, R, V]."""
    return torch.log_softmax(z.to(accumulation_dtype(z.dtype)), dim=-1)


def _xlogy_terms(p: torch.Tensor, log_ratio: torch.Tensor) -> torch.Tensor:
    """p * log_ratio, with terms where p = 0 contributing exactly 0 (no 0 * inf = NaN)."""
    return torch.where(p > 0, p * log_ratio, torch.zeros((), dtype=p.dtype, device=p.device))


def divergences(lp: torch.Tensor, kind: str) -> torch.Tensor:
    """Divergence of every candidate layer against the final one. lp [L, R, V] -> [L-1, R].

    jsd : ½ KL(p_N‖m) + ½ KL(p_j‖m), m = ½(p_N + p_j), log m = logaddexp(lp_N, lp_j) − log 2
    kl  : KL(p_N‖p_j)
    dola: ½ [KL(m‖p_N) + KL(m‖p_j)] / V  (the DoLa code's reverse KLs, mean over the vocabulary)
    """
    lp_final, lp_cand = lp[-1:], lp[:-1]
    p_final, p_cand = lp_final.exp(), lp_cand.exp()
    if kind == "kl":
        return _xlogy_terms(p_final, lp_final - lp_cand).sum(-1)
    log_m = torch.logaddexp(lp_final, lp_cand) - math.log(2.0)
    if kind == "jsd":
        return 0.5 * (_xlogy_terms(p_final, lp_final - log_m).sum(-1) + _xlogy_terms(p_cand, lp_cand - log_m).sum(-1))
    if kind == "dola":
        m = log_m.exp()
        kl_final = _xlogy_terms(m, log_m - lp_final).sum(-1)
        kl_cand = _xlogy_terms(m, log_m - lp_cand).sum(-1)
        return 0.5 * (kl_final + kl_cand) / lp.shape[-1]
    raise ValueError(f"unknown divergence {kind!r}")


def select_premature(div: torch.Tensor, select: str, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Premature layer Q per row. div [L-1, R] -> [R] int64; ties go to the lowest index.

    "row": argmax per row. "batch": argmax of the mean over the (valid) rows, shared by all rows.
    """
    R = div.shape[1]
    if select == "row":
        return div.argmax(0)
    if valid is None:
        valid = torch.ones(R, dtype=torch.bool, device=div.device)
    count = valid.sum().clamp(min=1).to(div.dtype)
    mean = torch.where(valid, div, torch.zeros((), dtype=div.dtype, device=div.device)).sum(1) / count
    return mean.argmax().expand(R).clone()


def plausibility_head(z_final: torch.Tensor, alpha: float) -> torch.Tensor:
    """H = {s : z_N(s) > -inf and lp_N(s) >= max lp_N + log α}. z_final [R, V] -> bool [R, V].

    Computed as z_N(s) − max z_N ≥ log α (the log-normaliser cancels), in the accumulation dtype,
    with log α rounded from double once: every backend makes this comparison the same way.
    """
    z = z_final.to(accumulation_dtype(z_final.dtype))
    log_a = -math.inf if alpha == 0.0 else math.log(alpha)
    return (z - z.amax(-1, keepdim=True) >= log_a) & (z > -math.inf)


def _gather_layer(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """x [L, R, V], q [R] -> x[q[r], r, :] as [R, V]."""
    return x.gather(0, q.view(1, -1, 1).expand(1, -1, x.shape[-1])).squeeze(0)


def contrast_logits(z: torch.Tensor, alpha: float, divergence: str = "jsd", select: str = "row") -> ContrastParts:
    """F(s) = lp_N(s) − lp_Q(s) on the head, −inf elsewhere. z [L, R, V] -> F [R, V]."""
    lp = log_probs(z)
    with torch.no_grad():  # Q and H are piecewise constant: no gradient flows through them
        div = divergences(lp, divergence)
        q = select_premature(div, select)
        head = plausibility_head(z[-1], alpha)
    F = (lp[-1] - _gather_layer(lp[:-1], q)).masked_fill(~head, -math.inf)
    return ContrastParts(F, q, div)


def contrast_decode(z: torch.Tensor, alpha: float, divergence: str = "jsd", select: str = "row"):
    """Greedy layer-contrast decision. Returns (tokens [R], premature [R], divergence [L-1, R])."""
    F, q, div = contrast_logits(z, alpha, divergence, select)
    return F.argmax(-1), q, div


def key_factor_gate(z_final: torch.Tensor, phi: torch.Tensor, top_u: int) -> torch.Tensor:
    """g = 1 ⇔ #{t : z_N(t) > max_{s∈Φ} z_N(s)} < U. z_final [R, V], phi bool [V] -> bool [R].

    Ties count in the key factor's favour; Φ empty or fully masked in a row gives g = 0.
    """
    z = z_final.to(accumulation_dtype(z_final.dtype))
    best_phi = z.masked_fill(~phi, -math.inf).amax(-1, keepdim=True)
    above = (z > best_phi).sum(-1)
    return (above < min(top_u, z.shape[-1])) & (best_phi.squeeze(-1) > -math.inf)


def layer_contrast_loss(
    z: torch.Tensor,
    targets: torch.Tensor,
    *,
    entity_mask: torch.Tensor,
    relation_mask: torch.Tensor,
    gate: str,
    alpha: float = 0.1,
    top_u: int = 10,
    lambda_entity: float = 1.0,
    lambda_relation: float = 1.0,
    divergence: str = "jsd",
    select: str = "row",
    detach_premature: bool = True,
    ignore_index: int = -100,
) -> LossParts:
    """Per-row weighted layer-contrast loss w·ℓ of SPEC §5 (reduction happens in the API).

    z [L, R, V]; targets [R] int64; entity_mask, relation_mask bool [V] (Φ = their union);
    gate "key_factors" | "always" | "never".
    """
    acc = accumulation_dtype(z.dtype)
    zc = z.to(acc)
    L, R, V = z.shape
    valid = targets != ignore_index
    y = torch.where(valid, targets, 0)
    with torch.no_grad():
        div = divergences(log_probs(z), divergence)
        div = torch.where(valid, div, torch.zeros((), dtype=acc, device=z.device))
        q = select_premature(div, select, valid)
        head = plausibility_head(z[-1], alpha)
        # H' = H ∪ {y} on valid rows (ignored rows keep H, so no -inf − -inf = NaN reaches autograd)
        head = head.scatter(1, y.unsqueeze(1), head.gather(1, y.unsqueeze(1)) | valid.unsqueeze(1))
        if gate == "key_factors":
            g = key_factor_gate(z[-1], entity_mask | relation_mask, top_u)
        else:
            g = torch.full((R,), gate == "always", dtype=torch.bool, device=z.device)
        g = g & valid

    z_final = zc[-1]
    z_prem = _gather_layer(zc[:-1], q)
    if detach_premature:
        z_prem = z_prem.detach()
    D = torch.where(head, z_final - z_prem, torch.full((), -math.inf, dtype=acc, device=z.device))
    gated = torch.logsumexp(D, -1) - D.gather(1, y.unsqueeze(1)).squeeze(1)
    ungated = -torch.log_softmax(z_final, -1).gather(1, y.unsqueeze(1)).squeeze(1)
    per_row = torch.where(g, gated, ungated)

    weight = 1.0 + lambda_entity * entity_mask[y].to(acc) + lambda_relation * relation_mask[y].to(acc)
    loss = torch.where(valid, weight * per_row, torch.zeros((), dtype=acc, device=z.device))
    premature = torch.where(valid, q, -1)
    return LossParts(loss, premature, g, div)
