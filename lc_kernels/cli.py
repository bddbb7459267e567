"""The lc-kernels command line (also `python -m lc_kernels`).

    lc-kernels generate "prompt" [--strategy contrast|greedy|both]   decode with a real model
    lc-kernels train [--model tiny|smollm2-135m] [--data qa.jsonl]     fine-tune with the loss
    lc-kernels info    which backends are available (and why not), build flags, threads
    lc-kernels demo    greedy vs layer contrast on SmolLM2-135M (--synthetic: no model needed)
    lc-kernels bench   the CPU benchmark grid (benchmarks/run_bench.py)
"""
from __future__ import annotations

import argparse
import os
import sys


def cmd_info(args) -> int:
    import torch

    import lc_kernels
    from lc_kernels.backends import backend_status

    print(f"lc_kernels {lc_kernels.__version__}  torch {torch.__version__}  python {sys.version.split()[0]}")
    print(f"torch threads: {torch.get_num_threads()}   CUDA available: {torch.cuda.is_available()}   "
          f"TRITON_INTERPRET={os.environ.get('TRITON_INTERPRET', '')!r}")
    for name, (ok, why) in backend_status().items():
        print(f"  {name:7s} {'available  ' if ok else 'unavailable'}  {why}")
        if name == "cpu" and ok:
            from lc_kernels import _C
            info = _C.build_info()
            print(f"          compiler {info['compiler']}; flags {info['flags']}; "
                  f"OpenMP {'on' if info['openmp'] else 'off'} ({info['openmp_max_threads']} threads)")
    return 0


def cmd_demo(args) -> int:
    from lc_kernels import demo
    if args.synthetic:
        demo.synthetic_walkthrough()
    else:
        demo.smollm2_demo()
    return 0


def cmd_bench(args) -> int:
    from pathlib import Path
    import runpy
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "run_bench.py"
    if not script.exists():
        print(f"lc-kernels bench needs a source checkout (benchmarks/run_bench.py not found at {script})")
        return 2
    sys.argv = [str(script)] + args.rest
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="lc-kernels", description="layer-contrast decoding and training kernels")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="backends, build flags, threads").set_defaults(fn=cmd_info)
    d = sub.add_parser("demo", help="greedy vs contrast on SmolLM2-135M")
    d.add_argument("--synthetic", action="store_true", help="a synthetic walk-through instead (no model)")
    d.set_defaults(fn=cmd_demo)
    from .cli_model import add_model_commands
    add_model_commands(sub)
    bench = sub.add_parser("bench", help="run the benchmark grid (options: see benchmarks/run_bench.py --help)")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(fn=cmd_bench)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
