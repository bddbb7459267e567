"""Triton kernel 1 of both ops: all-layer normalisers, divergences and value checks per row.

The naive torch path materialises log_softmax of every layer, p, log m and the terms as
[L, R, V] tensors (~a dozen full reads/writes of the logits). Here one program owns one row (or,
for few rows, one vocabulary chunk of a row: lc_kernels/triton/split.py reuses both sweeps) and
holds the final layer as a [BLOCK] vector beside a [CP, BLOCK] tile of the C = L − 1 candidate
layers (CP = next power of two ≥ C: no padding at all for the usual L = 2, 3, 5, 9, 17):

    sweep 1  blocked online softmax of every layer: per block the layer's max, the running sum
             rescaled once per block and layer, one exp per element; plus the checks (NaN/+inf,
             a candidate's −inf pattern differing from the final layer's);
    sweep 2  lp = z − lse, and the divergence of every candidate against the final layer
             (jsd: one exp and one log per candidate element, log m = log(p_N + p_j) − log 2;
             terms whose probability is 0 contribute 0, so underflow never gives NaN).

Memory traffic per row: 2·L·V·b bytes read (the second sweep from L2 when the row's programs
are few and close in time, from HBM otherwise), O(L) bytes written (lse [L], div [L-1], max of
the final layer, a status code). Transcendentals per input element: 1 (sweep 1) + 2 (sweep 2,
jsd/dola; kl: the final layer's exp only). No atomics here: deterministic.
"""
import triton
import triton.language as tl

from ..validation import STATUS_LAYER_STRIDE

LN2 = tl.constexpr(0.6931471805599453)  # globals read inside @triton.jit must be constexpr
STATUS_STRIDE = tl.constexpr(STATUS_LAYER_STRIDE)  # status = code * STATUS_STRIDE + layer


@triton.jit
def online_softmax_block(m, s, x, ACC: tl.constexpr):
    """Fold one block x [N, BLOCK] into the running max m [N] and sum s [N] of exp(x − m)."""
    neg_inf = float("-inf")
    m_new = tl.maximum(m, tl.max(x, axis=1))
    keep = tl.where(m_new == neg_inf, 0.0, tl.exp(m - m_new))  # one exp per layer and block
    add = tl.where(x == neg_inf, 0.0, tl.exp(x - m_new[:, None]))  # one exp per element
    return m_new, s * keep + tl.sum(add, axis=1)


@triton.jit
def sweep_normalisers(final_ptr, cand_ptr, cand, C, v_lo, v_hi, CP: tl.constexpr, BLOCK: tl.constexpr,
                      ACC: tl.constexpr):
    """Sweep 1 over [v_lo, v_hi) of one row.

    final_ptr: the row's final layer; cand_ptr [CP, 1]: its candidate layers (cand = arange(CP)[:, None],
    rows ≥ C are padding). Returns the candidates' max m_c [CP] and sum exp(z − m_c) s_c [CP], the
    final layer's m_f, s_f (scalars), and flags: bad_c [CP] (a NaN/+inf seen), mis_c [CP] (a −inf
    where the final layer is finite or the reverse), bad_f (scalar)."""
    neg_inf = float("-inf")
    lanes = tl.arange(0, BLOCK)[None, :]
    m_c = tl.full((CP,), neg_inf, ACC)
    s_c = tl.zeros((CP,), ACC)
    m_f = tl.full((1,), neg_inf, ACC)
    s_f = tl.zeros((1,), ACC)
    flags = tl.zeros((CP, BLOCK), tl.int32)  # bit 0 candidate bad, bit 1 mismatch, bit 2 final bad
    for start in range(v_lo, v_hi, BLOCK):
        offs = start + lanes  # [1, BLOCK]
        in_range = offs < v_hi
        xf = tl.load(final_ptr + offs, mask=in_range, other=neg_inf).to(ACC)  # [1, BLOCK]
        xc = tl.load(cand_ptr + offs, mask=(cand < C) & in_range, other=neg_inf).to(ACC)  # [CP, BLOCK]
        bad_c = (xc != xc) | (xc == float("inf"))
        bad_f = (xf != xf) | (xf == float("inf"))
        mis = ((xc == neg_inf) != (xf == neg_inf)) & (cand < C) & in_range
        flags = flags | bad_c.to(tl.int32) | (mis.to(tl.int32) * 2) | (bad_f.to(tl.int32) * 4)
        m_c, s_c = online_softmax_block(m_c, s_c, xc, ACC)
        m_f, s_f = online_softmax_block(m_f, s_f, xf, ACC)
    bad_f = tl.max(tl.max(flags & 4, axis=1), axis=0) > 0
    return (m_c, s_c, tl.max(m_f, axis=0), tl.max(s_f, axis=0),
            tl.max(flags & 1, axis=1) > 0, tl.max(flags & 2, axis=1) > 0, bad_f)


