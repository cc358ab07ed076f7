#!/usr/bin/env bash
# The one device call of a GPU session: every check and measurement tenmin needs from a GPU, each step
# time-boxed so one failure does not eat the budget, everything written under $OUT (7 files at most).
#
#   here:   scripts/package-gpu.sh              (dist/: Java runtime, jar, launcher, packed fixture; ~50 MiB)
#   there:  scripts/gpu-all.sh                  (run from the repository root; the device call carries "dist")
#   here:   scripts/gpu-all.sh --dry-run        (the same plumbing on the CPU libtorch with the tiny model)
#
# Steps, in order of importance, each under its own `timeout` and all under one deadline (TENMIN_GPU_BUDGET
# seconds, default 500; a step that would start with less than 25 s left is skipped); at most 8 files under $OUT:
#   machine              (in log.txt) nvidia-smi, torch/CUDA/cuDNN versions, CPU, memory, the Java runtime
#   gpu-check.txt        op parity of the torch backend on CUDA vs the cpu backend (fp32 1e-4, bf16 2e-2; every
#                        attention kernel), the host's cost per op, micro-benchmarks (bf16 conv, GEMM, SDPA per kernel)
#   step-parity.txt      the fixture U-Net + LoCon training step, CUDA vs cpu backend (fp32, bf16, 1e-4 delta, LoCon dropout), with
#                        the default attention kernel and again with flash attention
#   bench-train.txt      tenmin bench vae (fp32 encode and decode at 1024x1024) and
#                        tenmin bench train at full SDXL size: U-Net only / text encoders trained, with full
#                        checkpointing (and again with libtorch's allocator without tenmin's expandable segments; and at batch 4:
#                        host- or device-bound?); then text encoders trained
#                        with --checkpointing auto (what fits), and none (and none with the LoCon as branches:
#                        TENMIN_LORA_MERGE=0, with one product before the GEGLU: TENMIN_SPLIT_GEGLU=0, and with
#                        no projected LoCon gradients: TENMIN_LORA_PROJECT=0, and with cuDNN's benchmark mode:
#                        TENMIN_CUDNN_BENCHMARK=1, and with each LoCon gradient added at once: TENMIN_DEFER_GRADS=0;
#                        the recipe run after this script
#                        takes the faster side of each), and none again with --op-times (device and
#                        host milliseconds per op name, forward and backward: where the micro-batch's time goes)
#   profiles.tar.gz      Flight Recorder profiles of bench train (text encoders, full checkpointing) and bench sample
#   recipe.txt           tenmin bench recipe: the guide's command line, 6 steps on 200 generated images (phase times)
#   sample-bench.txt     scripts/gpu-sample-bench.sh (2 timed images after 3 warm-up ones; with 2 the first case was still warming up on the H100): s per 30-step 1024x1024 SDXL image with CFG, without and with
#                        the recipe's LoCon, and the same U-Net in PyTorch eager (one timed image each); PyTorch's
#                        host cost per op and per U-Net call (bench_unet_torch.py --host)
#   summary.txt (one line per step: status, seconds) and log.txt (everything printed)
# TENMIN_RECIPE_IMAGES (default 200) sets recipe-short's dataset size.
# TENMIN_GPU_STEPS=name,name... runs only those steps (names as in summary.txt; machine always runs), e.g. to
# repeat a failed one in a second, shorter call.
# Exit code: 0 when every step that ran passed, 1 otherwise.
set -uo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cd "$root"
dry=0
if [ "${1:-}" = "--dry-run" ]; then
  dry=1
fi
out=${OUT:-$root/out}
mkdir -p "$out"
log=$out/log.txt
summary=$out/summary.txt
: > "$log"
: > "$summary"
budget=${TENMIN_GPU_BUDGET:-500}
start=$(date +%s)
deadline=$((start + budget))
failed=0

say() {
  echo "$*" | tee -a "$log"
}

