#!/usr/bin/env bash
# Device time per kernel family, tenmin against PyTorch eager, from Nsight Compute (ncu, which the GPU machines
# have; nsys is not usable there): where a U-Net call or a training micro-batch spends the device's time, not
# the host's. Each run marks one region with cudaProfilerStart/Stop and ncu records only that region's kernels,
# one at a time (so the sums are device time without overlap or launch gaps):
#   tenmin-sample   tenmin bench sample --steps 1 --no-lora --cuda-profile: one 1024x1024 U-Net call at batch 2
#                   (CFG) and its sampler step, after 2 warm-up images
#   torch-sample    scripts/bench_unet_torch.py --steps 1 --cuda-profile: the same U-Net call in PyTorch eager
#   tenmin-vae      tenmin bench vae --cuda-profile: one fp32 VAE encode of a 1024x1024 image (the latent caching's)
#   tenmin-train    tenmin bench train --te --checkpointing all --cuda-profile: one recipe micro-batch (batch 8)
# Output: $OUT/kernels.txt (scripts/ncu_summary.py: families side by side, the top kernels of each run) and
# $OUT/kernels-log.txt. Run from the repository root on the GPU machine after scripts/package-gpu.sh here (the
# device call carries "dist"):
#   run(command="scripts/gpu-kernels.sh", carry=["dist"], timeout_s=400)
# TENMIN_KERNEL_RUNS=name,name... runs only those (default all four; the training micro-batch needs more than 150 s
# under ncu: TENMIN_TRAIN_PROFILE_CAP=400 in a call of its own).
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$root"
out=${OUT:-$root/out}
mkdir -p "$out"
log=$out/kernels-log.txt
: > "$log"
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -n1)
if [ -z "$ncu" ]; then
  echo "gpu-kernels: no ncu on this machine" | tee -a "$log" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
summary=()
profile() {
  local name=$1 cap=$2
  shift 2
  if [ -n "${TENMIN_KERNEL_RUNS:-}" ] && [[ ",$TENMIN_KERNEL_RUNS," != *",$name,"* ]]; then
    return 0
  fi
  echo "== $name (at most ${cap}s): $*" | tee -a "$log"
  local t0=$SECONDS
  timeout --kill-after=10 "$cap" "$ncu" --profile-from-start off --clock-control none \
    --metrics gpu__time_duration.sum --csv --print-units base --log-file "$tmp/$name.csv" "$@" >> "$log" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0))s; $(grep -c '^"' "$tmp/$name.csv" 2>/dev/null || echo 0) CSV rows" \
    | tee -a "$log"
  [ "$rc" -eq 0 ] || status=1
  summary+=("$name=$tmp/$name.csv")
}
profile tenmin-sample 120 dist/tenmin-gpu bench sample --device cuda --size sdxl --width 1024 --height 1024 \
  --steps 1 --cfg 7 --warmup 2 --runs 1 --no-lora --cuda-profile
profile torch-sample 90 python3 scripts/bench_unet_torch.py --device cuda --dtype bf16 --width 1024 --height 1024 \
  --steps 1 --warmup 2 --runs 1 --cuda-profile
if [ "${#summary[@]}" -gt 0 ]; then
  { echo "== one U-Net call at batch 2, 1024x1024 (sampling, no LoRA)"; python3 scripts/ncu_summary.py "${summary[@]}"; } \
    > "$out/kernels.txt" 2>&1
fi
summary=()
profile tenmin-vae 90 dist/tenmin-gpu bench vae --device cuda --size sdxl --width 1024 --height 1024 --warmup 2 --runs 1 \
  --cuda-profile
if [ "${#summary[@]}" -gt 0 ]; then
  { echo; echo "== one fp32 VAE encode of a 1024x1024 image (latent caching)"
    python3 scripts/ncu_summary.py "${summary[@]}"; } >> "$out/kernels.txt" 2>&1
fi
summary=()
profile tenmin-train ${TENMIN_TRAIN_PROFILE_CAP:-150} dist/tenmin-gpu bench train --te --checkpointing all --warmup 1 \
  --runs 1 --cuda-profile
if [ "${#summary[@]}" -gt 0 ]; then
  { echo; echo "== one training micro-batch (batch 8, 1024x1024, text encoders trained, full checkpointing)"
    python3 scripts/ncu_summary.py --top 40 "${summary[@]}"; } >> "$out/kernels.txt" 2>&1
fi
cat "$out/kernels.txt"
exit "$status"
