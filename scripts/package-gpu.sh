#!/usr/bin/env bash
# Packages what a GPU machine without Java needs into dist/ (ignored by git), well under 64 MiB:
#   dist/jre.tar.xz   a jlink'ed JDK 25 runtime with the modules the jar needs plus jdk.incubator.vector
#   dist/tenmin.jar   the application (built here)
#   dist/tenmin-gpu   the launcher: unpacks the runtime, finds libtorch through python3, runs java
# Then, on the GPU machine: dist/tenmin-gpu <command> or scripts/gpu-check.sh (see docs/ENGINE.md).
# Modules: TENMIN_JLINK_MODULES overrides the list jdeps computes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
. "$root/scripts/java-env.sh"
cd "$root"
echo "package-gpu: building target/tenmin.jar" >&2
mvn -B -q -ntp -DskipTests package
mods=${TENMIN_JLINK_MODULES:-$("$JAVA_HOME/bin/jdeps" --multi-release 25 --print-module-deps --ignore-missing-deps target/tenmin.jar)}
case ",$mods," in
  *,jdk.incubator.vector,*) ;;
  *) mods="$mods,jdk.incubator.vector" ;;
esac
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
chmod +x dist/tenmin-gpu
total=$(du -cb dist/jre.tar.xz dist/tenmin.jar dist/tenmin-gpu | tail -n1 | cut -f1)
echo "package-gpu: dist/ holds $((total / 1048576)) MiB (jre.tar.xz $(($(stat -c %s dist/jre.tar.xz) / 1048576)) MiB," \
     "tenmin.jar $(($(stat -c %s dist/tenmin.jar) / 1048576)) MiB)" >&2
if [ "$total" -gt $((60 * 1048576)) ]; then
  echo "package-gpu: dist/ is over 60 MiB; a device call carries at most 64 MiB" >&2
  exit 1
fi
