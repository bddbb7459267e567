"""Compile every Triton kernel of lc_kernels for a GPU target, without a GPU, and report its resources.

The CI machine has no GPU: the interpreter checks what the kernels compute, not that they
compile (it accepts, for instance, a non-constexpr global read inside @triton.jit, which the
compiler rejects). This script runs the real launchers on small CPU tensors with every kernel
replaced by a recorder, then compiles each recorded launch — the same argument specialisation
(dtypes, 16-divisible ints and pointers), constexprs and num_warps a GPU run would use — with
Triton's own compiler and bundled tools, for an NVIDIA target (registers and spills from
`ptxas -v`) or an AMD one (VGPRs and scratch from the amdgcn listing; the launchers see a
64-wide wavefront device):

    python benchmarks/triton_resources.py [--target sm90|sm80|gfx942] [--quick]
        → benchmarks/results/triton-<target>/triton_resources.{md,json}

Variants: decode (row / batch / logits) and the split-vocabulary decode, the loss (three gate
modes, row / batch), for L ∈ {2, 9, 17} and bf16 / fp16 / fp32 / fp64 (--quick: fewer).
Register counts are what ptxas allocates for the target; spills are what a GPU run would pay.
"""
from __future__ import annotations

import argparse
import contextlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, markdown_table  # noqa: E402

# (module, attribute) of every @triton.jit kernel a launcher starts
KERNELS = [("lc_kernels.triton.decode", "stats_kernel"), ("lc_kernels.triton.decode", "contrast_kernel"),
           ("lc_kernels.triton.loss", "loss_kernel"), ("lc_kernels.triton.split", "split_normalisers_kernel"),
           ("lc_kernels.triton.split", "split_select_kernel"), ("lc_kernels.triton.split", "split_contrast_kernel")]


TARGETS = {"sm90": ("cuda", 90, 32), "sm80": ("cuda", 80, 32), "gfx942": ("hip", "gfx942", 64)}


@contextlib.contextmanager
def recorded_launches(warp_size: int = 32):
    """Replace every kernel by a recorder; yield the list of (name, kernel, args, kwargs) launched.
    The launchers see a GPU with warps of warp_size lanes (their device_info is replaced too)."""
    import importlib

    from lc_kernels.triton.launch_config import DeviceInfo
    launches, saved = [], []
    device = DeviceInfo(None, warp_size, 1024)  # None: no multiprocessor count, so no automatic split
    for module_name in {m for m, _ in KERNELS}:
        module = importlib.import_module(module_name)
        if hasattr(module, "device_info"):
            saved.append((module, "device_info", module.device_info))
            module.device_info = lambda _device: device

    class Recorder:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append((self.name, self.kernel, args, kwargs))
            return launch

    for module_name, attr in KERNELS:
        module = importlib.import_module(module_name)
        saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, Recorder(attr, getattr(module, attr)))
    try:
        yield launches
    finally:
        for module, attr, kernel in saved:
            setattr(module, attr, kernel)


def variants(quick: bool):
    """(label, thunk) pairs; each thunk calls one launcher on small CPU tensors."""
    from lc_kernels.triton.decode import contrast_kernel_launch
    from lc_kernels.triton.loss import loss_kernel_launch
    from lc_kernels.triton.split import split_contrast_launch

    V = 128256
    dtypes = [torch.bfloat16, torch.float64] if quick else [torch.bfloat16, torch.float16, torch.float32, torch.float64]
    Ls = [9] if quick else [2, 9, 17]
    out = []
    for dtype in dtypes:
        for L in Ls:
            z = torch.zeros(L, 4, V, dtype=dtype)
            tag = f"L={L} {str(dtype).removeprefix('torch.')}"
            for batch, logits in [(False, False), (True, False), (False, True)]:
                mode = "batch" if batch else ("logits" if logits else "row")
                out.append((f"decode {mode} {tag}", lambda z=z, b=batch, w=logits: contrast_kernel_launch(
                    z, -2.3, 0, b, w)))
                out.append((f"split {mode} {tag}", lambda z=z, b=batch, w=logits: split_contrast_launch(
                    z, -2.3, 0, b, w, 8)))
            y = torch.zeros(4, dtype=torch.long)
            phi = torch.zeros(V, dtype=torch.bool)
            for gate in (0, 1, 2):
                for batch in (False, True):
                    out.append((f"loss gate={gate} {'batch' if batch else 'row'} {tag}",
                                lambda z=z, g=gate, b=batch: loss_kernel_launch(z, y, phi, phi, -2.3, 0, b, g, 10,
                                                                                0.5, 0.5, -100)))
    return out


