#!/usr/bin/env bash
# One command for a session on a GPU machine: the gpu tests, then bench.gpu, logs under $OUT.
#
#   OUT=/some/dir bash bench/gpu_session.sh        (default OUT: bench/results/gpu_session)
#
# Runs from the repository root with .venv/bin/python when present (else python3). The tests
# get up to TEST_LIMIT seconds (default 240), the benchmark its own --time-limit (BENCH_LIMIT,
# default 300); both are cut by `timeout` if they overrun. Exit status: the tests' (0: passed).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results/gpu_session}"
mkdir -p "$OUT"
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
TEST_LIMIT="${TEST_LIMIT:-240}"
BENCH_LIMIT="${BENCH_LIMIT:-300}"

{ nvidia-smi || true; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.version.cuda, 'available', torch.cuda.is_available())"; } > "$OUT/device.txt" 2>&1

timeout "$TEST_LIMIT" "$PY" -m pytest tests/gpu -p no:cacheprovider -rs -q \
    --junitxml="$OUT/gpu_tests.xml" > "$OUT/gpu_tests.log" 2>&1
tests=$?
echo "gpu tests: exit $tests ($(tail -n 1 "$OUT/gpu_tests.log"))"

timeout $((BENCH_LIMIT + 60)) "$PY" -m bench.gpu --time-limit "$BENCH_LIMIT" --out "$OUT" \
    > "$OUT/bench_gpu.log" 2>&1
echo "bench.gpu: exit $? (log $OUT/bench_gpu.log)"

echo "results in $OUT: device.txt, gpu_tests.log, gpu_tests.xml, bench_gpu.log, gpu.json, gpu.md"
exit "$tests"