# step NAME CAP COMMAND...: runs COMMAND under min(CAP, time left) seconds, output to the log; records the result.
step() {
  local name=$1 cap=$2
  shift 2
  local now left limit t0 rc
  if [ -n "${TENMIN_GPU_STEPS:-}" ] && [ "$name" != machine ] && [[ ",$TENMIN_GPU_STEPS," != *",$name,"* ]]; then
    return 0
  fi
  now=$(date +%s)
  left=$((deadline - now))
  if [ "$left" -lt 25 ]; then
    say "== $name: SKIPPED (${left}s of the budget left)"
    echo "$name: skipped, budget spent" >> "$summary"
    return 0
  fi
  limit=$((cap < left ? cap : left))
  say "== $name (at most ${limit}s)"
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  local secs=$(($(date +%s) - t0))
  if [ "$rc" -eq 0 ]; then
    echo "$name: ok (${secs}s)" >> "$summary"
  else
    failed=1
    local why="exit $rc"
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && why="timed out after ${limit}s"
    echo "$name: FAILED ($why, ${secs}s)" >> "$summary"
  fi
  say "== $name: exit $rc after ${secs}s"
}

if [ ! -f dist/tenmin.jar ] || [ ! -f dist/jre.tar.xz ]; then
  echo "gpu-all: dist/ is missing; run scripts/package-gpu.sh here first and carry \"dist\"" | tee -a "$log" >&2
  echo "setup: FAILED (no dist/)" >> "$summary"
  exit 1
fi
launcher=dist/tenmin-gpu

machine() {
  date -u
  echo "dry run: $dry; budget ${budget}s; jar built from commit $(cat dist/COMMIT 2>/dev/null || echo unknown)"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  nvidia-smi --query-gpu=name,memory.total,memory.used,clocks.sm,clocks.max.sm,power.limit,driver_version \
    --format=csv 2>&1 || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'gpu', torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)" 2>&1 || true
  uname -a
  echo "cpus: $(nproc)"; grep -m1 "model name" /proc/cpuinfo || true
  free -g 2>&1 || true
  "$launcher" --version 2>&1 || true
}
step machine 40 bash -c "$(declare -f machine); launcher=$launcher dry=$dry budget=$budget machine"

if [ "$dry" -eq 1 ]; then
  step gpu-check 120 "$launcher" --main tenmin.engine.parity.GpuCheck "$out" --cpu-smoke
else
  step gpu-check 120 "$launcher" --main tenmin.engine.parity.GpuCheck "$out"
fi

fixture=dist/fixtures/models/tiny-a
if [ -d "$fixture" ]; then
  if [ "$dry" -eq 1 ]; then
    step step-parity 150 "$launcher" --main tenmin.train.GpuStepParity "$fixture" "$out/step-parity.txt" --cpu-smoke
  else
    step step-parity 90 "$launcher" --main tenmin.train.GpuStepParity "$fixture" "$out/step-parity.txt"
    # the same step with flash attention instead of cuDNN: how much of the bf16 distance the attention kernel makes
    step step-parity-flash 60 bash -o pipefail -c "\"$launcher\" --main tenmin.train.GpuStepParity \"$fixture\" \
      /tmp/step-parity-flash.txt --attention FLASH | tee -a \"$out/step-parity.txt\""
  fi
else
  say "== step-parity: SKIPPED (no $fixture: package-gpu.sh found no fixtures)"
  echo "step-parity: skipped, no packed fixture" >> "$summary"
fi

# bench train: the recipe's micro-batch; each run prints its plan, its measurement and a PERFORMANCE.md row.
bench=$out/bench-train.txt
: > "$bench"
# each bench train step's own output also goes to $benches/NAME.txt (read by pick_switches below)
benches=/tmp/tenmin-benches
rm -rf "$benches" /tmp/tenmin-recipe-env
mkdir -p "$benches"
bench_train() {
  local name=$1 cap=$2
  shift 2
  if [ "$dry" -eq 1 ]; then
    step "$name" "$cap" bash -o pipefail -c "\"$launcher\" bench train --config tiny --device cpu --backend torch \
      --warmup 0 --runs 1 --accumulation 2 $* 2>&1 | tee -a \"$bench\" \"$benches/$name.txt\""
  else
    step "$name" "$cap" bash -o pipefail -c "\"$launcher\" bench train --warmup 2 --runs 5 $* 2>&1 | tee -a \"$bench\" \
      \"$benches/$name.txt\""
  fi
}
bench_train bench-unet-all 100 --checkpointing all
bench_train bench-te-all 100 --te --checkpointing all
# host- or device-bound? Half the images with the same ops: a host-bound micro-batch takes nearly as long
bench_train bench-te-all-b4 100 --te --checkpointing all --batch 4

