#!/usr/bin/env bash
# Packages what a GPU machine without Java needs into dist/ (ignored by git), well under 64 MiB:
#   dist/jre.tar.xz   a jlink'ed JDK 25 runtime with the modules the jar needs, jdk.incubator.vector and jdk.jfr
#   dist/tenmin.jar   the application (built here)
#   dist/tenmin-gpu   the launcher: unpacks the runtime, finds libtorch through python3, runs java
#   dist/fixtures/models/tiny-a   the fixture U-Net (fp16), its LoCon and inputs, for the step parity (23 MB)
# Then, on the GPU machine: scripts/gpu-all.sh (everything in one call), dist/tenmin-gpu <command>, or
# scripts/gpu-check.sh (op parity only); see docs/PERFORMANCE.md "GPU: how to measure".
# Modules: TENMIN_JLINK_MODULES overrides the list jdeps computes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
. "$root/scripts/java-env.sh"
cd "$root"
echo "package-gpu: building target/tenmin.jar" >&2
mvn -B -q -ntp -DskipTests package
mods=${TENMIN_JLINK_MODULES:-$("$JAVA_HOME/bin/jdeps" --multi-release 25 --print-module-deps --ignore-missing-deps target/tenmin.jar)}
# the Vector API (the cpu backend) and Flight Recorder (gpu-all.sh's host profile) are not found by jdeps
for m in jdk.incubator.vector jdk.jfr; do
  case ",$mods," in
    *,$m,*) ;;
    *) mods="$mods,$m" ;;
  esac
done
work=$(mktemp -d "${TMPDIR:-/tmp}/tenmin-jlink.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "package-gpu: jlink --add-modules $mods" >&2
"$JAVA_HOME/bin/jlink" --add-modules "$mods" --strip-debug --no-header-files --no-man-pages \
  --compress=zip-0 --output "$work/jre"
mkdir -p dist
rm -rf dist/jre dist/jre.tar.xz.tmp
XZ_OPT="-6 -T2" tar -C "$work" -cJf dist/jre.tar.xz.tmp jre
mv dist/jre.tar.xz.tmp dist/jre.tar.xz
cp target/tenmin.jar dist/tenmin.jar
cp scripts/tenmin-gpu dist/tenmin-gpu
# the device machine's copy of .git may be older than the working tree: record what was built
git -C "$root" describe --always --dirty > dist/COMMIT 2>/dev/null || echo unknown > dist/COMMIT
chmod +x dist/tenmin-gpu
# The step parity's fixture: TENMIN_FIXTURES, else shared/fixtures beside the repository or a parent of it.
fixtures=${TENMIN_FIXTURES:-}
if [ -z "$fixtures" ]; then
  d=$root
  while [ "$d" != "/" ]; do
    if [ -d "$d/shared/fixtures/models" ]; then fixtures=$d/shared/fixtures; break; fi
    d=$(dirname "$d")
  done
fi
rm -rf dist/fixtures
if [ -n "$fixtures" ] && [ -d "$fixtures/models/tiny-a" ]; then
  echo "package-gpu: packing $fixtures/models/tiny-a (U-Net in fp16, LoCon, inputs) into dist/fixtures" >&2
  "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -cp target/tenmin.jar \
    tenmin.train.GpuStepParity --pack "$fixtures/models/tiny-a" dist/fixtures/models/tiny-a
else
  echo "package-gpu: no fixtures found (set TENMIN_FIXTURES); the step parity will be skipped there" >&2
fi
total=$(du -cb dist | tail -n1 | cut -f1)
tracked=$(git -C "$root" ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n1 | cut -f1)
echo "package-gpu: dist/ holds $((total / 1048576)) MiB (jre.tar.xz $(($(stat -c %s dist/jre.tar.xz) / 1048576)) MiB," \
     "tenmin.jar $(($(stat -c %s dist/tenmin.jar) / 1048576)) MiB); with the tracked files a device call carries" \
     "$(((total + tracked) / 1048576)) MiB of its 64" >&2
if [ $((total + tracked)) -gt $((62 * 1048576)) ]; then
  echo "package-gpu: dist/ plus the working tree is over 62 MiB; a device call carries at most 64 MiB" >&2
  exit 1
fi
