# lib.sh: helpers shared by scripts/node-env.sh and scripts/guest.sh (sourced, not run).

# missing_packages <pkg>...: prints, one per line, the packages dpkg does not have installed
missing_packages() {
	local pkg status
	declare -A installed=()
	while read -r pkg status; do
		[[ $status == installed ]] && installed[$pkg]=1
	done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true)
	for pkg in "$@"; do
		[[ -n ${installed[$pkg]:-} ]] || printf '%s\n' "$pkg"
	done
}

# apt_install <pkg>...: installs quietly, without recommends. Debian starts services from
# postinst scripts (docker-registry would take :5000 on all interfaces): that is denied for
# the duration of the install, unless a policy already exists. Returns apt-get's status.
apt_install() {
	local policy=/usr/sbin/policy-rc.d own_policy='' rc=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		own_policy=1
	fi
	{
		DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
				-o Dpkg::Use-Pty=0 "$@" >/dev/null
	} || rc=$?
	[[ -z $own_policy ]] || rm -f "$policy"
	return "$rc"
}
