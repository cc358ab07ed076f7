# Sourced by ./tenmin, scripts/test and .ci/run: finds a JDK 25 (or newer) and exports JAVA_HOME.
# Order: $TENMIN_JAVA_HOME, $JAVA_HOME, `java` on PATH, then the usual install folders of Linux
# distributions, SDKMAN and macOS. Nothing machine-specific is hard-coded: every candidate is probed.

tenmin_java_major() { # prints the feature version of the JDK in folder $1, or nothing
  local v
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
  if [ -f "$1/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release")
  fi
  if [ -z "$v" ]; then
    v=$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  fi
  echo "$v"
}

tenmin_find_jdk() {
  local c v
  local candidates=()
  [ -n "${TENMIN_JAVA_HOME:-}" ] && candidates+=("$TENMIN_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  if command -v java >/dev/null 2>&1; then
    c=$(readlink -f "$(command -v java)"); candidates+=("${c%/bin/java}")
  fi
  for c in /usr/lib/jvm/* /usr/local/lib/jvm/* /opt/java/* /opt/jdk* "$HOME"/.sdkman/candidates/java/* \
           "$HOME"/.jdks/* /Library/Java/JavaVirtualMachines/*/Contents/Home; do
    [ -d "$c" ] && candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    v=$(tenmin_java_major "$c")
    if [ -n "$v" ] && [ "$v" -ge 25 ] 2>/dev/null; then echo "$c"; return 0; fi
  done
  return 1
}

if ! TENMIN_JDK=$(tenmin_find_jdk); then
  echo "tenmin: no JDK 25 found (looked at \$TENMIN_JAVA_HOME, \$JAVA_HOME, PATH and the usual JDK folders);" \
       "install one (for example Temurin 25) or set TENMIN_JAVA_HOME" >&2
  exit 2
fi
export JAVA_HOME="$TENMIN_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
# Maven 3.8's bundled Guava calls sun.misc.Unsafe, which JDK 24+ warns about on every build.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
