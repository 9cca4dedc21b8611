# Builds rosos's binaries the same way `make build` does, for users with
# Docker. It reads the same go.mod pins; the service images' package lists
# stay in images/*/packages for both paths.
#   docker build -t rosos-build . && docker run --rm rosos-build ls /out
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libseccomp-dev pkg-config && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN make build VERSION=docker && cp -r out/bin /out

FROM debian:bookworm-slim
COPY --from=build /out /out
