"""Split-vocabulary decode for few rows (decoding with batch 1–8 at V = 128k): two launches.

One program per row would leave most of a GPU idle when R is below the number of
multiprocessors, so the vocabulary of each row is cut into S chunks, one program per
(row, chunk). The chain lse → divergences → Q → token has two full-vocabulary dependencies; the
first costs a launch boundary, the second is removed by computing the contrast of every
candidate while its divergence is computed, so Q is needed only to pick among finished numbers:

    1  split_normalisers_kernel (R, S)  per-chunk max / sum-exp of every layer, check flags;
                                        zeroes the arrival counters
    2  split_select_kernel      (R, S)  each program combines row r's S normaliser partials (same
                                        fixed order in every program: identical lse), then ONE sweep
                                        of its chunk gives the divergence sums of every candidate
                                        and every candidate's contrast (max, first index) on the head.
                                        The last program of a row to arrive (atomic counter, acq_rel)
                                        sums the S partials in chunk order → divergences, status,
                                        Q = argmax, token = first maximal chunk's index for Q.
                                        select="batch": the last row to finish picks the batch's Q
                                        (mean divergence, float64, row order) and every row's token.
  (3) split_contrast_kernel     (R, S)  contrast_logits only: F = lp_N − lp_Q written on the chunk.

Deterministic: every sum runs in a fixed order; the counter only decides WHO reduces. No torch
operation runs between the launches (no host synchronisation; CUDA-graph safe). Memory traffic
is that of the one-program-per-row path, 2·L·V·b bytes per row (the second sweep of a chunk
largely from L2), spread over R·S programs; partials are O(R·S·L) numbers.
"""
import torch
import triton
import triton.language as tl

from ..validation import accumulation_dtype
from .decode import as_acc, contrast_range, first_argmax
from .launch_config import device_info, tile_config
from .stats import row_pointers, row_status, scale_divergence, sweep_divergences, sweep_normalisers


