"""The Triton backend's GPU targets (issue: GPU backend), in one process on one CUDA device:

  decode, L = 9, 8 rows, V = 128256, bf16: time per call eager / under a CUDA graph, kernel
          launches per call, vs the eager reference and torch.compile of it;
  decode at 1024 rows: achieved read bandwidth vs the measured copy bandwidth;
  loss forward + backward, L = 5, 4096 rows, V = 128256, bf16: vs eager and compiled, and peak
          memory (max_memory_allocated above the inputs).

    python benchmarks/bench_gpu.py [--quick]   (writes benchmarks/results/<machine>/gpu_targets.{md,json})
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import build  # noqa: E402
from common import cuda_peak_extra, machine_description, markdown_table, timed, write_result  # noqa: E402

import lc_kernels as lck  # noqa: E402


def cuda_timed(fn, repeat=20):
    return timed(fn, repeat=repeat, warmup=3, sync=torch.cuda.synchronize)


def copy_bandwidth() -> float:
    x = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    t = cuda_timed(lambda: y.copy_(x))["median_ms"]
    return 2 * x.numel() / (t * 1e-3)  # bytes read + written per second


def kernel_launches(fn) -> int:
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")


def graphed(fn):
    """Capture fn in a CUDA graph; return a replay function."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def measure(case, repeat=20):
    setup, run = build(case)
    state = setup()
    return cuda_timed(lambda: run(state), repeat)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    assert torch.cuda.is_available(), "bench_gpu.py needs a CUDA device"
    V = 128256 if not args.quick else 4096
    rows = []
    dec = dict(op="decode", L=9, R=8, V=V, dtype="bfloat16", device="cuda")
    t = {impl: measure(dict(dec, impl=impl))["median_ms"] for impl in ("eager", "compiled", "triton")}
    z = build(dict(dec, impl="triton"))[0]()["z"]
    replay = graphed(lambda: lck.contrast_decode(z, check_inputs=False, backend="triton"))
    t_graph = cuda_timed(replay, 100)["median_ms"]
    launches = kernel_launches(lambda: lck.contrast_decode(z, check_inputs=False, backend="triton"))
    rows.append(dict(case=f"decode L=9 R=8 V={V} bf16", triton_ms=t["triton"], graph_us=t_graph * 1e3,
                     launches=launches, eager_ms=t["eager"], compiled_ms=t["compiled"],
                     vs_eager=t["eager"] / t["triton"], vs_compiled=t["compiled"] / t["triton"]))

    big = dict(dec, R=1024 if not args.quick else 64)
    tb = measure(dict(big, impl="triton"), 10)["median_ms"]
    bytes_read = big["L"] * big["R"] * V * 2
    bw = copy_bandwidth()
    rows.append(dict(case=f"decode L=9 R={big['R']} V={V} bf16", triton_ms=tb,
                     read_GBps=bytes_read / (tb * 1e-3) / 1e9, copy_GBps=bw / 1e9,
                     bw_fraction=bytes_read / (tb * 1e-3) / bw))

    loss = dict(op="loss", L=5, R=4096 if not args.quick else 64, V=V, dtype="bfloat16", device="cuda")
    t = {impl: measure(dict(loss, impl=impl), 5)["median_ms"] for impl in ("eager", "compiled", "triton")}
    mem = {impl: cuda_peak_extra(dict(loss, impl=impl)) for impl in ("eager", "compiled", "triton")}
    rows.append(dict(case=f"loss fwd+bwd L=5 R={loss['R']} V={V} bf16", triton_ms=t["triton"], eager_ms=t["eager"],
                     compiled_ms=t["compiled"], vs_eager=t["eager"] / t["triton"],
                     vs_compiled=t["compiled"] / t["triton"], peak_GB_triton=mem["triton"] / 1e9,
                     peak_GB_eager=mem["eager"] / 1e9, peak_GB_compiled=mem["compiled"] / 1e9,
                     peak_fraction_of_eager=mem["triton"] / mem["eager"]))
    cols = ["case", "triton_ms", "graph_us", "launches", "eager_ms", "compiled_ms", "vs_eager", "vs_compiled",
            "read_GBps", "copy_GBps", "bw_fraction", "peak_GB_triton", "peak_GB_eager", "peak_GB_compiled",
            "peak_fraction_of_eager"]
    table = markdown_table(rows, cols)
    header = f"Machine: {machine_description()}\nCommand: python benchmarks/bench_gpu.py{' --quick' if args.quick else ''}\n"
    write_result("gpu_targets", header, table, rows)


if __name__ == "__main__":
    main()
