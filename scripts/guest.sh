#!/usr/bin/env bash
# guest.sh: a cgroup v2 + systemd test machine for kubelet-rs, run under qemu.
#
# The host (and CI) is cgroup v1 without systemd; production nodes are cgroup v2 with
# systemd. This script builds a Debian 12 guest from Debian packages (systemd, containerd,
# runc, CNI plugins, the Debian kernel), boots it with qemu (no network device, the kernel
# given with -kernel/-initrd, systemd.unified_cgroup_hierarchy=1), and runs integration
# test executables inside it once per cgroup driver (cgroupfs, then systemd; containerd's
# SystemdCgroup follows the driver). Binaries, the images of the node environment and the
# results travel over a 9p share.
#
# Usage: scripts/guest.sh <command>...
#   image   build the guest image (skipped when current); cached in $KUBELET_GUEST_CACHE
#   build   cargo build the kubelet and the guest's test executables (debug)
#   run     boot the guest once per driver and run the tests; exit 1 if any failed
#   all     image build run (what scripts/test.sh runs)
#
# Environment:
#   KUBELET_GUEST_CACHE    image cache (default /var/cache/kubelet-rs/guest), outside the tree
#   KUBELET_GUEST_DRIVERS  drivers to run (default "cgroupfs systemd")
#   KUBELET_GUEST_TESTS    test executables and filters, "file[:filter]" separated by spaces
#                          (default: tests/cgroup_v2.rs and three tests of the host
#                          suite that pass under both drivers; see DEFAULT_TESTS)
#   KUBELET_GUEST_ACCEL    qemu accelerator (default tcg)
#   KUBELET_GUEST_TIMEOUT  seconds one boot may take before it is killed (default 900)
#   KUBELET_GUEST_CARGO_ARGS  what 'build' builds (default --workspace, as scripts/test.sh)
#   KUBELET_ENV_DIR        the node environment whose registry holds the images (.work/env)
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib.sh
source "$REPO_ROOT/scripts/lib.sh"
CACHE=${KUBELET_GUEST_CACHE:-/var/cache/kubelet-rs/guest}
DRIVERS=${KUBELET_GUEST_DRIVERS:-cgroupfs systemd}
# The guest set: every test here passes under both drivers (see docs/testing.md).
DEFAULT_TESTS="cgroup_v2 isolation:security_context_reaches_the_process
	isolation:admission_rejects_what_does_not_fit_and_never_starts_it
	housekeeping_eviction:memory_pressure_evicts_the_hog_and_refuses_best_effort_pods"
TESTS=${KUBELET_GUEST_TESTS:-$DEFAULT_TESTS}
ACCEL=${KUBELET_GUEST_ACCEL:-tcg}
BOOT_TIMEOUT=${KUBELET_GUEST_TIMEOUT:-900}
ENV_DIR=$(realpath -m "${KUBELET_ENV_DIR:-$REPO_ROOT/.work/env}")
SUITE=bookworm
IMAGE_SIZE=3G

# Everything the guest is made of. A change here (or to the image recipe below) rebuilds.
GUEST_PACKAGES=(systemd systemd-sysv dbus udev kmod linux-image-amd64 initramfs-tools
	containerd runc containernetworking-plugins docker-registry iptables iproute2 procps
	util-linux mount e2fsprogs)
HOST_PACKAGES=(qemu-system-x86 mmdebstrap e2fsprogs jq)

