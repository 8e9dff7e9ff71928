#!/usr/bin/env bash
# node-env.sh: the node environment kubelet-rs runs and is tested against.
#
# A PRIVATE containerd (own socket, root, state, CNI network) and a local docker registry
# on 127.0.0.1:5000 that serves images built here from Debian packages, so pods can run
# with no internet. Everything lives under one directory, $KUBELET_ENV_DIR
# (default <repo>/.work/env). Facts behind the choices: /work/shared/RUNTIME-NOTES.md.
#
# Usage: scripts/node-env.sh <command>...   (commands run in the order given)
#   install  apt packages the environment needs (skipped when already installed)
#   up       start containerd and the registry (no-op when both already answer)
#   images   build the offline images and push them to the registry (no-op when current)
#   check    prove it works: containerd answers, registry serves every tag;
#            `check --run` also pulls busybox through containerd and runs it once
#   down     kill our containers, stop both daemons, unmount everything under the env dir
#   clean    down, then delete the pod bridge and the env dir
#   env      print shell exports (eval "$(scripts/node-env.sh env)")
#   status   print what is running
#
# Overrides (environment): KUBELET_ENV_DIR, KUBELET_ENV_POD_CIDR (10.88.0.0/16),
# KUBELET_ENV_BRIDGE (kubeletrs0), KUBELET_ENV_REGISTRY_PORT (5000; the registry listens
# on 127.0.0.1 only). Two env dirs on one machine need different values of all three.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO_ROOT/scripts/node-env.sh"
PAUSE_SRC="$REPO_ROOT/images/pause/pause.c"
# shellcheck source=scripts/lib.sh
source "$REPO_ROOT/scripts/lib.sh"

log() { printf 'node-env: %s\n' "$*" >&2; }
die() {
	printf 'node-env: error: %s\n' "$*" >&2
	exit 1
}

ENV_DIR=$(realpath -m "${KUBELET_ENV_DIR:-$REPO_ROOT/.work/env}")

# The overridable settings are recorded in the env dir by `up`; later runs (down, clean,
# env) act on what was recorded, so cleaning one env never touches another's bridge,
# iptables rules or registry.
SETTINGS="$ENV_DIR/settings"
declare -A RECORDED=()
if [[ -f $SETTINGS ]]; then
	while IFS='=' read -r key value; do RECORDED[$key]=$value; done <"$SETTINGS"
fi
# setting <name> <default>: recorded value, else $KUBELET_ENV_<name>, else the default
setting() {
	local name=$1 default=$2 var="KUBELET_ENV_$1"
	local given=${!var:-} recorded=${RECORDED[$1]:-}
	if [[ -n $recorded && -n $given && $given != "$recorded" ]]; then
		die "$ENV_DIR was set up with $var=$recorded, not $given: 'clean' it first or use another KUBELET_ENV_DIR"
	fi
	echo "${recorded:-${given:-$default}}"
}
POD_CIDR=$(setting POD_CIDR 10.88.0.0/16)
BRIDGE=$(setting BRIDGE kubeletrs0)
REGISTRY_PORT=$(setting REGISTRY_PORT 5000)
REGISTRY=127.0.0.1:$REGISTRY_PORT
CNI_NETWORK=kubelet-rs
[[ $BRIDGE == kubeletrs0 ]] || CNI_NETWORK=kubelet-rs-$BRIDGE
SANDBOX_IMAGE=registry.k8s.io/pause:3.10

SOCK="$ENV_DIR/containerd.sock"
CTRD_DIR="$ENV_DIR/containerd"
CTRD_CONFIG="$CTRD_DIR/config.toml"
CTRD_PID="$ENV_DIR/containerd.pid"
RUNC_ROOT="$CTRD_DIR/state/runc"
CNI_CONF_DIR="$ENV_DIR/cni/net.d"
CERTS_DIR="$ENV_DIR/certs.d"
REG_DIR="$ENV_DIR/registry"
REG_CONFIG="$REG_DIR/config.yml"
REG_PID="$ENV_DIR/registry.pid"
LOG_DIR="$ENV_DIR/logs"
LAYOUT="$ENV_DIR/images/oci"

PACKAGES=(containerd runc containernetworking-plugins docker-registry busybox-static skopeo
	iptables protobuf-compiler jq curl iproute2 gcc libc6-dev make tar gzip util-linux)

need_root() { [[ $(id -u) == 0 ]] || die "'$1' must run as root"; }
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# ---------------------------------------------------------------------------------------
# install

