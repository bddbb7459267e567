"""torch.library registration shared by the fused backends (SPEC §6).

Each fused backend supplies two kernels over a flattened z [L, R, V] (vocabulary contiguous):

    contrast_kernel(z, log_alpha, divergence_code, batch_select, want_logits)
        -> tokens [R] i64, premature [R] i64, divergence [L-1, R] acc, F [R, V] acc (or [0]), status [R] i32
    loss_kernel(z, targets, entity_mask, relation_mask, log_alpha, divergence_code, batch_select,
                gate_code, top_u, lambda_entity, lambda_relation, ignore_index)
        -> loss [R] acc, premature [R] i64, gate [R] bool, divergence [L-1, R] acc, status [R] i32,
           grad [R, V] input dtype (d loss_r / d z_N[r]; the premature layer receives its negative)

and :func:`define_ops` registers them as custom ops ``lc_kernels::<backend>_contrast`` and
``lc_kernels::<backend>_loss`` with fake (meta) implementations and autograd, so torch.compile,
FSDP and meta-device tracing see real ops. ("acc" is float32, or float64 for float64 input.)

Backward of the loss only scales the saved gradient: grad_z[L-1, r] = g_r · saved[r], and with
detach_premature=False grad_z[Q_r, r] -= g_r · saved[r] on gated rows. Peak memory: the input, its gradient
and one layer's worth of saved gradient.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from ..validation import accumulation_dtype, log_alpha

DIVERGENCE_CODES = {"jsd": 0, "kl": 1, "dola": 2}
GATE_CODES = {"key_factors": 0, "always": 1, "never": 2}


def define_ops(backend: str, contrast_kernel, loss_kernel) -> SimpleNamespace:
    """Register the backend's ops; return the two entry points lc_kernels.api calls."""
    ns = f"lc_kernels::{backend}"

    @torch.library.custom_op(f"{ns}_contrast", mutates_args=())
    def contrast_op(z: torch.Tensor, log_alpha: float, divergence: int, batch_select: bool,
                    want_logits: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return contrast_kernel(z, log_alpha, divergence, batch_select, want_logits)

    @contrast_op.register_fake
    def _(z, log_alpha, divergence, batch_select, want_logits):
        L, R, V = z.shape
        acc = accumulation_dtype(z.dtype)
        return (z.new_empty(R, dtype=torch.long), z.new_empty(R, dtype=torch.long),
                z.new_empty(L - 1, R, dtype=acc), z.new_empty((R, V) if want_logits else (0,), dtype=acc),
                z.new_empty(R, dtype=torch.int32))

    @torch.library.custom_op(f"{ns}_loss", mutates_args=())
    def loss_op(z: torch.Tensor, targets: torch.Tensor, entity_mask: torch.Tensor, relation_mask: torch.Tensor,
                log_alpha: float, divergence: int, batch_select: bool, gate: int, top_u: int,
                lambda_entity: float, lambda_relation: float, ignore_index: int, detach_premature: bool,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return loss_kernel(z, targets, entity_mask, relation_mask, log_alpha, divergence, batch_select, gate,
                           top_u, lambda_entity, lambda_relation, ignore_index)

    @loss_op.register_fake
    def _(z, targets, entity_mask, relation_mask, log_alpha, divergence, batch_select, gate, top_u,
          lambda_entity, lambda_relation, ignore_index, detach_premature):
        L, R, V = z.shape
        acc = accumulation_dtype(z.dtype)
        return (z.new_empty(R, dtype=acc), z.new_empty(R, dtype=torch.long), z.new_empty(R, dtype=torch.bool),
                z.new_empty(L - 1, R, dtype=acc), z.new_empty(R, dtype=torch.int32), z.new_empty(R, V))

    def setup_context(ctx, inputs, output):
        z = inputs[0]
        ctx.detach_premature = inputs[-1]
        ctx.shape, ctx.dtype = z.shape, z.dtype
        ctx.save_for_backward(output[5], output[1], output[2])
        # Only the per-row loss is differentiable; not materialising zero gradients for the other
        # outputs matters: the saved-gradient output alone is [R, V], one layer of logits.
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)

    def backward(ctx, g_loss, *unused):
        if g_loss is None:
            return (None,) * 13
        saved, premature, gate = ctx.saved_tensors
        L, R, V = ctx.shape
        grad_z = torch.zeros((L, R, V), dtype=ctx.dtype, device=saved.device)
        g = g_loss.to(accumulation_dtype(ctx.dtype)).unsqueeze(1)
        torch.mul(saved, g, out=grad_z[L - 1])  # computed in the accumulation dtype, stored in z's
        if not ctx.detach_premature:
            rows = ((premature >= 0) & gate).nonzero().squeeze(1)  # gated rows only (SPEC §5)
            grad_z[premature[rows], rows] -= grad_z[L - 1, rows]
        return (grad_z,) + (None,) * 12

    loss_op.register_autograd(backward, setup_context=setup_context)

    def contrast(z, alpha, divergence, select, want_logits, check):
        tokens, q, div, F, status = contrast_op(_vocab_contiguous(z), log_alpha(alpha), DIVERGENCE_CODES[divergence],
                                                select == "batch", want_logits)
        return tokens, q, div, (F if want_logits else None), status

    def loss(z, targets, entity_mask, relation_mask, *, check, gate, alpha, top_u, lambda_entity, lambda_relation,
             divergence, select, detach_premature, ignore_index):
        out = loss_op(_vocab_contiguous(z), targets.contiguous(), entity_mask, relation_mask, log_alpha(alpha),
                      DIVERGENCE_CODES[divergence], select == "batch", GATE_CODES[gate], top_u, lambda_entity,
                      lambda_relation, ignore_index, detach_premature)
        loss_rows, q, g, div, status, _ = out
        return loss_rows, q, g, div, status

    return SimpleNamespace(contrast=contrast, loss=loss, contrast_op=contrast_op, loss_op=loss_op)


def _vocab_contiguous(z: torch.Tensor) -> torch.Tensor:
    """The kernels take any layer/row strides but need the vocabulary dimension contiguous."""
    return z if z.stride(-1) == 1 else z.contiguous()
