"""Triton kernel 1 of both ops: all-layer normalisers, divergences and value checks per row.

The naive torch path materialises log_softmax of every layer, p, log m and the terms as
[L, R, V] tensors (~a dozen full reads/writes of the logits). Here one program owns one row (or,
for few rows, one vocabulary chunk of a row: lc_kernels/triton/split.py reuses the two sweeps)
and holds a [LP, BLOCK] tile of all L layers (LP = next power of two ≥ L):

    sweep 1  online max / sum-exp of every layer at once (per-lane running max and sum, combined
             at the end: a blocked sum, accurate per SPEC §2), plus NaN/+inf and -inf-mask checks;
    sweep 2  lp = z − lse for every layer, and the divergence of every candidate against the final
             layer (jsd: one log per element, log m = log(p_N + p_j) − log 2; terms whose
             probability is 0 contribute 0, so underflow never gives NaN).

Memory traffic per row: 2·L·V·b bytes read (the second sweep largely from L2), O(L) bytes written
(lse [L], div [L-1], max of the final layer, a status code). No atomics: deterministic.
"""
import triton
import triton.language as tl

LN2 = 0.6931471805599453
STATUS_STRIDE = 65536  # status = code * STATUS_STRIDE + layer (lc_kernels/validation.py)


@triton.jit
def sweep_normalisers(row_ptr, layer, L, V, v_lo, v_hi, LP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr):
    """Sweep 1 over [v_lo, v_hi): per-layer max m [LP] and sum exp(z − m) s [LP] (per-lane online
    softmax, lanes combined at the end), and per-layer flags: a NaN/+inf seen, a -inf position
    differing from the final layer's."""
    neg_inf = float("-inf")
    is_final = layer == L - 1
    lanes = tl.arange(0, BLOCK)[None, :]
    m_lane = tl.full((LP, BLOCK), neg_inf, ACC)
    s_lane = tl.zeros((LP, BLOCK), ACC)
    bad = tl.zeros((LP, BLOCK), tl.int32)
    mismatch = tl.zeros((LP, BLOCK), tl.int32)
    for start in range(v_lo, v_hi, BLOCK):
        offs = start + lanes
        mask = (layer < L) & (offs < v_hi)
        x = tl.load(row_ptr + offs, mask=mask, other=neg_inf).to(ACC)
        bad = bad | ((x != x) | (x == float("inf"))).to(tl.int32)
        x_masked = (x == neg_inf).to(tl.int32)
        final_masked = tl.max(tl.where(is_final, x_masked, 0), axis=0)[None, :]
        mismatch = mismatch | tl.where(mask, x_masked != final_masked, 0).to(tl.int32)
        m_new = tl.maximum(m_lane, x)
        s_lane = tl.where(m_new == neg_inf, 0.0, s_lane * tl.exp(m_lane - m_new) + tl.exp(x - m_new))
        m_lane = m_new
    m = tl.max(m_lane, axis=1)
    s = tl.sum(tl.where(m_lane == neg_inf, 0.0, s_lane * tl.exp(m_lane - m[:, None])), axis=1)
    return m, s, tl.max(bad, axis=1) > 0, tl.max(mismatch, axis=1) > 0


