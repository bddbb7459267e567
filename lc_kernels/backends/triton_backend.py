"""The "triton" backend: lc_kernels/triton kernels registered as torch.library ops.

Runs on CUDA tensors, or on CPU tensors when TRITON_INTERPRET=1 was set before triton was
imported (how CI tests every kernel). Importing it needs triton, never a GPU.
"""
from __future__ import annotations

import triton  # noqa: F401  (ImportError here makes the backend unavailable, with the reason)

from ..triton.decode import contrast_kernel_launch
from ..triton.loss import loss_kernel_launch
from .registration import define_ops

_ops = define_ops("triton", contrast_kernel_launch, loss_kernel_launch)
contrast = _ops.contrast
loss = _ops.loss
