#!/usr/bin/env bash
# The GPU suite (and, with TARGETS=1, the benchmark's targets section) under another Triton release
# than the machine's own, with torch unchanged. Run on the GPU machine from the repository root after
# scripts/gpu_check.sh installed the wheel into /tmp/site.
#
#   scripts/gpu_triton_release.sh TAG
#
# TAG names a tarball of that release's wheel contents, carried in parts and joined as
# /tmp/tw/tTAG.tar.xz.part*; it is unpacked once into /tmp/tritonTAG, which then comes first on the path.
# A Triton wheel is larger than one device call carries, hence the parts.
# Full logs go to $OUT; the pytest summary and the targets table come last.
set -uo pipefail
tag=${1:?usage: gpu_triton_release.sh TAG}
OUT=${OUT:-$(mktemp -d)}
site=/tmp/triton$tag
if [ ! -d "$site/triton" ]; then
    mkdir -p "$site"
    cat /tmp/tw/t"$tag".tar.xz.part* | xz -d | tar x -C "$site" || { echo "unpacking t$tag failed"; exit 1; }
    # Files left out of the parts to keep them small, carried on their own (3.9's ptxas-blackwell).
    if [ -f /tmp/tw/t"$tag".addon.tar.xz ]; then xz -d < /tmp/tw/t"$tag".addon.tar.xz | tar x -C "$site" || exit 1; fi
fi
export PYTHONPATH=/tmp/site:$site SWIFTLAUNCH_ALLOW_UNTESTED=1
python3 -c "import triton, torch; print('triton', triton.__version__, triton.__file__, '| torch', torch.__version__)" \
    | tee "$OUT/versions-$tag.txt"
python3 -m swiftlaunch info > "$OUT/info-$tag.txt" 2>&1
grep -iE "triton|native|reader|pass" "$OUT/info-$tag.txt" | head -12
python3 -m pytest tests/gpu -q -p no:cacheprovider -ra ${PYTEST_ARGS:-} > "$OUT/tests-$tag.log" 2>&1
echo "pytest exit: $?"
grep -E "passed|failed|error" "$OUT/tests-$tag.log" | tail -3
grep -E "^(FAILED|ERROR)" "$OUT/tests-$tag.log" | head -40
if [ "${TARGETS:-0}" = "1" ]; then
    python3 -m swiftlaunch bench --targets-only --out "$OUT/bench-$tag" > "$OUT/bench-$tag.log" 2>&1
    echo "bench exit: $?"
    tail -26 "$OUT/bench-$tag.log"
fi
