"""An independent float64 computation of SPEC §3–§5 in numpy, written without the package's code.

Used by the tests as ground truth for every backend, the torch reference included. Everything
works on z [L, R, V] float64 numpy arrays (the test's input converted exactly with .double()).
"""
from __future__ import annotations

import math

import numpy as np


def log_softmax(z: np.ndarray) -> np.ndarray:
    m = np.max(z, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        shifted = z - m
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _plogq(p: np.ndarray, log_ratio: np.ndarray) -> np.ndarray:
    out = np.zeros_like(p)
    nz = p > 0
    out[nz] = p[nz] * log_ratio[nz]
    return out


def divergences(z: np.ndarray, kind: str) -> np.ndarray:
    """[L, R, V] -> [L-1, R]."""
    lp = log_softmax(z)
    V = z.shape[-1]
    lpN = lp[-1]
    out = np.zeros(lp.shape[:2], dtype=np.float64)[:-1]
    pN = np.exp(lpN)
    for j in range(z.shape[0] - 1):
        lq = lp[j]
        q = np.exp(lq)
        m = 0.5 * (pN + q)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_m = np.log(m)
            if kind == "jsd":
                out[j] = 0.5 * (_plogq(pN, lpN - log_m).sum(-1) + _plogq(q, lq - log_m).sum(-1))
            elif kind == "kl":
                out[j] = _plogq(pN, lpN - lq).sum(-1)
            elif kind == "dola":
                out[j] = 0.5 * (_plogq(m, log_m - lpN).sum(-1) + _plogq(m, log_m - lq).sum(-1)) / V
    return out


def premature(div: np.ndarray, select: str, valid: np.ndarray | None = None) -> np.ndarray:
    R = div.shape[1]
    if select == "row":
        return div.argmax(0) if R else np.zeros(0, dtype=np.int64)
    valid = np.ones(R, dtype=bool) if valid is None else valid
    mean = (div * valid).sum(1) / max(int(valid.sum()), 1)
    return np.full(R, int(mean.argmax()), dtype=np.int64)


def head(z: np.ndarray, alpha: float) -> np.ndarray:
    lpN = log_softmax(z)[-1]
    thresh = lpN.max(-1, keepdims=True) + (math.log(alpha) if alpha > 0 else -np.inf)
    return (lpN >= thresh) & np.isfinite(z[-1])


def contrast(z: np.ndarray, q: np.ndarray, alpha: float) -> np.ndarray:
    """F [R, V] for the given premature layers q [R]."""
    lp = log_softmax(z)
    R = z.shape[1]
    with np.errstate(invalid="ignore"):
        F = lp[-1] - lp[q, np.arange(R)]
    return np.where(head(z, alpha), F, -np.inf)


def gate(z: np.ndarray, phi: np.ndarray, top_u: int) -> np.ndarray:
    lpN = log_softmax(z)[-1]
    R, V = lpN.shape
    out = np.zeros(R, dtype=bool)
    for r in range(R):
        vals = lpN[r][phi & np.isfinite(lpN[r])]
        if vals.size:
            out[r] = np.sum(lpN[r] > vals.max()) < min(top_u, V)
    return out


def loss_rows(z, targets, *, alpha, divergence, select, gate_mode, phi, ent, rel, top_u, lam_e, lam_r,
              ignore_index=-100):
    """Per-row w·ℓ, the premature layers, the gate and d(w·ℓ)/dz_N [R, V] (closed form, SPEC §5)."""
    L, R, V = z.shape
    valid = targets != ignore_index
    div = divergences(z, divergence)
    q = premature(div, select, valid)
    H = head(z, alpha)
    if gate_mode == "key_factors":
        g = gate(z, phi, top_u)
    else:
        g = np.full(R, gate_mode == "always")
    lpN = log_softmax(z)[-1]
    loss = np.zeros(R)
    grad = np.zeros((R, V))
    for r in range(R):
        if not valid[r]:
            continue
        y = targets[r]
        w = 1.0 + lam_e * ent[y] + lam_r * rel[y]
        if g[r]:
            Hp = H[r].copy()
            Hp[y] = True
            with np.errstate(invalid="ignore"):
                D = np.where(Hp, z[-1, r] - z[q[r], r], -np.inf)
            m = D[Hp].max()
            lse = m + np.log(np.exp(D[Hp] - m).sum())
            loss[r] = w * (lse - D[y])
            grad[r] = np.where(Hp, np.exp(D - lse), 0.0)
        else:
            loss[r] = -w * lpN[r, y]
            grad[r] = np.exp(lpN[r])
        grad[r, y] -= 1.0
        grad[r] *= w
    return loss, np.where(valid, q, -1), g & valid, grad


def decisions_agree(chosen: np.ndarray, scores: np.ndarray, rel: float = 1e-4, abs_: float = 1e-5) -> np.ndarray:
    """Per row: is `chosen` an argmax of `scores` [R, K] up to the SPEC §4 margin (1e-4 relative,
    with a small absolute floor for scores near 0)?"""
    R = scores.shape[0]
    if R == 0:
        return np.zeros(0, dtype=bool)
    best = scores.max(-1)
    picked = scores[np.arange(R), chosen]
    return picked >= best - (rel * np.abs(best) + abs_)
