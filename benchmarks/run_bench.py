"""The benchmark sweep: every available backend of contrast_decode, contrast_logits and
layer_contrast_loss (forward + backward) against the naive reference eager and torch.compile of
it, in one process. Writes CSV, a markdown table and PNG plots to benchmarks/results/<machine>/.

    python benchmarks/run_bench.py            # the default CPU grid (< 15 min on 2 cores)
    python benchmarks/run_bench.py --full     # V ∈ {32000, 50257, 128256, 151936}, L ∈ {2, 5, 9, 17},
                                              # rows ∈ {1, 8, 64, 1024, 8192}, fp32 and bf16
    python benchmarks/run_bench.py --tiny     # a smoke run (used by the test suite)

Each row: median and min–max time, speed-ups vs eager and compiled, peak memory above the inputs
(CPU: peak RSS of a fresh subprocess; GPU: max_memory_allocated), bytes read per second and
elements per second, and the hardware floors measured in the same run (CPU: one torch.exp(out=)
pass and one plain read of the same tensor; GPU: copy bandwidth). Configurations whose estimated
memory does not fit are skipped and listed as such.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import build  # noqa: E402
from common import (RESULTS, cuda_peak_extra, machine_description, machine_name, markdown_table,  # noqa: E402
                    peak_rss_extra, timed)

from lc_kernels.backends import backend_status  # noqa: E402

# rough peak memory of each implementation in units of the input's float32 size
MEMORY_FACTOR = {"eager": 14, "compiled": 6}
FUSED_FACTOR = 3


def grids(mode: str):
    if mode == "tiny":
        return dict(V=[257], L=[2, 3], rows=[1, 4], loss_rows=[8], dtypes=["float32"])
    if mode == "gpu":  # the grid gpu_check.sh runs inside its budget on one GPU
        return dict(V=[32000, 128256], L=[2, 9], rows=[1, 8, 64, 1024], loss_rows=[256, 2048],
                    dtypes=["bfloat16", "float32"])
    if mode == "full":
        return dict(V=[32000, 50257, 128256, 151936], L=[2, 5, 9, 17], rows=[1, 8, 64, 1024, 8192],
                    loss_rows=[256, 2048, 8192], dtypes=["float32", "bfloat16"])
    return dict(V=[32000, 128256], L=[2, 9], rows=[1, 8, 64], loss_rows=[256, 2048], dtypes=["float32"])


def floors(L, R, V, device):
    z = torch.randn(L, R, V, device=device)
    y = torch.empty_like(z)
    sync = torch.cuda.synchronize if device == "cuda" else None
    exp_ms = timed(lambda: torch.exp(z, out=y), repeat=3, sync=sync)["median_ms"]
    if device == "cuda":  # the floor on a GPU: measured copy bandwidth (read + write)
        copy_ms = timed(lambda: y.copy_(z), repeat=3, sync=sync)["median_ms"]
        return exp_ms, 2 * z.numel() * 4 / (copy_ms * 1e-3) / 1e9
    read_ms = timed(lambda: z.sum(), repeat=3, sync=sync)["median_ms"]
    return exp_ms, z.numel() * 4 / (read_ms * 1e-3) / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true")
    mode.add_argument("--tiny", action="store_true")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--memory-gb", type=float, default=None, help="memory budget for skipping (default: 2/3 of RAM/GPU)")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    ap.add_argument("--out", default=None, help="output folder (default benchmarks/results/<machine>)")
    ap.add_argument("--replot", action="store_true", help="only redraw bench.png from the folder's bench.csv")
    args = ap.parse_args(argv)
    if args.replot:
        out_dir = Path(args.out) if args.out else RESULTS / machine_name()
        rows = []
        for r in csv.DictReader(open(out_dir / "bench.csv")):
            for k in ("L", "R", "V"):
                r[k] = int(r[k])
            for k in ("median_ms", "x_vs_eager", "peak_extra_MB"):
                r[k] = float(r[k]) if r.get(k) else None
            rows.append(r)
        plot(rows, out_dir)
        return
    device = args.device
    g = grids("full" if args.full else "tiny" if args.tiny else "gpu" if device == "cuda" else "default")
    fused = [b for b in ("cpu", "triton") if backend_status()[b][0]
             and (b == "cpu") == (device == "cpu")]
    impls = ["eager", "compiled"] + fused
    if args.memory_gb is None:
        if device == "cuda":
            budget = torch.cuda.get_device_properties(0).total_memory * 2 / 3
        else:
            budget = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 2 / 3
    else:
        budget = args.memory_gb * 1e9
    out_dir = Path(args.out) if args.out else RESULTS / machine_name()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    configs = [("decode", L, R, V, dt) for dt, V, L, R in itertools.product(g["dtypes"], g["V"], g["L"], g["rows"])]
    configs += [("logits", L, R, V, dt) for dt, V, L, R in itertools.product(g["dtypes"], g["V"], g["L"], g["rows"][-1:])]
    configs += [("loss", L, R, V, dt) for dt, V, L, R in itertools.product(g["dtypes"], g["V"], g["L"], g["loss_rows"])]
    floor_cache = {}
    from tqdm import tqdm
    for op, L, R, V, dt in tqdm(configs, desc="benchmarks", unit="config"):
        in_bytes = L * R * V * 4
        key = (L, R, V)
        if key not in floor_cache and in_bytes * 2 < budget:
            floor_cache[key] = floors(L, R, V, device)
        times = {}
        for impl in impls:
            factor = MEMORY_FACTOR.get(impl, FUSED_FACTOR) * (2 if op == "loss" else 1)
            if in_bytes * factor > budget:
                skipped.append(f"{op} {impl} L={L} R={R} V={V} {dt}: needs ~{in_bytes * factor / 1e9:.0f} GB")
                continue
            case = dict(op=op, impl=impl, L=L, R=R, V=V, dtype=dt, device=device)
            setup, run = build(case)
            state = setup()
            repeat = 3 if in_bytes < 5e8 else 2
            t = timed(lambda: run(state), repeat=repeat, warmup=2 if impl == "compiled" else 1,
                      sync=torch.cuda.synchronize if device == "cuda" else None)
            del state
            times[impl] = t
            exp_ms, read_gbps = floor_cache.get(key, (float("nan"), float("nan")))
            elsize = torch.tensor([], dtype=getattr(torch, dt)).element_size()
            row = dict(op=op, impl=impl, L=L, R=R, V=V, dtype=dt, **t,
                       GBps=L * R * V * elsize / (t["median_ms"] * 1e-3) / 1e9,
                       Gelem_per_s=L * R * V / (t["median_ms"] * 1e-3) / 1e9,
                       exp_passes=t["median_ms"] / exp_ms, floor_read_GBps=read_gbps)
            if not args.no_memory and device == "cpu" and impl != "compiled":
                extra = peak_rss_extra(case)
                row["peak_extra_MB"] = None if extra is None else extra / 1e6
            elif not args.no_memory and device == "cuda":
                row["peak_extra_MB"] = cuda_peak_extra(case) / 1e6
            rows.append(row)
        for row in rows:
            if (row["op"], row["L"], row["R"], row["V"], row["dtype"]) == (op, L, R, V, dt):
                for ref in ("eager", "compiled"):
                    if ref in times:
                        row[f"x_vs_{ref}"] = times[ref]["median_ms"] / row["median_ms"]

    cols = ["op", "impl", "L", "R", "V", "dtype", "median_ms", "min_ms", "max_ms", "x_vs_eager", "x_vs_compiled",
            "exp_passes", "GBps", "Gelem_per_s", "floor_read_GBps", "peak_extra_MB"]  # GPU: floor = copy GB/s
    with open(out_dir / "bench.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    cmd = "python benchmarks/run_bench.py" + (" --full" if args.full else " --tiny" if args.tiny else "")
    md = [f"Machine: {machine_description()}", f"Command: {cmd}", "", markdown_table(rows, cols)]
    if skipped:
        md += ["", "Skipped (estimated memory above the budget):", *[f"- {s}" for s in skipped]]
    (out_dir / "bench.md").write_text("\n".join(md) + "\n")
    plot(rows, out_dir)
    print("\n".join(md))
    print(f"\nwritten to {out_dir}")


def plot(rows, out_dir: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    impls = sorted({r["impl"] for r in rows})
    dec = [r for r in rows if r["op"] == "decode" and r["dtype"] == rows[0]["dtype"]]
    if not dec:
        return
    L_max = max(r["L"] for r in dec)
    R_mid = sorted({r["R"] for r in dec})[len({r["R"] for r in dec}) // 2]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for impl in impls:
        pts = sorted((r["V"], r["median_ms"]) for r in dec if r["impl"] == impl and r["L"] == L_max and r["R"] == R_mid)
        if pts:
            axes[0].plot(*zip(*pts), marker="o", label=impl)
        pts = sorted((r["R"], r.get("x_vs_eager") or float("nan")) for r in dec
                     if r["impl"] == impl and r["L"] == L_max and r["V"] == max(x["V"] for x in dec))
        if pts and impl != "eager":
            axes[1].plot(*zip(*pts), marker="o", label=impl)
        loss_rows = [x for x in rows if x["op"] == "loss"]
        mem = sorted((r["R"], r["peak_extra_MB"]) for r in loss_rows if r["impl"] == impl
                     and r.get("peak_extra_MB") not in (None, "") and r["L"] == max(x["L"] for x in loss_rows)
                     and r["V"] == min(x["V"] for x in loss_rows))
        if mem:
            axes[2].plot(*zip(*mem), marker="o", label=impl)
    axes[0].set(title=f"decode time vs V (L={L_max}, rows={R_mid})", xlabel="V", ylabel="ms", yscale="log")
    axes[1].set(title=f"decode speed-up vs eager (L={L_max}, largest V)", xlabel="rows", ylabel="×", xscale="log")
    lr = [x for x in rows if x["op"] == "loss"] or [{"L": 0, "V": 0}]
    axes[2].set(title=f"loss fwd+bwd peak RSS above inputs (L={max(x['L'] for x in lr)}, V={min(x['V'] for x in lr)})",
                xlabel="rows", ylabel="MB", xscale="log", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_dir / "bench.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
