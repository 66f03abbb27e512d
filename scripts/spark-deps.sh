#!/usr/bin/env bash
# Resolve the runtime jars of the Delta Sharing Spark connector declared in
# conformance-tests/spark/pom.xml (io.delta:delta-sharing-spark_2.13:4.4.0, minus everything
# pyspark already ships) into target/spark-jars/<sha256 of the pom>/ and print that folder
# (the only line on stdout; messages go to stderr):
#
#   LAKESHARE_SPARK_JARS=$(./scripts/spark-deps.sh)
#
# The folder is reused as long as the pom is unchanged (a `.complete` marker is written last and
# the folder is renamed into place, so an interrupted run never leaves a half-filled cache).
# Maven's local repository is target/m2 (override with LAKESHARE_M2_REPO, e.g.
# ~/.m2/repository to share downloads between clones): the repo then needs nothing outside its
# own folder, and `cargo clean` drops both caches together.
# Usage: scripts/spark-deps.sh [POM]  (default conformance-tests/spark/pom.xml)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "spark-deps: $*" >&2
  exit 1
}

POM="${1:-conformance-tests/spark/pom.xml}"
[ -f "$POM" ] || fail "no pom at $POM"

# Spark 4.2 needs Java 17 or newer, for the resolution and for the tests alike.
command -v java >/dev/null 2>&1 \
  || fail "java not found on PATH: the Spark conformance suite needs a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
JAVA_MAJOR=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -1)
case "$JAVA_MAJOR" in
  ''|1.*) fail "java on PATH reports specification version '${JAVA_MAJOR:-unknown}'; Spark 4.2 needs Java 17 or newer" ;;
esac
[ "$JAVA_MAJOR" -ge 17 ] || fail "java on PATH is version $JAVA_MAJOR; Spark 4.2 needs Java 17 or newer"

HASH=$(sha256sum "$POM" | cut -d' ' -f1)
ROOT="$PWD/target/spark-jars"
OUT="$ROOT/$HASH"
if [ -f "$OUT/.complete" ]; then
  echo "spark-deps: reusing $OUT ($(find "$OUT" -name '*.jar' | wc -l) jars)" >&2
  echo "$OUT"
  exit 0
fi

command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found on PATH: Maven 3.8+ is needed once to resolve the connector jars (apt-get install maven)"

M2="${LAKESHARE_M2_REPO:-$PWD/target/m2}"
mkdir -p "$ROOT" "$M2"
TMP=$(mktemp -d "$ROOT/.partial-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
LOG="$ROOT/$HASH.log"
PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

echo "spark-deps: resolving $POM (sha256 $HASH) with Maven, local repository $M2" >&2
start=$(date +%s)
if ! mvn -B -ntp -U -f "$POM" -Dmaven.repo.local="$M2" \
    "$PLUGIN:copy-dependencies" -DincludeScope=runtime -Dmdep.prependGroupId=true -DoutputDirectory="$TMP/jars" \
    "$PLUGIN:list" -DincludeScope=runtime -DoutputFile="$TMP/dependencies.txt" -Dsort=true \
    >"$LOG" 2>&1; then
  grep -E '^\[ERROR\]' "$LOG" | head -20 >&2 || tail -20 "$LOG" >&2
  fail "Maven could not resolve the Spark connector jars of $POM (full log: $LOG)"
fi

shopt -s nullglob
jars=("$TMP"/jars/*.jar)
[ ${#jars[@]} -gt 0 ] || fail "Maven resolved no jar for $POM (log: $LOG)"
[ -f "$TMP/jars/io.delta.delta-sharing-spark_2.13-4.4.0.jar" ] \
  || fail "io.delta:delta-sharing-spark_2.13:4.4.0 is missing from the resolved jars (log: $LOG)"
for j in "$TMP"/jars/io.delta.delta-sharing-spark_2.13-1.*.jar; do
  fail "the parquet-only connector $(basename "$j") was resolved; it must never share the classpath with 4.4.0"
done

mv "$TMP/jars"/*.jar "$TMP/"
rmdir "$TMP/jars"
chmod 755 "$TMP"
touch "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
echo "spark-deps: $(ls "$OUT"/*.jar | wc -l) jars, $(du -sh "$OUT" | cut -f1), in $(($(date +%s) - start)) s -> $OUT" >&2
echo "$OUT"