def compile_launch(kernel, args, kwargs, target_name: str):
    """Compile one recorded launch for a target of TARGETS exactly as JITFunction.run would
    specialise it (Triton internals: create_function_from_signature, JITFunction._pack_args)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, compile, make_backend
    from triton.runtime.jit import create_function_from_signature

    target = GPUTarget(*TARGETS[target_name])
    backend = make_backend(target)
    binder = create_function_from_signature(kernel.signature, kernel.params, backend)
    bound, specialization, options = binder(*args, **kwargs)
    options, signature, constexprs, attrs = kernel._pack_args(backend, kwargs, bound, specialization, options)
    return compile(ASTSource(kernel, signature, constexprs, attrs), target=target, options=options.__dict__)


def amdgcn_usage(asm: str) -> dict:
    """VGPRs and scratch (spill) bytes from the amdgcn listing's comments."""
    def number(pattern):
        m = re.search(pattern, asm)
        return int(m.group(1)) if m else 0
    return dict(registers=number(r"; NumVgprs: (\d+)"), spill_stores=number(r"; ScratchSize: (\d+)"),
                spill_loads=0, stack=number(r"; ScratchSize: (\d+)"))


def ptxas_usage(ptx: str, arch: int) -> dict:
    """Registers, spill bytes and stack from `ptxas -v` (Triton's bundled ptxas)."""
    from triton.backends.nvidia.compiler import get_ptxas
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "k.ptx"
        src.write_text(ptx)
        suffix = "a" if arch >= 90 else ""
        log = subprocess.run([get_ptxas(arch).path, "-v", f"--gpu-name=sm_{arch}{suffix}", str(src),
                              "-o", str(Path(tmp) / "k.o")], capture_output=True, text=True, check=True).stderr

    def number(pattern):
        m = re.search(pattern, log)
        return int(m.group(1)) if m else 0
    return dict(registers=number(r"Used (\d+) registers"), spill_stores=number(r"(\d+) bytes spill stores"),
                spill_loads=number(r"(\d+) bytes spill loads"), stack=number(r"(\d+) bytes stack frame"))


def collect(quick: bool, target: str = "sm90", progress=None) -> list[dict]:
    backend, arch, warp = TARGETS[target]
    rows, seen = [], set()
    for label, thunk in variants(quick):
        with recorded_launches(warp) as launches:
            thunk()
        for name, kernel, args, kwargs in launches:
            compiled = compile_launch(kernel, args, kwargs, target)
            key = (name, compiled.hash)
            if key in seen:
                continue
            seen.add(key)
            usage = ptxas_usage(compiled.asm["ptx"], arch) if backend == "cuda" else amdgcn_usage(compiled.asm["amdgcn"])
            rows.append(dict(kernel=name, variant=label, num_warps=compiled.metadata.num_warps,
                             shared_bytes=compiled.metadata.shared, **usage))
            if progress:
                progress(rows[-1])
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=sorted(TARGETS), default="sm90", help="sm90: H100/H200, gfx942: MI300")
    ap.add_argument("--quick", action="store_true", help="L = 9, bf16 and fp64 only")
    args = ap.parse_args(argv)
    rows = collect(args.quick, args.target, progress=lambda r: print(f"  {r['kernel']:26s} {r['variant']:30s} "
                                                                  f"regs {r['registers']:3d} spills {r['spill_stores']}"))
    cols = ["kernel", "variant", "num_warps", "registers", "spill_stores", "spill_loads", "stack", "shared_bytes"]
    import triton
    header = (f"Triton {triton.__version__} kernels compiled for {args.target} without a GPU "
              f"(registers: {'ptxas -v' if TARGETS[args.target][0] == 'cuda' else 'VGPRs'}; spills in bytes).\n"
              f"Command: python benchmarks/triton_resources.py --target {args.target}{' --quick' if args.quick else ''}\n")
    table = markdown_table(rows, cols)
    print(header + "\n" + table)
    out = RESULTS / f"triton-{args.target}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "triton_resources.md").write_text(header + "\n" + table + "\n")
    import json
    (out / "triton_resources.json").write_text(json.dumps(rows, indent=1))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