log() { printf 'guest: %s\n' "$*" >&2; }
die() {
	printf 'guest: error: %s\n' "$*" >&2
	exit 1
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

if [[ -d $HOME/.cargo/bin && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
	PATH="$HOME/.cargo/bin:$PATH"
fi

install_host_packages() {
	local missing
	mapfile -t missing < <(missing_packages "${HOST_PACKAGES[@]}")
	((${#missing[@]} == 0)) && return 0
	log "installing ${missing[*]}"
	apt_install "${missing[@]}" || die "apt-get failed ($?)"
}

# The unit that runs the tests at boot: mounts the share and runs its run.sh, then powers
# the machine off whatever happened (the host reads the results from the share).
guest_unit() {
	cat <<'EOF'
[Unit]
Description=kubelet-rs guest test run
After=basic.target dbus.service
Wants=dbus.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
StandardOutput=journal+console
StandardError=journal+console
ExecStart=/bin/sh -c 'mkdir -p /share && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /share && exec /bin/bash /share/run.sh'
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
}

image_recipe() {
	printf '%s\n' "$SUITE" "$IMAGE_SIZE" "${GUEST_PACKAGES[@]}"
	guest_unit
	declare -f build_image
}

image_stamp() { image_recipe | sha256sum | cut -d' ' -f1; }

build_image() {
	local out=$1 root=$1/rootfs
	rm -rf "$out"
	mkdir -p "$out"
	mmdebstrap --variant=minbase --mode=root --format=directory \
		--include="$(
			IFS=,
			echo "${GUEST_PACKAGES[*]}"
		)" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--customize-hook='echo kubelet-rs-guest >"$1/etc/hostname"' \
		--customize-hook='printf "/dev/vda / ext4 rw,noatime 0 1\n" >"$1/etc/fstab"' \
		"$SUITE" "$root" >"$out/mmdebstrap.log" 2>&1 ||
		{
			tail -n 30 "$out/mmdebstrap.log" >&2
			die "mmdebstrap failed (log: $out/mmdebstrap.log)"
		}
	guest_unit >"$root/etc/systemd/system/kubelet-rs-guest.service"
	ln -sf /etc/systemd/system/kubelet-rs-guest.service \
		"$root/etc/systemd/system/multi-user.target.wants/kubelet-rs-guest.service"
	# The test run starts containerd and the registry itself, with the driver's settings.
	rm -f "$root/etc/systemd/system/multi-user.target.wants/containerd.service" \
		"$root/etc/systemd/system/multi-user.target.wants/docker-registry.service"
	# Nothing to wait for on a machine without a network or a login.
	for unit in systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer \
		e2scrub_all.timer fstrim.timer systemd-timesyncd.service getty@tty1.service \
		serial-getty@ttyS0.service; do
		ln -sf /dev/null "$root/etc/systemd/system/$unit"
	done
	cp -L "$root/vmlinuz" "$out/vmlinuz"
	cp -L "$root/initrd.img" "$out/initrd.img"
	mkfs.ext4 -q -F -L root -d "$root" "$out/rootfs.img" "$IMAGE_SIZE"
	rm -rf "$root"
}

cmd_image() {
	[[ $(id -u) == 0 ]] || die "'image' must run as root (mmdebstrap --mode=root)"
	install_host_packages
	local stamp t0
	stamp=$(image_stamp)
	if [[ -f $CACHE/image/stamp && "$(<"$CACHE/image/stamp")" == "$stamp" ]]; then
		log "image: current ($CACHE/image)"
		return 0
	fi
	mkdir -p "$CACHE"
	exec 8>"$CACHE/.lock"
	flock -w 1800 8 || die "another guest.sh holds $CACHE/.lock"
	if [[ -f $CACHE/image/stamp && "$(<"$CACHE/image/stamp")" == "$stamp" ]]; then
		log "image: current ($CACHE/image)"
		return 0
	fi
	log "image: building Debian $SUITE guest in $CACHE (a few minutes)"
	t0=$(now_ms)
	build_image "$CACHE/image.new"
	echo "$stamp" >"$CACHE/image.new/stamp"
	rm -rf "$CACHE/image"
	mv "$CACHE/image.new" "$CACHE/image"
	log "image: built in $((($(now_ms) - t0) / 1000)) s"
}

# ---------------------------------------------------------------------------------------
# build: the kubelet and the test executables, as the host's cargo test builds them.

TEST_EXES="$REPO_ROOT/target/debug/guest-tests"

cmd_build() {
	# The whole workspace, as scripts/test.sh builds it: the same features, so nothing is
	# built twice. Test executables are listed by name, the kubelet is target/debug/kubelet.
	local args
	read -ra args <<<"${KUBELET_GUEST_CARGO_ARGS:---workspace}"
	log "build: cargo test --no-run ${args[*]}"
	cargo test --no-run --message-format=json "${args[@]}" |
		jq -r 'select(.reason == "compiler-artifact" and .executable != null
			and .target.kind == ["test"]) | "\(.target.name) \(.executable)"' >"$TEST_EXES.new"
	mv "$TEST_EXES.new" "$TEST_EXES"
	[[ -x $REPO_ROOT/target/debug/kubelet ]] || die "build: no target/debug/kubelet"
}

# ---------------------------------------------------------------------------------------
# run

# The script the guest runs from the share (its own copy per boot).
guest_run_script() {
	cat <<'EOF'
#!/bin/bash
# Runs inside the guest (kubelet-rs-guest.service): set up containerd for the driver named
# in /share/driver, then run each test executable; results go to /share/results.
set -uo pipefail
S=/share
R=$S/results
mkdir -p "$R"
exec > >(tee -a "$R/guest.log") 2>&1
driver=$(<"$S/driver")
echo "guest: up after $(cut -d' ' -f1 /proc/uptime) s, driver $driver, $(stat -fc %T /sys/fs/cgroup)"
systemd_cgroup=false
[[ $driver == systemd ]] && systemd_cgroup=true

mkdir -p /etc/containerd /etc/cni/net.d /etc/containerd/certs.d
for host in docker.io registry.k8s.io; do
	mkdir -p "/etc/containerd/certs.d/$host"
	printf '%s\n' 'server = "http://127.0.0.1:5000"' '[host."http://127.0.0.1:5000"]' \
		'  capabilities = ["pull", "resolve"]' '  skip_verify = true' \
		>"/etc/containerd/certs.d/$host/hosts.toml"
done
cat >/etc/containerd/config.toml <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = $systemd_cgroup
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
TOML
cat >/etc/cni/net.d/10-kubelet-rs.conflist <<'JSON'
{"cniVersion": "1.0.0", "name": "kubelet-rs", "plugins": [
 {"type": "bridge", "bridge": "kubeletrs0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
 {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}]}
JSON
ip link set lo up

# The node environment's registry storage, served on the guest's loopback.
mkdir -p /var/lib/registry
cp -a "$S/registry/." /var/lib/registry/
cat >/etc/docker/registry/config.yml <<'YAML'
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: /var/lib/registry}}
http: {addr: "127.0.0.1:5000"}
YAML
systemctl start docker-registry containerd
for _ in $(seq 300); do
	ctr version >/dev/null 2>&1 && (exec 3<>/dev/tcp/127.0.0.1/5000) 2>/dev/null && break
	sleep 0.2
done
echo "guest: containerd and registry up after $(cut -d' ' -f1 /proc/uptime) s"

# The test executables name the kubelet by its host path: put it there.
while read -r path; do
	mkdir -p "$(dirname "$path")"
	ln -sf "$S/bin/kubelet" "$path"
done <"$S/kubelet-paths"

export CONTAINER_RUNTIME_ENDPOINT=unix:///run/containerd/containerd.sock
export CONTAINERD_ADDRESS=/run/containerd/containerd.sock
export KUBELET_TEST_CGROUP_DRIVER=$driver
export KUBELET_TEST_TIMEOUT_SCALE=${KUBELET_TEST_TIMEOUT_SCALE:-4}
export RUST_BACKTRACE=1
cd /tmp
status=0
while read -r name filter; do
	start=$(cut -d' ' -f1 /proc/uptime)
	out="$R/$name${filter:+-$filter}.out"
	"$S/bin/$name" --include-ignored --test-threads=1 ${filter:+"$filter"} >"$out" 2>&1
	rc=$?
	end=$(cut -d' ' -f1 /proc/uptime)
	echo "guest: $name ${filter:+($filter) }exit $rc in $(awk -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", b - a}') s"
	grep -E '^test |^test result' "$out" || true
	((rc == 0)) || status=1
done <"$S/tests"
echo "$status" >"$R/status"
echo "guest: done after $(cut -d' ' -f1 /proc/uptime) s"
# Power off now: a clean shutdown waits 90 s for container processes that ignore
# SIGTERM (a failed test may leave pods behind). The results are on the share already.
sync
echo 1 >/proc/sys/kernel/sysrq
echo o >/proc/sysrq-trigger
EOF
}

# run_driver <driver>: one boot; prints the guest's summary; returns the tests' status
run_driver() {
	local driver=$1 run share t0 rc=0 status
	run="$CACHE/runs/$$-$driver"
	share="$run/share"
	rm -rf "$run"
	mkdir -p "$share/bin" "$share/results" "$share/registry"
	echo "$driver" >"$share/driver"
	guest_run_script >"$share/run.sh"
	cp "$REPO_ROOT/target/debug/kubelet" "$share/bin/kubelet"
	: >"$share/tests"
	: >"$share/kubelet-paths"
	echo "$REPO_ROOT/target/debug/kubelet" >>"$share/kubelet-paths"
	local entry name filter exe
	for entry in $TESTS; do
		name=${entry%%:*}
		filter=
		[[ $entry == *:* ]] && filter=${entry#*:}
		exe=$(awk -v n="$name" '$1 == n {print $2}' "$TEST_EXES")
		[[ -n $exe ]] || die "no test executable '$name' (run '$0 build')"
		cp "$exe" "$share/bin/$name"
		echo "$name $filter" >>"$share/tests"
	done
	cp -a "$ENV_DIR/registry/data/." "$share/registry/"
	t0=$(now_ms)
	timeout --kill-after=10 "$BOOT_TIMEOUT" qemu-system-x86_64 \
		-accel "$ACCEL" -machine q35 -cpu max -smp 2 -m 3072 \
		-nographic -no-reboot -nic none \
		-kernel "$CACHE/image/vmlinuz" -initrd "$CACHE/image/initrd.img" \
		-append "console=ttyS0 root=/dev/vda rw systemd.unified_cgroup_hierarchy=1 psi=1 panic=-1 quiet systemd.show_status=0 loglevel=3" \
		-drive "file=$CACHE/image/rootfs.img,format=raw,if=virtio,cache=unsafe,snapshot=on" \
		-virtfs "local,path=$share,mount_tag=share,security_model=none" \
		</dev/null >"$run/console.log" 2>&1 || rc=$?
	log "$driver: qemu exited $rc after $((($(now_ms) - t0) / 1000)) s (console: $run/console.log)"
	grep -hE '^(guest: |test )' "$share/results/guest.log" 2>/dev/null |
		sed -e "s/^guest: /guest[$driver]: /" -e "s/^test /guest[$driver]:   test /" >&2 || true
	# The copies of binaries and images are not needed any more; results and console stay.
	rm -rf "$share/bin" "$share/registry"
	status=$(cat "$share/results/status" 2>/dev/null || echo missing)
	if [[ $status != 0 ]]; then
		log "$driver: FAILED (status $status); test output in $share/results"
		local f
		for f in "$share/results/"*.out; do
			[[ -f $f ]] && tail -n 80 "$f" >&2
		done
		[[ -f $share/results/guest.log ]] || tail -n 40 "$run/console.log" >&2
		return 1
	fi
	return 0
}

cmd_run() {
	[[ -f $CACHE/image/stamp ]] || die "no guest image in $CACHE: run '$0 image'"
	[[ -f $TEST_EXES ]] || die "no test executables: run '$0 build'"
	[[ -d $ENV_DIR/registry/data ]] || die "no registry data in $ENV_DIR: run 'make env'"
	mkdir -p "$CACHE/runs"
	# Runs of earlier invocations (named <pid>-<driver>) whose process is gone.
	local dir pid
	for dir in "$CACHE/runs"/*-*; do
		[[ -d $dir ]] || continue
		pid=${dir##*/}
		pid=${pid%%-*}
		[[ $pid == "$$" || -d /proc/$pid ]] || rm -rf "$dir"
	done
	local driver failed=()
	for driver in $DRIVERS; do
		run_driver "$driver" || failed+=("$driver")
	done
	((${#failed[@]} == 0)) || die "guest tests failed under: ${failed[*]}"
	log "guest tests passed under: $DRIVERS"
}

main() {
	(($# > 0)) || set -- all
	local cmd
	for cmd in "$@"; do
		case $cmd in
		image) cmd_image ;;
		build) cmd_build ;;
		run) cmd_run ;;
		all)
			cmd_image
			cmd_build
			cmd_run
			;;
		-h | --help | help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
		*) die "unknown command '$cmd'" ;;
		esac
	done
}

main "$@"
