# syntax=docker/dockerfile:1.4
# The OS image (the same tree `make os-image` packs), for users who have
# Docker with BuildKit. It reads the same package lists (images/*/packages)
# and pins (go.mod, build/debian.env, images/kernel/version) as the
# Docker-free path, because it runs that path: mmdebstrap needs mounts (and
# GRUB's tools run in a chroot), hence the insecure entitlement.
#   docker buildx build --allow security.insecure --build-arg VERSION=v1.2.3 \
#     --provenance=false -o type=oci,dest=rosos-os-v1.2.3.oci.tar .
# Customise the OS with a Dockerfile FROM this image; see docs/upgrade.md.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
ARG VERSION=dev
RUN --security=insecure make deps image VERSION=$VERSION

FROM scratch
ARG VERSION=dev
COPY --from=build /src/out/rootfs/ /
LABEL io.rosos.os="true" org.opencontainers.image.version="$VERSION" org.opencontainers.image.title="rosos"