cmd_install() {
	need_root install
	local missing
	mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
	if ((${#missing[@]} == 0)); then
		log "install: all ${#PACKAGES[@]} packages present"
		return 0
	fi
	log "install: installing ${missing[*]}"
	apt_install "${missing[@]}" || die "install: apt-get failed ($?)"
}

# ---------------------------------------------------------------------------------------
# daemon helpers: a daemon is identified by its executable and its config path (which is
# unique to this env dir), so a recycled PID or another env's daemon is never taken for ours.

# daemon_pid <pidfile> <exe-name> <config>: prints the live PID, or fails
daemon_pid() {
	local pidfile=$1 exe=$2 config=$3 pid state
	[[ -s $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	is_our_process "$pid" "$exe" "$config" || return 1
	state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ $state != Z ]] || return 1
	echo "$pid"
}

is_our_process() {
	local pid=$1 exe=$2 config=$3 path
	path=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
	[[ ${path##*/} == "$exe" ]] || return 1
	tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$config"
}

# find_orphan <exe-name> <config>: a process of ours whose pid file was lost
find_orphan() {
	local f pid
	# shellcheck disable=SC2013 # /proc paths have no spaces
	for f in $(grep -lsaF -- "$2" /proc/[0-9]*/cmdline 2>/dev/null); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[[ $pid != "$$" ]] && is_our_process "$pid" "$1" "$2" && echo "$pid" && return 0
	done
	return 1
}

# start_daemon <pidfile> <logfile> <command...>: detached (own session, no inherited fds)
start_daemon() {
	local pidfile=$1 logfile=$2
	shift 2
	rm -f "$pidfile"
	# The inner shell records its own PID, closes every inherited descriptor above 2
	# (a make jobserver pipe or our lock would otherwise stay open), then execs the daemon,
	# which keeps that PID.
	# shellcheck disable=SC2016 # expanded by the inner shell
	setsid bash -c '
		echo $$ >"$1"
		shift
		for fd in /proc/$$/fd/*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec $fd>&-"; fi
		done
		exec nohup "$@"' node-env-launch "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
	local deadline=$(($(now_ms) + 5000))
	until [[ -s $pidfile ]]; do
		(($(now_ms) < deadline)) || die "could not start $1"
		sleep 0.01
	done
}

# wait_for <seconds> <what> <pidfile> <exe> <config> <probe command...>
wait_for() {
	local secs=$1 what=$2 pidfile=$3 exe=$4 config=$5
	shift 5
	local deadline=$(($(now_ms) + secs * 1000))
	until "$@" >/dev/null 2>&1; do
		# The pid file holds the launcher's PID, which becomes the daemon's on exec.
		if ! daemon_pid "$pidfile" "$exe" "$config" >/dev/null; then
			local pid
			pid=$(<"$pidfile")
			if [[ ! -d /proc/$pid ]] || [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]; then
				tail -n 20 "$LOG_DIR/$what.log" >&2 || true
				die "$what exited during startup (log: $LOG_DIR/$what.log)"
			fi
		fi
		(($(now_ms) < deadline)) || return 1
		sleep 0.05
	done
}

# stop_pid <pid> <name>: SIGTERM, wait up to 10 s, then SIGKILL
stop_pid() {
	local pid=$1 name=$2 deadline
	kill -TERM "$pid" 2>/dev/null || return 0
	deadline=$(($(now_ms) + 10000))
	while [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
		if (($(now_ms) >= deadline)); then
			log "$name (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.05
	done
	log "stopped $name (pid $pid)"
}

# write_file <path> <content>: atomic (dot-file then rename); returns 0 if content changed
write_file() {
	local path=$1 content=$2 tmp
	if [[ -f $path ]] && [[ "$(<"$path")" == "$content" ]]; then
		return 1
	fi
	tmp="$(dirname "$path")/.$(basename "$path").tmp"
	printf '%s\n' "$content" >"$tmp"
	mv -f "$tmp" "$path"
	return 0
}

containerd_answers() { timeout 5 ctr --address "$SOCK" version >/dev/null 2>&1; }
registry_answers() { curl -fsS -m 2 -o /dev/null "http://$REGISTRY/v2/" 2>/dev/null; }
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------------------------------
# up

containerd_config() {
	cat <<EOF
# Generated by scripts/node-env.sh: a containerd private to $ENV_DIR.
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "$SOCK"
  uid = 0
  gid = 0

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = "$ENV_DIR/containerd-debug.sock"
  level = "info"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$CTRD_DIR/opt"

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$SANDBOX_IMAGE"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    enable_selinux = false
    disable_apparmor = true
    # These machines deny negative oom_score_adj to every process.
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true

    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "$RUNC_ROOT"
      # A second handler with the same runc, so tests can run a pod whose RuntimeClass names
      # a non-default handler and check (PodSandboxStatus) that the kubelet asked for it.
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc-alt]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc-alt.options]
          SystemdCgroup = false
          Root = "$RUNC_ROOT"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
      conf_dir = "$CNI_CONF_DIR"
      max_conf_num = 1

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$CERTS_DIR"
EOF
}

cni_conflist() {
	jq -n --arg name "$CNI_NETWORK" --arg bridge "$BRIDGE" --arg subnet "$POD_CIDR" \
		--arg datadir "$ENV_DIR/cni/ipam" '{
		cniVersion: "1.0.0",
		name: $name,
		plugins: [
			{type: "bridge", bridge: $bridge, isGateway: true, ipMasq: false, hairpinMode: true,
			 ipam: {type: "host-local", ranges: [[{subnet: $subnet}]],
			        routes: [{dst: "0.0.0.0/0"}], dataDir: $datadir}},
			{type: "portmap", capabilities: {portMappings: true}, snat: true}
		]}'
}

hosts_toml() {
	cat <<EOF
# Generated by scripts/node-env.sh: every pull of this registry goes to the local one.
server = "http://$REGISTRY"

[host."http://$REGISTRY"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
EOF
}

registry_config() {
	cat <<EOF
# Generated by scripts/node-env.sh: local registry for offline images.
version: 0.1
log:
  # warn: info logs a line per request.
  level: warn
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $REGISTRY
  secret: kubelet-rs-local-registry
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
}

cmd_up() {
	need_root up
	((${#SOCK} < 100)) || die "socket path too long for a unix socket ($SOCK): use a shorter KUBELET_ENV_DIR"
	mkdir -p "$CTRD_DIR" "$CNI_CONF_DIR" "$ENV_DIR/cni/ipam" "$REG_DIR/data" "$LOG_DIR"
	local changed_ctrd='' changed_reg='' host
	write_file "$SETTINGS" "$(printf '%s\n' "POD_CIDR=$POD_CIDR" "BRIDGE=$BRIDGE" "REGISTRY_PORT=$REGISTRY_PORT")" || true
	write_file "$CTRD_CONFIG" "$(containerd_config)" && changed_ctrd=1
	for host in docker.io registry.k8s.io "$REGISTRY"; do
		mkdir -p "$CERTS_DIR/$host"
		write_file "$CERTS_DIR/$host/hosts.toml" "$(hosts_toml)" || true
	done
	# containerd may read a half-written file and ignores files moved in: write a dot-file in
	# the directory, then rename (write_file does exactly that).
	write_file "$CNI_CONF_DIR/10-$CNI_NETWORK.conflist" "$(cni_conflist)" || true
	write_file "$REG_CONFIG" "$(registry_config)" && changed_reg=1

	ensure_daemon registry docker-registry "$REG_CONFIG" "$REG_PID" "$changed_reg" 15 registry_answers \
		docker-registry serve "$REG_CONFIG"
	ensure_daemon containerd containerd "$CTRD_CONFIG" "$CTRD_PID" "$changed_ctrd" 30 containerd_answers \
		containerd --config "$CTRD_CONFIG"
}

# ensure_daemon <name> <exe> <config> <pidfile> <config-changed> <timeout> <probe> <command...>
ensure_daemon() {
	local name=$1 exe=$2 config=$3 pidfile=$4 changed=$5 secs=$6 probe=$7
	shift 7
	local pid
	if ! pid=$(daemon_pid "$pidfile" "$exe" "$config"); then
		if pid=$(find_orphan "$exe" "$config"); then
			log "$name: adopting running pid $pid (its pid file was missing)"
			echo "$pid" >"$pidfile"
		else
			[[ ! -e $pidfile ]] || log "$name: removing stale pid file"
			rm -f "$pidfile"
			pid=
		fi
	fi
	if [[ -n $pid && -n $changed ]]; then
		log "$name: config changed, restarting"
		stop_pid "$pid" "$name"
		rm -f "$pidfile"
		pid=
	fi
	if [[ -n $pid ]]; then
		if wait_for "$secs" "$name" "$pidfile" "$exe" "$config" "$probe"; then
			log "$name: already running (pid $pid)"
			return 0
		fi
		log "$name: pid $pid does not answer within ${secs}s, restarting"
		stop_pid "$pid" "$name"
		rm -f "$pidfile"
	fi
	# Nothing of ours runs: whatever holds the port now is someone else's.
	if [[ $name == registry ]] && port_in_use "${REGISTRY##*:}"; then
		die "port ${REGISTRY##*:} is taken by another process: $(ss -ltnpH "sport = :${REGISTRY##*:}" 2>/dev/null | awk '{print $NF}' | head -n 1)"
	fi
	if [[ $name == containerd ]]; then
		rm -f "$SOCK" "$SOCK.ttrpc" "$ENV_DIR/containerd-debug.sock"
	fi
	local t0
	t0=$(now_ms)
	start_daemon "$pidfile" "$LOG_DIR/$name.log" "$@"
	wait_for "$secs" "$name" "$pidfile" "$exe" "$config" "$probe" ||
		die "$name did not answer within ${secs}s (log: $LOG_DIR/$name.log)"
	log "$name: started (pid $(<"$pidfile"), answering after $(($(now_ms) - t0)) ms)"
}

# ---------------------------------------------------------------------------------------
# images: OCI images built from Debian files, reproducibly (fixed mtimes, owners, order,
# gzip -n), so rebuilding gives the same digests.

IMAGE_CREATED="2024-01-01T00:00:00Z"
IMAGE_MTIME=1704067200
IMAGE_PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NGINX_VERSIONS=(1.7.9 1.9.1 latest)

# Go architecture name (what containerd matches against) of this Debian machine.
oci_platform() {
	local arch
	arch=$(dpkg --print-architecture)
	case $arch in
	amd64 | arm64 | s390x | riscv64 | mips64el) echo "$arch " ;;
	armhf) echo "arm v7" ;;
	armel) echo "arm v5" ;;
	i386) echo "386 " ;;
	ppc64el) echo "ppc64le " ;;
	*) die "unsupported architecture $arch" ;;
	esac
}

# Tags to push: <layout ref> <repository:tag in the registry>
image_tags() {
	cat <<EOF
busybox library/busybox:latest
busybox library/alpine:latest
pause pause:3.10
pause pause:3.9
nginx-1.7.9 library/nginx:1.7.9
nginx-1.9.1 library/nginx:1.9.1
nginx-latest library/nginx:latest
EOF
}

# put_blob <file>: move into the layout's blob store; prints "<digest> <size>"
put_blob() {
	local hex size
	hex=$(sha256sum "$1" | cut -d' ' -f1)
	size=$(stat -c %s "$1")
	mv -f "$1" "$BUILD/blobs/sha256/$hex"
	echo "sha256:$hex $size"
}

# make_layer <rootfs dir>: prints "<digest> <size> <diff_id>"
make_layer() {
	local root=$1 names=() diff_id blob
	mapfile -t names < <(find "$root" -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)
	tar -C "$root" --sort=name --format=gnu --owner=0 --group=0 --numeric-owner \
		--mtime="@$IMAGE_MTIME" -cf "$BUILD/layer.tar" -- "${names[@]}"
	diff_id=sha256:$(sha256sum "$BUILD/layer.tar" | cut -d' ' -f1)
	gzip -n -9 "$BUILD/layer.tar"
	blob=$(put_blob "$BUILD/layer.tar.gz")
	echo "$blob $diff_id ${root##*/}"
}

# make_image <layout ref> <image config JSON (the "config" object)> <layer line>...
make_image() {
	local ref=$1 runconfig=$2 arch variant layers config manifest cfg_blob man_blob
	shift 2
	read -r arch variant <<<"$(oci_platform)"
	layers=$(printf '%s\n' "$@" | jq -Rc 'split(" ") | {digest: .[0], size: (.[1] | tonumber), diff_id: .[2], name: .[3]}' | jq -sc .)
	config=$(jq -nc --arg arch "$arch" --arg variant "$variant" --arg created "$IMAGE_CREATED" \
		--arg ref "$ref" --argjson cfg "$runconfig" --argjson layers "$layers" '
		{architecture: $arch} + (if $variant == "" then {} else {variant: $variant} end) + {
		 os: "linux", created: $created, config: $cfg,
		 rootfs: {type: "layers", diff_ids: [$layers[].diff_id]},
		 history: [$layers[] | {created: $created,
		           created_by: ("kubelet-rs scripts/node-env.sh: layer " + .name + " of " + $ref)}]}')
	printf '%s' "$config" >"$BUILD/config.json"
	cfg_blob=$(put_blob "$BUILD/config.json")
	manifest=$(jq -nc --arg cfg "$cfg_blob" --argjson layers "$layers" '{
		schemaVersion: 2,
		mediaType: "application/vnd.oci.image.manifest.v1+json",
		config: {mediaType: "application/vnd.oci.image.config.v1+json",
		         digest: ($cfg | split(" ")[0]), size: ($cfg | split(" ")[1] | tonumber)},
		layers: [$layers[] | {mediaType: "application/vnd.oci.image.layer.v1.tar+gzip",
		                      digest, size}]}')
	printf '%s' "$manifest" >"$BUILD/manifest.json"
	man_blob=$(put_blob "$BUILD/manifest.json")
	echo "$ref $man_blob" >>"$BUILD/refs"
}

build_busybox_rootfs() {
	local root=$1 applet
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,var/tmp,tmp}
	chmod 0700 "$root/root"
	chmod 1777 "$root/tmp" "$root/var/tmp"
	install -m 0755 /bin/busybox "$root/bin/busybox"
	while read -r applet; do
		[[ $applet == bin/busybox || $applet == linuxrc ]] && continue
		mkdir -p "$root/$(dirname "$applet")"
		ln -s /bin/busybox "$root/$applet"
	done < <(/bin/busybox --list-full)
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
		'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nobody:x:65534:' >"$root/etc/group"
	chmod 0644 "$root/etc/passwd" "$root/etc/group"
}

# The nginx stand-in: busybox httpd serving /usr/share/nginx/html on port 80. Laid out like
# the real image (entrypoint script + CMD ["nginx", "-g", "daemon off;"]) so manifests that
# set command/args the way nginx tutorials do still work.
build_nginx_rootfs() {
	local root=$1 version=$2
	mkdir -p "$root"/{usr/sbin,usr/share/nginx/html,etc/nginx/conf.d,var/log/nginx,var/cache/nginx}
	printf '%s\n' "$version" >"$root/etc/nginx/version"
	cat >"$root/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# Entrypoint of the kubelet-rs nginx stand-in image.
mkdir -p /var/log/nginx /var/cache/nginx
[ "$#" -gt 0 ] || set -- nginx
exec "$@"
EOF
	cat >"$root/usr/sbin/nginx" <<'EOF'
#!/bin/sh
# Not nginx: busybox httpd serving /usr/share/nginx/html on port 80 (kubelet-rs offline
# image). nginx options are accepted and ignored, except -v/-V and -t/-T.
version=$(cat /etc/nginx/version)
case "$1" in
-v | -V)
	echo "nginx version: nginx/$version (busybox httpd stand-in)" >&2
	exit 0
	;;
-t | -T)
	echo "nginx: configuration file /etc/nginx/nginx.conf test is successful" >&2
	exit 0
	;;
esac
mkdir -p /var/log/nginx
: >>/var/log/nginx/access.log
: >>/var/log/nginx/error.log
httpd -f -v -p 80 -h /usr/share/nginx/html &
pid=$!
# As PID 1 httpd would ignore SIGTERM; stop it on the signals nginx stops on.
trap 'kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT QUIT
wait "$pid"
EOF
	cat >"$root/usr/share/nginx/html/index.html" <<EOF
<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>This page is served by busybox httpd standing in for nginx $version, from an image that
kubelet-rs builds locally so that pods run without internet access.</p>
</body>
</html>
EOF
	cat >"$root/usr/share/nginx/html/50x.html" <<'EOF'
<!DOCTYPE html>
<html>
<head><title>Error</title></head>
<body><h1>An error occurred.</h1></body>
</html>
EOF
	chmod 0755 "$root/docker-entrypoint.sh" "$root/usr/sbin/nginx"
	chmod 0644 "$root/etc/nginx/version" "$root/usr/share/nginx/html/"*.html
}

build_images() {
	BUILD="$ENV_DIR/images/build"
	rm -rf "$BUILD"
	mkdir -p "$BUILD/blobs/sha256" "$BUILD/src"
	(
		umask 022
		local base pause nginx v runconfig

		build_busybox_rootfs "$BUILD/src/busybox"
		base=$(make_layer "$BUILD/src/busybox")
		runconfig=$(jq -nc --arg path "$IMAGE_PATH_ENV" '{Env: [$path], Cmd: ["sh"]}')
		make_image busybox "$runconfig" "$base"

		mkdir -p "$BUILD/src/pause"
		gcc -static -Os -Wall -Wextra -Werror -o "$BUILD/src/pause/pause" "$PAUSE_SRC"
		strip "$BUILD/src/pause/pause"
		pause=$(make_layer "$BUILD/src/pause")
		runconfig=$(jq -nc --arg path "$IMAGE_PATH_ENV" \
			'{Env: [$path], Entrypoint: ["/pause"], User: "65535:65535", WorkingDir: "/"}')
		make_image pause "$runconfig" "$pause"

		for v in "${NGINX_VERSIONS[@]}"; do
			build_nginx_rootfs "$BUILD/src/nginx-$v" "$v"
			nginx=$(make_layer "$BUILD/src/nginx-$v")
			runconfig=$(jq -nc --arg path "$IMAGE_PATH_ENV" --arg v "$v" '{
				Env: [$path, ("NGINX_VERSION=" + $v)],
				Entrypoint: ["/docker-entrypoint.sh"], Cmd: ["nginx", "-g", "daemon off;"],
				ExposedPorts: {"80/tcp": {}}, StopSignal: "SIGQUIT"}')
			make_image "nginx-$v" "$runconfig" "$base" "$nginx"
		done
	)
	printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$BUILD/oci-layout"
	jq -Rc 'split(" ") | {mediaType: "application/vnd.oci.image.manifest.v1+json",
		digest: .[1], size: (.[2] | tonumber),
		annotations: {"org.opencontainers.image.ref.name": .[0]}}' "$BUILD/refs" |
		jq -sc '{schemaVersion: 2, manifests: .}' >"$BUILD/index.json"
	rm -rf "$BUILD/src"
}

# Everything the images are made from: a change to any of them rebuilds.
image_inputs_hash() {
	{
		cat "$SELF" "$PAUSE_SRC" /bin/busybox | sha256sum
		oci_platform
		gcc --version | head -n 1
	} | sha256sum | cut -d' ' -f1
}

# registry_digest <repository:tag>: the manifest digest the registry serves, if any
registry_digest() {
	local repo=${1%:*} tag=${1##*:}
	curl -fsS -m 5 -o /dev/null -D - -I \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		-H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REGISTRY/v2/$repo/manifests/$tag" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" {print $2}'
}

cmd_images() {
	registry_answers || die "the registry does not answer on $REGISTRY: run '$0 up' first"
	local hash t0
	hash=$(image_inputs_hash)
	t0=$(now_ms)
	if [[ -f $LAYOUT/stamp && "$(<"$LAYOUT/stamp")" == "$hash" ]]; then
		log "images: build is current ($LAYOUT)"
	else
		log "images: building"
		build_images
		echo "$hash" >"$BUILD/stamp"
		rm -rf "$LAYOUT"
		mkdir -p "$(dirname "$LAYOUT")"
		mv "$BUILD" "$LAYOUT"
		log "images: built in $(($(now_ms) - t0)) ms"
	fi
	local ref dest digest pushed=0 current=0
	declare -A want=()
	while read -r ref digest _; do want[$ref]=$digest; done <"$LAYOUT/refs"
	while read -r ref dest; do
		digest=${want[$ref]:?no image $ref in $LAYOUT}
		if [[ "$(registry_digest "$dest")" == "$digest" ]]; then
			current=$((current + 1))
			continue
		fi
		log "images: pushing $REGISTRY/$dest ($digest)"
		skopeo copy --quiet --insecure-policy --dest-tls-verify=false --preserve-digests \
			"oci:$LAYOUT:$ref" "docker://$REGISTRY/$dest" >/dev/null
		[[ "$(registry_digest "$dest")" == "$digest" ]] ||
			die "images: registry does not serve $dest as $digest after the push"
		pushed=$((pushed + 1))
	done < <(image_tags)
	log "images: $pushed pushed, $current already current"
}

# ---------------------------------------------------------------------------------------
# check

cmd_check() {
	local run=${1:-} ok=1 ref dest digest
	if containerd_answers; then
		log "check: containerd answers: $(ctr --address "$SOCK" version | awk '/Server:/ {s=1} s && /Version:/ {print $2; exit}')"
	else
		log "check: containerd does NOT answer on $SOCK"
		ok=
	fi
	if registry_answers; then
		log "check: registry catalog: $(curl -fsS -m 5 "http://$REGISTRY/v2/_catalog" | jq -c .repositories)"
		declare -A want=()
		if [[ -f $LAYOUT/refs ]]; then
			while read -r ref digest _; do want[$ref]=$digest; done <"$LAYOUT/refs"
		fi
		while read -r ref dest; do
			digest=$(registry_digest "$dest")
			if [[ -z $digest ]]; then
				log "check: $dest MISSING"
				ok=
			elif [[ -n ${want[$ref]:-} && $digest != "${want[$ref]}" ]]; then
				log "check: $dest is $digest, the build says ${want[$ref]}"
				ok=
			fi
		done < <(image_tags)
	else
		log "check: registry does NOT answer on $REGISTRY"
		ok=
	fi
	[[ -n $ok ]] || die "check failed"
	if [[ $run == --run ]]; then
		# Pull through the same hosts.toml mirror configuration the CRI plugin uses, into a
		# namespace of its own so the CRI (namespace k8s.io) never sees it, run once, remove.
		local ns=kubelet-rs-check image=docker.io/library/busybox:latest out
		local c=(timeout 60 ctr --address "$SOCK" -n "$ns")
		# A run interrupted earlier may have left its container behind.
		"${c[@]}" tasks rm -f node-env-check >/dev/null 2>&1 || true
		"${c[@]}" containers rm node-env-check >/dev/null 2>&1 || true
		"${c[@]}" images pull --hosts-dir "$CERTS_DIR" "$image" >/dev/null
		out=$("${c[@]}" run --rm --cgroup "" "$image" node-env-check echo hello from busybox)
		"${c[@]}" images rm "$image" >/dev/null
		"${c[@]}" content prune references >/dev/null 2>&1 || true
		timeout 10 ctr --address "$SOCK" namespaces rm "$ns" >/dev/null 2>&1 || true
		[[ $out == "hello from busybox" ]] || die "check: container printed '$out'"
		log "check: pulled $image via $CERTS_DIR and ran it: '$out'"
	fi
	log "check: OK"
}

# ---------------------------------------------------------------------------------------
# down / clean

# Containers of ours that outlive containerd would keep the env dir busy: remove them.
kill_containers() {
	local ns ids
	if containerd_answers; then
		for ns in $(timeout 10 ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
			ids=$(timeout 10 ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null) || continue
			[[ -n $ids ]] || continue
			log "down: killing $(wc -w <<<"$ids") task(s) in namespace $ns"
			# shellcheck disable=SC2086
			timeout 30 ctr --address "$SOCK" -n "$ns" tasks rm -f $ids >/dev/null 2>&1 || true
		done
	fi
}

# What containerd could not remove (it was not running, or failed): ask runc directly; its
# state for our containers is under our own runc root.
kill_leftovers() {
	local nsdir id pid f
	for nsdir in "$RUNC_ROOT"/*/; do
		[[ -d $nsdir ]] || continue
		for id in $(runc --root "$nsdir" list -q 2>/dev/null); do
			log "down: runc delete --force $id"
			runc --root "$nsdir" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	# Shims of our containerd carry "-address <our socket>" on their command line.
	# shellcheck disable=SC2013 # /proc paths have no spaces
	for f in $(grep -lsaF -- "$SOCK" /proc/[0-9]*/cmdline 2>/dev/null); do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */containerd-shim-runc-v2 ]] || continue
		tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$SOCK" || continue
		log "down: killing leftover shim pid $pid"
		kill -KILL "$pid" 2>/dev/null || true
	done
}

# Port mappings of containers killed without a CNI DEL stay in iptables: remove the rules
# whose comment names our network, and the per-container chains they jump to.
remove_portmap_rules() {
	command -v iptables >/dev/null || return 0
	local line chain chains=()
	while read -r line; do
		[[ $line =~ -j\ (CNI-[A-Z]+-[0-9a-f]+) ]] && chains+=("${BASH_REMATCH[1]}")
		eval "iptables -w -t nat ${line/#-A/-D}" 2>/dev/null || true
	done < <(iptables -w -t nat -S 2>/dev/null | grep -F -- "name: \\\"$CNI_NETWORK\\\"" | grep -- '^-A ' || true)
	for chain in "${chains[@]}"; do
		iptables -w -t nat -F "$chain" 2>/dev/null || true
		iptables -w -t nat -X "$chain" 2>/dev/null || true
	done
	((${#chains[@]} == 0)) || log "down: removed ${#chains[@]} port-mapping chain(s) of $CNI_NETWORK"
}

unmount_all() {
	local mp mounts
	for _ in 1 2 3; do
		# Mount points under the env dir, deepest first (mountinfo escapes spaces as \040).
		mounts=$(awk -v d="$ENV_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r -u)
		[[ -n $mounts ]] || return 0
		while read -r mp; do
			mp=$(printf '%b' "$mp")
			umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || log "down: cannot unmount $mp"
		done <<<"$mounts"
	done
	log "down: mounts remain under $ENV_DIR: $(awk -v d="$ENV_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | tr '\n' ' ')"
}

cmd_down() {
	need_root down
	local pid
	kill_containers
	if pid=$(daemon_pid "$CTRD_PID" containerd "$CTRD_CONFIG") || pid=$(find_orphan containerd "$CTRD_CONFIG"); then
		stop_pid "$pid" containerd
	fi
	rm -f "$CTRD_PID" "$SOCK" "$SOCK.ttrpc" "$ENV_DIR/containerd-debug.sock"
	kill_leftovers
	remove_portmap_rules
	if pid=$(daemon_pid "$REG_PID" docker-registry "$REG_CONFIG") || pid=$(find_orphan docker-registry "$REG_CONFIG"); then
		stop_pid "$pid" registry
	fi
	rm -f "$REG_PID"
	unmount_all
	log "down: done"
}

cmd_clean() {
	need_root clean
	cmd_down
	if ip link show "$BRIDGE" >/dev/null 2>&1; then
		ip link delete "$BRIDGE" && log "clean: deleted bridge $BRIDGE"
	fi
	rm -rf "$ENV_DIR"
	log "clean: removed $ENV_DIR"
}

# ---------------------------------------------------------------------------------------
# env / status

cmd_env() {
	printf 'export %s=%q\n' \
		CONTAINER_RUNTIME_ENDPOINT "unix://$SOCK" \
		CONTAINERD_ADDRESS "$SOCK" \
		KUBELET_ENV_DIR "$ENV_DIR" \
		CNI_CONF_DIR "$CNI_CONF_DIR" \
		REGISTRY "$REGISTRY"
}

cmd_status() {
	local pid ns n
	echo "env dir:    $ENV_DIR"
	if pid=$(daemon_pid "$CTRD_PID" containerd "$CTRD_CONFIG"); then
		if containerd_answers; then
			echo "containerd: running, pid $pid, socket $SOCK"
			for ns in $(timeout 10 ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
				n=$(timeout 10 ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null | wc -l)
				echo "            namespace $ns: $n task(s)"
			done
		else
			echo "containerd: pid $pid alive but NOT answering on $SOCK"
		fi
	else
		echo "containerd: stopped"
	fi
	if pid=$(daemon_pid "$REG_PID" docker-registry "$REG_CONFIG"); then
		echo "registry:   running, pid $pid, http://$REGISTRY"
		if registry_answers; then
			local dest
			while read -r _ dest; do
				echo "            $dest $(registry_digest "$dest")"
			done < <(image_tags)
		fi
	else
		echo "registry:   stopped"
	fi
	echo "mounts:     $(awk -v d="$ENV_DIR/" 'index($5, d) == 1' /proc/self/mountinfo | wc -l) under the env dir"
}

# ---------------------------------------------------------------------------------------

usage() {
	sed -n '2,/^set -euo/p' "$SELF" | sed -e '$d' -e 's/^# \{0,1\}//'
	exit "${1:-0}"
}

main() {
	(($# > 0)) || usage 2
	local cmd locked=
	for cmd in "$@"; do
		case $cmd in
		install | up | images | check | down | clean | status) ;;
		--run) ;;
		env) ;;
		-h | --help | help) usage 0 ;;
		*)
			log "unknown command '$cmd'"
			usage 2
			;;
		esac
	done
	while (($# > 0)); do
		cmd=$1
		shift
		# One change at a time per env dir (env, check and status only read).
		if [[ $cmd =~ ^(install|up|images|down|clean)$ && -z $locked ]]; then
			need_root "$cmd"
			mkdir -p "$ENV_DIR"
			exec 9>"$ENV_DIR/.lock"
			flock -w 600 9 || die "another node-env.sh holds $ENV_DIR/.lock"
			locked=1
		fi
		case $cmd in
		install) cmd_install ;;
		up) cmd_up ;;
		images) cmd_images ;;
		check)
			if [[ ${1:-} == --run ]]; then
				shift
				cmd_check --run
			else
				cmd_check
			fi
			;;
		down) cmd_down ;;
		clean) cmd_clean ;;
		env) cmd_env ;;
		status) cmd_status ;;
		--run) die "--run belongs after check" ;;
		esac
	done
}

main "$@"
