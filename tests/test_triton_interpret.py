"""Checks that belong to the Triton process (`make test-triton`, TRITON_INTERPRET=1).

The correctness tests themselves are tests/test_backends.py, re-run in that process with
LC_TEST_BACKENDS=triton; this module makes sure they really ran the kernels.
"""
import os

import pytest
import torch

import lc_kernels as lck
from lc_kernels import backends
from test_backends import _bad_cases, check_decode, make_logits

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_triton_backend_runs_here():
    ok, why = lck.backend_status()["triton"]
    assert ok, why
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        assert os.environ.get("TRITON_INTERPRET") == "1", "run me with TRITON_INTERPRET=1 (make test-triton)"
    assert backends.resolve("triton", torch.device(device)) == "triton"
    if device == "cuda":
        assert backends.resolve("auto", torch.device(device)) == "triton"


def test_kernels_are_the_ones_called(monkeypatch):
    """The triton path must go through the Triton launchers, not the reference."""
    from lc_kernels.triton import decode

    calls = []
    real = decode.stats_kernel

    class Spy:
        def __getitem__(self, grid):
            calls.append(grid)
            return real[grid]

    monkeypatch.setattr(decode, "stats_kernel", Spy())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    lck.contrast_decode(torch.randn(3, 2, 50, device=device), backend="triton")
    assert calls == [(2,)]


@pytest.mark.parametrize("select", ["row", "batch"])
def test_split_vocabulary_decode(select, monkeypatch):
    """The few-rows path that cuts each row's vocabulary into chunks (forced to 3 chunks here)."""
    from lc_kernels.triton import decode
    monkeypatch.setattr(decode, "FORCE_SPLITS", 3)
    for i, (L, rows, V) in enumerate([(9, (2,), 1271), (2, (1,), 7), (4, (3,), 2053), (3, (0,), 50)]):
        z = make_logits(L, rows, V, seed=40 + i, mask=True, device=DEVICE)
        out = lck.contrast_decode(z, select=select, backend="triton")
        F, _ = lck.contrast_logits(z, select=select, backend="triton")
        check_decode(z, out, F, 0.1, "jsd", select)
    for z, layer, row in _bad_cases(DEVICE):
        with pytest.raises(ValueError) as e:
            lck.contrast_decode(z, backend="triton")
        assert layer in str(e.value) and row in str(e.value)
