# rosos: a container OS whose PID 1 is Go. `make run` builds and boots it,
# `make test` runs every test. See README.md.
SHELL := /bin/bash
# Evaluated once: every step of one make run stamps the same version.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
GO ?= go
# System service images (images/NAME), in the OS image and preloaded.
SERVICE_IMAGES := udev syslog network ntp acpid console docker kubernetes
# Tests that boot the image in QEMU get this long in all.
E2E_TIMEOUT ?= 80m

# The Debian release the OS is built from, and its pins (one place).
include build/debian.env

# The build machine's own packages. GRUB's EFI image is made by the suite's
# GRUB (build/grub.sh); the host's grub-common is for grub-editenv in tests.
DEPS := qemu-system-x86 qemu-utils ovmf mmdebstrap squashfs-tools grub-common \
        dosfstools mtools e2fsprogs gdisk libseccomp-dev pkg-config cpio xz-utils kmod \
        xorriso openssh-client debian-archive-keyring curl libcap-dev gperf python3
LDFLAGS := -s -w -X main.Version=$(VERSION)
GOSRC := $(shell find cmd init internal client system services config -path cmd/kube -prune -o -name '*.go' -not -name '*_test.go' -print) $(wildcard services/catalog/*.yml) go.mod go.sum
# The linter make lint runs (make test-unit), built from the Go module proxy.
GOLANGCI_VERSION := v2.15.0
GOLANGCI := out/tools/golangci-lint-$(GOLANGCI_VERSION)

.PHONY: all deps build image os-image iso run test test-unit test-e2e test-cluster test-release lint docs bench clean FORCE
all: image

deps:
	@missing=""; for p in $(DEPS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

build: out/bin/ros out/bin/ros-init out/bin/containerd out/bin/containerd-shim-runc-v2 out/bin/runc out/bin/crun out/ros-build

out/bin/ros: $(GOSRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/ros
out/bin/ros-init: $(GOSRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $@ ./cmd/ros-init
out/ros-build: $(GOSRC)
	CGO_ENABLED=0 $(GO) build -trimpath -o $@ ./cmd/ros-build
# containerd and runc: the versions pinned in go.mod (tool directives); the
# shim is containerd's runc v2 shim of that version, joining its group's
# shim patiently (cmd/containerd-shim-runc-v2).
# Without the OTLP tracing plugin (no_tracing), which every containerd the
# OS starts (system, Docker's, Kubernetes') had disabled or unconfigured.
out/bin/containerd: go.mod go.sum Makefile
	CGO_ENABLED=0 $(GO) build -trimpath -tags "no_btrfs no_devmapper no_zfs no_tracing" -ldflags "-s -w" -o $@ github.com/containerd/containerd/v2/cmd/containerd
out/bin/containerd-shim-runc-v2: $(GOSRC)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $@ ./cmd/containerd-shim-runc-v2
# Its "commit:" line is the release's tag: Docker's info reads the runc
# version only from output that has one (the user's engine runs this runc).
RUNC_VERSION := $(shell sed -n 's|^\s*github.com/opencontainers/runc \(v[0-9.]*\).*|\1|p' go.mod)
out/bin/runc: go.mod go.sum
	CGO_ENABLED=1 $(GO) build -trimpath -tags "seccomp netgo osusergo static_build" -ldflags "-s -w -extldflags -static -X main.gitCommit=$(RUNC_VERSION)" -o $@ github.com/opencontainers/runc

# crun: the system services' OCI runtime (paths.Runtime), static, from the
# source of the suite's crun (build/crun.sh); runc stays for what asks for
# it by name.
out/bin/crun: build/crun.sh build/fetch.sh build/debian.env
	build/crun.sh $@

out/bin/ctr: go.mod go.sum
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $@ github.com/containerd/containerd/v2/cmd/ctr

# The user's Docker: dockerd and the docker client built from upstream's
# source (cmd/docker, a module each) at the version of Debian's docker.io and
# docker-cli, static and not position-independent, over Debian's binaries in
# the docker and console images. Debian's are PIEs: the dynamic loader
# relocates dockerd's 342,000 pointers and the client's 120,000 at every
# start, and keeps the pages it wrote private (docs/performance.md). Without cgo: no btrfs graph driver, no reading of
# journald logs, no overlay2 project quotas (xfs only); none applies here.
DOCKER_VERSION := $(shell sed -n 's|^require github.com/docker/docker v\([0-9.]*\)+incompatible$$|\1|p' cmd/docker/dockerd/go.mod)
DOCKER_CLI_VERSION := $(shell sed -n 's|^require github.com/docker/cli v\([0-9.]*\)+incompatible$$|\1|p' cmd/docker/cli/go.mod)
# Upstream's commits of those tags (docker version prints them).
DOCKER_COMMIT := 411e817
DOCKER_CLI_COMMIT := a72d7cd
DOCKER_TAGS := netgo osusergo static_build exclude_graphdriver_btrfs
DOCKER_SAME_VERSION := [ "$(DOCKER_VERSION)" = "$(firstword $(subst +, ,$(DOCKER_DEB_VERSION)))" ] && [ "$(DOCKER_CLI_VERSION)" = "$(DOCKER_VERSION)" ] || \
  { echo "cmd/docker: dockerd $(DOCKER_VERSION) and the client $(DOCKER_CLI_VERSION) must be Debian's $(DOCKER_DEB_VERSION) (build/debian.env)" >&2; exit 1; }
out/docker/dockerd: cmd/docker/dockerd/go.mod cmd/docker/dockerd/go.sum build/debian.env
	@$(DOCKER_SAME_VERSION)
	cd cmd/docker/dockerd && CGO_ENABLED=0 $(GO) build -trimpath -tags "$(DOCKER_TAGS)" -ldflags "-s -w \
	  -X github.com/docker/docker/dockerversion.Version=$(DOCKER_VERSION) -X github.com/docker/docker/dockerversion.GitCommit=$(DOCKER_COMMIT)" \
	  -o $(CURDIR)/$@ github.com/docker/docker/cmd/dockerd
out/docker/docker: cmd/docker/cli/go.mod cmd/docker/cli/go.sum build/debian.env
	@$(DOCKER_SAME_VERSION)
	cd cmd/docker/cli && CGO_ENABLED=0 $(GO) build -trimpath -tags "netgo osusergo static_build" -ldflags "-s -w \
	  -X github.com/docker/cli/cli/version.Version=$(DOCKER_CLI_VERSION) -X github.com/docker/cli/cli/version.GitCommit=$(DOCKER_CLI_COMMIT)" \
	  -o $(CURDIR)/$@ github.com/docker/cli/cmd/docker
out/images/docker.rootfs.tar: out/docker/dockerd out/iptables/xtables-nft-multi
# The docker image's iptables (the nft and the legacy backend): the suite's
# release, static, with its extensions built in (build/iptables.sh).
out/iptables/xtables-nft-multi: build/iptables.sh build/fetch.sh build/debian.env
	build/iptables.sh $(@D)
out/images/console.rootfs.tar: out/docker/docker

# Kubernetes (cmd/kube, modules of their own so that Kubernetes' versions
# never move the OS's): kube (k3s-shaped, all components in one binary),
# pause, CoreDNS, and the CNI plugins, from the Go module proxy. The Go
# build cache keeps what they compile, by version: the first build takes
# about 10 minutes on 2 cores, a change to cmd/kube seconds.
K8S_VERSION := $(shell sed -n 's|^\s*k8s.io/kubernetes \(v[0-9.]*\).*|\1|p' cmd/kube/go.mod)
CNI_PLUGINS_VERSION := v1.9.0
# kine: the SQLite datastore (datastore: sqlite), pure Go without cgo,
# with its SQLite driver only (cmd/kube/kine); the version is its go.mod's.
KINE_VERSION := $(shell sed -n 's|^\s*github.com/k3s-io/kine \(v[0-9.]*\).*|\1|p' cmd/kube/kine/go.mod)
CNI_PLUGINS := main/bridge main/loopback ipam/host-local meta/portmap
KUBE_SRC := $(shell find cmd/kube -name '*.go' -not -name '*_test.go') cmd/kube/go.mod cmd/kube/go.sum
KUBE_LDFLAGS := -s -w $(foreach p,k8s.io/component-base/version k8s.io/client-go/pkg/version,\
  -X $(p).gitVersion=$(K8S_VERSION) -X $(p).gitMajor=$(word 1,$(subst ., ,$(K8S_VERSION:v%=%))) \
  -X $(p).gitMinor=$(word 2,$(subst ., ,$(K8S_VERSION:v%=%))) -X $(p).gitTreeState=clean)
# cmd/kube's own packages (not main, which links all of Kubernetes), tested
# with the flags of the build so that they share its compiled packages.
KUBE_UNIT := ./node/ ./pki/ ./pause/
KUBE_GO_TEST := CGO_ENABLED=0 GOFLAGS=-trimpath $(GO)
out/kube/kube: $(KUBE_SRC)
	cd cmd/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o $(CURDIR)/$@ .
out/kube/pause: cmd/kube/pause/main.go
	cd cmd/kube && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(CURDIR)/$@ ./pause
out/kube/coredns: cmd/kube/coredns/main.go cmd/kube/coredns/go.mod cmd/kube/coredns/go.sum
	cd cmd/kube/coredns && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(CURDIR)/$@ .
out/kube/cni/.done: Makefile
	rm -rf out/kube/cni && mkdir -p out/kube/cni
	cd out/kube/cni && GOBIN=$(CURDIR)/out/kube/cni GOFLAGS= CGO_ENABLED=0 $(GO) install -trimpath -ldflags "-s -w" \
	  $(CNI_PLUGINS:%=github.com/containernetworking/plugins/plugins/%@$(CNI_PLUGINS_VERSION))
	touch $@
out/kube/kine: cmd/kube/kine/main.go cmd/kube/kine/go.mod cmd/kube/kine/go.sum
	cd cmd/kube/kine && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$(KINE_VERSION)" -o $(CURDIR)/$@ .
out/kube/images/.done: out/kube/pause out/kube/coredns out/ros-build build/kube-images.sh cmd/kube/node/agent.go
	build/kube-images.sh out/kube/images && touch $@
# The e2e tests' workload image (busybox httpd).
out/kube/test-images/httpd.tar: build/kube-images.sh out/ros-build build/debian.env
	build/kube-images.sh --test out/kube/test-images
out/images/kubernetes.rootfs.tar: out/kube/kube out/kube/kine out/bin/ctr out/kube/cni/.done out/kube/images/.done

out/kernel/.done: images/kernel/version build/kernel.sh build/debian.env build/debian.sh
	build/kernel.sh out/kernel && touch $@

# A stamp that changes when VERSION does, so that images carry the right one.
# out/go.mod makes out/ a module of its own, so that ./... in this one
# never walks build outputs (root file systems, chroots).
out/version: FORCE
	@mkdir -p out; [ -f out/go.mod ] || echo "module rosos.invalid/out // build outputs" > out/go.mod
	@[ "$$(cat $@ 2>/dev/null)" = "$(VERSION)" ] || echo "$(VERSION)" > $@
FORCE:

# Service images: the root file system (mmdebstrap, slow) and its packing
# into an OCI layout (quick) are separate steps, so a new VERSION or
# ros-build repacks without rebuilding the roots.
.PRECIOUS: out/images/%.rootfs.tar
.SECONDEXPANSION:
out/images/%.rootfs.tar: $$(shell find images/$$* -type f) build/service-image.sh build/debian.env build/debian.sh
	build/service-image.sh rootfs $* $(VERSION) $@
# The network image holds the ros binary itself.
out/images/network.rootfs.tar: out/bin/ros
out/images/%/index.json: out/images/%.rootfs.tar out/images/base.rootfs.tar out/ros-build out/version
	build/service-image.sh pack $* $(VERSION) out/images/$*

image: out/ros.img
out/ros.img: build out/version out/kernel/.done $(SERVICE_IMAGES:%=out/images/%/index.json) os-config.tpl.yml docs/config.schema.json build/mkimage.sh build/squashfs.sh build/grub.sh build/grub.cfg build/grub-embed.cfg images/kernel/*
	SERVICE_IMAGES="$(SERVICE_IMAGES)" build/mkimage.sh $(VERSION)

# The OS as an OCI image archive (for ros os upgrade --file); VERSION=... to
# name another version, ROS_SIGNING_KEY=FILE to sign it (out/ros-build
# keygen makes a key pair; docs/upgrade.md).
os-image: out/rosos-os-$(VERSION).oci.tar
out/rosos-os-$(VERSION).oci.tar: out/ros.img build/os-image.sh $(if $(ROS_SIGNING_KEY),FORCE)
	ROS_SIGNING_KEY="$(ROS_SIGNING_KEY)" build/os-image.sh $(VERSION)

# A live ISO (UEFI) that boots the OS and installs it with ros install.
iso: out/rosos.iso
out/rosos.iso: out/ros.img build/mkiso.sh build/grub.sh build/grub-live.cfg
	build/mkiso.sh

run: deps image
	build/run.sh out/ros.img

test: deps image os-image iso out/kube/test-images/httpd.tar test-unit test-e2e

test-unit: out/version lint
	$(GO) vet ./...
	$(GO) vet -tags e2e ./tests/e2e/
	$(GO) vet -tags e2e,cluster ./tests/e2e/
	$(GO) test ./...
	cd cmd/kube && $(KUBE_GO_TEST) vet $(KUBE_UNIT) && $(KUBE_GO_TEST) test $(KUBE_UNIT)
	cd cmd/kube/kine && $(KUBE_GO_TEST) vet ./... && $(KUBE_GO_TEST) test ./...

# golangci-lint (.golangci.yml): errcheck, errorlint, staticcheck, unused,
# a complexity limit, gofmt; in cmd/kube, on its own packages.
lint: $(GOLANGCI)
	$(GOLANGCI) run ./...
	cd cmd/kube && CGO_ENABLED=0 GOFLAGS=-trimpath $(CURDIR)/$(GOLANGCI) run $(KUBE_UNIT)
	cd cmd/kube/kine && CGO_ENABLED=0 GOFLAGS=-trimpath $(CURDIR)/$(GOLANGCI) run ./...
$(GOLANGCI):
	mkdir -p out/tools
	GOBIN=$(CURDIR)/out/tools GOFLAGS= $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VERSION)
	mv out/tools/golangci-lint $@

# docs/ros.md is generated from the ros commands; a unit test keeps it so.
docs:
	ROS_UPDATE_DOCS=1 $(GO) test -run TestCommandReference ./cmd/ros/

test-e2e:
	ROS_KUBE_TEST_IMAGE=$(CURDIR)/out/kube/test-images/httpd.tar ROS_IMAGE=$(CURDIR)/out/ros.img ROS_OS_IMAGE=$(CURDIR)/out/rosos-os-$(VERSION).oci.tar ROS_ISO=$(CURDIR)/out/rosos.iso ROS_VERSION=$(VERSION) $(GO) test -v -count=1 -timeout $(E2E_TIMEOUT) -tags e2e ./tests/e2e/

# A Kubernetes cluster of two nodes (server and agent on one link) in QEMU:
# spread workload, reboot and upgrade of the agent (docs/kubernetes.md).
# Not in make test, for time: about 25 minutes without KVM.
test-cluster: deps image os-image out/kube/test-images/httpd.tar
	ROS_KUBE_TEST_IMAGE=$(CURDIR)/out/kube/test-images/httpd.tar ROS_IMAGE=$(CURDIR)/out/ros.img ROS_OS_IMAGE=$(CURDIR)/out/rosos-os-$(VERSION).oci.tar ROS_VERSION=$(VERSION) \
	  $(GO) test -v -count=1 -timeout 90m -tags e2e,cluster -run TestKubernetesCluster ./tests/e2e/

# An upgrade from an earlier release (another Debian suite, kernel, Docker)
# to this build and back: ROS_PREVIOUS_IMAGE=path/to/old/ros.img, a disk
# image `make image` made from an earlier commit (docs/upgrade.md).
test-release: image os-image
	@[ -n "$(ROS_PREVIOUS_IMAGE)" ] || { echo "test-release: set ROS_PREVIOUS_IMAGE to the ros.img of an earlier release" >&2; exit 2; }
	ROS_PREVIOUS_IMAGE=$(ROS_PREVIOUS_IMAGE) ROS_IMAGE=$(CURDIR)/out/ros.img ROS_OS_IMAGE=$(CURDIR)/out/rosos-os-$(VERSION).oci.tar ROS_VERSION=$(VERSION) \
	  $(GO) test -v -count=1 -timeout $(E2E_TIMEOUT) -tags e2e,release -run TestUpgradeAcrossReleases ./tests/e2e/

# Benchmarks: Go benchmarks of the hot paths, then the OS against a Debian
# (DEBIAN_SUITE) + systemd reference booted the same way (docs/performance.md).
# They report; they do not pass or fail on speed. ROS_BENCH_RUNS=N boots each N times.
bench: deps image out/bench/debian.img
	$(GO) test -run '^$$' -bench . -benchmem ./config/ ./internal/compose/ ./system/osimage/
	ROS_BENCH_DIR=$(CURDIR)/out/bench ROS_IMAGE=$(CURDIR)/out/ros.img ROS_VERSION=$(VERSION) \
	  $(GO) test -v -count=1 -timeout 150m -tags e2e,bench -run TestBench ./tests/e2e/

out/bench/debian.img: build/debian-ref.sh build/squashfs.sh images/kernel/version build/debian.env build/grub.sh
	build/debian-ref.sh out/bench

clean:
	rm -rf out
