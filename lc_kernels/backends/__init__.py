"""Backend discovery and dispatch (SPEC §6).

"torch"  : the plain reference (lc_kernels/reference.py), always available.
"cpu"    : the compiled C++ extension lc_kernels._C (CPU tensors).
"triton" : Triton kernels (CUDA tensors; CPU tensors only under TRITON_INTERPRET=1).
"auto"   : the best available for the tensor's device, else the reference with a one-time warning.

Each fused backend module exposes the same two functions, called by lc_kernels.api on a
validated, flattened z [L, R, V]:

    contrast(z, alpha, divergence, select, want_logits, check) -> (tokens, premature, div, F|None, status)
    loss(z, targets, entity_mask, relation_mask, phi_mask, **options) -> (loss_rows, premature, gate, div, status)
"""
from __future__ import annotations

import functools
import importlib
import os
import warnings

import torch

BACKENDS = ("torch", "cpu", "triton")
_HOW_TO = {
    "cpu": "build the C++ extension: `pip install .` from a source checkout with a C++20 compiler (GCC >= 10) "
           "and cmake (unset LC_KERNELS_SKIP_BUILD)",
    "triton": "install triton (`pip install triton`, Linux) and pass CUDA tensors, or set "
              "TRITON_INTERPRET=1 before importing triton to run the kernels on CPU tensors",
}
_warned: set = set()


class BackendUnavailableError(RuntimeError):
    """An explicitly requested backend cannot run here; the message says how to get it."""


@functools.lru_cache(maxsize=None)  # once per process: resolve() runs on every call
def _probe(name: str) -> tuple[bool, str]:
    if name == "torch":
        return True, "the plain torch reference"
    if name == "cpu":
        try:
            importlib.import_module("lc_kernels._C")
        except ImportError as e:
            return False, (f"the C++ extension lc_kernels._C is not importable ({e}); it is not built when "
                           f"LC_KERNELS_SKIP_BUILD=1 is set at install time")
        return True, "lc_kernels._C"
    if name == "triton":
        try:
            importlib.import_module("lc_kernels.backends.triton_backend")
        except ImportError as e:
            return False, f"triton is not importable: {e}"
        where = "CUDA tensors" + (", and CPU tensors (TRITON_INTERPRET=1)" if os.environ.get("TRITON_INTERPRET") == "1"
                                  else "; CPU tensors only with TRITON_INTERPRET=1")
        return True, f"triton {importlib.import_module('triton').__version__} ({where})"
    raise ValueError(name)


def backend_status() -> dict[str, tuple[bool, str]]:
    """{name: (available, reason or description)} for every backend."""
    return {name: _probe(name) for name in BACKENDS}


def _triton_runs_on(device: torch.device) -> bool:
    return device.type == "cuda" or (device.type == "cpu" and os.environ.get("TRITON_INTERPRET") == "1")


def resolve(backend: str, device: torch.device) -> str:
    """Pick the backend name for tensors on `device`; raise or warn per SPEC §6."""
    if not isinstance(backend, str) or backend not in BACKENDS + ("auto",):
        raise ValueError(f"backend={backend!r} is not supported; expected one of {BACKENDS + ('auto',)}")
    if backend == "torch":
        return backend
    if backend == "auto":
        preferred = "triton" if device.type == "cuda" else "cpu" if device.type == "cpu" else None
        if preferred is None:
            return "torch"
        ok, why = _probe(preferred)
        if ok:
            return preferred
        key = (preferred, device.type)
        if key not in _warned:
            _warned.add(key)
            warnings.warn(f"lc_kernels: backend 'auto' falls back to the torch reference on {device.type} "
                          f"tensors because the '{preferred}' backend is unavailable ({why}); to get it, "
                          f"{_HOW_TO[preferred]}", RuntimeWarning, stacklevel=3)
        return "torch"
    ok, why = _probe(backend)
    if not ok:
        raise BackendUnavailableError(f"backend={backend!r} is unavailable: {why}. To get it, {_HOW_TO[backend]}.")
    if backend == "cpu" and device.type != "cpu":
        raise ValueError(f"backend='cpu' runs on CPU tensors; got tensors on {device}")
    if backend == "triton" and not _triton_runs_on(device):
        raise BackendUnavailableError(
            f"backend='triton' needs CUDA tensors, or CPU tensors with TRITON_INTERPRET=1 set before "
            f"triton is imported; got tensors on {device}")
    return backend


def module(name: str):
    """The implementation module of a fused backend."""
    return importlib.import_module({"cpu": "lc_kernels.backends.cpu_backend",
                                    "triton": "lc_kernels.backends.triton_backend"}[name])
