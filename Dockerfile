# Multi-stage build: compile in the Rust image, run in a small Debian image as a non-root user
# with only CAP_NET_RAW (for ICMP).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/thongsuot

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/thongsuot thongsuot \
 && install -d -o thongsuot -g thongsuot -m 0700 /var/lib/thongsuot
COPY --from=build /src/target/release/thongsuot /usr/local/bin/thongsuot
# File capability: ICMP raw sockets without root. Docker's default capability set includes
# NET_RAW; with --cap-drop ALL, add it back with --cap-add NET_RAW.
RUN setcap cap_net_raw+ep /usr/local/bin/thongsuot && apt-get purge -y libcap2-bin
COPY config/docker.toml /etc/thongsuot/thongsuot.toml
USER thongsuot
VOLUME /var/lib/thongsuot
EXPOSE 9798
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD curl -fsS http://127.0.0.1:9798/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/thongsuot"]
CMD ["run", "--config", "/etc/thongsuot/thongsuot.toml"]
