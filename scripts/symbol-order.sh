#!/usr/bin/env bash
# symbol-order.sh: record which functions a running kubelet executes and write them to
# link/symbol-order.txt, the linker's symbol ordering file (see build.rs for why).
#
# Runs target/release/kubelet (or $1) under valgrind's callgrind against the private
# containerd of scripts/node-env.sh, through a standalone scenario: start-up, three static
# pods (one with env, an emptyDir, resources, an httpGet readiness and an exec liveness
# probe), a container killed from the host and restarted, an edited manifest, reads of
# the read-only node API, teardown, a minute and more of idle housekeeping, SIGTERM.
# Functions are written hottest first (callgrind's self cost); only symbols of the binary's
# code are kept. Re-run it after changing dependencies, the toolchain or the release
# profile (symbol names change), then rebuild: `cargo build --release`.
#
# Needs: valgrind, curl, and the node environment (`scripts/node-env.sh up images`).
# Takes 2-3 minutes. Usage: scripts/symbol-order.sh [kubelet-binary]
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$(realpath "${1:-$REPO_ROOT/target/release/kubelet}")
OUT="$REPO_ROOT/link/symbol-order.txt"
command -v valgrind >/dev/null || {
	echo "symbol-order: valgrind is not installed (apt-get install valgrind)" >&2
	exit 1
}
[ -x "$BIN" ] || {
	echo "symbol-order: $BIN: no such kubelet binary (cargo build --release)" >&2
	exit 1
}
eval "$("$REPO_ROOT/scripts/node-env.sh" env)"

WORK=$(mktemp -d /tmp/kubelet-symbol-order.XXXXXX)
NODE="symbol-order-$$"
VG_PID=""
log() { printf 'symbol-order: %s\n' "$*" >&2; }
cleanup() {
	rm -f "$WORK"/manifests/*.yaml 2>/dev/null || true
	if [ -n "$VG_PID" ] && kill -0 "$VG_PID" 2>/dev/null; then
		# Give the kubelet time to tear the pods down before stopping it.
		for _ in $(seq 60); do
			[ "$(curl -s "localhost:$RO_PORT/pods" | grep -c '"uid"')" = 0 ] && break
			sleep 1
		done
		kill -TERM "$VG_PID" 2>/dev/null || true
		wait "$VG_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every second until it succeeds.
wait_for() {
	local limit=$1 what=$2
	shift 2
	for _ in $(seq "$limit"); do
		"$@" && return 0
		sleep 1
	done
	log "timed out waiting for $what; kubelet log: $WORK/kubelet.log"
	exit 1
}
pods_json() { curl -sf "localhost:$RO_PORT/pods"; }
# started_at_least N: the kubelet has logged N container starts.
started_at_least() { [ "$(grep -c "started container" "$WORK/kubelet.log" || true)" -ge "$1" ]; }

sleep_pod() {
	cat >"$WORK/manifests/$1.yaml" <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: sleep
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["/bin/sh", "-c", "trap 'exit 0' TERM; sleep $2 & wait"]
EOF
}

web_pod() {
	cat >"$WORK/manifests/web.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: scratch
    emptyDir: {}
  containers:
  - name: web
    image: busybox
    imagePullPolicy: IfNotPresent
    command: ["/bin/sh", "-c", "trap 'exit 0' TERM; mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www & wait"]
    env:
    - {name: GREETING, value: hello}
    - name: MY_POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    resources:
      requests: {cpu: 10m, memory: 16Mi}
      limits: {cpu: 100m, memory: 64Mi}
    volumeMounts:
    - {name: scratch, mountPath: /scratch}
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 2
    livenessProbe:
      exec: {command: ["true"]}
      periodSeconds: 3
EOF
}

mkdir -p "$WORK/manifests" "$WORK/root" "$WORK/logs"
RO_PORT=$((20000 + RANDOM % 10000))
HZ_PORT=$((RO_PORT + 1))
cat >"$WORK/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: $WORK/manifests
podLogsDir: $WORK/logs
containerRuntimeEndpoint: $CONTAINER_RUNTIME_ENDPOINT
fileCheckFrequency: 20s
enableServer: false
address: 127.0.0.1
readOnlyPort: $RO_PORT
healthzPort: $HZ_PORT
healthzBindAddress: 127.0.0.1
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
failCgroupV1: false
evictionHard: {memory.available: 100Mi, nodefs.available: "0%", nodefs.inodesFree: "0%", imagefs.available: "0%", imagefs.inodesFree: "0%"}
EOF

log "recording $BIN as node $NODE in $WORK"
KUBELET_LOG=info NO_COLOR=1 valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
	--dump-instr=no --compress-strings=no --demangle=no \
	"$BIN" --config="$WORK/kubelet.yaml" --root-dir="$WORK/root" --hostname-override="$NODE" \
	>"$WORK/kubelet.log" 2>&1 </dev/null &
VG_PID=$!
wait_for 120 "the kubelet to connect" grep -q "connected to container runtime" "$WORK/kubelet.log"

sleep_pod sleeper-a 1000
sleep_pod sleeper-b 1000
web_pod
wait_for 120 "3 containers started" started_at_least 3
wait_for 60 "the web pod ready" sh -c "curl -sf localhost:$RO_PORT/pods | grep -q '\"ready\":true'"

# Kill a container from the host; wait for the restart.
cid=$(pods_json | grep -o '"containerID":"containerd://[0-9a-f]*"' | head -1 | grep -o '[0-9a-f]\{64\}')
pid=$(ctr -a "$CONTAINERD_ADDRESS" -n k8s.io task ls | awk -v c="$cid" '$1 == c {print $2}')
[ -n "$pid" ] || {
	log "no host pid for container $cid"
	exit 1
}
kill -9 "$pid"
wait_for 60 "the killed container to restart" sh -c "curl -sf localhost:$RO_PORT/pods | grep -q '\"restartCount\":1'"

for _ in 1 2 3; do
	for path in pods stats/summary metrics metrics/cadvisor spec healthz; do
		curl -s "localhost:$RO_PORT/$path" >/dev/null
	done
	curl -s "localhost:$HZ_PORT/healthz" >/dev/null
done

sleep_pod sleeper-b 999 # an edit: the pod is replaced
wait_for 60 "the edited pod to start" started_at_least 5
rm -f "$WORK"/manifests/*.yaml
wait_for 120 "the pods to be torn down" sh -c "! curl -sf localhost:$RO_PORT/pods | grep -q '\"uid\"'"
log "idle for 70 s (housekeeping loops)"
sleep 70
kill -TERM "$VG_PID"
wait "$VG_PID" || true
VG_PID=""

# Self cost per function (the cost line right after a calls= line is the callee's
# inclusive cost and is skipped), hottest first, kept only if it is a code symbol of $BIN.
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$WORK/symbols"
awk '
/^fn=/ { fn = substr($0, 4); skip = 0; next }
/^calls=/ { skip = 1; next }
/^[0-9+-]/ {
	if (skip) { skip = 0; next }
	if (split($0, col, " ") >= 2) cost[fn] += col[2]
	next
}
END { for (name in cost) print cost[name], name }' "$WORK/callgrind.out" |
	sort -k1,1nr | awk 'NR == FNR { known[$1] = 1; next } ($2 in known) { print $2 }' "$WORK/symbols" - >"$OUT.new"
[ -s "$OUT.new" ] || {
	log "no symbols recorded; see $WORK"
	exit 1
}
mv "$OUT.new" "$OUT"
log "wrote $(wc -l <"$OUT") symbols to $OUT; rebuild with cargo build --release"
rm -rf --one-file-system "$WORK"
