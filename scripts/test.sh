#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests (Rust), then the
# conformance suite that drives the stock delta-sharing Python connector against the binary.
# Builds once (debug) and runs every suite on that build.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo build"
cargo build --locked
echo "== cargo test"
cargo test --locked

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

echo "== conformance tests (stock Python connector + raw HTTP)"
LAKESHARE_BIN="$PWD/target/debug/lakeshare" "$VENV/bin/python" -m pytest conformance-tests -q -p no:cacheprovider
