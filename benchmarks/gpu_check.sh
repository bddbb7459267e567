#!/usr/bin/env bash
# The GPU check, one prepared script for a machine with one NVIDIA GPU (e.g. the lent H200):
# installs what is missing (offline: it uses the machine's torch/triton and builds the C++
# extension in place), runs the CUDA tests, then the GPU benchmarks, writing everything under
# benchmarks/results/<machine>/ (and to $OUT when set). Budget: well under 8 minutes on one H200.
#
#   bash benchmarks/gpu_check.sh            # full
#   QUICK=1 bash benchmarks/gpu_check.sh    # tiny sizes, a smoke run
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
START=$(date +%s)
log() { echo "[gpu_check $(( $(date +%s) - START ))s] $*"; }

log "install (no downloads): the C++ extension, editable"
$PY -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -3
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name(0))" || exit 1
$PY -m lc_kernels info

MACHINE=$($PY -c "import sys; sys.path.insert(0, 'benchmarks'); from common import machine_name; print(machine_name())")
RES=benchmarks/results/$MACHINE
mkdir -p "$RES"

log "CUDA tests (triton backend on cuda)"
LC_TEST_BACKENDS=triton timeout 240 $PY -m pytest tests/test_backends.py tests/test_triton_interpret.py -q -x \
  -p no:cacheprovider 2>&1 | tee "$RES/cuda_tests.log" | tail -15
TESTS_RC=${PIPESTATUS[0]}

log "GPU benchmarks"
timeout 300 $PY benchmarks/bench_gpu.py ${QUICK:+--quick} 2>&1 | tee "$RES/gpu_bench.log" | tail -20
BENCH_RC=${PIPESTATUS[0]}

log "GPU sweep (run_bench.py --device cuda: V x L x rows x dtype grid)"
timeout 150 $PY benchmarks/run_bench.py --device cuda ${QUICK:+--tiny} 2>&1 | tail -5
SWEEP_RC=${PIPESTATUS[0]}
[ "$SWEEP_RC" = 0 ] || log "sweep rc=$SWEEP_RC (timeout: the grid did not finish in its slot)"

if [ -n "${OUT:-}" ]; then cp -r "$RES" "$OUT/" 2>/dev/null; fi
log "done: tests rc=$TESTS_RC bench rc=$BENCH_RC; results in $RES"
[ "$TESTS_RC" = 0 ] && [ "$BENCH_RC" = 0 ]
