"""Checks that belong to the Triton process (`make test-triton`, TRITON_INTERPRET=1).

The correctness tests themselves are tests/test_backends.py, re-run in that process with
LC_TEST_BACKENDS=triton; this module makes sure they really ran the kernels.
"""
import os

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

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
    from lc_kernels.triton import launch_config
    monkeypatch.setattr(launch_config, "FORCE_SPLITS", 3)
    cases = [(9, (2,), 1271, torch.float32, False, "jsd", 0.1), (2, (1,), 7, torch.float32, False, "jsd", 0.1),
             (4, (3,), 2053, torch.float64, False, "kl", 0.0), (5, (2, 2), 999, torch.float16, False, "dola", 0.5),
             (3, (4,), 300, torch.float32, True, "jsd", 1.0), (6, (2,), 640, torch.float64, True, "dola", 0.1),
             (3, (0,), 50, torch.float32, False, "jsd", 0.1)]
    for i, (L, rows, V, dtype, ties, divergence, alpha) in enumerate(cases):
        z = make_logits(L, rows, V, dtype=dtype, seed=40 + i, mask=True, ties=ties, device=DEVICE)
        kw = dict(select=select, divergence=divergence, alpha=alpha, backend="triton")
        out = lck.contrast_decode(z, **kw)
        F, _ = lck.contrast_logits(z, **kw)
        check_decode(z, out, F, alpha, divergence, select)
    # every contrast equal: the token must be the first of the head, in the first chunk
    z = torch.zeros(3, 2, 700, device=DEVICE)
    assert lck.contrast_decode(z, select=select, backend="triton").tokens.tolist() == [0, 0]
    for z, layer, row in _bad_cases(DEVICE):
        with pytest.raises(ValueError) as e:
            lck.contrast_decode(z, backend="triton")
        assert layer in str(e.value) and row in str(e.value)


class _LaunchRecorder(TorchDispatchMode):
    """Counts Triton launches of the given kernels and records every torch op run between them."""

    def __init__(self, module, names, monkeypatch):
        super().__init__()
        self.launches, self.ops, self._inside = [], [], False
        for name in names:
            real = getattr(module, name)
            monkeypatch.setattr(module, name, self._spy(name, real))

    def _spy(self, name, real):
        recorder = self

        class Spy:
            def __getitem__(self, grid):
                def launch(*args, **kwargs):
                    recorder.launches.append(name)
                    recorder._inside = True  # the interpreter's own tensor copies are not ours
                    try:
                        return real[grid](*args, **kwargs)
                    finally:
                        recorder._inside = False
                return launch
        return Spy()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self._inside:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("select", ["row", "batch"])
def test_split_decode_is_two_launches_and_nothing_else(select, monkeypatch):
    """Few-rows decode: two kernel launches, no torch compute between them (CUDA-graph friendly,
    no host sync); contrast_logits adds exactly one launch that writes F."""
    from lc_kernels.triton import split
    names = ["split_normalisers_kernel", "split_select_kernel", "split_contrast_kernel"]
    z = make_logits(9, (5,), 1271, seed=7, mask=True, device=DEVICE).reshape(9, 5, 1271)
    for want_logits, expected in [(False, names[:2]), (True, names)]:
        with _LaunchRecorder(split, names, monkeypatch) as rec:
            split.split_contrast_launch(z, -2.3, 0, select == "batch", want_logits, 4)
        assert rec.launches == expected
        assert set(rec.ops) == {"aten.empty.memory_format"}, rec.ops


def test_launch_config_follows_the_device():
    from lc_kernels.triton.launch_config import DeviceInfo, choose_splits, stream_config, tile_config
    nvidia, amd = DeviceInfo(132, 32, 1024), DeviceInfo(304, 64, 1024)
    assert tile_config(9, 128256, nvidia) == (8, 512, 8)  # 8 candidates: no padded layer
    assert tile_config(9, 128256, amd) == (8, 512, 4)  # 64-wide wavefronts: half the warps
    assert tile_config(9, 128256, nvidia, acc_bytes=8) == (8, 256, 8)  # float64: half the tile
    assert tile_config(2, 7, nvidia) == (1, 16, 1)
    assert stream_config(128256, nvidia) == (4096, 8) and stream_config(128256, amd) == (4096, 4)
    assert tile_config(2, 1 << 20, DeviceInfo(8, 64, 128))[2] == 2  # never above threads/block ÷ warp
    # few rows → vocabulary chunks for about two waves; many rows or no GPU → one program per row
    assert choose_splits(8, 1 << 20, nvidia) == 33  # ⌈2·132 / 8⌉
    assert choose_splits(8, 128256, nvidia) == 32
    assert choose_splits(1, 128256, nvidia) == 32  # capped at V / 4096 chunks
    assert choose_splits(132, 128256, nvidia) == 1 and choose_splits(8, 128256, DeviceInfo(None)) == 1
    assert choose_splits(0, 128256, nvidia) == 1