@triton.jit
def sweep_divergences(final_ptr, cand_ptr, cand, C, V, v_lo, v_hi, lse_c, lse_f, DIVERGENCE: tl.constexpr,
                      CP: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr, CONTRAST: tl.constexpr, m_N,
                      log_alpha):
    """Sweep 2 over [v_lo, v_hi): the unscaled divergence sums of every candidate [CP] given the
    normalisers lse_c [CP] and lse_f (jsd and dola: one exp and one log per candidate element;
    kl: none beyond the final layer's exp).

    With CONTRAST (split.py, where Q is not known yet) the same tiles also give, for every
    candidate j, the running (max, first index) of the contrast F_j = lp_N − lp_j on the head
    z_N − m_N ≥ log α — the numbers decode.contrast_range computes for the chosen Q alone, with
    the same arithmetic. Returns (div [CP], best [CP], best_idx [CP] int64)."""
    neg_inf = float("-inf")
    lanes = tl.arange(0, BLOCK)[None, :]
    lse2 = lse_c[:, None]
    acc = tl.zeros((CP, BLOCK), ACC)
    best = tl.full((CP,), neg_inf, ACC)
    best_idx = tl.zeros((CP,), tl.int64) + v_lo
    for start in range(v_lo, v_hi, BLOCK):
        offs = start + lanes
        in_range = offs < v_hi
        live = (cand < C) & in_range
        xf = tl.load(final_ptr + offs, mask=in_range, other=neg_inf).to(ACC)
        xc = tl.load(cand_ptr + offs, mask=live, other=neg_inf).to(ACC)
        lp_final = xf - lse_f  # [1, BLOCK]
        p_final = tl.where(xf != neg_inf, tl.exp(lp_final), 0.0)
        lp = xc - lse2  # [CP, BLOCK]
        if DIVERGENCE == 1:  # kl: p_N (lp_N − lp_j)
            t = tl.where(p_final > 0, p_final * (lp_final - lp), 0.0)
        else:
            p = tl.where(xc != neg_inf, tl.exp(lp), 0.0)
            s = p_final + p
            lm = tl.log(s) - LN2
            if DIVERGENCE == 0:  # jsd: ½ [p_N (lp_N − lm) + p_j (lp_j − lm)]  (the ½ applied by the caller)
                t = tl.where(p_final > 0, p_final * (lp_final - lm), 0.0) + tl.where(p > 0, p * (lp - lm), 0.0)
            else:  # dola: ½ m [(lm − lp_N) + (lm − lp_j)] with m = s / 2
                t = tl.where(s > 0, 0.5 * s * ((lm - lp_final) + (lm - lp)), 0.0)
        acc += tl.where(live, t, 0.0)
        if CONTRAST:
            head = (xf - m_N >= log_alpha) & (xf != neg_inf) & in_range  # [1, BLOCK]
            F = tl.where(head & (cand < C), lp_final - lp, neg_inf)
            block_best = tl.max(F, axis=1)
            block_idx = tl.min(tl.where(F == block_best[:, None], offs, V), axis=1).to(tl.int64)
            take = block_best > best  # strict: an earlier block keeps a tie
            best_idx = tl.where(take, block_idx, best_idx)
            best = tl.where(take, block_best, best)
    return tl.sum(acc, axis=1), best, best_idx


