#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (Rust, with the catalog
# suite on SQLite and on a private PostgreSQL cluster), then the conformance suite that drives
# the stock delta-sharing Python connector against the binary.
# Builds once (debug) and runs every suite on that build.
set -euo pipefail
cd "$(dirname "$0")/.."

for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    echo "the Rust component '$component' is missing: rustup component add $component" >&2
    exit 1
  fi
done

echo "== cargo fmt --check"
cargo fmt --check

echo "== PostgreSQL for the catalog suite"
# A failure to start PostgreSQL stops the run here, with its cause (not six minutes later).
if ! PG_ENV=$(./scripts/postgres.sh); then
  echo "PostgreSQL could not be started (see the messages above); the catalog suite needs it" >&2
  exit 1
fi
eval "$PG_ENV"
: "${LAKESHARE_TEST_PG_URL:?scripts/postgres.sh printed no LAKESHARE_TEST_PG_URL}"
trap './scripts/postgres.sh stop "$LAKESHARE_TEST_PG_DIR"' EXIT

echo "== cargo clippy"
cargo clippy --locked --all-targets --features pg-tests -- -D warnings
echo "== cargo build"
cargo build --locked --features pg-tests
echo "== cargo test (unit, in-process HTTP, catalog suite on SQLite and PostgreSQL)"
cargo test --locked --no-fail-fast --features pg-tests

echo "== python venv for the conformance suite"
VENV="${LAKESHARE_VENV:-.venv}"
REQ=conformance-tests/requirements.txt
STAMP="$VENV/.requirements.sha256"
WANT=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ"
  echo "$WANT" > "$STAMP"
fi

echo "== system packages: Node.js/npm (Azurite, playwright-core), nginx (TLS proxy), chromium"
missing=()
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Java 17 and Maven generate the Spark-written tables (scripts/spark-tables.sh) when their cache is cold
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing packages for the conformance suite: ${missing[*]} (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
export PATH="$PATH:/usr/sbin"
LOCK=conformance-tests/package-lock.json
NSTAMP=conformance-tests/node_modules/.lock.sha256
NWANT=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [ ! -x conformance-tests/node_modules/.bin/azurite-blob ] || [ "$(cat "$NSTAMP" 2>/dev/null)" != "$NWANT" ]; then
  npm ci --prefix conformance-tests --no-audit --no-fund --loglevel=error
  echo "$NWANT" > "$NSTAMP"
fi

echo "== s3s-fs (an S3 server that verifies signatures) for the S3 tests"
LAKESHARE_S3S_FS=$(./scripts/s3s-fs.sh)
export LAKESHARE_S3S_FS

echo "== Spark-written Delta tables and Spark's reads of them (cached by the generator's sha256)"
# Runs Maven, pip and one SparkSession only when conformance-tests/gen_spark_tables.py, its
# requirements or its pom changed; a failure stops the run here (test_spark_written_tables.py
# would fail without the folder anyway).
if ! LAKESHARE_SPARK_TABLES=$(./scripts/spark-tables.sh); then
  echo "scripts/spark-tables.sh failed (see its messages above): the Spark-written tables could not be generated" >&2
  exit 1
fi
export LAKESHARE_SPARK_TABLES

echo "== NOT RUN: the Spark connector suite (conformance-tests/spark/): its jar"
echo "   io.delta:delta-sharing-spark_2.13:4.4.0 is not available from the registries reachable here"
echo "== conformance tests (stock Python connector, raw HTTP, a real browser, a TLS proxy)"
export LAKESHARE_ARTIFACTS="$PWD/target/conformance-artifacts"
LAKESHARE_BIN="$PWD/target/debug/lakeshare" "$VENV/bin/python" -m pytest conformance-tests -q -p no:cacheprovider
echo "screenshots: $LAKESHARE_ARTIFACTS"
