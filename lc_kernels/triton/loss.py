"""Triton layer-contrast loss: kernel 2 after stats.stats_kernel, with the gradient in the same pass.

Math per valid row with target y (SPEC §5), w = 1 + λ1·[y ∈ V_ent] + λ2·[y ∈ E_rel]:

    gate g   key_factors: #{t : z_N(t) > max_{s∈Φ} z_N(s)} < U (Φ empty/masked → 0); always; never
    scores   gated: S = z_N − z_Q on H' = H ∪ {y}, −inf elsewhere; ungated: S = z_N
    loss     w · (logsumexp S − S(y))          (= −log softmax_{H'}(D)(y), or −lp_N(y))
    grad     d loss / d z_N = w · (softmax(S) − onehot(y)); z_Q receives the negative (autograd glue)

Sweeps per valid row over V (one program per row): [gate: max over Φ, then a count] →
logsumexp S (blocked online: max and sum in one sweep) → write the gradient. Reads ≤ 3·2·V·b
bytes per row (the first sweep from HBM, the later ones largely from L2: a program keeps only
its row's final and premature layers in flight), writes
V·b bytes of gradient (input dtype) into a saved [R, V] buffer — never the caller's logits.
Ignored rows write a zero gradient row and nothing else. ignore_index and targets outside
[0, V) are handled in-kernel; no host synchronisation anywhere.
"""
import torch
import triton
import triton.language as tl

from ..validation import accumulation_dtype
from .decode import as_acc, batch_premature, row_premature, run_stats
from .launch_config import device_info, stream_config
from .stats import STATUS_STRIDE, online_softmax_block


@triton.jit
def _scores(final_ptr, prem_ptr, offs, V, V_q, m_N, log_alpha, y, g, ACC: tl.constexpr):
    """S over one block: gated rows D = z_N − z_Q on H' = H ∪ {y} (−inf elsewhere), else z_N.
    The premature layer is read only on gated rows (V_q = 0 otherwise)."""
    neg_inf = float("-inf")
    mask = offs < V
    zn = tl.load(final_ptr + offs, mask=mask, other=neg_inf).to(ACC)
    zq = tl.load(prem_ptr + offs, mask=offs < V_q, other=0.0).to(ACC)
    in_head = (((zn - m_N >= log_alpha) & (zn != neg_inf)) | (offs == y)) & mask
    return tl.where(g, tl.where(in_head, zn - zq, neg_inf), zn), mask


