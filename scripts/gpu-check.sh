#!/usr/bin/env bash
# The one-call GPU check, run on the device machine from the repository root after scripts/package-gpu.sh
# packed dist/ here (the device call must carry "dist"):
#   parity of the torch backend on CUDA against the cpu backend (fp32 and bf16, each attention kernel),
#   then a micro-benchmark (bf16 conv3x3 640ch 64², SDPA B2 H10 S4096 D64, bf16 GEMM 8192³).
# Writes $OUT/machine.txt (nvidia-smi, torch versions), $OUT/gpu-check.txt (the report) and
# $OUT/gpu-check.log; exit code 0 when parity passed, 1 when it failed, 3 without a usable GPU.
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
if [ ! -f "$root/dist/tenmin.jar" ] || [ ! -f "$root/dist/jre.tar.xz" ]; then
  echo "gpu-check: dist/ is missing; run scripts/package-gpu.sh first and carry dist" >&2
  exit 2
fi
{
  date -u
  nvidia-smi 2>&1 || echo "nvidia-smi not available"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1
} > "$out/machine.txt"
cat "$out/machine.txt"
timeout "${TENMIN_CHECK_TIMEOUT:-480}" "$root/dist/tenmin-gpu" --main tenmin.engine.parity.GpuCheck "$out" 2>&1 \
  | tee "$out/gpu-check.log"
exit "${PIPESTATUS[0]}"
