"""The public ops of SPEC §6: validate once, flatten the rows, pick a backend, reshape back.

Shapes: ``layer_logits`` is [L, *rows, V] (or a sequence of L tensors [*rows, V]); index L-1 is the
final layer, 0..L-2 the candidate premature layers. Internally every backend sees z [L, R, V]
with R = prod(rows).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from . import backends, reference
from .key_factors import KeyFactors
from .validation import (DIVERGENCES, GATES, REDUCTIONS, SELECTS, as_layer_tensor, check_alpha,
                         check_choice, check_target_range, check_targets, check_values, raise_for_status)


class DecodeResult(NamedTuple):
    """tokens [*rows] int64, premature [*rows] int64 (candidate index), divergence [L-1, *rows]."""
    tokens: torch.Tensor
    premature: torch.Tensor
    divergence: torch.Tensor


class LossInfo(NamedTuple):
    """premature [*rows] int64 (-1 on ignored rows), gate [*rows] bool (False on ignored rows),
    divergence [L-1, *rows] (0 on ignored rows)."""
    premature: torch.Tensor
    gate: torch.Tensor
    divergence: torch.Tensor


def _prepare(layer_logits, alpha, divergence, select, backend):
    z = as_layer_tensor(layer_logits)
    alpha = check_alpha(alpha)
    check_choice("divergence", divergence, DIVERGENCES)
    check_choice("select", select, SELECTS)
    L, V = z.shape[0], z.shape[-1]
    rows_shape = tuple(z.shape[1:-1])
    z3 = z.reshape(L, -1, V)
    name = backends.resolve(backend, z.device)
    return z3, rows_shape, alpha, name


def _contrast(layer_logits, alpha, divergence, select, check_inputs, backend, want_logits):
    z3, rows_shape, alpha, name = _prepare(layer_logits, alpha, divergence, select, backend)
    L, V = z3.shape[0], z3.shape[-1]
    if name == "torch":
        if check_inputs:
            check_values(z3, rows_shape)
        F, q, div = reference.contrast_logits(z3, alpha, divergence, select)
        tokens = F.argmax(-1)
    else:
        tokens, q, div, F, status = backends.module(name).contrast(
            z3, alpha, divergence, select, want_logits, check_inputs)
        if check_inputs:
            raise_for_status(status, rows_shape, L)
    return (tokens.view(rows_shape), q.view(rows_shape), div.view((L - 1,) + rows_shape),
            F.view(rows_shape + (V,)) if F is not None else None)


def contrast_decode(layer_logits, alpha: float = 0.1, divergence: str = "jsd", select: str = "row",
                    check_inputs: bool = True, backend: str = "auto") -> DecodeResult:
    """Greedy layer-contrast decision per row (SPEC §3–§4).

    Args:
        layer_logits: [L, *rows, V] float16/bfloat16/float32/float64, or a sequence of L [*rows, V].
        alpha: plausibility threshold α ∈ [0, 1]; head = {s : p_N(s) ≥ α · max p_N}.
        divergence: "jsd" | "kl" | "dola". select: "row" | "batch".
    Returns:
        DecodeResult(tokens [*rows] int64, premature [*rows] int64, divergence [L-1, *rows]
        float32 — float64 for float64 input).
    """
    tokens, q, div, _ = _contrast(layer_logits, alpha, divergence, select, check_inputs, backend, False)
    return DecodeResult(tokens, q, div)


def contrast_logits(layer_logits, alpha: float = 0.1, divergence: str = "jsd", select: str = "row",
                    check_inputs: bool = True, backend: str = "auto"):
    """Contrast logits F = lp_N − lp_Q on the head, −inf elsewhere (SPEC §4).

    Returns (F [*rows, V] float32 (float64 for float64 input), premature [*rows] int64).
    """
    _, q, _, F = _contrast(layer_logits, alpha, divergence, select, check_inputs, backend, True)
    return F, q


def _check_loss_options(key_factors, gate, top_u, lambda_entity, lambda_relation, reduction,
                        num_items_in_batch, detach_premature):
    if key_factors is not None and not isinstance(key_factors, KeyFactors):
        raise TypeError(f"key_factors must be a lc_kernels.KeyFactors or None; got {type(key_factors).__name__}")
    if gate is None:
        gate = "key_factors" if key_factors is not None else "always"
    check_choice("gate", gate, GATES)
    if gate == "key_factors" and key_factors is None:
        raise ValueError("gate='key_factors' needs key_factors (a lc_kernels.KeyFactors); got None")
    if isinstance(top_u, bool) or not isinstance(top_u, int):
        raise TypeError(f"top_u must be an int >= 1; got {type(top_u).__name__}")
    if top_u < 1:
        raise ValueError(f"top_u must be >= 1; got {top_u}")
    for name, lam in (("lambda_entity", lambda_entity), ("lambda_relation", lambda_relation)):
        if isinstance(lam, bool) or not isinstance(lam, (int, float)):
            raise TypeError(f"{name} must be a float; got {type(lam).__name__}")
        if lam != lam or abs(lam) == float("inf"):
            raise ValueError(f"{name} must be finite; got {lam}")
    check_choice("reduction", reduction, REDUCTIONS)
    if num_items_in_batch is not None:
        if isinstance(num_items_in_batch, torch.Tensor):
            if num_items_in_batch.numel() != 1:
                raise ValueError(f"num_items_in_batch must be a scalar; got shape {tuple(num_items_in_batch.shape)}")
        elif isinstance(num_items_in_batch, bool) or not isinstance(num_items_in_batch, int):
            raise TypeError(f"num_items_in_batch must be an int or a scalar tensor; got {type(num_items_in_batch).__name__}")
        elif num_items_in_batch < 0:
            raise ValueError(f"num_items_in_batch must be >= 0 (the global count of valid rows); got {num_items_in_batch}")
    if not isinstance(detach_premature, bool):
        raise TypeError(f"detach_premature must be a bool; got {type(detach_premature).__name__}")
    return gate


def _reduce(loss_rows: torch.Tensor, valid: torch.Tensor, reduction: str, num_items_in_batch):
    if reduction == "none":
        return loss_rows
    total = loss_rows.sum()
    if reduction == "sum":
        return total
    if num_items_in_batch is None:
        n = valid.sum()
    elif isinstance(num_items_in_batch, torch.Tensor):
        n = num_items_in_batch.to(device=total.device).reshape(())
    else:
        n = torch.tensor(num_items_in_batch, device=total.device)
    # n = 0 only happens with no valid rows (total = 0): the loss is 0 with a zero gradient.
    return total / n.clamp(min=1).to(total.dtype)


def layer_contrast_loss(layer_logits, targets, key_factors: KeyFactors | None = None, alpha: float = 0.1,
                        top_u: int = 10, lambda_entity: float = 1.0, lambda_relation: float = 1.0,
                        gate: str | None = None, divergence: str = "jsd", select: str = "row",
                        detach_premature: bool = True, ignore_index: int = -100, reduction: str = "mean",
                        num_items_in_batch=None, return_info: bool = False, check_inputs: bool = True,
                        backend: str = "auto"):
    """The layer-contrast training loss of SPEC §5.

    Args:
        layer_logits: [L, *rows, V] (or a sequence of L [*rows, V]); gradients flow to the final
            layer, and to the premature layer when detach_premature=False.
        targets: [*rows] int64 token ids, ignore_index (-100) on rows without a loss.
        key_factors: KeyFactors (Φ = entities ∪ relations) or None.
        gate: "key_factors" (default with key_factors) | "always" (default without) | "never".
        reduction: "mean" (Σ w·ℓ / n, n = num_items_in_batch or the valid-row count) | "sum" | "none".
    Returns:
        loss (scalar, or [*rows] for "none"; float32, float64 for float64 input), and with
        return_info=True also LossInfo(premature [*rows], gate [*rows], divergence [L-1, *rows]).
    """
    z3, rows_shape, alpha, name = _prepare(layer_logits, alpha, divergence, select, backend)
    gate = _check_loss_options(key_factors, gate, top_u, lambda_entity, lambda_relation, reduction,
                               num_items_in_batch, detach_premature)
    targets = check_targets(targets, rows_shape, z3.device, ignore_index).reshape(-1)
    L, R, V = z3.shape
    if check_inputs:
        check_target_range(targets, V, ignore_index, rows_shape)
    kf = key_factors if key_factors is not None else KeyFactors()
    entity_mask, relation_mask = kf.masks(V, z3.device)
    options = dict(gate=gate, alpha=alpha, top_u=top_u, lambda_entity=float(lambda_entity),
                   lambda_relation=float(lambda_relation), divergence=divergence, select=select,
                   detach_premature=detach_premature, ignore_index=ignore_index)
    if name == "torch":
        if check_inputs:
            check_values(z3, rows_shape, targets, ignore_index)
        loss_rows, q, g, div = reference.layer_contrast_loss(
            z3, targets, entity_mask=entity_mask, relation_mask=relation_mask, **options)
    else:
        loss_rows, q, g, div, status = backends.module(name).loss(
            z3, targets, entity_mask, relation_mask, check=check_inputs, **options)
        if check_inputs:
            raise_for_status(status, rows_shape, L)
    valid = targets != ignore_index
    loss = _reduce(loss_rows, valid, reduction, num_items_in_batch)
    if reduction == "none":
        loss = loss.view(rows_shape)
    if not return_info:
        return loss
    return loss, LossInfo(q.view(rows_shape), g.view(rows_shape), div.view((L - 1,) + rows_shape))
