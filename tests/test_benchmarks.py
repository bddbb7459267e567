"""Smoke runs of every benchmark script on tiny sizes (timings are never asserted)."""
import csv
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_bench_tiny(tmp_path):
    load("run_bench").main(["--tiny", "--out", str(tmp_path)])
    rows = list(csv.DictReader(open(tmp_path / "bench.csv")))
    ops = {(r["op"], r["impl"]) for r in rows}
    assert {("decode", "eager"), ("decode", "compiled"), ("decode", "cpu"), ("loss", "cpu"), ("logits", "cpu")} <= ops
    assert all(float(r["median_ms"]) > 0 for r in rows)
    assert any(r["peak_extra_MB"] for r in rows)
    assert (tmp_path / "bench.png").stat().st_size > 0 and "| op |" in (tmp_path / "bench.md").read_text()


def test_bench_cpu_quick(capsys):
    load("bench_cpu").main(["--quick", "--no-memory", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "decode L=9" in out and "loss fwd+bwd" in out


def test_bench_gpu_needs_cuda():
    mod = load("bench_gpu")
    if not torch.cuda.is_available():
        with pytest.raises(AssertionError, match="needs a CUDA device"):
            mod.main(["--quick"])
    else:
        mod.main(["--quick"])
