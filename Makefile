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

# ---------------------------------------------------------------------------------------
# KUBELET_FLAGS: the flags `make demo` passes to the kubelet. ADJUST HERE as the kubelet
# grows (or override: make demo KUBELET_FLAGS='...'). Upstream flags that may belong here:
# --cgroup-driver=cgroupfs --fail-swap-on=false --hostname-override=<name>
# --node-ip=127.0.0.1 (avoids a DNS lookup of the node name) --v=2
KUBELET_FLAGS ?= \
	--pod-manifest-path=$(CURDIR)/examples \
	--container-runtime-endpoint=$(CONTAINER_RUNTIME_ENDPOINT) \
	--root-dir=$(CURDIR)/.work/kubelet
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
	@echo "make bench   not yet"

env:
	$(NODE_ENV) install up images

build:
	cargo build --release

demo: env build
	$(KUBELET_BIN) $(KUBELET_FLAGS)

test: env
	$(CURDIR)/scripts/test.sh

bench:
	@echo "make bench: not yet: there are no benchmarks yet"

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
