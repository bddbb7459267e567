"""The CPU backend's targets (issue: CPU backend) in one table, in one process:

  decode, L = 9, 8 rows, V = 128256, float32 — cpu vs the eager reference and torch.compile of it,
          also in units of one `torch.exp(x, out=y)` pass over the same tensor (floor ≈ 2);
  loss forward + backward, L = 5, 2048 rows, V = 32000, float32 — speed and peak extra RSS
          (measured in a subprocess) against one layer of logits.

    python benchmarks/bench_cpu.py [--quick]      (writes benchmarks/results/<machine>/cpu_targets.{md,json})
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import build  # noqa: E402
from common import machine_description, markdown_table, peak_rss_extra, timed, write_result  # noqa: E402


def measure(case, repeat):
    setup, run = build(case)
    state = setup()
    return timed(lambda: run(state), repeat=repeat, warmup=2 if case["impl"] == "compiled" else 1)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-memory", action="store_true")
    args = ap.parse_args(argv)
    decode = dict(op="decode", L=9, R=8, V=128256 if not args.quick else 1000, dtype="float32")
    loss = dict(op="loss", L=5, R=2048 if not args.quick else 16, V=32000 if not args.quick else 500, dtype="float32")
    rows = []

    z = torch.randn(decode["L"], decode["R"], decode["V"])
    y = torch.empty_like(z)
    exp_pass = timed(lambda: torch.exp(z, out=y), repeat=args.repeat)["median_ms"]
    t = {impl: measure(dict(decode, impl=impl), args.repeat) for impl in ("eager", "compiled", "cpu")}
    rows.append(dict(case=f"decode L=9 R={decode['R']} V={decode['V']} fp32", cpu_ms=t["cpu"]["median_ms"],
                     eager_ms=t["eager"]["median_ms"], compiled_ms=t["compiled"]["median_ms"],
                     vs_eager=t["eager"]["median_ms"] / t["cpu"]["median_ms"],
                     vs_compiled=t["compiled"]["median_ms"] / t["cpu"]["median_ms"],
                     exp_passes_cpu=t["cpu"]["median_ms"] / exp_pass,
                     exp_passes_compiled=t["compiled"]["median_ms"] / exp_pass))

    repeat = max(2, args.repeat // 2)
    t = {impl: measure(dict(loss, impl=impl), repeat) for impl in ("eager", "compiled", "cpu")}
    layer_bytes = loss["R"] * loss["V"] * 4
    row = dict(case=f"loss fwd+bwd L=5 R={loss['R']} V={loss['V']} fp32", cpu_ms=t["cpu"]["median_ms"],
               eager_ms=t["eager"]["median_ms"], compiled_ms=t["compiled"]["median_ms"],
               vs_eager=t["eager"]["median_ms"] / t["cpu"]["median_ms"],
               vs_compiled=t["compiled"]["median_ms"] / t["cpu"]["median_ms"])
    if not args.no_memory:
        for impl in ("eager", "compiled", "cpu"):
            extra = peak_rss_extra(dict(loss, impl=impl))
            # beyond the input: the input's gradient (L layers) is the unavoidable part
            row[f"peak_extra_{impl}_layers"] = None if extra is None else extra / layer_bytes
    rows.append(row)

    cols = ["case", "cpu_ms", "eager_ms", "compiled_ms", "vs_eager", "vs_compiled", "exp_passes_cpu",
            "exp_passes_compiled", "peak_extra_eager_layers", "peak_extra_compiled_layers", "peak_extra_cpu_layers"]
    table = markdown_table(rows, cols)
    header = (f"Machine: {machine_description()}\nCommand: python benchmarks/bench_cpu.py"
              f"{' --quick' if args.quick else ''}\n`exp_passes_*`: time / one torch.exp(x, out=y) pass over "
              f"the same [9, 8, V] tensor ({exp_pass:.2f} ms). `peak_extra_*_layers`: peak RSS above the inputs "
              f"during one forward+backward, in units of one layer of logits (R·V·4 bytes); the input's gradient "
              f"alone is L = 5 layers.\n")
    write_result("cpu_targets", header, table, rows, save=not args.quick)


if __name__ == "__main__":
    main()
