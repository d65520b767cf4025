#!/usr/bin/env bash
# W6 with the D-Bus probe active: `backwork daemon` on the host probe, following
# NetworkManager, UPower and logind (python-dbusmock's templates on a private dbus-daemon named
# by DBUS_SYSTEM_BUS_ADDRESS), with JOBS jobs due in 3 h, left idle for SECS seconds. Prints the
# voluntary context switches of every daemon thread over that time (/proc/PID/task/*/status):
# DESIGN §9's W6 target is 0 scheduler wake-ups — the D-Bus layer must add no polling.
#
#   benches/idle-dbus.sh [BACKWORK_BINARY] [SECS] [JOBS]
#
# With NOISE=N, the bus is busy meanwhile as a real one is: N clients come and go (each an
# owner change on the bus) and NetworkManager signals N access-point changes (a Wi-Fi scan) —
# none of which the daemon reads, so it should not wake for them either.
#
# Needs dbus-daemon and python3-dbusmock (.ci/run installs both), and busctl (systemd) for NOISE.
set -euo pipefail
bin=$(realpath "${1:-target/release/backwork}")
secs=${2:-60}
jobs=${3:-100}
dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

dbus-daemon --session --nofork --print-address=3 3>"$dir/address" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/address" ] && break; sleep 0.05; done
address=$(head -n1 "$dir/address")
export DBUS_SYSTEM_BUS_ADDRESS=$address

python=
for p in python3 /usr/bin/python3; do
	if "$p" -c "import dbusmock" 2>/dev/null; then python=$p; break; fi
done
[ -n "$python" ] || { echo "python-dbusmock is not installed (apt-get install python3-dbusmock)" >&2; exit 1; }

owned() {
	dbus-send --bus="$address" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
		org.freedesktop.DBus.NameHasOwner "string:$1" 2>/dev/null | grep -q "boolean true"
}
for spec in "networkmanager org.freedesktop.NetworkManager" \
	"upower org.freedesktop.UPower" "logind org.freedesktop.login1"; do
	set -- $spec
	"$python" -m dbusmock --template "$1" >"$dir/$1.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 200); do owned "$2" && break; sleep 0.05; done
	owned "$2" || { echo "dbusmock's $1 template did not start (see $dir/$1.log)" >&2; exit 1; }
done

export BACKWORK_STORE=$dir/store.redb BACKWORK_SOCKET=$dir/control.sock
"$bin" daemon >"$dir/daemon.log" 2>&1 &
daemon=$!
pids+=($daemon)
for _ in $(seq 200); do [ -S "$BACKWORK_SOCKET" ] && break; sleep 0.05; done
grep -q "network_manager=true upower=true logind=true" "$dir/daemon.log" || {
	echo "the daemon does not follow all three services:" >&2
	cat "$dir/daemon.log" >&2
	exit 1
}
for i in $(seq "$jobs"); do "$bin" add --in 3h -- true >/dev/null; done
# tokio's blocking threads (the store's commits) exit after 10 s idle: let them go first
sleep 12

declare -A before
for s in /proc/"$daemon"/task/*/status; do
	t=${s%/status}
	before[${t##*/}]=$(awk '/^voluntary_ctxt_switches:/ {print $2}' "$s")
done
threads0=${#before[@]}
noise=${NOISE:-0}
if [ "$noise" -gt 0 ]; then
	for n in $(seq "$noise"); do
		dbus-send --bus="$address" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
			org.freedesktop.DBus.GetId >/dev/null
		busctl --address="$address" call org.freedesktop.NetworkManager /org/freedesktop/NetworkManager \
			org.freedesktop.DBus.Mock EmitSignalDetailed 'sssava{sv}' \
			org.freedesktop.DBus.Properties PropertiesChanged 'sa{sv}as' \
			3 s org.freedesktop.NetworkManager.AccessPoint 'a{sv}' 1 Strength y 50 as 0 \
			1 path s "/org/freedesktop/NetworkManager/AccessPoint/$n" >/dev/null
	done
fi
sleep "$secs"
total=0
threads1=0
for s in /proc/"$daemon"/task/*/status; do
	t=${s%/status}
	v=$(awk '/^voluntary_ctxt_switches:/ {print $2}' "$s")
	total=$((total + v - ${before[${t##*/}]:-0}))
	threads1=$((threads1 + 1))
done
echo "W6 with D-Bus (NetworkManager, UPower, logind mocked; ${noise} clients and access-point signals meanwhile): idle ${secs} s with ${jobs} jobs due in 3 h: ${total} voluntary context switches in the daemon's ${threads1} threads (${threads0} before) (target 0)"