@triton.jit
def loss_kernel(
    z_ptr, stride_l, stride_r, L, V,
    targets_ptr, ent_ptr, rel_ptr, ignore_index,
    lse_ptr, max_ptr, div_ptr, log_alpha: tl.float64, status_ptr,
    premature_ptr, loss_ptr, gate_ptr, grad_ptr,
    R, top_u, lambda_entity: tl.float64, lambda_relation: tl.float64,
    LP: tl.constexpr, BLOCK: tl.constexpr, ROW_SELECT: tl.constexpr, GATE: tl.constexpr, ACC: tl.constexpr,
):
    r = tl.program_id(0).to(tl.int64)
    lanes = tl.arange(0, BLOCK)
    neg_inf = float("-inf")
    y = tl.load(targets_ptr + r)
    valid = (y != ignore_index) & (y >= 0) & (y < V)
    grad_row = grad_ptr + r * V
    if valid:
        if ROW_SELECT:
            q = row_premature(div_ptr, r, R, L, LP)
        else:
            q = tl.load(premature_ptr + r)
        final_ptr = z_ptr + r * stride_r + (L - 1) * stride_l
        prem_ptr = z_ptr + r * stride_r + q * stride_l
        m_N = tl.load(max_ptr + r)
        head_threshold = as_acc(log_alpha, ACC)  # log α in ACC (a new name: Triton keeps types per name)
        z_y = tl.load(final_ptr + y).to(ACC)
        # a target at a masked token is reported (lowest priority after the stats checks)
        status = tl.load(status_ptr + r)
        tl.store(status_ptr + r, tl.where((status == 0) & (z_y == neg_inf), 4 * STATUS_STRIDE, status))

        # ---- the gate
        if GATE == 0:  # key factors: max of z_N over Φ, then how many tokens lie strictly above it
            phi_best = tl.full((BLOCK,), neg_inf, ACC)
            for start in range(0, V, BLOCK):
                offs = start + lanes
                mask = offs < V
                zn = tl.load(final_ptr + offs, mask=mask, other=neg_inf).to(ACC)
                phi = (tl.load(ent_ptr + offs, mask=mask, other=0) | tl.load(rel_ptr + offs, mask=mask, other=0)) != 0
                phi_best = tl.maximum(phi_best, tl.where(phi, zn, neg_inf))
            best = tl.max(phi_best, axis=0)
            above = tl.zeros((BLOCK,), tl.int64)
            for start in range(0, V, BLOCK):
                offs = start + lanes
                zn = tl.load(final_ptr + offs, mask=offs < V, other=neg_inf).to(ACC)
                above += (zn > best).to(tl.int64)
            g = (best != neg_inf) & (tl.sum(above, axis=0) < top_u)
        elif GATE == 1:
            g = tl.full((), 1, tl.int1)
        else:
            g = tl.full((), 0, tl.int1)

        # ---- scores S: gated D = z_N − z_Q on H' = H ∪ {y}; ungated z_N. Two sweeps: a blocked
        # online logsumexp (one exp per element), then the gradient.
        V_q = tl.where(g, V, 0)  # the premature layer is read only on gated rows
        m = tl.full((1,), neg_inf, ACC)
        s_sum = tl.zeros((1,), ACC)
        for start in range(0, V, BLOCK):
            S, _ = _scores(final_ptr, prem_ptr, start + lanes, V, V_q, m_N, head_threshold, y, g, ACC)
            m, s_sum = online_softmax_block(m, s_sum, S[None, :], ACC)
        lse = tl.max(m + tl.log(s_sum), axis=0)
        z_qy = tl.load(prem_ptr + y).to(ACC)
        S_y = tl.where(g, z_y - z_qy, z_y)
        w = (1.0 + as_acc(lambda_entity, ACC) * tl.load(ent_ptr + y).to(ACC)
             + as_acc(lambda_relation, ACC) * tl.load(rel_ptr + y).to(ACC))
        for start in range(0, V, BLOCK):
            offs = start + lanes
            S, mask = _scores(final_ptr, prem_ptr, offs, V, V_q, m_N, head_threshold, y, g, ACC)
            prob = tl.where(S != neg_inf, tl.exp(S - lse), 0.0)
            grad = w * (prob - (offs == y).to(ACC))
            tl.store(grad_row + offs, grad.to(grad_ptr.dtype.element_ty), mask=mask)
        tl.store(loss_ptr + r, w * (lse - S_y))
        tl.store(gate_ptr + r, g.to(tl.int8))
        tl.store(premature_ptr + r, q)
    else:
        for start in range(0, V, BLOCK):
            offs = start + lanes
            tl.store(grad_row + offs, tl.zeros((BLOCK,), grad_ptr.dtype.element_ty), mask=offs < V)
        tl.store(loss_ptr + r, tl.zeros((), ACC))
        tl.store(gate_ptr + r, tl.zeros((), tl.int8))
        tl.store(premature_ptr + r, tl.full((), -1, tl.int64))


def loss_kernel_launch(z, targets, entity_mask, relation_mask, log_alpha, divergence, batch_select, gate, top_u,
                       lambda_entity, lambda_relation, ignore_index):
    """The `loss_kernel` of lc_kernels.backends.registration for CUDA (or interpreted) tensors."""
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    lse, mx, div, status = run_stats(z, divergence, targets, ignore_index)
    loss = torch.empty(R, dtype=acc, device=z.device)
    gate_out = torch.empty(R, dtype=torch.bool, device=z.device)
    grad = torch.empty(R, V, dtype=z.dtype, device=z.device)
    if batch_select:
        valid = (targets != ignore_index) & (targets >= 0) & (targets < V)
        premature = batch_premature(div, valid)
    else:
        premature = torch.empty(R, dtype=torch.long, device=z.device)
    if R:
        LP = triton.next_power_of_2(L)
        BLOCK, warps = stream_config(V, device_info(z.device))
        loss_kernel[(R,)](z, z.stride(0), z.stride(1), L, V,
                          targets, entity_mask.view(torch.uint8), relation_mask.view(torch.uint8), ignore_index,
                          lse, mx, div, log_alpha, status, premature, loss, gate_out.view(torch.int8), grad,
                          R, min(top_u, V), lambda_entity, lambda_relation,
                          LP=LP, BLOCK=BLOCK, ROW_SELECT=not batch_select, GATE=gate,
                          ACC=tl.float64 if acc == torch.float64 else tl.float32, num_warps=warps)
    return loss, premature, gate_out, div, status, grad