@triton.jit
def sweep_divergences(row_ptr, layer, L, V, v_lo, v_hi, lse, DIVERGENCE: tl.constexpr, LP: tl.constexpr,
                      BLOCK: tl.constexpr, ACC: tl.constexpr, CONTRAST: tl.constexpr, m_N, log_alpha):
    """Sweep 2 over [v_lo, v_hi): the unscaled divergence sums of every candidate [LP] given the
    normalisers lse [LP] (jsd and dola: one log per element; kl: none).

    With CONTRAST (split.py, where Q is not known yet) the same tiles also give, for every
    candidate j, the running (max, first index) of the contrast F_j = lp_N − lp_j on the head
    z_N − m_N ≥ log α — the numbers decode.contrast_range computes for the chosen Q alone, with
    the same arithmetic. Returns (div [LP], best [LP], best_idx [LP] int64)."""
    neg_inf = float("-inf")
    is_final = layer == L - 1
    lanes = tl.arange(0, BLOCK)[None, :]
    lse2 = lse[:, None]
    acc = tl.zeros((LP, BLOCK), ACC)
    best = tl.full((LP,), neg_inf, ACC)
    best_idx = tl.zeros((LP,), tl.int64) + v_lo
    for start in range(v_lo, v_hi, BLOCK):
        offs = start + lanes
        mask = (layer < L) & (offs < v_hi)
        x = tl.load(row_ptr + offs, mask=mask, other=neg_inf).to(ACC)
        lp = x - lse2
        p = tl.where(mask & (x != neg_inf), tl.exp(lp), 0.0)
        lp_final = tl.sum(tl.where(is_final, lp, 0.0), axis=0)[None, :]
        p_final = tl.sum(tl.where(is_final, p, 0.0), axis=0)[None, :]
        if DIVERGENCE == 1:  # kl: p_N (lp_N − lp_j)
            t = tl.where(p_final > 0, p_final * (lp_final - lp), 0.0)
        else:
            s = p_final + p
            lm = tl.log(s) - LN2
            if DIVERGENCE == 0:  # jsd: ½ [p_N (lp_N − lm) + p_j (lp_j − lm)]  (the ½ applied by the caller)
                t = tl.where(p_final > 0, p_final * (lp_final - lm), 0.0) + tl.where(p > 0, p * (lp - lm), 0.0)
            else:  # dola: ½ m [(lm − lp_N) + (lm − lp_j)] with m = s / 2
                t = tl.where(s > 0, 0.5 * s * ((lm - lp_final) + (lm - lp)), 0.0)
        acc += tl.where(mask & (layer < L - 1), t, 0.0)
        if CONTRAST:
            zn = tl.sum(tl.where(is_final, x, 0.0), axis=0)[None, :]
            head = (zn - m_N >= log_alpha) & (zn != neg_inf) & (offs < v_hi) & (layer < L - 1)
            F = tl.where(head, lp_final - lp, neg_inf)
            block_best = tl.max(F, axis=1)
            block_idx = tl.min(tl.where(F == block_best[:, None], offs, V), axis=1).to(tl.int64)
            take = block_best > best  # strict: an earlier block keeps a tie
            best_idx = tl.where(take, block_idx, best_idx)
            best = tl.where(take, block_best, best)
    return tl.sum(acc, axis=1), best, best_idx


@triton.jit
def row_status(bad_l, mis_l, m_final, L, LP: tl.constexpr):
    """A row's status code from its per-layer flags [LP] (the order of lc_kernels/validation.py):
    NaN/+inf (lowest layer) > final row all −inf > −inf mask mismatch (lowest layer) > 0."""
    lidx = tl.arange(0, LP)
    first_bad = tl.min(tl.where(bad_l & (lidx < L), lidx, LP), axis=0)
    first_mis = tl.min(tl.where(mis_l & (lidx < L), lidx, LP), axis=0)
    status = tl.where(first_mis < L, 3 * STATUS_STRIDE + first_mis, 0)
    status = tl.where(m_final == float("-inf"), 2 * STATUS_STRIDE, status)
    return tl.where(first_bad < L, 1 * STATUS_STRIDE + first_bad, status)


@triton.jit
def scale_divergence(total, V, DIVERGENCE: tl.constexpr):
    if DIVERGENCE == 0:
        total = total * 0.5
    if DIVERGENCE == 2:
        total = total * 0.5 / V
    return total


@triton.jit
def stats_kernel(
    z_ptr, stride_l, stride_r, L, V,
    targets_ptr, ignore_index,            # read only when HAS_TARGETS: ignored rows are skipped
    lse_ptr, max_ptr, div_ptr, status_ptr,  # out: lse [L, R], max of final [R], div [L-1, R], status [R]
    R,
    LP: tl.constexpr, BLOCK: tl.constexpr, DIVERGENCE: tl.constexpr, HAS_TARGETS: tl.constexpr,
    ACC: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)  # int64 before pointer math: R·V can exceed 2^31
    V_eff = V
    if HAS_TARGETS:
        y = tl.load(targets_ptr + r)
        valid = (y != ignore_index) & (y >= 0) & (y < V)
        V_eff = tl.where(valid, V, 0)  # an ignored row runs no sweep at all
    layer = tl.arange(0, LP)[:, None]
    row_ptr = z_ptr + r * stride_r + layer.to(tl.int64) * stride_l
    m, s, bad_l, mis_l = sweep_normalisers(row_ptr, layer, L, V, 0, V_eff, LP, BLOCK, ACC)
    lse = m + tl.log(s)  # [LP], -inf for an all-masked row
    total, _, _ = sweep_divergences(row_ptr, layer, L, V, 0, V_eff, lse, DIVERGENCE, LP, BLOCK, ACC,
                                    False, 0.0, 0.0)
    div = scale_divergence(total, V, DIVERGENCE)
    lidx = tl.arange(0, LP)
    m_final = tl.sum(tl.where(lidx == L - 1, m, 0.0), axis=0)
    status = row_status(bad_l, mis_l, m_final, L, LP)
    if HAS_TARGETS:
        status = tl.where(valid, status, 0)
        div = tl.where(valid, div, 0.0)

    tl.store(lse_ptr + lidx.to(tl.int64) * R + r, lse, mask=lidx < L)
    tl.store(div_ptr + lidx.to(tl.int64) * R + r, div, mask=lidx < L - 1)
    tl.store(max_ptr + r, m_final)
    tl.store(status_ptr + r, status)