# The host's share: what one op costs the host here and in PyTorch (tiny tensors), and a PyTorch U-Net call's aten
# ops and issue time (gpu-check.txt has tenmin's side of the tiny ops); then Flight Recorder profiles of tenmin's
# training micro-batch and sampling, packed into profiles.tar.gz (read them with `jfr print` or JDK Mission Control).
if [ "$dry" -eq 0 ]; then
  step torch-host 90 bash -o pipefail -c "python3 scripts/bench_unet_torch.py --host 2>&1 | tee -a \"$out/sample-bench.txt\""
fi
profiles=$(mktemp -d)
profile() {
  local name=$1
  shift
  TENMIN_JAVA_OPTS="-XX:StartFlightRecording=filename=$profiles/$name.jfr,settings=profile" "$launcher" "$@"
}
if [ "$dry" -eq 1 ]; then
  step profile 120 bash -c "$(declare -f profile); profiles=$profiles launcher=$launcher; \
    profile train bench train --config tiny --device cpu --backend torch --warmup 0 --runs 1 --te >/dev/null && \
    profile sample bench sample --device cpu --size tiny --width 256 --height 256 --steps 2 --runs 1 --warmup 0 --no-lora >/dev/null"
else
  step profile 120 bash -c "$(declare -f profile); profiles=$profiles launcher=$launcher; \
    profile train bench train --warmup 2 --runs 3 --te --checkpointing all >/dev/null && \
    profile sample bench sample --steps 10 --runs 1 --warmup 1 --no-lora >/dev/null"