@triton.jit
def split_normalisers_kernel(z_ptr, stride_l, stride_r, L, V, CHUNK, pm_ptr, ps_ptr, pflag_ptr, count_ptr, R, S,
                             CP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """Partials [R, S, CP + 1]: candidates at [0, CP), the final layer at CP."""
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    final_ptr, cand_ptr, cand = row_pointers(z_ptr, stride_l, stride_r, r, L, CP)
    v_lo = c * CHUNK
    m_c, s_c, m_f, s_f, bad_c, mis_c, bad_f = sweep_normalisers(final_ptr, cand_ptr, cand, L - 1, v_lo,
                                                                tl.minimum(v_lo + CHUNK, V), CP, BLOCK, ACC)
    base = (r * S + c) * (CP + 1)
    j = tl.arange(0, CP)
    tl.store(pm_ptr + base + j, m_c)
    tl.store(ps_ptr + base + j, s_c)
    tl.store(pflag_ptr + base + j, bad_c.to(tl.int32) + 2 * mis_c.to(tl.int32))
    tl.store(pm_ptr + base + CP, m_f)
    tl.store(ps_ptr + base + CP, s_f)
    tl.store(pflag_ptr + base + CP, bad_f.to(tl.int32))
    # arrival counters of launch 2: one per row, one for the batch (no memset launch needed)
    tl.store(count_ptr + r, 0, mask=c == 0)
    tl.store(count_ptr + R, 0, mask=(r == 0) & (c == 0))


@triton.jit
def combine_normalisers(pm_ptr, ps_ptr, r, S, CP: tl.constexpr, ACC: tl.constexpr):
    """Row r's maxima and normalisers from its S chunk partials, chunks in order:
    (m_c [CP], lse_c [CP], m_f, lse_f)."""
    neg_inf = float("-inf")
    jc = tl.arange(0, CP)
    base = r * S * (CP + 1)
    m_c = tl.full((CP,), neg_inf, ACC)
    m_f = tl.full((), neg_inf, ACC)
    for c in range(0, S):
        off = base + c * (CP + 1)
        m_c = tl.maximum(m_c, tl.load(pm_ptr + off + jc))
        m_f = tl.maximum(m_f, tl.load(pm_ptr + off + CP))
    s_c = tl.zeros((CP,), ACC)
    s_f = tl.zeros((), ACC)
    for c in range(0, S):
        off = base + c * (CP + 1)
        pm = tl.load(pm_ptr + off + jc)
        s_c += tl.where(pm == neg_inf, 0.0, tl.load(ps_ptr + off + jc) * tl.exp(pm - m_c))
        pmf = tl.load(pm_ptr + off + CP)
        s_f += tl.where(pmf == neg_inf, 0.0, tl.load(ps_ptr + off + CP) * tl.exp(pmf - m_f))
    return m_c, m_c + tl.log(s_c), m_f, m_f + tl.log(s_f)


@triton.jit
def pick_token(pbest_ptr, pidx_ptr, r, S, q, CP: tl.constexpr, ACC: tl.constexpr):
    """Row r's token for candidate q: the first chunk holding the maximal contrast, its index."""
    best = tl.full((), float("-inf"), ACC)
    token = tl.zeros((), tl.int64)
    for c in range(0, S):
        off = (r * S + c) * CP + q
        b = tl.load(pbest_ptr + off, volatile=True)
        i = tl.load(pidx_ptr + off, volatile=True)
        token = tl.where(b > best, i, token)
        best = tl.maximum(best, b)
    return token


@triton.jit
def split_select_kernel(
    z_ptr, stride_l, stride_r, L, V, CHUNK, log_alpha: tl.float64,
    pm_ptr, ps_ptr, pflag_ptr, count_ptr,                 # from launch 1: [R, S, CP + 1], counters [R + 1]
    pd_ptr, pbest_ptr, pidx_ptr,                          # partials of this launch [R, S, CP]
    lse_ptr, max_ptr, div_ptr, status_ptr, premature_ptr, tokens_ptr,  # out
    R, S,
    DIVERGENCE: tl.constexpr, ROW_SELECT: tl.constexpr, CP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    C = L - 1
    j = tl.arange(0, CP)
    final_ptr, cand_ptr, cand = row_pointers(z_ptr, stride_l, stride_r, r, L, CP)
    _, lse_c, m_N, lse_f = combine_normalisers(pm_ptr, ps_ptr, r, S, CP, ACC)
    v_lo = c * CHUNK
    total, best, best_idx = sweep_divergences(final_ptr, cand_ptr, cand, C, V, v_lo, tl.minimum(v_lo + CHUNK, V),
                                              lse_c, lse_f, DIVERGENCE, CP, BLOCK, ACC,
                                              True, m_N, as_acc(log_alpha, ACC))
    out = (r * S + c) * CP + j
    tl.store(pd_ptr + out, total)
    tl.store(pbest_ptr + out, best)
    tl.store(pidx_ptr + out, best_idx)
    tl.debug_barrier()  # every thread's partials stored before the (single-thread) release below
    arrived = tl.atomic_add(count_ptr + r, 1, sem="acq_rel", scope="gpu")
    if arrived == S - 1:  # the last chunk of row r: the other S − 1 partials are visible
        div = tl.zeros((CP,), ACC)
        flags = tl.zeros((CP,), tl.int32)
        flag_f = tl.zeros((), tl.int32)
        for k in range(0, S):
            div += tl.load(pd_ptr + (r * S + k) * CP + j, volatile=True)
            flags = flags | tl.load(pflag_ptr + (r * S + k) * (CP + 1) + j)
            flag_f = flag_f | tl.load(pflag_ptr + (r * S + k) * (CP + 1) + CP)
        div = scale_divergence(div, V, DIVERGENCE)
        status = row_status((flags & 1) != 0, (flags & 2) != 0, flag_f != 0, m_N, C, CP)
        tl.store(lse_ptr + j.to(tl.int64) * R + r, lse_c, mask=j < C)
        tl.store(lse_ptr + C * R + r, lse_f)
        tl.store(max_ptr + r, m_N)
        tl.store(div_ptr + j.to(tl.int64) * R + r, div, mask=j < C)
        tl.store(status_ptr + r, status)
        if ROW_SELECT:
            q = first_argmax(div, C, CP)
            tl.store(premature_ptr + r, q)
            tl.store(tokens_ptr + r, pick_token(pbest_ptr, pidx_ptr, r, S, q, CP, ACC))
        else:
            tl.debug_barrier()
            rows_done = tl.atomic_add(count_ptr + R, 1, sem="acq_rel", scope="gpu")
            if rows_done == R - 1:  # the last row: every row's divergences are visible
                mean = tl.zeros((CP,), tl.float64)
                for k in range(0, R):
                    d = tl.load(div_ptr + j.to(tl.int64) * R + k, mask=j < C, other=0.0, volatile=True)
                    mean += d.to(tl.float64)
                q = first_argmax(mean / R, C, CP)
                for k in range(0, R):
                    tl.store(premature_ptr + k, q)
                    tl.store(tokens_ptr + k, pick_token(pbest_ptr, pidx_ptr, k, S, q, CP, ACC))


@triton.jit
def split_contrast_kernel(z_ptr, stride_l, stride_r, L, V, CHUNK, lse_ptr, max_ptr, log_alpha: tl.float64,
                          premature_ptr, F_ptr, R, BLOCK: tl.constexpr, ACC: tl.constexpr):
    r = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1).to(tl.int64)
    q = tl.load(premature_ptr + r)
    v_lo = c * CHUNK
    contrast_range(z_ptr, stride_l, stride_r, L, V, R, r, q, lse_ptr, max_ptr, as_acc(log_alpha, ACC),
                   F_ptr + r * V, v_lo, tl.minimum(v_lo + CHUNK, V), BLOCK, True, ACC)


def split_contrast_launch(z, log_alpha, divergence, batch_select, want_logits, splits: int):
    """The split-vocabulary version of decode.contrast_kernel_launch (same outputs)."""
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    info = device_info(z.device)
    CP, BLOCK, warps = tile_config(L, V, info, acc.itemsize)
    CHUNK = triton.cdiv(triton.cdiv(V, splits), BLOCK) * BLOCK  # whole blocks per chunk
    S = triton.cdiv(V, CHUNK)
    ACC = tl.float64 if acc == torch.float64 else tl.float32
    dev = z.device

    def partial(dtype, width):
        return torch.empty(R, S, width, dtype=dtype, device=dev)

    pm, ps, pflag = partial(acc, CP + 1), partial(acc, CP + 1), partial(torch.int32, CP + 1)
    pd, pbest, pidx = partial(acc, CP), partial(acc, CP), partial(torch.long, CP)
    count = torch.empty(R + 1, dtype=torch.int32, device=dev)
    lse = torch.empty(L, R, dtype=acc, device=dev)
    max_final = torch.empty(R, dtype=acc, device=dev)
    div = torch.empty(L - 1, R, dtype=acc, device=dev)
    status = torch.empty(R, dtype=torch.int32, device=dev)
    premature = torch.empty(R, dtype=torch.long, device=dev)
    tokens = torch.empty(R, dtype=torch.long, device=dev)

    split_normalisers_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, pm, ps, pflag, count, R, S,
                                     CP=CP, BLOCK=BLOCK, ACC=ACC, num_warps=warps)
    split_select_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, log_alpha, pm, ps, pflag, count,
                                pd, pbest, pidx, lse, max_final, div, status, premature, tokens, R, S,
                                DIVERGENCE=divergence, ROW_SELECT=not batch_select, CP=CP, BLOCK=BLOCK, ACC=ACC,
                                num_warps=warps)
    F = torch.empty((R, V) if want_logits else (0,), dtype=acc, device=dev)
    if want_logits:
        split_contrast_kernel[(R, S)](z, z.stride(0), z.stride(1), L, V, CHUNK, lse, max_final, log_alpha,
                                      premature, F, R, BLOCK=min(triton.next_power_of_2(CHUNK), 4096), ACC=ACC,
                                      num_warps=4)
    return tokens, premature, div, F, status
