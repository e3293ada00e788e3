#!/usr/bin/env bash
# Everything that needs the GPU machine, in one call: the wheel and the carried test wheels are
# installed, then `info`, the GPU tests, the Helion dispatch benchmark and the suite's; full logs go to
# $OUT, a short table last.
# Run from the repository root with dist/ (the wheel) and .whl/ (pytest, hypothesis, helion, ...).
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    dist/*.whl .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -m swiftlaunch info 2>&1 | tee "$OUT/info.txt"
python3 -m pytest tests -q -p no:cacheprovider -ra ${PYTEST_ARGS:-} > "$OUT/tests.log" 2>&1
echo "pytest exit: $?"
grep -E "passed|failed|error" "$OUT/tests.log" | tail -5
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -40
if [ "${SKIP_BENCH:-0}" != "1" ]; then
    # Helion's dispatch in detail (installed, pool, two shapes, the breakdown rows), then the suite.
    python3 scripts/bench_helion_dispatch.py > "$OUT/bench_helion.log" 2>&1
    echo "helion dispatch bench exit: $?"
    python3 -m swiftlaunch bench ${BENCH_ARGS:-} --out "$OUT/bench" > "$OUT/bench.log" 2>&1
    echo "bench exit: $?"
    # The pool is process-wide: its stack runs in a process of its own.
    SWIFTLAUNCH_OUTPUT_POOL=1 python3 -m swiftlaunch bench --kernels vec_add,add2d \
        --stacks eager,swiftlaunch_helion_pool,empty_like,raw_launch --out "$OUT/bench_pool" > "$OUT/bench_pool.log" 2>&1
    echo "pool bench exit: $?"
    grep -A8 "^Helion targets" "$OUT/bench_helion.log"
    tail -60 "$OUT/bench.log"
    grep -A12 -E "^(vec_add|add2d): " "$OUT/bench_pool.log"
fi