fi
if ls "$profiles"/*.jfr >/dev/null 2>&1; then
  tar -C "$profiles" -czf "$out/profiles.tar.gz" .
fi
rm -rf "$profiles"
# libtorch's allocator without the expandable segments tenmin asks for (LibTorch.CUDA_ALLOC_CONF): the memory and
# time they save (H100, 2026-11-26: 16.37 -> 14.82 GiB, the same 0.83 s)
if [ "$dry" -eq 0 ]; then
  step bench-te-all-plain-allocator 100 bash -o pipefail -c "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:False \"$launcher\" \
    bench train --warmup 2 --runs 5 --te --checkpointing all 2>&1 | tee -a \"$bench\""
fi

# bench recipe: the guide's whole command line, 6 of its 80 steps on 40 generated 1024x1024 images (issue 5's
# phases: setup, caching, training, sampling, saving); the full runs are scripts/gpu-recipe.sh, one call each.
if [ "$dry" -eq 1 ]; then
  step recipe-short 150 bash -o pipefail -c "\"$launcher\" bench recipe --size tiny --images 4 --resolution 64 --device cpu \
    --max_train_steps 2 --sample_every_n_steps 1 --sample_steps 2 2>&1 | tee \"$out/recipe.txt\""
else
  step recipe-short 150 bash -o pipefail -c "\"$launcher\" bench recipe --images ${TENMIN_RECIPE_IMAGES:-200} --max_train_steps 6 --sample_every_n_steps 3 \
    --checkpointing auto 2>&1 | tee \"$out/recipe.txt\""
fi

sample=scripts/gpu-sample-bench.sh
if [ -x "$sample" ]; then
  # The hook's contract: it runs from the repository root with OUT set to a scratch folder and
  # TENMIN_GPU_DRY_RUN=1 on a dry run; its output and the text files it leaves there go to sample-bench.txt.
  tmp=$(mktemp -d)
  step sample-bench 150 bash -o pipefail -c "OUT=\"$tmp\" TENMIN_GPU_DRY_RUN=$dry RUNS=2 WARMUP=3 TENMIN_BENCH_TIMEOUT=120 \
    TORCH_BENCH_TIMEOUT=55 \"$sample\" 2>&1 | tee \"$out/sample-bench.txt\""
  for f in "$tmp"/*; do
    if [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 1048576 ] && grep -Iq . "$f"; then
      { echo "== $(basename "$f")"; cat "$f"; } >> "$out/sample-bench.txt"
    fi
  done
  rm -rf "$tmp"
else
  say "== sample-bench: SKIPPED ($sample is missing)"
  echo "sample-bench: skipped, no $sample" >> "$summary"
fi

# the fp32 VAE: the latent caching's encode (twice per image with flip_aug) and the sampler's decode, 1024x1024
if [ "$dry" -eq 1 ]; then
  step bench-vae 60 bash -o pipefail -c "\"$launcher\" bench vae --device cpu --size tiny --width 64 --height 64 --warmup 0 \
    --runs 1 2>&1 | tee -a \"$bench\""
else
  step bench-vae 75 bash -o pipefail -c "\"$launcher\" bench vae --device cuda --size sdxl --width 1024 --height 1024 --op-times \
    --warmup 2 --runs 5 2>&1 | tee -a \"$bench\""
fi

# auto: the least recomputation that fits the card (an 80 GB card: the middle block only, planned 60.5 GiB)
bench_train bench-te-auto 90 --te --checkpointing auto
bench_train bench-te-none 90 --te --checkpointing none
# the A/B of the LoCon folded into the layers' weights (training's default since 2026-11-26): the same micro-batch
# with the LoCon as branches
TENMIN_LORA_MERGE=0 bench_train bench-te-none-branches 90 --te --checkpointing none
# the A/B of the feed-forward projections split in value and gate products (GEGLU on contiguous tensors; training's
# default since the tenth session): the same micro-batch with one product and the GEGLU on its halves
TENMIN_SPLIT_GEGLU=0 bench_train bench-te-none-unsplit 90 --te --checkpointing none
# the A/B of the 320-channel convolutions' LoCon gradients projected from their weight gradient (tenth session):
# the same micro-batch with those gradients through the branch's hidden product
TENMIN_LORA_PROJECT=0 bench_train bench-te-none-unprojected 90 --te --checkpointing none
# the A/B of cuDNN's benchmark mode (off by default, as in PyTorch): cuDNN times its algorithms for each convolution
# shape at the first call (the warm-up micro-batches) and keeps the fastest
TENMIN_CUDNN_BENCHMARK=1 bench_train bench-te-none-cudnn 90 --te --checkpointing none
# the A/B of the deferred LoCon gradient sums (one fused addition at the end of each backward, ninth session): the
# fourteenth session's op table had that one call at 52.7 ms of host time on the H100, far more than its ops cost
# on the host elsewhere; the same micro-batch with each gradient added at once
TENMIN_DEFER_GRADS=0 bench_train bench-te-none-undeferred 90 --te --checkpointing none
# where the recipe's micro-batch (none on an 80 GB card) spends the device's time, op by op (CUDA events between ops)
bench_train bench-te-optimes 120 --te --checkpointing none --op-times

# The recipe run after this script in the same call (scripts/gpu-recipe.sh) takes the faster side of each A/B above:
# a step's setting (a switch off, or cuDNN's benchmark mode on) goes to the recipe when its micro-batch was more than
# 1 % faster than bench-te-none's (both measured); /tmp/tenmin-recipe-env holds the result, which gpu-recipe.sh
# applies and prints.
ms() {
  grep -o "micro-batch: [0-9.]* ms" "$benches/$1.txt" 2>/dev/null | head -1 | awk '{print $2}'
}
base=$(ms bench-te-none)
for ab in bench-te-none-branches:TENMIN_LORA_MERGE=0 bench-te-none-unsplit:TENMIN_SPLIT_GEGLU=0 \
    bench-te-none-unprojected:TENMIN_LORA_PROJECT=0 bench-te-none-cudnn:TENMIN_CUDNN_BENCHMARK=1 \
    bench-te-none-undeferred:TENMIN_DEFER_GRADS=0; do
  other=$(ms "${ab%%:*}")
  setting=${ab#*:}
  if [ -n "$base" ] && [ -n "$other" ] && awk -v a="$other" -v b="$base" 'BEGIN { exit !(a < 0.99 * b) }'; then
    echo "export $setting" >> /tmp/tenmin-recipe-env
    say "== the recipe runs with $setting: ${ab%%:*} took $other ms per micro-batch, bench-te-none $base ms"
  elif [ -n "$base" ] && [ -n "$other" ]; then
    say "== the recipe keeps ${setting%%=*}'s default: ${ab%%:*} took $other ms per micro-batch, bench-te-none $base ms"
  fi
done

say "== summary (total $(($(date +%s) - start))s of ${budget}s)"
tee -a "$log" < "$summary"
exit "$failed"
