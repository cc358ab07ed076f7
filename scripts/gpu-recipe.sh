#!/usr/bin/env bash
# Issue 5's recipe benchmark on a GPU machine, one run per device call: the guide's whole training command line
# (80 steps, batch 8 x 6 accumulation, 1024x1024, a save every step, samples every 10 steps) on IMAGES generated
# images (40 or 200) and a random SDXL-architecture model, with the wall time of setup, latent caching,
# training, sampling and saving. Run from the repository root after scripts/package-gpu.sh packed dist/ here:
#   run(command="scripts/gpu-recipe.sh 40", carry=["dist"], timeout_s=600)
# Extra arguments go to tenmin bench recipe (e.g. --max_train_steps 40, or --checkpointing all to recompute every
# block as the reference does; the guide's --gradient_checkpointing reads as auto: a large card keeps activations
# instead of recomputing them, see docs/PERFORMANCE.md). TENMIN_DEVICE_OPTIMIZER=0 keeps the optimizer step on the
# host (the A/B of the device step). A run that fails early is tried again with the three switches of the ninth
# session's changes off (TENMIN_RECIPE_FALLBACK=0: not). Writes $OUT/recipe-IMAGES.txt.
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
  # the faster side of gpu-all.sh's A/B micro-batches when it ran before in the same call
  if [ -f /tmp/tenmin-recipe-env ]; then
    echo "gpu-recipe: from gpu-all.sh's A/B: $(tr '\n' ' ' < /tmp/tenmin-recipe-env)"
    . /tmp/tenmin-recipe-env
  fi
  limit=${TENMIN_RECIPE_TIMEOUT:-570}
  start=$(date +%s)
  timeout "$limit" "$root/dist/tenmin-gpu" bench recipe --images "$images" "$@" 2>&1
  rc=$?
  echo "exit $rc"
  # A run that fails early (not a timeout) is tried once more on the paths before the ninth session's changes
  # (the LoCon as branches, gradients added one by one, no text-encoder pipelining), in the time that is left,
  # so a device call still brings a total back, when at least TENMIN_RECIPE_FALLBACK_MIN seconds (default 240: the
  # 200-image run took 300 s on those paths) are left; TENMIN_RECIPE_FALLBACK=0 turns this off.
  left=$((limit - ($(date +%s) - start)))
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] && [ "${TENMIN_RECIPE_FALLBACK:-1}" != 0 ] \
      && [ "$left" -ge "${TENMIN_RECIPE_FALLBACK_MIN:-240}" ]; then
    echo "gpu-recipe: the run failed (exit $rc); again with TENMIN_LORA_MERGE=0 TENMIN_DEFER_GRADS=0 TENMIN_TE_PIPELINE=0 ($left s left)"
    TENMIN_LORA_MERGE=0 TENMIN_DEFER_GRADS=0 TENMIN_TE_PIPELINE=0 \
      timeout "$left" "$root/dist/tenmin-gpu" bench recipe --images "$images" "$@" 2>&1
    rc=$?
    echo "exit $rc (fallback)"
  fi
  exit "$rc"
} | tee "$out/recipe-$images.txt"
