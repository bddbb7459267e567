"""The "cpu" backend: the C++ core (csrc/) through the pybind11 module lc_kernels._C.

Python allocates every output and hands raw pointers, shapes and strides to the core, which
runs with the GIL released on torch's intra-op thread count (torch.set_num_threads applies).
See csrc/decode.cpp and csrc/loss.cpp for the passes and their memory traffic.
"""
from __future__ import annotations

import torch

from .. import _C
from ..validation import accumulation_dtype
from .registration import define_ops

_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.bfloat16: 2, torch.float16: 3}


def _layer_args(z: torch.Tensor):
    L, R, V = z.shape
    return (z.data_ptr(), _DTYPE_CODES[z.dtype], L, R, V, z.stride(0), z.stride(1))


def _contrast_kernel(z, log_alpha, divergence, batch_select, want_logits):
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    tokens = torch.empty(R, dtype=torch.long)
    premature = torch.empty(R, dtype=torch.long)
    div = torch.empty(L - 1, R, dtype=acc)
    F = torch.empty((R, V) if want_logits else (0,), dtype=acc)
    status = torch.empty(R, dtype=torch.int32)
    _C.contrast(*_layer_args(z), log_alpha, divergence, batch_select, torch.get_num_threads(),
                tokens.data_ptr(), premature.data_ptr(), div.data_ptr(), F.data_ptr() if want_logits else 0,
                status.data_ptr())
    return tokens, premature, div, F, status


def _loss_kernel(z, targets, entity_mask, relation_mask, log_alpha, divergence, batch_select, gate, top_u,
                 lambda_entity, lambda_relation, ignore_index):
    L, R, V = z.shape
    acc = accumulation_dtype(z.dtype)
    loss = torch.empty(R, dtype=acc)
    premature = torch.empty(R, dtype=torch.long)
    gate_out = torch.empty(R, dtype=torch.bool)
    div = torch.empty(L - 1, R, dtype=acc)
    status = torch.empty(R, dtype=torch.int32)
    grad = torch.empty(R, V, dtype=z.dtype)
    _C.loss(*_layer_args(z), targets.data_ptr(), entity_mask.data_ptr(), relation_mask.data_ptr(), log_alpha,
            divergence, batch_select, gate, top_u, lambda_entity, lambda_relation, ignore_index,
            torch.get_num_threads(), loss.data_ptr(), premature.data_ptr(), gate_out.data_ptr(), div.data_ptr(),
            grad.data_ptr(), status.data_ptr())
    return loss, premature, gate_out, div, status, grad


_ops = define_ops("cpu", _contrast_kernel, _loss_kernel)
contrast = _ops.contrast
loss = _ops.loss
