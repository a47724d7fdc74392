#!/usr/bin/env bash
# The one-command real demo of vdsadm and vdsd, on a fresh Debian 12, as root:
#   installs the dependencies, builds vdsadm and vdsd (release), starts a private tgtd on loopback
#   (127.0.0.1:13260, 127.0.0.2:13260, 127.0.0.1:13261, [::1]:13260; its own control socket and
#   control number, so it cannot clash with a system tgtd on 3260), creates three targets,
#   registers the array with `vdsadm subsystem add` (store in a temp dir), lists its portals,
#   targets and portal groups; then starts vdsd over the same store, listens on /v1/events with
#   curl, takes a portal away on tgtd, refreshes through the daemon and shows the PORTAL_MODIFY
#   event arriving. It stops what it started (curl, vdsd, tgtd), by PID, and only those, even on
#   failure.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CONTROL=${DEMO_TGT_CONTROL:-47}
PORTALS=(127.0.0.1:13260 127.0.0.2:13260 127.0.0.1:13261 "[::1]:13260")
TARGETS=(iqn.2026-11.demo.vds:db iqn.2026-11.demo.vds:web iqn.2026-11.demo.vds:scratch)

say()  { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run()  { printf '$ %s\n' "$*"; "$@"; }

if [ "$(id -u)" != 0 ]; then
    echo "demo.sh: run as root (tgtd and the package installation need it)" >&2
    exit 1
fi

say "Installing dependencies (scripts/install-deps.sh)"
bash "$ROOT/scripts/install-deps.sh"

say "Building vdsadm and vdsd (release)"
( cd "$ROOT" && run cargo build --release -p vdsadm -p vdsd )
VDSADM="${CARGO_TARGET_DIR:-$ROOT/target}/release/vdsadm"
VDSD="${CARGO_TARGET_DIR:-$ROOT/target}/release/vdsd"

WORK=$(mktemp -d /tmp/vds-demo.XXXXXX)
export TGT_IPC_SOCKET="$WORK/tgtd.sock"   # tgtd and tgtadm both read it
STORE="$WORK/store"
SOCK="$WORK/vdsd.sock"
TGTD_PID=""
VDSD_PID=""
CURL_PID=""

tgtadm_() { tgtadm -C "$CONTROL" "$@"; }

# Waits up to $3 tenths of a second for process $2 (one this demo started) to exit, then SIGKILLs
# it.
reap() {
    local name=$1 pid=$2 tenths=$3
    for _ in $(seq "$tenths"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "$name did not stop cleanly: SIGKILL to pid $pid"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
stop_tgtd() {
    [ -n "$TGTD_PID" ] || return 0
    say "Stopping the tgtd this demo started (pid $TGTD_PID)"
    local tid
    for tid in $(seq 1 ${#TARGETS[@]}); do
        tgtadm_ --lld iscsi --op delete --force --mode target --tid "$tid" 2>/dev/null || true
    done
    tgtadm_ --op delete --mode system 2>/dev/null || true
    reap tgtd "$TGTD_PID" 50
    TGTD_PID=""
}
# Stops one process this demo started: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    [ -n "$2" ] || return 0
    kill -TERM "$2" 2>/dev/null || true
    reap "$1" "$2" 100
}
cleanup() {
    local rc=$?
    stop_pid curl "$CURL_PID"
    stop_pid vdsd "$VDSD_PID"
    stop_tgtd
    rm -rf "$WORK"
    [ "$rc" = 0 ] && say "Done." || echo "demo.sh: failed (exit $rc); everything it started stopped, $WORK removed" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "Starting tgtd on ${PORTALS[*]} (control $CONTROL, socket $TGT_IPC_SOCKET)"
PORTAL_ARG=$(printf 'portal=%s,' "${PORTALS[@]}")
printf '$ tgtd -f -C %s --iscsi %s &\n' "$CONTROL" "${PORTAL_ARG%,}"
tgtd -f -C "$CONTROL" --iscsi "${PORTAL_ARG%,}" >"$WORK/tgtd.log" 2>&1 &
TGTD_PID=$!
for _ in $(seq 100); do
    tgtadm_ --lld iscsi --mode portal --op show >/dev/null 2>&1 && break
    kill -0 "$TGTD_PID" 2>/dev/null || { cat "$WORK/tgtd.log" >&2; exit 1; }
    sleep 0.05
done
run tgtadm -C "$CONTROL" --lld iscsi --mode portal --op show

say "Creating ${#TARGETS[@]} targets, each with a 64 MiB LUN"
tid=0
for iqn in "${TARGETS[@]}"; do
    tid=$((tid + 1))
    truncate -s 64M "$WORK/lun$tid.img"
    run tgtadm -C "$CONTROL" --lld iscsi --op new --mode target --tid "$tid" --targetname "$iqn"
    tgtadm_ --lld iscsi --op new --mode logicalunit --tid "$tid" --lun 1 --backing-store "$WORK/lun$tid.img"
    tgtadm_ --lld iscsi --op bind --mode target --tid "$tid" --initiator-address ALL
done

say "One-shot SendTargets discovery through IPv6 (touches no store)"
run "$VDSADM" discover "[::1]:13260"

say "Registering the array as subsystem \"demo\" (store: $STORE)"
ADD=("$VDSADM" --store "$STORE" subsystem add demo)
for p in "${PORTALS[@]}"; do ADD+=(--portal "$p"); done
run "${ADD[@]}"

say "Its target portals (QueryPortals + GetProperties), DiskRAID style"
run "$VDSADM" --store "$STORE" list tportals --subsystem demo

say "Its targets"
run "$VDSADM" --store "$STORE" list targets --subsystem demo

say "The portal groups of ${TARGETS[0]} (tgt has one group, tag 1, on every portal)"
run "$VDSADM" --store "$STORE" list tpgroups --subsystem demo --target "${TARGETS[0]}"

say "The same portals as JSON"
run "$VDSADM" --store "$STORE" --json list tportals --subsystem demo

say "A portal removed at runtime shows OFFLINE after a refresh"
run tgtadm -C "$CONTROL" --lld iscsi --op delete --mode portal --param portal=127.0.0.2:13260
run "$VDSADM" --store "$STORE" refresh
run "$VDSADM" --store "$STORE" list tportals --subsystem demo

say "The daemon: vdsd serves the same store on a Unix socket ($SOCK)"
printf '$ vdsd --store %s --socket %s --refresh-interval 0s &\n' "$STORE" "$SOCK"
"$VDSD" --store "$STORE" --socket "$SOCK" --refresh-interval 0s >"$WORK/vdsd.log" 2>&1 &
VDSD_PID=$!
api() { curl -sS --max-time 60 --unix-socket "$SOCK" "$@"; }
for _ in $(seq 100); do
    api -o /dev/null http://vds/v1/service 2>/dev/null && break
    kill -0 "$VDSD_PID" 2>/dev/null || { cat "$WORK/vdsd.log" >&2; exit 1; }
    sleep 0.1
done
api -o /dev/null http://vds/v1/service || { cat "$WORK/vdsd.log" >&2; exit 1; }
run curl -sS --unix-socket "$SOCK" http://vds/v1/subsystems/demo/portals
echo

say "A client listens for notifications (GET /v1/events, server-sent events)"
printf '$ curl -N --unix-socket %s http://vds/v1/events &\n' "$SOCK"
curl -sSN --unix-socket "$SOCK" -D "$WORK/events.head" -o "$WORK/events.txt" http://vds/v1/events &
CURL_PID=$!
for _ in $(seq 100); do
    grep -q '^HTTP/1.1 200' "$WORK/events.head" 2>/dev/null && break
    sleep 0.1
done
grep -q '^HTTP/1.1 200' "$WORK/events.head" || { echo "the event stream did not open" >&2; exit 1; }

say "Portal 127.0.0.1:13261 goes away on the array; the daemon refreshes"
run tgtadm -C "$CONTROL" --lld iscsi --op delete --mode portal --param portal=127.0.0.1:13261
run curl -sS --unix-socket "$SOCK" -X POST "http://vds/v1/subsystems/demo/refresh?wait=30"
echo

say "The event arrives: PORTAL_MODIFY (VDS_NF_PORTAL_MODIFY 125) for that portal"
for _ in $(seq 300); do
    grep -q PORTAL_MODIFY "$WORK/events.txt" 2>/dev/null && break
    sleep 0.1
done
grep -q PORTAL_MODIFY "$WORK/events.txt" || { echo "no PORTAL_MODIFY within 30 s" >&2; exit 1; }
cat "$WORK/events.txt"
say "As in VDS the event carries ids: the client reads the portal again"
run curl -sS --unix-socket "$SOCK" "http://vds/v1/subsystems/demo/portals/127.0.0.1%3A13261"
echo
stop_pid curl "$CURL_PID"
CURL_PID=""
say "Stopping vdsd (SIGTERM to pid $VDSD_PID: it ends the streams and exits)"
stop_pid vdsd "$VDSD_PID"
VDSD_PID=""
