#!/usr/bin/env bash
# Issue 5's recipe benchmark on a GPU machine, one run per device call: the guide's whole training command line
# (80 steps, batch 8 x 6 accumulation, 1024x1024, a save every step, samples every 10 steps) on IMAGES generated
# images (40 or 200) and a random SDXL-architecture model, with the wall time of setup, latent caching,
# training, sampling and saving. Run from the repository root after scripts/package-gpu.sh packed dist/ here:
#   run(command="scripts/gpu-recipe.sh 40", carry=["dist"], timeout_s=600)
# Extra arguments go to tenmin bench recipe (e.g. --max_train_steps 40, or --checkpointing all to recompute every
# block as the reference does; the guide's --gradient_checkpointing reads as auto: a large card keeps activations
# instead of recomputing them, see docs/PERFORMANCE.md). TENMIN_DEVICE_OPTIMIZER=0 keeps the optimizer step on the
# host (the A/B of the device step). Writes $OUT/recipe-IMAGES.txt.
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
out=${OUT:-$root/out}
mkdir -p "$out"
images=${1:-40}
shift || true
if [ ! -f "$root/dist/tenmin.jar" ] || [ ! -f "$root/dist/jre.tar.xz" ]; then
  echo "gpu-recipe: dist/ is missing; run scripts/package-gpu.sh first and carry dist" >&2
  exit 2
fi
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi not available"
  timeout "${TENMIN_RECIPE_TIMEOUT:-570}" "$root/dist/tenmin-gpu" bench recipe --images "$images" "$@" 2>&1
  rc=$?
  echo "exit $rc"
  exit "$rc"
} | tee "$out/recipe-$images.txt"
