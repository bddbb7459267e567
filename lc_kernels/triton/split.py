"""Split-vocabulary decode for few rows (decoding with batch 1–8 at V = 128k).

One program per row would leave most of a GPU idle when R is below the number of streaming
multiprocessors, so the vocabulary of each row is cut into S chunks and the (row, chunk)
programs reduce partial results in later launches — in a fixed order, without atomics:

    1  split_normalisers_kernel  (R, S): per-chunk max / sum-exp of every layer, check flags
       (torch: combine the S partials → lse [L, R], status; L·S·R numbers)
    2  split_divergence_kernel   (R, S): per-chunk divergence sums given lse
       (torch: sum over S → div [L-1, R]; Q by row or batch)
    3  split_contrast_kernel     (R, S): head, F = lp_N − lp_Q on the chunk (F written if asked),
       the chunk's (max, first index); torch picks the first maximal chunk → token.

Memory traffic is that of the one-program-per-row path (2·L·V·b + 2·V·b bytes per row), spread
over R·S programs.
"""
import torch
import triton
import triton.language as tl

from ..validation import STATUS_LAYER_STRIDE, accumulation_dtype
from .decode import contrast_range
from .stats import scale_divergence, sweep_divergences, sweep_normalisers, tile_config


@triton.jit
def split_normalisers_kernel(z_ptr, stride_l, stride_r, L, V, CHUNK, pm_ptr, ps_ptr, pflag_ptr, S,
                             LP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    layer = tl.arange(0, LP)[:, None]
    row_ptr = z_ptr + r * stride_r + layer.to(tl.int64) * stride_l
    v_lo = c * CHUNK
    v_hi = tl.minimum(v_lo + CHUNK, V)
    m, s, bad, mis = sweep_normalisers(row_ptr, layer, L, V, v_lo, v_hi, LP, BLOCK, ACC)
    out = (r * S + c) * LP + tl.arange(0, LP)
    tl.store(pm_ptr + out, m)
    tl.store(ps_ptr + out, s)
    tl.store(pflag_ptr + out, bad.to(tl.int32) + 2 * mis.to(tl.int32))


@triton.jit
def split_divergence_kernel(z_ptr, stride_l, stride_r, L, V, CHUNK, lse_ptr, R, pd_ptr, S,
                            DIVERGENCE: tl.constexpr, LP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    lidx = tl.arange(0, LP)
    layer = lidx[:, None]
    row_ptr = z_ptr + r * stride_r + layer.to(tl.int64) * stride_l
    lse = tl.load(lse_ptr + lidx.to(tl.int64) * R + r, mask=lidx < L, other=float("-inf"))
    v_lo = c * CHUNK
    v_hi = tl.minimum(v_lo + CHUNK, V)
    total = sweep_divergences(row_ptr, layer, L, V, v_lo, v_hi, lse, DIVERGENCE, LP, BLOCK, ACC)
    tl.store(pd_ptr + (r * S + c) * LP + lidx, scale_divergence(total, V, DIVERGENCE))


@triton.jit
def split_contrast_kernel(z_ptr, stride_l, stride_r, L, V, CHUNK, lse_ptr, max_ptr, log_alpha_ptr, premature_ptr,
                          pbest_ptr, pidx_ptr, F_ptr, R, S,
                          BLOCK: tl.constexpr, WRITE_F: tl.constexpr, ACC: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    q = tl.load(premature_ptr + r)
    v_lo = c * CHUNK
    best, best_idx = contrast_range(z_ptr, stride_l, stride_r, L, V, R, r, q, lse_ptr, max_ptr, log_alpha_ptr,
                                    F_ptr + r * V, v_lo, tl.minimum(v_lo + CHUNK, V), BLOCK, WRITE_F, ACC)
    tl.store(pbest_ptr + r * S + c, best)
    tl.store(pidx_ptr + r * S + c, best_idx)


def _status(bad, mis, final_all_masked, L):
    """Per-row status from per-layer flags [R, L] (same order as lc_kernels/validation.py)."""
    idx = torch.arange(L, device=bad.device)
    first_bad = torch.where(bad, idx, L).amin(1)
    first_mis = torch.where(mis, idx, L).amin(1)
    status = torch.where(first_mis < L, 3 * STATUS_LAYER_STRIDE + first_mis, 0)
    status = torch.where(final_all_masked, 2 * STATUS_LAYER_STRIDE, status)
    status = torch.where(first_bad < L, STATUS_LAYER_STRIDE + first_bad, status)
    return status.to(torch.int32)


def split_contrast_launch(z, log_alpha, divergence, batch_select, want_logits, splits: int):
    """The split-vocabulary version of decode.contrast_kernel_launch (same outputs)."""
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    LP, BLOCK, warps = tile_config(L, V)
    CHUNK = triton.cdiv(triton.cdiv(V, splits), BLOCK) * BLOCK  # whole blocks per chunk
    S = triton.cdiv(V, CHUNK)
    ACC = tl.float64 if acc == torch.float64 else tl.float32
    dev = z.device
    pm = torch.empty(R, S, LP, dtype=acc, device=dev)
    ps = torch.empty(R, S, LP, dtype=acc, device=dev)
    pflag = torch.empty(R, S, LP, dtype=torch.int32, device=dev)
    split_normalisers_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, pm, ps, pflag, S,
                                     LP=LP, BLOCK=BLOCK, ACC=ACC, num_warps=warps)
    m = pm.amax(1)  # [R, LP]
    scaled = torch.where(pm == float("-inf"), 0.0, ps * torch.exp(pm - m.unsqueeze(1)))
    lse_rl = m + torch.log(scaled.sum(1))  # chunks combined in a fixed order
    lse = lse_rl[:, :L].t().contiguous()  # [L, R]
    max_final = m[:, L - 1].contiguous()
    flags = pflag[:, :, :L]
    status = _status((flags & 1).any(1), (flags & 2).any(1), max_final == float("-inf"), L)

    pd = torch.empty(R, S, LP, dtype=acc, device=dev)
    split_divergence_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, lse, R, pd, S,
                                    DIVERGENCE=divergence, LP=LP, BLOCK=BLOCK, ACC=ACC, num_warps=warps)
    div = pd.sum(1)[:, :L - 1].t().contiguous()  # [L-1, R]
    if batch_select:
        premature = (div.double().sum(1) / max(R, 1)).argmax().expand(R).contiguous()
    else:
        premature = div.argmax(0)  # first maximum: ties → lowest candidate

    BLOCK_C = min(triton.next_power_of_2(CHUNK), 4096)
    la = torch.full((1,), log_alpha, dtype=acc, device=dev)
    pbest = torch.empty(R, S, dtype=acc, device=dev)
    pidx = torch.empty(R, S, dtype=torch.long, device=dev)
    F = torch.empty((R, V) if want_logits else (0,), dtype=acc, device=dev)
    split_contrast_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, lse, max_final, la, premature,
                                  pbest, pidx, F if want_logits else pbest, R, S,
                                  BLOCK=BLOCK_C, WRITE_F=want_logits, ACC=ACC, num_warps=4)
    tokens = pidx.gather(1, pbest.argmax(1, keepdim=True)).squeeze(1)  # first maximal chunk
    return tokens, premature, div, F, status
