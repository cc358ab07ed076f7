#!/usr/bin/env bash
# Checks the torch backend against a CUDA build of libtorch on a machine without a GPU (not part of CI: it
# downloads ~820 MB from Maven Central once). What it shows:
#   1. every aoti_torch_cuda_* entry point the backend binds is exported by the CUDA libtorch;
#   2. tenmin loads that libtorch (libc10_cuda, libtorch_cuda and their CUDA dependencies) and, with no driver,
#      refuses --device cuda with one line naming the CUDA error;
#   3. the torch tests (-Dgroups=torch) pass on the CUDA build's CPU kernels, and the CUDA attention entry
#      points accept the backend's argument layout (they reach ATen's device check and refuse CPU tensors).
# cuBLAS, cuBLASLt, cuDNN, cuSPARSE and NCCL are not on Maven Central as CUDA 13 libraries: stand-ins with
# their sonames and symbol versions (every function returns 1, none is called without a GPU) let the dynamic
# linker load libtorch_cuda.so. Needs gcc.
#
#   scripts/check-cuda-build.sh [WORKDIR]      (default: ~/.cache/tenmin/cuda-build-check)
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
. "$root/scripts/java-env.sh"
work=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/tenmin/cuda-build-check}
torch_version=$(sed -n 's:.*<tenmin.libtorch.version>\(.*\)</tenmin.libtorch.version>.*:\1:p' "$root/pom.xml")
cuda_version=13.1-9.19-${torch_version#*-}
m2=$(mvn -B -q help:evaluate -Dexpression=settings.localRepository -DforceStdout 2>/dev/null \
  | sed 's/\x1b\[[0-9;]*m//g' || true)
[ -d "$m2" ] || m2=$HOME/.m2/repository
lib=$work/lib
mkdir -p "$work/unpacked" "$lib"

fetch() { # group:artifact:version:classifier → path of the jar
  local g=${1%%:*} rest=${1#*:}
  local a=${rest%%:*}; rest=${rest#*:}
  local v=${rest%%:*} c=${rest#*:}
  mvn -B -q dependency:get -Dartifact="$g:$a:$v:jar:$c" -Dtransitive=false > "$work/fetch.log" 2>&1 \
    || { echo "check-cuda-build: could not fetch $1 (log: $work/fetch.log)" >&2; return 1; }
  echo "$m2/${g//.//}/$a/$v/$a-$v-$c.jar"
}

if [ ! -f "$lib/libtorch_cuda.so" ]; then
  echo "check-cuda-build: fetching org.bytedeco:pytorch:$torch_version:linux-x86_64-gpu and cuda-redist $cuda_version"
  (cd "$work/unpacked" && unzip -o -q "$(fetch "org.bytedeco:pytorch:$torch_version:linux-x86_64-gpu")" \
      'org/bytedeco/pytorch/linux-x86_64-gpu/*.so*' \
    && unzip -o -q "$(fetch "org.bytedeco:cuda-redist:$cuda_version:linux-x86_64")" 'org/bytedeco/cuda/linux-x86_64/*.so*' \
    && unzip -o -q "$(fetch "org.bytedeco:openblas:$(sed -n 's:.*<tenmin.openblas.version>\(.*\)</tenmin.openblas.version>.*:\1:p' "$root/pom.xml"):linux-x86_64")" \
      'org/bytedeco/openblas/linux-x86_64/*.so*')
  for f in libc10.so libc10_cuda.so libtorch.so libtorch_cpu.so libtorch_cuda.so libgomp.so.1; do
    cp "$work/unpacked/org/bytedeco/pytorch/linux-x86_64-gpu/$f" "$lib/"
  done
  cp "$work"/unpacked/org/bytedeco/cuda/linux-x86_64/lib*.so* "$work"/unpacked/org/bytedeco/openblas/linux-x86_64/lib*.so* "$lib/"
  stubs=$work/stubs
  mkdir -p "$stubs"
  for so in libcublas.so.13 libcublasLt.so.13 libcudnn.so.9 libcusparse.so.12; do
    nm -D --undefined-only "$lib"/*.so* 2>/dev/null | awk '{print $2}' | grep "@$so\$" | sed 's/@.*//' | sort -u > "$stubs/$so.syms"
    { echo "$so {"; echo " global:"; sed 's/$/;/' "$stubs/$so.syms"; echo " local: *;"; echo "};"; } > "$stubs/$so.ver"
    sed 's/.*/int &(void) { return 1; }/' "$stubs/$so.syms" > "$stubs/$so.c"
    gcc -shared -fPIC -o "$lib/$so" -Wl,-soname,"$so" -Wl,--version-script="$stubs/$so.ver" "$stubs/$so.c"
  done
  nm -D --undefined-only "$lib/libtorch_cuda.so" | awk '{print $2}' | grep '^nccl' | sed 's/@.*//' | sort -u \
    | sed 's/.*/int &(void) { return 1; }/' > "$stubs/nccl.c"
  gcc -shared -fPIC -o "$lib/libnccl.so.2" -Wl,-soname,libnccl.so.2 "$stubs/nccl.c"
fi
missing=$(LD_LIBRARY_PATH=$lib ldd "$lib/libtorch_cuda.so" | grep "not found" || true)
[ -z "$missing" ] || { echo "check-cuda-build: unresolved dependencies:"; echo "$missing"; exit 1; }

echo "== 1. the CUDA entry points the backend binds"
ops=$(grep -rhoE 'deviceOp\((dev|"cuda"), "[A-Za-z_0-9]+"|out3\("[A-Za-z_0-9]+"' "$root/src/main/java" \
  | sed -E 's/.*"([^"]+)"$/\1/' | sort -u; echo randn)
exported=$(nm -D --defined-only "$lib/libtorch_cuda.so" | awk '{print $3}')
bad=0
for op in $ops; do
  if grep -qxE "aoti_torch_cuda_${op}(_v[0-9])?" <<< "$exported"; then
    echo "  ok  aoti_torch_cuda_$op"
  else
    echo "  MISSING aoti_torch_cuda_$op"; bad=1
  fi
done

echo "== 2. --device cuda without a driver"
msg=$(TENMIN_LIBTORCH=$lib "$root/tenmin" bench train --device cuda --size tiny 2>&1 | grep -v '^WARNING' | tail -1 || true)
echo "  $msg"
case $msg in *"is not available"*"CUDA error"*) ;; *) bad=1 ;; esac

echo "== 3. the torch tests on the CUDA build"
if (cd "$root" && TENMIN_LIBTORCH=$lib mvn -B test -Dgroups=torch > "$work/torch-tests.log" 2>&1); then
  echo "  passed: $(grep -a 'Tests run:' "$work/torch-tests.log" | tail -1 | sed 's/.*\(Tests run:\)/\1/') (log: $work/torch-tests.log)"
else
  echo "  FAILED; log: $work/torch-tests.log"; bad=1
fi
exit $bad
