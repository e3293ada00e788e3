#!/usr/bin/env bash
# Where an installed Helion call's host time goes, on the GPU machine, in one call: the Helion
# dispatch benchmark (with its breakdown rows), then, where `perf` exists, a sampled profile of
# installed calls in a loop. For symbols, put an unstripped build of the extension at
# .prof/_native.abi3.so (ignored; see docs/DEVELOPING.md) and carry it.
set -uo pipefail
OUT=${OUT:-$(mktemp -d)}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    dist/*.whl .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 scripts/bench_helion_dispatch.py --reps "${REPS:-3}" --calls "${CALLS:-10000}" 2>&1 | tee "$OUT/bench_helion.txt"
if ! command -v perf > /dev/null; then
    echo "no perf on this machine: profile skipped"
    exit 0
fi
if [ -f .prof/_native.abi3.so ]; then cp .prof/_native.abi3.so /tmp/site/swiftlaunch/_native.abi3.so; fi
cat > /tmp/loop.py <<'PY'
import sys, torch, helion, swiftlaunch.helion as sl
from swiftlaunch.bench import kernels
kernels.load_helion()
add = helion.kernel(kernels.helion_add, config=helion.Config(block_sizes=[1024]), static_shapes=True)
assert sl.install(output_pool=len(sys.argv) > 1)
x, y = torch.randn(4096, device="cuda"), torch.randn(4096, device="cuda")
for _ in range(1000):
    add(x, y)
torch.cuda.synchronize()
for _ in range(300000):
    add(x, y)
torch.cuda.synchronize()
print(sl.dispatch_stats())
PY
perf record -F 5000 -g -o "$OUT/perf.data" python3 /tmp/loop.py > "$OUT/perf_record.txt" 2>&1
tail -3 "$OUT/perf_record.txt"
perf report -i "$OUT/perf.data" --stdio --no-children --percent-limit 0.4 --sort dso,symbol -g none 2>/dev/null \
    | grep -v "^$" | head -120 | tee "$OUT/perf_flat.txt"
perf report -i "$OUT/perf.data" --stdio --no-children --sort dso 2>/dev/null | grep -v "^#" | grep -v "^$" | head -30
rm -f "$OUT/perf.data"
