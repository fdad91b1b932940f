# syntax=docker/dockerfile:1
# caddy-groupid sidecar image: Caddy built from xcaddy.json (Caddy version and
# plugins pinned there), run as a non-root user on a distroless base.
#
#   docker build -t caddy-groupid .
#   docker buildx build --platform linux/amd64,linux/arm64 -t caddy-groupid .
#
# Mounted at run time (see the Docker section of README.md):
#   /etc/caddy/Caddyfile                      the config (Caddyfile.example is the default)
#   /run/secrets/groupid/{password,client_secret}
#   /etc/groupid/ca.pem                       CA that signed GroupID's certificate
# and GROUPID_ORIGIN, GROUPID_USERNAME, GROUPID_CLIENT_ID in the environment.

ARG GO_VERSION=1.26

# The build stage runs on the builder's own platform and cross-compiles.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src

# Module downloads get their own layers so that a source change reuses them.
COPY tools/xcaddy-build/go.mod tools/xcaddy-build/go.sum tools/xcaddy-build/
RUN go -C tools/xcaddy-build mod download
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# The builder tool runs natively; xcaddy then compiles Caddy for the target
# (CGO_ENABLED=0: xcaddy.json does not enable cgo, so the binary is static).
RUN --mount=type=cache,target=/root/.cache/go-build \
	go -C tools/xcaddy-build build -o /usr/local/bin/xcaddy-build . \
	&& GOOS="${TARGETOS:-$(go env GOHOSTOS)}" GOARCH="${TARGETARCH:-$(go env GOHOSTARCH)}" \
		xcaddy-build -config /src/xcaddy.json -o /out/usr/bin/caddy \
	&& if [ "${TARGETOS:-$(go env GOHOSTOS)}/${TARGETARCH:-$(go env GOHOSTARCH)}" = "$(go env GOHOSTOS)/$(go env GOHOSTARCH)" ]; then \
		/out/usr/bin/caddy list-modules | grep -qx http.handlers.groupid_auth; \
	fi
# Caddy's data and config directories, owned by the runtime user (distroless
# has no shell to create them); a read-only root filesystem mounts a volume here.
RUN mkdir -p /out/var/lib/caddy/data /out/var/lib/caddy/config /out/etc/caddy \
	&& cp Caddyfile.example /out/etc/caddy/Caddyfile

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/usr/bin/caddy /usr/bin/caddy
COPY --from=build /out/etc/caddy/Caddyfile /etc/caddy/Caddyfile
# Copying the parent makes /var/lib/caddy itself an entry of the copy, so it
# is chowned too (the admin socket is created in it).
COPY --from=build --chown=65532:65532 /out/var/lib/ /var/lib/

# Settings read by Caddyfile.example. The admin API is a Unix socket so that
# other containers sharing the network namespace (the legacy app in a pod)
# cannot reconfigure Caddy; the health listener serves only /ready, /live and
# /metrics, so it may listen on all interfaces. The sidecar listener itself
# stays on 127.0.0.1 (SIDECAR_BIND).
ENV XDG_DATA_HOME=/var/lib/caddy/data \
	XDG_CONFIG_HOME=/var/lib/caddy/config \
	CADDY_ADMIN=unix//var/lib/caddy/admin.sock \
	HEALTH_BIND=0.0.0.0 \
	GROUPID_SECRETS_DIR=/run/secrets/groupid \
	GROUPID_CA_FILE=/etc/groupid/ca.pem

# 8080: the sidecar (loopback only, for containers sharing the network
# namespace); 8081: /ready, /live, /metrics.
EXPOSE 8080 8081
USER 65532:65532
ENTRYPOINT ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
