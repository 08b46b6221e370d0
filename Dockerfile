# syntax=docker/dockerfile:1
#
# nsguard container image: a static Go binary on distroless/static (CA
# certificates, tzdata and /etc/passwd with the nonroot user, nothing else:
# no shell, no package manager).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#                --build-arg COMMIT=$(git rev-parse --short HEAD) -t nsguard .
#   docker run --read-only --tmpfs /tmp -v nsguard-data:/var/lib/nsguard \
#              -v $PWD/nsguard.yaml:/etc/nsguard/nsguard.yaml:ro -p 9153:9153 nsguard
#
# The config must set `listen: 0.0.0.0:9153` for -p to reach /metrics (the
# default 127.0.0.1 is the container's own loopback). deploy/dockerfile_test.go
# checks this file's properties and runs its `go build` line for real.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, in their own layer: a source change does not re-download them.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=none
# Static (no libc: modernc.org/sqlite is pure Go), reproducible paths,
# stripped, version and commit stamped for `nsguard version` and
# nsguard_build_info.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /out/nsguard ./cmd/nsguard
# The store's directory, owned by the runtime user, so an anonymous or named
# volume mounted there starts writable (Docker copies the ownership).
RUN mkdir -p /out/var/lib/nsguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nsguard /nsguard
COPY --from=build --chown=65532:65532 /out/var/lib/nsguard /var/lib/nsguard
# distroless's "nonroot" user, by number: the kubelet can only enforce
# runAsNonRoot against a numeric USER.
USER 65532:65532
VOLUME /var/lib/nsguard
# /metrics, /healthz, /readyz
EXPOSE 9153
ENTRYPOINT ["/nsguard"]
CMD ["daemon", "--config", "/etc/nsguard/nsguard.yaml"]
