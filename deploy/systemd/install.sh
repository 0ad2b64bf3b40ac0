#!/bin/sh
# Installs, upgrades and uninstalls VoltageEMS on a Linux box without containers
# (docs/deploy.md, "Edge without containers").
#
#   install.sh install   [--root DIR] [--bin-dir DIR] [--arch ARCH] [--config-from DIR] [--no-start]
#   install.sh upgrade   [--root DIR] [--bin-dir DIR] [--arch ARCH] [--no-start]
#   install.sh uninstall [--root DIR] [--purge] [--no-start]
#
# What goes where (below --root, default /):
#   /usr/local/bin/                 voltage-edge, voltage-cloud, voltctl and the single
#                                   services, whichever --bin-dir holds
#   /usr/local/lib/voltage/         installed-files (what uninstall removes) and
#                                   previous/ (the binaries an upgrade replaced)
#   /etc/systemd/system/            voltage-edge.service, voltage-cloud.service, voltage@.service
#   /etc/voltage/                   the site config (seeded once from --config-from;
#                                   never overwritten) and voltage.env (environment)
#   /var/lib/voltage/               data: history, spools, JetStream (owned by voltage)
#
# A system user and group "voltage" run the services. install and upgrade enable
# and (re)start the unit of the role found in --bin-dir (voltage-edge, else
# voltage-cloud) when --root is / and systemctl exists; --no-start leaves systemd
# alone. uninstall removes the binaries and units and keeps /etc/voltage and
# /var/lib/voltage; --purge removes them and the user too.
#
# --bin-dir holds the binaries either as `go tool task build` names them (./bin/
# voltage-edge) or as `task release` does (./dist/voltage-edge-linux-arm64, picked
# by --arch, default the machine's).
set -eu

me=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "$me: $*" >&2; exit 1; }
say() { echo "$me: $*"; }

# The binaries this script knows, in the order they are looked for.
BINARIES="voltage-edge voltage-cloud voltctl comsrv modsrv rulesrv hissrv apigateway netsrv alarmsrv voltsim"
UNITS="voltage-edge.service voltage-cloud.service voltage@.service"
USER_NAME=voltage

usage() {
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
}

[ $# -ge 1 ] || usage
action=$1
shift
root=/
bin_dir=
arch=
config_from=
purge=no
start=yes
while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || die "--root needs a folder"; root=$2; shift 2 ;;
	--root=*) root=${1#--root=}; shift ;;
	--bin-dir) [ $# -ge 2 ] || die "--bin-dir needs a folder"; bin_dir=$2; shift 2 ;;
	--bin-dir=*) bin_dir=${1#--bin-dir=}; shift ;;
	--arch) [ $# -ge 2 ] || die "--arch needs amd64, arm64 or armv7"; arch=$2; shift 2 ;;
	--arch=*) arch=${1#--arch=}; shift ;;
	--config-from) [ $# -ge 2 ] || die "--config-from needs a folder"; config_from=$2; shift 2 ;;
	--config-from=*) config_from=${1#--config-from=}; shift ;;
	--purge) purge=yes; shift ;;
	--no-start) start=no; shift ;;
	-h | --help) usage ;;
	*) die "unknown option $1 (see $me --help)" ;;
	esac
done

