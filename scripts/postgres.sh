#!/usr/bin/env bash
# Starts a private PostgreSQL cluster on 127.0.0.1 for the tests (installing the Debian package
# when it is missing and we are root), prints `export LAKESHARE_TEST_PG_URL=...` and
# `export LAKESHARE_TEST_PG_DIR=...`; `scripts/postgres.sh stop DIR` stops it.
set -euo pipefail

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ "${1:-}" = stop ]; then
  dir=$2; bin=$(pg_bin)
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null
  else "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; fi
  rm -rf "$dir"
  exit 0
fi

BIN=$(pg_bin)
if [ -z "$BIN" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing PostgreSQL (Debian package)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BIN=$(pg_bin)
  fi
  [ -n "$BIN" ] || { echo "PostgreSQL server binaries are required: apt-get install postgresql" >&2; exit 1; }
fi
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DIR=$(mktemp -d)
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$DIR"
run "$BIN/initdb" -D "$DIR/data" -A trust -U postgres >/dev/null
if ! run "$BIN/pg_ctl" -D "$DIR/data" -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" -l "$DIR/log" -w start >/dev/null; then
  echo "PostgreSQL did not start; its log ($DIR/log):" >&2
  cat "$DIR/log" >&2 || true
  exit 1
fi
echo "export LAKESHARE_TEST_PG_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
echo "export LAKESHARE_TEST_PG_DIR=$DIR"
