# syntax=docker/dockerfile:1.7
#
# hoist's container image. Build with BuildKit (docker buildx build), from the repository root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=1.2.3 --build-arg HOIST_GIT_SHA="$(git rev-parse --short=12 HEAD)" \
#     --build-arg SOURCE_DATE_EPOCH="$(git log -1 --format=%ct)" \
#     --build-arg CREATED="$(date -u -d @"$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" -t hoist .
#
# .github/workflows/release.yml passes these for every v* tag.
#
# Base images are pinned by the digest of their multi-platform index, so a rebuild uses the
# same bits until someone moves the pin (Dependabot's docker updates do; see
# .github/dependabot.yml). To move a pin by hand, read the index digest of the tag and
# replace the one below:
#
#   docker buildx imagetools inspect rust:1-slim-trixie --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian13:latest --format '{{json .Manifest.Digest}}'
#
# Nothing secret is passed to the build: hoist reads its secrets at run time only (env vars
# or files named by the config), never from ARG or ENV.

# ---- build: Rust on Debian 13, the same glibc as the runtime image ----------------------
# rust:1-slim-trixie, Rust 1.97.1 (index digest from docker-library/repo-info).
FROM rust:1-slim-trixie@sha256:2b5ac005280f9747359b11800f895340b707f701b9b789bfcdb55a269fd2feef AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Queries are checked against each store crate's committed .sqlx/ data: no database at build time.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# Dependencies first: the manifests and the lockfile alone decide this layer, so the crate
# downloads are reused until one of them changes. Each workspace member gets an empty
# target for cargo to resolve against (a new crate needs a line here).
COPY Cargo.toml Cargo.lock ./
COPY .cargo/ .cargo/
COPY crates/hoist/Cargo.toml crates/hoist/
COPY crates/hoist-api/Cargo.toml crates/hoist-api/
COPY crates/hoist-domain/Cargo.toml crates/hoist-domain/
COPY crates/hoist-pipeline/Cargo.toml crates/hoist-pipeline/
COPY crates/hoist-registry/Cargo.toml crates/hoist-registry/
COPY crates/hoist-store/Cargo.toml crates/hoist-store/
COPY crates/hoist-store-postgres/Cargo.toml crates/hoist-store-postgres/
COPY tests/Cargo.toml tests/
COPY bench/Cargo.toml bench/
RUN for member in crates/*/ tests/ bench/; do mkdir -p "${member}src" && touch "${member}src/lib.rs"; done \
    && touch crates/hoist/src/main.rs \
    && cargo fetch --locked --target "$(rustc -vV | sed -n 's/^host: //p')"

# Then the source. The target folder is a BuildKit cache mount: compiled dependencies
# survive between builds on the same builder, and never end up in a layer.
COPY . .
# Stamped into the binary by crates/hoist/build.rs (`hoist --version`, /healthz); there is
# no .git in the build context.
ARG HOIST_GIT_SHA
ARG SOURCE_DATE_EPOCH
# The empty stand-ins of the dependency layer are not part of the source: remove them.
RUN --mount=type=cache,target=/src/target,sharing=locked \
    find crates tests bench -path '*/src/lib.rs' -empty -delete \
    && cargo build --locked --offline --release -p hoist --bin hoist \
    && install -D -m 0755 target/release/hoist /out/usr/local/bin/hoist \
    && install -d -m 0750 /out/var/lib/hoist

# ---- runtime ------------------------------------------------------------------------------
# Distroless cc (Debian 13): glibc and libgcc for the Rust binary (SQLite is compiled in),
# CA certificates and tzdata, and nothing else — no shell, no package manager, no curl for
# an attacker to use. trixie-slim would add ~75 MB of tools hoist never runs; the
# HEALTHCHECK is the binary itself (`hoist healthcheck`), so nothing else is needed.
# gcr.io/distroless/cc-debian13:latest (index digest; the same pin is used by many public
# multi-arch builds).
FROM gcr.io/distroless/cc-debian13@sha256:4594d59540d1948417f6ca2829ddd9294493a7c68b7528f4dd459de7f203a750

ARG VERSION=0.0.0-dev
ARG HOIST_GIT_SHA=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG SOURCE=https://github.com/hoist-dev/hoist
LABEL org.opencontainers.image.title="hoist" \
      org.opencontainers.image.description="Publishes container images to OCI registries from GitHub releases and CI builds" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${HOIST_GIT_SHA}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"

# The binary and config belong to root and are read-only to hoist; the data folder is the
# only thing hoist owns. A fresh named volume mounted there takes this ownership.
COPY --from=build /out/usr/local/bin/hoist /usr/local/bin/hoist
COPY --from=build --chown=10001:10001 /out/var/lib/hoist /var/lib/hoist
COPY deploy/hoist.container.toml /etc/hoist/hoist.toml

ENV HOIST_CONFIG=/etc/hoist/hoist.toml \
    HOIST_LOG_FORMAT=json

# Non-root, with no entry in /etc/passwd needed. Runs with a read-only root filesystem:
# only /var/lib/hoist (the volume) and /tmp (a tmpfs) need to be writable.
USER 10001:10001
WORKDIR /var/lib/hoist
VOLUME ["/var/lib/hoist"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/hoist", "healthcheck"]

# SIGTERM drains in-flight requests within server.shutdown_timeout, then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/hoist"]
CMD ["serve"]
