#!/usr/bin/env bash
# Installs s3s-fs (an S3-compatible server that verifies SigV4 like S3, pre-signed URLs and their
# HTTP method included) from crates.io into a cache folder keyed by its version, reusing it when
# present, and prints the binary's path. The S3 conformance tests read through it.
set -euo pipefail
VERSION=0.14.1   # the newest s3s-fs that builds with our Rust 1.95 (0.17 needs 1.96)
CACHE="${LAKESHARE_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lakeshare/tools}/s3s-fs-$VERSION"
BIN="$CACHE/bin/s3s-fs"
if [ ! -x "$BIN" ]; then
  echo "building s3s-fs $VERSION into $CACHE (once; a few minutes)" >&2
  if ! CARGO_TARGET_DIR="$CACHE/target" cargo install s3s-fs --version "$VERSION" \
      --features binary --locked --root "$CACHE" --quiet >&2; then
    echo "cannot install s3s-fs $VERSION from crates.io (needed by the S3 tests)" >&2
    exit 1
  fi
  rm -rf "$CACHE/target"
fi
"$BIN" --version >/dev/null
echo "$BIN"
