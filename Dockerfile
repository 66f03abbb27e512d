# Lakeshare container image.
#
# NOTE: this Dockerfile is NOT built in CI — there is no Docker engine on our build machines;
# CI reproduces its layout without one (read-only config folder, non-root user, state in
# /var/lib/lakeshare: conformance-tests/test_deploy_layout.py). Build it locally with
# `docker build -t lakeshare .`. The config is mounted read-only at /etc/lakeshare; the state
# store lives in the volume at /var/lib/lakeshare (LAKESHARE_STATE), so every command below
# finds it without --state:
#   docker volume create lakeshare-state
#   docker run --rm -v $PWD/config.yaml:/etc/lakeshare/config.yaml:ro \
#              -v lakeshare-state:/var/lib/lakeshare lakeshare \
#              recipient create acme --share sales --config /etc/lakeshare/config.yaml \
#              --activation --endpoint https://sharing.example.com/delta-sharing
#   docker run -d --name lakeshare -p 8080:8080 \
#              -v $PWD/config.yaml:/etc/lakeshare/config.yaml:ro \
#              -v lakeshare-state:/var/lib/lakeshare lakeshare
#   docker exec lakeshare lakeshare recipient list --config /etc/lakeshare/config.yaml
# (set `host: 0.0.0.0` and `port: 8080` in that config so the server is reachable).

# ---- build stage -------------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src
# sqlx compile-time checks (if any) must use the committed offline data, not a live database.
ENV SQLX_OFFLINE=true
COPY . .
RUN cargo build --release --locked \
 && cp target/release/lakeshare /usr/local/bin/lakeshare

# ---- runtime stage -----------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 lakeshare \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/lakeshare --shell /usr/sbin/nologin lakeshare \
 && mkdir -p /var/lib/lakeshare /etc/lakeshare \
 && chown lakeshare:lakeshare /var/lib/lakeshare
COPY --from=builder /usr/local/bin/lakeshare /usr/local/bin/lakeshare
# Sample tables and config for `lakeshare demo` (read-only reference copy).
COPY --from=builder /src/examples /usr/share/lakeshare/examples
USER 10001:10001
WORKDIR /var/lib/lakeshare
ENV LAKESHARE_STATE=/var/lib/lakeshare/lakeshare.db
EXPOSE 8080
ENTRYPOINT ["lakeshare"]
CMD ["serve", "--config", "/etc/lakeshare/config.yaml"]
