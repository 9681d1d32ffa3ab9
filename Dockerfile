# outagecast in a container: `docker build -t outagecast .` then
#   docker run -p 8080:8080 -p 4573:4573 -v outagecast:/var/lib/outagecast \
#     --env-file outagecast.env outagecast
# The database (SQLite) lives in the volume; set OUTAGECAST_DATABASE_URL=postgres://... for
# several nodes. FastAGI accepts loopback peers only unless OUTAGECAST_AGI_ALLOW names the
# PBX's network (e.g. 10.0.0.0/8).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p outagecast --bin outagecast \
 && ./target/release/outagecast man > /src/outagecast.1

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/outagecast --create-home --shell /usr/sbin/nologin outagecast
COPY --from=build /src/target/release/outagecast /usr/local/bin/outagecast
COPY --from=build /src/outagecast.1 /usr/local/share/man/man1/outagecast.1
COPY LICENSE THIRD-PARTY-NOTICES.md /usr/share/doc/outagecast/
USER outagecast
WORKDIR /var/lib/outagecast
ENV OUTAGECAST_DATABASE_URL=/var/lib/outagecast/outagecast.db \
    OUTAGECAST_LISTEN=0.0.0.0:8080 \
    OUTAGECAST_AGI_LISTEN=0.0.0.0:4573 \
    NO_COLOR=1
EXPOSE 8080 4573
VOLUME ["/var/lib/outagecast"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/outagecast"]
CMD ["serve"]
