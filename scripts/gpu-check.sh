#!/usr/bin/env bash
# The one-call GPU check: scripts/gpu-all.sh (op parity, step parity, bench train, micro-benchmarks, and the
# sample benchmark once that lands), run on the device machine from the repository root after
# scripts/package-gpu.sh packed dist/ here (the device call must carry "dist"). Arguments go to gpu-all.sh
# (--dry-run: the same plumbing on the CPU libtorch). With --ops-only, just the op parity and
# micro-benchmarks (tenmin.engine.parity.GpuCheck) into $OUT/gpu-check.txt: exit code 0 when parity passed,
# 1 when it failed, 3 without a usable GPU.
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
if [ "${1:-}" != "--ops-only" ]; then
  exec "$root/scripts/gpu-all.sh" "$@"
fi
out=${OUT:-$root/out}
mkdir -p "$out"
if [ ! -f "$root/dist/tenmin.jar" ] || [ ! -f "$root/dist/jre.tar.xz" ]; then
  echo "gpu-check: dist/ is missing; run scripts/package-gpu.sh first and carry dist" >&2
  exit 2
fi
timeout "${TENMIN_CHECK_TIMEOUT:-480}" "$root/dist/tenmin-gpu" --main tenmin.engine.parity.GpuCheck "$out" 2>&1 \
  | tee "$out/gpu-check.log"
exit "${PIPESTATUS[0]}"
