"""The input checks of SPEC §2, in one place.

Every backend relies on this module, so every backend raises the same errors:

* argument checks (types, ranks, shapes, dtypes, devices, option names, ranges) always run;
* value checks (NaN / +inf, a final-layer row of all -inf, -inf positions that differ between
  layers, a target at a masked token, a target out of range) run when ``check_inputs=True``.
  The torch reference runs them here with :func:`check_values`; the fused backends detect the
  same defects while reading the logits and report a per-row status code that
  :func:`raise_for_status` turns into the very same ``ValueError``.

Status codes (int32 per row, 0 = fine). When a row has several defects the code is chosen in
this order, and the row reported is the first failing row in row-major order:

    1  NaN or +inf            (the lowest such layer)
    2  final-layer row all -inf
    3  -inf positions differ  (the lowest layer whose mask differs from the final layer's)
    4  target at a masked token
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

DIVERGENCES = ("jsd", "kl", "dola")
SELECTS = ("row", "batch")
GATES = ("key_factors", "always", "never")
REDUCTIONS = ("mean", "sum", "none")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

STATUS_OK = 0
STATUS_NONFINITE = 1
STATUS_FINAL_ALL_MASKED = 2
STATUS_MASK_MISMATCH = 3
STATUS_TARGET_MASKED = 4
# A row's status is code * STATUS_LAYER_STRIDE + layer (layer is 0 for codes 2 and 4).
STATUS_LAYER_STRIDE = 1 << 16


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32/bfloat16/float16 accumulate in float32 (SPEC §2)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def check_choice(name: str, value, choices) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}; got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; expected one of {choices}")


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a float in [0, 1]; got {type(alpha).__name__}")
    alpha = float(alpha)
    if not (0.0 <= alpha <= 1.0):  # also rejects NaN
        raise ValueError(f"alpha must lie in [0, 1]; got {alpha}")
    return alpha


def log_alpha(alpha: float) -> float:
    """log α as a Python float (double); -inf for α = 0. Every backend uses this one value."""
    return -math.inf if alpha == 0.0 else math.log(alpha)


def as_layer_tensor(layer_logits) -> torch.Tensor:
    """Accept a tensor [L, *rows, V] or a sequence of L tensors [*rows, V]; check the structure.

    Returns the (possibly stacked) tensor [L, *rows, V]. Shape, dtype and device checks always run.
    """
    if isinstance(layer_logits, torch.Tensor):
        z = layer_logits
        if z.dim() < 2:
            raise ValueError(
                f"layer_logits must have shape [L, *rows, V] (at least 2 dims); got shape {tuple(z.shape)}")
    elif isinstance(layer_logits, Sequence) and not isinstance(layer_logits, (str, bytes)):
        layers = list(layer_logits)
        if len(layers) < 2:
            raise ValueError(f"layer_logits needs L >= 2 layers (candidates + final); got {len(layers)}")
        for j, t in enumerate(layers):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"layer_logits[{j}] must be a torch.Tensor; got {type(t).__name__}")
            if t.dim() < 1:
                raise ValueError(f"layer_logits[{j}] must have shape [*rows, V]; got a 0-dim tensor")
            ref = layers[-1]
            if t.shape != ref.shape:
                raise ValueError(f"layer_logits[{j}] has shape {tuple(t.shape)}, but the final layer "
                                 f"(layer {len(layers) - 1}) has shape {tuple(ref.shape)}; all layers "
                                 f"must share [*rows, V]")
            if t.dtype != ref.dtype:
                raise TypeError(f"layer_logits[{j}] has dtype {t.dtype}, but the final layer has "
                                f"{ref.dtype}; all layers must share one dtype")
            if t.device != ref.device:
                raise ValueError(f"layer_logits[{j}] is on {t.device}, but the final layer is on "
                                 f"{ref.device}; all layers must be on one device")
        z = torch.stack(layers)
    else:
        raise TypeError("layer_logits must be a tensor [L, *rows, V] or a sequence of L tensors "
                        f"[*rows, V]; got {type(layer_logits).__name__}")
    if z.dtype not in FLOAT_DTYPES:
        raise TypeError(f"layer_logits must be float16, bfloat16, float32 or float64; got {z.dtype}")
    if z.shape[0] < 2:
        raise ValueError(f"layer_logits needs L >= 2 layers (candidates + final); got L = {z.shape[0]}")
    if z.shape[-1] < 1:
        raise ValueError(f"layer_logits has an empty vocabulary dimension (V = 0); expected V >= 1")
    return z


def check_targets(targets, rows_shape, device: torch.device, ignore_index: int) -> torch.Tensor:
    """targets must be an integer tensor of shape rows_shape on device; returns it as int64."""
    rows_shape = tuple(rows_shape)
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be an int64 tensor of shape {rows_shape}; got {type(targets).__name__}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer (int64) tensor; got {targets.dtype}")
    if tuple(targets.shape) != rows_shape:
        raise ValueError(f"targets has shape {tuple(targets.shape)}; expected the rows shape "
                         f"{rows_shape} of layer_logits [L, *rows, V]")
    if targets.device != device:
        raise ValueError(f"targets is on {targets.device}, but layer_logits is on {device}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int; got {type(ignore_index).__name__}")
    return targets.long()


def check_target_range(targets: torch.Tensor, vocab: int, ignore_index: int, rows_shape) -> None:
    """Value check: every target is ignore_index or in [0, V)."""
    flat = targets.reshape(-1)
    bad = (flat != ignore_index) & ((flat < 0) | (flat >= vocab))
    if bool(bad.any()):
        r = int(bad.nonzero()[0, 0])
        raise ValueError(f"targets at row {_row_name(r, rows_shape)} is {int(flat[r])}; expected a token "
                         f"id in [0, {vocab}) or ignore_index={ignore_index}")


def _row_name(row: int, rows_shape) -> str:
    rows_shape = tuple(rows_shape)
    if len(rows_shape) <= 1:
        return str(row)
    idx = []
    rem = row
    for size in reversed(rows_shape):
        idx.append(rem % size)
        rem //= size
    return f"{row} (index {tuple(reversed(idx))} of rows shape {rows_shape})"


def status_message(status: int, row: int, rows_shape, num_layers: int) -> str:
    code, layer = divmod(int(status), STATUS_LAYER_STRIDE)
    where = f"row {_row_name(row, rows_shape)}"
    if code == STATUS_NONFINITE:
        return (f"layer_logits layer {layer} (of L = {num_layers}), {where}: found NaN or +inf; "
                f"expected finite logits, with -inf only as a vocabulary mask")
    if code == STATUS_FINAL_ALL_MASKED:
        return (f"layer_logits final layer {num_layers - 1}, {where}: every logit is -inf; expected at "
                f"least one unmasked token")
    if code == STATUS_MASK_MISMATCH:
        return (f"layer_logits layer {layer} (of L = {num_layers}), {where}: its -inf positions differ "
                f"from the final layer's; expected the same vocabulary mask in every layer of a row")
    if code == STATUS_TARGET_MASKED:
        return (f"targets at {where} points at a token whose final-layer logit is -inf (masked); "
                f"expected an unmasked target")
    return f"unknown status code {status} at {where}"


def raise_for_status(status: torch.Tensor, rows_shape, num_layers: int) -> None:
    """Turn a backend's per-row status vector into the ValueError of the first failing row.

    One host synchronisation. Only called when check_inputs=True.
    """
    if status.numel() == 0:
        return
    bad = status != 0
    if not bool(bad.any()):
        return
    r = int(bad.nonzero()[0, 0])
    raise ValueError(status_message(int(status[r]), r, rows_shape, num_layers))


def value_status(z: torch.Tensor, targets: torch.Tensor | None = None, ignore_index: int = -100) -> torch.Tensor:
    """Per-row status codes of SPEC §2's value checks, computed with plain torch ops.

    z: [L, R, V] (any float dtype); targets: [R] int64 or None. Returns int32 [R].
    """
    L, R, V = z.shape
    stride = STATUS_LAYER_STRIDE

    def first_layer(flags: torch.Tensor) -> torch.Tensor:  # [L, R] bool -> [R] lowest true layer
        idx = torch.arange(L, device=z.device).unsqueeze(1).expand(L, R)
        return torch.where(flags, idx, L).amin(0) if R else torch.zeros(0, dtype=torch.long, device=z.device)

    nonfinite = (torch.isnan(z) | torch.isposinf(z)).any(-1)  # [L, R]
    masked = torch.isneginf(z)
    final_all_masked = masked[-1].all(-1)  # [R]
    mismatch = (masked != masked[-1:]).any(-1)  # [L, R]
    status = torch.zeros(R, dtype=torch.long, device=z.device)
    if targets is not None:
        valid = targets != ignore_index
        safe = torch.where(valid, targets, 0).clamp(0, V - 1)
        tmask = valid & masked[-1].gather(1, safe.unsqueeze(1)).squeeze(1)
        status = torch.where(tmask, STATUS_TARGET_MASKED * stride, status)
    status = torch.where(mismatch.any(0), STATUS_MASK_MISMATCH * stride + first_layer(mismatch), status)
    status = torch.where(final_all_masked, torch.full_like(status, STATUS_FINAL_ALL_MASKED * stride), status)
    status = torch.where(nonfinite.any(0), STATUS_NONFINITE * stride + first_layer(nonfinite), status)
    return status.to(torch.int32)


def check_values(z: torch.Tensor, rows_shape, targets: torch.Tensor | None = None, ignore_index: int = -100) -> None:
    """Run the value checks of SPEC §2 on z [L, R, V] and raise the first defect as ValueError."""
    raise_for_status(value_status(z, targets, ignore_index), rows_shape, z.shape[0])