case $root in /*) ;; *) root=$(pwd)/$root ;; esac
root=${root%/}
[ -d "$root/" ] || die "--root $root is not a folder"
R=$root # prefix of every installed path ("" for the real root)

if [ -z "$arch" ]; then
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv7l | armv7*) arch=armv7 ;;
	*) arch=$(uname -m) ;;
	esac
fi

lib_dir=$R/usr/local/lib/voltage
manifest=$lib_dir/installed-files

# systemd is driven only on the real root.
use_systemd() { [ "$start" = yes ] && [ -z "$R" ] && command -v systemctl >/dev/null 2>&1; }

# find_binary NAME prints the path of NAME in bin_dir, or nothing.
find_binary() {
	for f in "$bin_dir/$1" "$bin_dir/$1-linux-$arch"; do
		if [ -f "$f" ]; then
			echo "$f"
			return
		fi
	done
}

ensure_user() {
	prefix=
	if [ -n "$R" ]; then
		prefix="--prefix $R"
		mkdir -p "$R/etc"
		for f in passwd group shadow gshadow; do [ -e "$R/etc/$f" ] || : >"$R/etc/$f"; done
	fi
	if ! grep -q "^$USER_NAME:" "$R/etc/group" 2>/dev/null; then
		# shellcheck disable=SC2086
		groupadd $prefix --system "$USER_NAME" || die "groupadd $USER_NAME failed"
	fi
	if ! grep -q "^$USER_NAME:" "$R/etc/passwd" 2>/dev/null; then
		# shellcheck disable=SC2086
		useradd $prefix --system --gid "$USER_NAME" --home-dir /var/lib/voltage --no-create-home \
			--shell /usr/sbin/nologin --comment "VoltageEMS" "$USER_NAME" || die "useradd $USER_NAME failed"
	fi
	# Serial lines (Modbus RTU) and GPIO chips, where the box has those groups.
	for g in dialout gpio; do
		if grep -q "^$g:" "$R/etc/group" 2>/dev/null; then
			# shellcheck disable=SC2086
			usermod $prefix -a -G "$g" "$USER_NAME" || die "usermod -a -G $g $USER_NAME failed"
		fi
	done
}

# ids prints "uid:gid" of the voltage user from the root's own passwd, so a staging
# root works without the user existing on this machine.
ids() {
	uid=$(awk -F: -v u="$USER_NAME" '$1 == u {print $3}' "$R/etc/passwd")
	gid=$(awk -F: -v u="$USER_NAME" '$1 == u {print $3}' "$R/etc/group")
	[ -n "$uid" ] && [ -n "$gid" ] || die "user $USER_NAME is missing in $R/etc/passwd"
	echo "$uid:$gid"
}

record() { echo "${1#"$R"}" >>"$manifest.new"; }

# install_binaries copies every known binary found in bin_dir, atomically (a
# running process keeps its old file), keeping the replaced one in previous/.
install_binaries() {
	[ -n "$bin_dir" ] || bin_dir=$here/../../bin
	[ -d "$bin_dir" ] || die "--bin-dir $bin_dir is not a folder (build with 'go tool task build' or 'go tool task release')"
	mkdir -p "$R/usr/local/bin" "$lib_dir/previous"
	found=
	for b in $BINARIES; do
		src=$(find_binary "$b")
		[ -n "$src" ] || continue
		dst=$R/usr/local/bin/$b
		if [ -f "$dst" ]; then cp -p "$dst" "$lib_dir/previous/$b"; fi
		install -m 0755 "$src" "$dst.new"
		mv -f "$dst.new" "$dst"
		record "$dst"
		found="$found $b"
	done
	case $found in
	*voltage-edge* | *voltage-cloud* | *comsrv*) ;;
	*) die "no voltage-edge, voltage-cloud or service binary in $bin_dir (for $arch)" ;;
	esac
	say "binaries:$found"
}

install_units() {
	mkdir -p "$R/etc/systemd/system"
	for u in $UNITS; do
		[ -f "$here/$u" ] || die "unit $here/$u is missing"
		install -m 0644 "$here/$u" "$R/etc/systemd/system/$u"
		record "$R/etc/systemd/system/$u"
	done
}

# seed_config installs the site config once: an existing /etc/voltage is the
# operator's and is never touched.
seed_config() {
	owner=$(ids)
	if [ -e "$R/etc/voltage/site.yaml" ] || [ -e "$R/etc/voltage/cloud.yaml" ]; then
		say "keeping the config in $R/etc/voltage"
	else
		[ -n "$config_from" ] || config_from=$here/../../config
		if [ -d "$config_from" ]; then
			mkdir -p "$R/etc/voltage"
			cp -R "$config_from/." "$R/etc/voltage/"
			say "config seeded from $config_from"
		else
			mkdir -p "$R/etc/voltage"
			say "no config in $config_from: write $R/etc/voltage/site.yaml (docs/deploy.md)"
		fi
	fi
	if [ ! -e "$R/etc/voltage/voltage.env" ]; then
		cat >"$R/etc/voltage/voltage.env" <<'EOF'
# Environment of the VoltageEMS units (DESIGN §3 overrides), e.g.
# VOLTAGE_REDIS_URL=redis://127.0.0.1:6379/0
# VOLTAGE_NATS_LEAF_REMOTE=nats-leaf://SITE_ID:PASSWORD@hub.example:7422
# VOLTAGE_ADMIN_PASSWORD=...
EOF
		chmod 0640 "$R/etc/voltage/voltage.env"
	fi
	# root owns the config, the service reads it.
	chown -R "0:${owner#*:}" "$R/etc/voltage"
	find "$R/etc/voltage" -type d -exec chmod 0750 {} +
	find "$R/etc/voltage" -type f -exec chmod 0640 {} +
	mkdir -p "$R/var/lib/voltage"
	chown "$owner" "$R/var/lib/voltage"
	chmod 0750 "$R/var/lib/voltage"
}

# role_unit prints the unit to run: the appliance where it was installed.
role_unit() {
	if [ -x "$R/usr/local/bin/voltage-edge" ]; then
		echo voltage-edge.service
	elif [ -x "$R/usr/local/bin/voltage-cloud" ]; then
		echo voltage-cloud.service
	fi
}

finish_manifest() {
	sort -u "$manifest.new" >"$manifest"
	rm -f "$manifest.new"
}

do_install() {
	mkdir -p "$lib_dir"
	: >"$manifest.new"
	[ -f "$manifest" ] && cat "$manifest" >>"$manifest.new"
	ensure_user
	install_binaries
	install_units
	seed_config
	finish_manifest
	unit=$(role_unit)
	if use_systemd && [ -n "$unit" ]; then
		systemctl daemon-reload
		systemctl enable --now "$unit"
		say "started $unit"
	else
		say "installed into ${R:-/}; start with: systemctl enable --now $unit"
	fi
}

do_upgrade() {
	[ -f "$manifest" ] || die "nothing installed in ${R:-/} (no $manifest): run install first"
	: >"$manifest.new"
	cat "$manifest" >>"$manifest.new"
	ensure_user
	install_binaries
	install_units
	seed_config
	finish_manifest
	unit=$(role_unit)
	if use_systemd && [ -n "$unit" ]; then
		systemctl daemon-reload
		systemctl try-restart "$unit"
		say "restarted $unit (previous binaries in $lib_dir/previous)"
	else
		say "upgraded ${R:-/}; previous binaries in $lib_dir/previous"
	fi
}

do_uninstall() {
	[ -f "$manifest" ] || die "nothing installed in ${R:-/} (no $manifest)"
	if use_systemd; then
		for u in voltage-edge.service voltage-cloud.service; do
			systemctl disable --now "$u" 2>/dev/null || true
		done
		systemctl stop 'voltage@*.service' 2>/dev/null || true
	fi
	while IFS= read -r f; do
		case $f in /usr/local/bin/* | /etc/systemd/system/voltage*) rm -f "$R$f" ;; esac
	done <"$manifest"
	rm -rf "$lib_dir"
	if use_systemd; then systemctl daemon-reload; fi
	if [ "$purge" = yes ]; then
		rm -rf "$R/etc/voltage" "$R/var/lib/voltage"
		if grep -q "^$USER_NAME:" "$R/etc/passwd" 2>/dev/null; then
			if [ -n "$R" ]; then userdel --prefix "$R" "$USER_NAME"; else userdel "$USER_NAME"; fi
		fi
		if grep -q "^$USER_NAME:" "$R/etc/group" 2>/dev/null; then
			if [ -n "$R" ]; then groupdel --prefix "$R" "$USER_NAME"; else groupdel "$USER_NAME"; fi
		fi
		say "removed VoltageEMS, its config, data and user from ${R:-/}"
	else
		say "removed VoltageEMS from ${R:-/}; kept $R/etc/voltage and $R/var/lib/voltage (--purge removes them)"
	fi
}

[ "$(id -u)" = 0 ] || die "run as root (it creates a user and writes below ${R:-/})"
case $action in
install) do_install ;;
upgrade) do_upgrade ;;
uninstall) do_uninstall ;;
-h | --help | help) usage ;;
*) die "unknown action $action (install, upgrade or uninstall)" ;;
esac
