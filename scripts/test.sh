#!/usr/bin/env bash
# Every check of the project: formatting, lints, then all tests. The integration tests run
# against the private containerd of scripts/node-env.sh (`make test` starts it first); they
# find it through CONTAINER_RUNTIME_ENDPOINT.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -d $HOME/.cargo/bin && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
	PATH="$HOME/.cargo/bin:$PATH"
fi

eval "$(scripts/node-env.sh env)"
if ! scripts/node-env.sh check --run >/dev/null 2>&1; then
	echo "test.sh: the node environment does not answer ($CONTAINER_RUNTIME_ENDPOINT):" \
		"run 'make env' or 'make test'" >&2
	scripts/node-env.sh check --run || true
	exit 1
fi

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace -- --test-threads=2 (CONTAINER_RUNTIME_ENDPOINT=$CONTAINER_RUNTIME_ENDPOINT)"
cargo test --workspace -- --test-threads=2

step "all checks passed"
