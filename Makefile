# kubelet-rs: `make demo` runs the kubelet on examples/, `make test` runs every check.
# Both first set up the node environment (scripts/node-env.sh: apt packages, a private
# containerd, a local registry with offline images). Everything is safe to run again; run
# as root. State lives in .work/ (git-ignored).

SHELL := /bin/bash
.DEFAULT_GOAL := help

export KUBELET_ENV_DIR ?= $(CURDIR)/.work/env
NODE_ENV := $(CURDIR)/scripts/node-env.sh
CONTAINER_RUNTIME_ENDPOINT := unix://$(KUBELET_ENV_DIR)/containerd.sock
KUBELET_BIN := $(CURDIR)/target/release/kubelet
# A cgroup v1 host (no /sys/fs/cgroup/cgroup.controllers) is refused unless told otherwise,
# as upstream v1.35+.
CGROUP_V1_FLAG := $(if $(wildcard /sys/fs/cgroup/cgroup.controllers),,--fail-cgroupv1=false)

# ---------------------------------------------------------------------------------------
# KUBELET_FLAGS: the flags `make demo` passes to the kubelet. ADJUST HERE as the kubelet
# grows (or override: make demo KUBELET_FLAGS='...'). Upstream flags that may belong here:
# --cgroup-driver=cgroupfs --fail-swap-on=false --hostname-override=<name>
# --node-ip=127.0.0.1 (avoids a DNS lookup of the node name) --v=2
KUBELET_FLAGS ?= \
	--pod-manifest-path=$(CURDIR)/examples \
	--container-runtime-endpoint=$(CONTAINER_RUNTIME_ENDPOINT) \
	--root-dir=$(CURDIR)/.work/kubelet \
	--cert-dir=$(CURDIR)/.work/kubelet/pki \
	$(CGROUP_V1_FLAG)
# ---------------------------------------------------------------------------------------

.PHONY: help env build demo test bench status down clean

help:
	@echo "make demo    set up the node environment, build, run the kubelet on examples/"
	@echo "make test    set up the node environment, then scripts/test.sh (fmt, clippy, tests)"
	@echo "make env     only the node environment: install + up + images"
	@echo "make build   cargo build --release"
	@echo "make status  what of the node environment is running"
	@echo "make down    stop containers, containerd and the registry; unmount"
	@echo "make clean   down, then delete .work/ (not target/)"
	@echo "make bench   set up the node environment, build (release), measure the kubelet against"
	@echo "             the CRI floor at 1, 30 and 110 pods, print the table (docs/benchmarks.md)"

env:
	$(NODE_ENV) install up images

build:
	cargo build --release

demo: env build
	$(KUBELET_BIN) $(KUBELET_FLAGS)

test: env
	$(CURDIR)/scripts/test.sh

# BENCH_FLAGS: options of kubelet-bench, e.g. make bench BENCH_FLAGS='--pods 1,5 --quick'
# (--pods LIST, --quick, --idle SECS, --steady SECS, --keep). 9-12 minutes by default.
# A measuring tool: it prints numbers and never fails on them. See docs/benchmarks.md.
BENCH_FLAGS ?=

bench: env
	cargo build --release
	cargo build --release -p kubelet-bench
	CONTAINER_RUNTIME_ENDPOINT=$(CONTAINER_RUNTIME_ENDPOINT) \
		$(CURDIR)/target/release/kubelet-bench --kubelet $(KUBELET_BIN) $(BENCH_FLAGS)

status:
	@$(NODE_ENV) status

down:
	$(NODE_ENV) down

# Volumes the kubelet mounted under .work/ are unmounted first, so rm never walks into them.
clean:
	$(NODE_ENV) clean
	@awk -v d="$(CURDIR)/.work/" 'index($$5, d) == 1 {print $$5}' /proc/self/mountinfo | \
		sort -r -u | while read -r m; do umount "$$m" || umount -l "$$m"; done
	rm -rf --one-file-system $(CURDIR)/.work
