"""Triton decode / contrast-logits: kernel 2 after stats.stats_kernel, and the launcher.

Per row (one program): pick Q (argmax of the row's divergences, ties → lowest index; or the
batch's Q computed by the launcher), then one sweep over the final and premature layers:

    head  z_N − max z_N ≥ log α   (and z_N > −inf)
    F     (z_N − lse_N) − (z_Q − lse_Q) on the head, −inf elsewhere   (written only if asked)
    token running (max, first index) over the blocks — ties go to the lowest token id.

Memory traffic: 2·V·b bytes read per row; R·V·4 bytes written only for contrast_logits.
Two launches in all for select="row" (stats + this); "batch" adds one small torch reduction.
With fewer rows than the GPU has multiprocessors, split.py cuts the vocabulary instead (also two
launches, with the argmax over layers and the batch reduction done in-kernel).
"""
import torch
import triton
import triton.language as tl

from ..validation import accumulation_dtype
from .launch_config import choose_splits, device_info, stream_config, tile_config
from .stats import stats_kernel


@triton.jit
def first_argmax(d, n, LP: tl.constexpr):
    """argmax of d [LP] over its first n entries (ties → lowest index)."""
    j = tl.arange(0, LP)
    d = tl.where(j < n, d, float("-inf"))
    best = tl.max(d, axis=0)
    return tl.min(tl.where((d == best) & (j < n), j, LP), axis=0).to(tl.int64)


@triton.jit
def row_premature(div_ptr, r, R, L, LP: tl.constexpr):
    """argmax over the L-1 candidates of div[:, r] (ties → lowest index)."""
    j = tl.arange(0, LP)
    return first_argmax(tl.load(div_ptr + j.to(tl.int64) * R + r, mask=j < L - 1, other=float("-inf")), L - 1, LP)


@triton.jit
def as_acc(x, ACC: tl.constexpr):
    """A float kernel argument (annotated tl.float64, so float64 inputs lose nothing) in ACC."""
    return tl.full((), x, ACC)


@triton.jit
def contrast_range(z_ptr, stride_l, stride_r, L, V, R, r, q, lse_ptr, max_ptr, log_alpha, F_row_ptr, v_lo, v_hi,
                   BLOCK: tl.constexpr, WRITE_F: tl.constexpr, ACC: tl.constexpr):
    """Head, contrast F and the running (max, first index) over [v_lo, v_hi) of row r with
    premature layer q (normalisers and the final layer's max from the stats kernel; log_alpha
    already in ACC)."""
    lse_N = tl.load(lse_ptr + (L - 1) * R + r)
    lse_Q = tl.load(lse_ptr + q * R + r)
    m_N = tl.load(max_ptr + r)
    final_ptr = z_ptr + r * stride_r + (L - 1) * stride_l
    prem_ptr = z_ptr + r * stride_r + q * stride_l
    neg_inf = float("-inf")
    best = tl.full((), neg_inf, ACC)
    best_idx = tl.zeros((), tl.int64) + v_lo
    lanes = tl.arange(0, BLOCK)
    for start in range(v_lo, v_hi, BLOCK):
        offs = start + lanes
        mask = offs < v_hi
        zn = tl.load(final_ptr + offs, mask=mask, other=neg_inf).to(ACC)
        zq = tl.load(prem_ptr + offs, mask=mask, other=neg_inf).to(ACC)
        head = (zn - m_N >= log_alpha) & (zn != neg_inf) & mask
        F = tl.where(head, (zn - lse_N) - (zq - lse_Q), neg_inf)
        if WRITE_F:
            tl.store(F_row_ptr + offs, F, mask=mask)
        block_best = tl.max(F, axis=0)
        block_idx = tl.min(tl.where(F == block_best, offs, V), axis=0).to(tl.int64)
        take = block_best > best  # strict: an earlier block keeps a tie
        best_idx = tl.where(take, block_idx, best_idx)
        best = tl.where(take, block_best, best)
    return best, best_idx


@triton.jit
def contrast_kernel(
    z_ptr, stride_l, stride_r, L, V,
    lse_ptr, max_ptr, div_ptr, log_alpha: tl.float64,
    premature_ptr, tokens_ptr, F_ptr,
    R,
    LP: tl.constexpr, BLOCK: tl.constexpr, ROW_SELECT: tl.constexpr, WRITE_F: tl.constexpr, ACC: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)
    if ROW_SELECT:
        q = row_premature(div_ptr, r, R, L, LP)
        tl.store(premature_ptr + r, q)
    else:
        q = tl.load(premature_ptr + r)
    _, best_idx = contrast_range(z_ptr, stride_l, stride_r, L, V, R, r, q, lse_ptr, max_ptr, as_acc(log_alpha, ACC),
                                 F_ptr + r * V, 0, V, BLOCK, WRITE_F, ACC)
    tl.store(tokens_ptr + r, best_idx)


def run_stats(z: torch.Tensor, divergence_code: int, targets=None, ignore_index: int = -100):
    """Launch stats_kernel. Returns (lse [L, R], max_final [R], div [L-1, R], status [R] int32)."""
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    lse = torch.empty(L, R, dtype=acc, device=z.device)
    mx = torch.empty(R, dtype=acc, device=z.device)
    div = torch.empty(L - 1, R, dtype=acc, device=z.device)
    status = torch.empty(R, dtype=torch.int32, device=z.device)
    if R == 0:
        return lse, mx, div, status
    CP, BLOCK, warps = tile_config(L, V, device_info(z.device), acc.itemsize)
    stats_kernel[(R,)](z, z.stride(0), z.stride(1), L, V,
                       targets if targets is not None else status, ignore_index,
                       lse, mx, div, status, R,
                       CP=CP, BLOCK=BLOCK, DIVERGENCE=divergence_code, HAS_TARGETS=targets is not None,
                       ACC=tl.float64 if acc == torch.float64 else tl.float32, num_warps=warps)
    return lse, mx, div, status


def batch_premature(div: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """One Q for every row: argmax of the mean divergence over the (valid) rows; no host sync."""
    R = div.shape[1]
    if valid is None:
        mean = div.double().sum(1) / max(R, 1)
    else:
        mean = torch.where(valid, div.double(), 0.0).sum(1) / valid.sum().clamp(min=1)
    return mean.argmax().expand(R).contiguous()


def contrast_kernel_launch(z, log_alpha, divergence, batch_select, want_logits):
    """The `contrast_kernel` of lc_kernels.backends.registration for CUDA (or interpreted) tensors."""
    L, R, V = z.shape
    info = device_info(z.device)
    splits = choose_splits(R, V, info)
    if splits > 1:
        from .split import split_contrast_launch
        return split_contrast_launch(z, log_alpha, divergence, batch_select, want_logits, splits)
    acc = accumulation_dtype(z.dtype)
    lse, mx, div, status = run_stats(z, divergence)
    tokens = torch.empty(R, dtype=torch.long, device=z.device)
    premature = batch_premature(div) if batch_select else torch.empty(R, dtype=torch.long, device=z.device)
    F = torch.empty((R, V) if want_logits else (0,), dtype=acc, device=z.device)
    if R:
        LP = triton.next_power_of_2(L)
        BLOCK, warps = stream_config(V, info)
        contrast_kernel[(R,)](z, z.stride(0), z.stride(1), L, V, lse, mx, div, log_alpha, premature, tokens,
                              F if want_logits else tokens, R,
                              LP=LP, BLOCK=BLOCK, ROW_SELECT=not batch_select, WRITE_F=want_logits,
                              ACC=tl.float64 if acc == torch.float64 else tl.float32, num_warps=warps)
    return tokens, premature, div, F, status