@triton.jit
def scale_divergence(total, V, DIVERGENCE: tl.constexpr):
    if DIVERGENCE == 0:
        total = total * 0.5
    if DIVERGENCE == 2:
        total = total * 0.5 / V
    return total


@triton.jit
def row_status(bad_c, mis_c, bad_f, m_final, C, CP: tl.constexpr):
    """A row's status code from its flags (the order of lc_kernels/validation.py): NaN/+inf (lowest
    layer; the final layer is layer C) > final row all −inf > −inf mask mismatch (lowest layer) > 0."""
    j = tl.arange(0, CP)
    none = C + 1
    first_bad = tl.min(tl.where(bad_c & (j < C), j, none), axis=0)
    first_bad = tl.where((first_bad == none) & bad_f, C, first_bad)
    first_mis = tl.min(tl.where(mis_c & (j < C), j, none), axis=0)
    status = tl.where(first_mis < none, 3 * STATUS_STRIDE + first_mis, 0)
    status = tl.where(m_final == float("-inf"), 2 * STATUS_STRIDE, status)
    return tl.where(first_bad < none, 1 * STATUS_STRIDE + first_bad, status)


@triton.jit
def row_pointers(z_ptr, stride_l, stride_r, r, L, CP: tl.constexpr):
    """(final layer pointer, candidate pointers [CP, 1], cand = arange(CP)[:, None]) of row r."""
    cand = tl.arange(0, CP)[:, None]
    row = z_ptr + r * stride_r
    return row + (L - 1) * stride_l, row + cand.to(tl.int64) * stride_l, cand


@triton.jit
def stats_kernel(
    z_ptr, stride_l, stride_r, L, V,
    targets_ptr, ignore_index,            # read only when HAS_TARGETS: ignored rows are skipped
    lse_ptr, max_ptr, div_ptr, status_ptr,  # out: lse [L, R], max of final [R], div [L-1, R], status [R]
    R,
    CP: tl.constexpr, BLOCK: tl.constexpr, DIVERGENCE: tl.constexpr, HAS_TARGETS: tl.constexpr,
    ACC: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)  # int64 before pointer math: R·V can exceed 2^31
    C = L - 1
    V_eff = V
    if HAS_TARGETS:
        y = tl.load(targets_ptr + r)
        valid = (y != ignore_index) & (y >= 0) & (y < V)
        V_eff = tl.where(valid, V, 0)  # an ignored row runs no sweep at all
    final_ptr, cand_ptr, cand = row_pointers(z_ptr, stride_l, stride_r, r, L, CP)
    m_c, s_c, m_f, s_f, bad_c, mis_c, bad_f = sweep_normalisers(final_ptr, cand_ptr, cand, C, 0, V_eff, CP, BLOCK,
                                                                ACC)
    lse_c = m_c + tl.log(s_c)  # −inf for an all-masked row
    lse_f = m_f + tl.log(s_f)
    total, _, _ = sweep_divergences(final_ptr, cand_ptr, cand, C, V, 0, V_eff, lse_c, lse_f, DIVERGENCE, CP, BLOCK,
                                    ACC, False, 0.0, 0.0)
    div = scale_divergence(total, V, DIVERGENCE)
    status = row_status(bad_c, mis_c, bad_f, m_f, C, CP)
    if HAS_TARGETS:
        status = tl.where(valid, status, 0)
        div = tl.where(valid, div, 0.0)

    j = tl.arange(0, CP)
    tl.store(lse_ptr + j.to(tl.int64) * R + r, lse_c, mask=j < C)
    tl.store(lse_ptr + C * R + r, lse_f)
    tl.store(div_ptr + j.to(tl.int64) * R + r, div, mask=j < C)
    tl.store(max_ptr + r, m_f)
    tl.store(status_ptr + r, status)
