"""Every Triton kernel compiles for real GPU targets (NVIDIA sm_90, AMD gfx942), here, without a GPU.

The interpreter run (make test-triton) checks what the kernels compute; it does not compile
them, and accepts code the compiler rejects (a non-constexpr global inside @triton.jit, a
variable re-typed inside an `if`). This compiles exactly what the launchers would launch — the
same specialisation, constexprs and num_warps — with Triton's own compiler and bundled ptxas.
Register and spill counts are reported by benchmarks/triton_resources.py, not asserted here.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import triton_resources  # noqa: E402


@pytest.mark.parametrize("target", ["sm90", "gfx942"])
def test_every_kernel_compiles_for(target):
    rows = triton_resources.collect(quick=True, target=target)
    compiled = {r["kernel"] for r in rows}
    assert compiled == {name for _, name in triton_resources.KERNELS}
    for r in rows:
        assert r["registers"] > 0, r  # ptxas produced code for it
    # both accumulation types and both selections were compiled
    variants = " ".join(r["variant"] for r in rows)
    for word in ("bfloat16", "float64", "batch", "row", "logits", "gate=0", "gate=2"):
        assert word in variants
