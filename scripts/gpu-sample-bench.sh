#!/usr/bin/env bash
# The sampling benchmark of issue 6 on a GPU machine, in one call: seconds per 30-step 1024x1024 image with
# CFG on a full-size SDXL-architecture model with random weights, without and with the recipe's LoCon
# (tenmin bench sample, torch backend), and the same U-Net run by PyTorch eagerly on the same card
# (scripts/bench_unet_torch.py). Run from the repository root after scripts/package-gpu.sh packed dist/ here
# (the device call must carry "dist"):
#   scripts/gpu-sample-bench.sh
# Writes $OUT/machine.txt, $OUT/tenmin-sample-bench.txt (also a no-LoRA run with TENMIN_INFERENCE_KERNELS=0, the
# A/B of the CUDA inference formulations) and $OUT/torch-unet-bench.txt. Sizes can be changed
# with STEPS, WIDTH, HEIGHT, RUNS, WARMUP; TENMIN_GPU_DRY_RUN=1 runs the plumbing on this machine's CPU instead
# (tiny model, 256x256, 4 steps; the PyTorch part only where python3 has torch); TENMIN_FIXTURES=<fixtures root> also checks the PyTorch U-Net
# against the sgm reference output first. Exit code: 0 when both ran, 1 when one failed, 2 without dist/.
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
if [ ! -f "$root/dist/tenmin.jar" ] || [ ! -f "$root/dist/jre.tar.xz" ]; then
  echo "gpu-sample-bench: dist/ is missing; run scripts/package-gpu.sh first and carry dist" >&2
  exit 2
fi
device=cuda
size=sdxl
steps=${STEPS:-30}
width=${WIDTH:-1024}
height=${HEIGHT:-1024}
runs=${RUNS:-3}
warmup=${WARMUP:-1}
if [ "${TENMIN_GPU_DRY_RUN:-0}" = 1 ]; then
  device=cpu size=tiny steps=${STEPS:-4} width=${WIDTH:-256} height=${HEIGHT:-256} runs=${RUNS:-1} warmup=${WARMUP:-0}
fi
{
  date -u
  nvidia-smi 2>&1 || echo "nvidia-smi not available"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1
} > "$out/machine.txt"
cat "$out/machine.txt"
status=0
if [ -n "${TENMIN_FIXTURES:-}" ] && [ -d "$TENMIN_FIXTURES/models" ]; then
  for dir in "$TENMIN_FIXTURES"/models/*/; do
    python3 "$root/scripts/bench_unet_torch.py" --check "${dir%/}" 2>&1 | tee -a "$out/torch-unet-bench.txt" || status=1
  done
fi
timeout "${TENMIN_BENCH_TIMEOUT:-420}" "$root/dist/tenmin-gpu" bench sample --device "$device" --size "$size" \
  --width "$width" --height "$height" --steps "$steps" --cfg 7 --runs "$runs" --warmup "$warmup" 2>&1 \
  | tee "$out/tenmin-sample-bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# A/B in the same call: without the CUDA inference formulations (group norm by statistics, GEGLU's split GEMMs)
echo "== without the inference formulations (TENMIN_INFERENCE_KERNELS=0), no LoRA" | tee -a "$out/tenmin-sample-bench.txt"
TENMIN_INFERENCE_KERNELS=0 timeout "${TENMIN_BENCH_TIMEOUT:-420}" "$root/dist/tenmin-gpu" bench sample --device "$device" \
  --size "$size" --width "$width" --height "$height" --steps "$steps" --cfg 7 --runs "$runs" --warmup "$warmup" \
  --no-lora 2>&1 | tee -a "$out/tenmin-sample-bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
if [ "$device" = cpu ] && ! python3 -c "import torch" 2>/dev/null; then
  echo "gpu-sample-bench: no torch in python3 here; the PyTorch eager reference is skipped on a dry run" \
    | tee -a "$out/torch-unet-bench.txt"
else
  timeout "${TORCH_BENCH_TIMEOUT:-300}" python3 "$root/scripts/bench_unet_torch.py" --device "$device" --dtype bf16 \
    --width "$width" --height "$height" --steps "$steps" --runs "$runs" --warmup "$warmup" 2>&1 \
    | tee -a "$out/torch-unet-bench.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
fi
exit "$status"
