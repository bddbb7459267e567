"""Shared benchmark helpers: timing, peak memory in a subprocess, machine names, output tables."""
from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn, repeat: int = 5, warmup: int = 1, sync=None) -> dict:
    """Median / min / max wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def machine_name() -> str:
    """e.g. cpu-amd-epyc-2c, or cuda-nvidia-h200."""
    import torch
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1]
                break
    except OSError:
        pass
    return "cpu-" + re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-") + f"-{torch.get_num_threads()}t"


def machine_description() -> str:
    import torch
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{machine_name()} ({os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads), torch {torch.__version__}"


_RSS_CHILD = r"""
import json, os, sys, torch
sys.path.insert(0, {bench_dir!r})
import cases
setup, run = cases.build({case!r})
state = setup()
run(state)  # warm-up: imports, thread pools and compilation are not the op's memory
if isinstance(state, dict) and getattr(state.get("z"), "grad", None) is not None:
    state["z"].grad = None  # the measured call creates the gradient afresh
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
base = rss("VmRSS:")
run(state)
print(json.dumps({{"peak_extra_bytes": rss("VmHWM:") - base}}))
"""


def peak_rss_extra(case: dict) -> int | None:
    """Peak RSS above the inputs during one call of `case` (after a warm-up call), in a fresh process."""
    code = _RSS_CHILD.format(bench_dir=str(Path(__file__).resolve().parent), case=case)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_bytes"]


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def write_result(name: str, header: str, table: str, rows: list[dict], save: bool = True) -> Path | None:
    """Print header + table and (if save) write results/<machine>/<name>.{md,json}."""
    print(header)
    print(table)
    if not save:
        return None
    out = RESULTS / machine_name()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(header + "\n" + table + "\n")
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1))
    print(f"\nwritten to {out}")
    return out


def cuda_peak_extra(case: dict) -> int:
    """max_memory_allocated above the inputs during one call of `case` (after a warm-up call)."""
    import torch
    from cases import build
    setup, run = build(case)
    state = setup()
    run(state)
    if getattr(state.get("z"), "grad", None) is not None:
        state["z"].grad = None  # the measured call creates the gradient afresh
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    run(state)
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base
