#!/usr/bin/env bash
# Generate the Spark-written Delta tables and Spark's own reads of them (the oracle) for
# conformance-tests/test_spark_written_tables.py, and print their folder (the only stdout line;
# messages go to stderr):
#
#   LAKESHARE_SPARK_TABLES=$(./scripts/spark-tables.sh)
#
# The folder is ${LAKESHARE_SPARK_TABLES_CACHE:-~/.cache/lakeshare/spark-tables}/<key>, where <key>
# is the sha256 of the generator (conformance-tests/gen_spark_tables.py), its requirements
# (conformance-tests/spark-tables-requirements.txt) and its pom (conformance-tests/spark-tables-pom.xml).
# A folder with a `.complete` marker is reused as it is: Java, Maven, pip and Spark run only when
# one of the three files changes (or the cache is gone). A generation is written to a temporary
# folder and renamed into place after its marker, so an interrupted run never leaves a half cache.
#
# When it has to generate, it needs (and fails loudly, never skips, without):
#   * Java 17+ and Maven 3.8+ (CI installs openjdk-17-jdk-headless and maven with apt when missing);
#   * a virtual environment with pyspark 4.2.0 + delta-spark 4.4.0: target/spark-venv (override
#     LAKESHARE_SPARK_VENV), rebuilt when the requirements change;
#   * the delta-spark jars: `mvn dependency:copy-dependencies` on the pom, local repository
#     target/m2 (override LAKESHARE_M2_REPO), jars cached in target/spark-tables-jars/<sha256 of pom>.
#     (Maven, not spark.jars.packages/Ivy: the pom excludes everything pyspark already ships.)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "spark-tables: $*" >&2
  exit 1
}

GEN=conformance-tests/gen_spark_tables.py
REQ=conformance-tests/spark-tables-requirements.txt
POM=conformance-tests/spark-tables-pom.xml
for f in "$GEN" "$REQ" "$POM"; do [ -f "$f" ] || fail "missing $f"; done

# The cache key: sha256 of the `sha256sum` lines of the three files (test_spark_written_tables.py
# recomputes it the same way to detect a stale folder).
KEY=$(sha256sum "$GEN" "$REQ" "$POM" | sha256sum | cut -d' ' -f1)
CACHE="${LAKESHARE_SPARK_TABLES_CACHE:-$HOME/.cache/lakeshare/spark-tables}"
OUT="$CACHE/$KEY"
if [ -f "$OUT/.complete" ]; then
  echo "spark-tables: reusing $OUT ($(du -sh "$OUT" | cut -f1))" >&2
  echo "$OUT"
  exit 0
fi
echo "spark-tables: no complete folder for key $KEY: generating (Java, Maven, pip, one SparkSession)" >&2
start=$(date +%s)

# ---- Java 17+ and Maven
command -v java >/dev/null 2>&1 \
  || fail "java not found on PATH: generating the Spark tables needs a JDK 17+ (apt-get install openjdk-17-jdk-headless)"
JAVA_MAJOR=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -1)
case "$JAVA_MAJOR" in
  ''|1.*) fail "java on PATH reports specification version '${JAVA_MAJOR:-unknown}'; Spark 4.2 needs Java 17 or newer" ;;
esac
[ "$JAVA_MAJOR" -ge 17 ] || fail "java on PATH is version $JAVA_MAJOR; Spark 4.2 needs Java 17 or newer"
command -v mvn >/dev/null 2>&1 \
  || fail "mvn not found on PATH: Maven 3.8+ resolves the delta-spark jars (apt-get install maven)"

mkdir -p target "$CACHE"

# ---- the generator's own virtual environment
VENV="${LAKESHARE_SPARK_VENV:-$PWD/target/spark-venv}"
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "spark-tables: creating $VENV from $REQ" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" \
    || fail "pip could not install $REQ into $VENV (see the pip messages above)"
  echo "$WANT" > "$STAMP"
fi
"$VENV/bin/python" -c 'import pyspark, delta' 2>/dev/null || fail "$VENV cannot import pyspark and delta"

# ---- the delta-spark jars (Maven)
PHASH=$(sha256sum "$POM" | cut -d' ' -f1)
JARS="$PWD/target/spark-tables-jars/$PHASH"
if [ ! -f "$JARS/.complete" ]; then
  M2="${LAKESHARE_M2_REPO:-$PWD/target/m2}"
  mkdir -p "$M2" target/spark-tables-jars
  LOG="$PWD/target/spark-tables-jars/$PHASH.maven.log"
  rm -rf "$JARS"
  echo "spark-tables: resolving $POM with Maven (local repository $M2)" >&2
  if ! mvn -B -ntp -f "$POM" -Dmaven.repo.local="$M2" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -Dmdep.prependGroupId=true -DoutputDirectory="$JARS" >"$LOG" 2>&1; then
    grep -E '^\[ERROR\]' "$LOG" | head -20 >&2 || tail -20 "$LOG" >&2
    fail "Maven could not resolve the delta-spark jars of $POM (full log: $LOG)"
  fi
  [ -f "$JARS/io.delta.delta-spark_2.13-4.4.0.jar" ] \
    || fail "io.delta:delta-spark_2.13:4.4.0 is missing from the resolved jars in $JARS (log: $LOG)"
  touch "$JARS/.complete"
fi

# ---- generate into a temporary folder, then rename it into place
TMP=$(mktemp -d "$CACHE/.partial-XXXXXX")
trap 'rm -rf "$TMP"' EXIT
GLOG="$CACHE/$KEY.log"
echo "spark-tables: running $GEN (log: $GLOG)" >&2
if ! "$VENV/bin/python" "$GEN" "$TMP" "$JARS" >"$GLOG" 2>&1; then
  grep -v -E '^\s+at |^\s*$' "$GLOG" | tail -40 >&2
  fail "$GEN failed (full log: $GLOG)"
fi
grep '^gen_spark_tables:' "$GLOG" >&2 || true
[ -f "$TMP/manifest.json" ] || fail "$GEN wrote no manifest.json (log: $GLOG)"
echo "$KEY" > "$TMP/.key"
touch "$TMP/.complete"
chmod 755 "$TMP"
rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT
echo "spark-tables: generated $OUT ($(du -sh "$OUT" | cut -f1), $(find "$OUT" -type f | wc -l) files) in $(($(date +%s) - start)) s" >&2
echo "$OUT"
