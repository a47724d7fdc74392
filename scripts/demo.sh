#!/usr/bin/env bash
# The one-command real demo of vdsadm, on a fresh Debian 12, as root:
#   installs the dependencies, builds vdsadm (release), starts a private tgtd on loopback
#   (127.0.0.1:13260, 127.0.0.2:13260, 127.0.0.1:13261, [::1]:13260; its own control socket and
#   control number, so it cannot clash with a system tgtd on 3260), creates three targets,
#   registers the array with `vdsadm subsystem add` (store in a temp dir), lists its portals,
#   targets and portal groups, and stops the tgtd it started, and only that one, even on failure.
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

say "Building vdsadm (release)"
( cd "$ROOT" && run cargo build --release -p vdsadm )
VDSADM="${CARGO_TARGET_DIR:-$ROOT/target}/release/vdsadm"

WORK=$(mktemp -d /tmp/vds-demo.XXXXXX)
export TGT_IPC_SOCKET="$WORK/tgtd.sock"   # tgtd and tgtadm both read it
STORE="$WORK/store"
TGTD_PID=""

tgtadm_() { tgtadm -C "$CONTROL" "$@"; }

stop_tgtd() {
    [ -n "$TGTD_PID" ] || return 0
    say "Stopping the tgtd this demo started (pid $TGTD_PID)"
    local tid
    for tid in $(seq 1 ${#TARGETS[@]}); do
        tgtadm_ --lld iscsi --op delete --force --mode target --tid "$tid" 2>/dev/null || true
    done
    tgtadm_ --op delete --mode system 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$TGTD_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$TGTD_PID" 2>/dev/null; then
        echo "tgtd did not stop cleanly: SIGKILL to pid $TGTD_PID"
        kill -KILL "$TGTD_PID" 2>/dev/null || true
    fi
    wait "$TGTD_PID" 2>/dev/null || true
    TGTD_PID=""
}
cleanup() {
    local rc=$?
    stop_tgtd
    rm -rf "$WORK"
    [ "$rc" = 0 ] && say "Done." || echo "demo.sh: failed (exit $rc); tgtd stopped, $WORK removed" >&2
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
