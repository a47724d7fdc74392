#!/usr/bin/env bash
# Installs what vds's tests, benchmarks and demo need on Debian 12, as root:
# the real iSCSI peers (tgt, istgt, open-isns), the reference initiator (libiscsi-bin), Prometheus
# and promtool (the daemon's metrics tests; the package's own service is not started),
# capture and measurement tools (tshark, hyperfine, valgrind), the Python tools of the Redfish and
# OpenAPI tests (in a venv, /opt/vds-test-venv or $VDS_TEST_VENV), and rustup's clippy + rustfmt.
#
# Idempotent: when every program is already there it does not touch apt at all.
# The packages' own services are not started (a policy-rc.d denies it for the duration of the
# install, unless one exists already): tests start private instances on loopback themselves.
set -euo pipefail

say() { printf 'install-deps: %s\n' "$*"; }
die() { printf 'install-deps: ERROR: %s\n' "$*" >&2; exit 1; }

# program -> Debian package that provides it
PROGRAMS=(
    "tgtd:tgt"
    "tgtadm:tgt"
    "istgt:istgt"
    "iscsi-ls:libiscsi-bin"
    "iscsi-inq:libiscsi-bin"
    "isnsadm:open-isns-utils"
    "isnsd:open-isns-server"
    "tshark:tshark"
    "editcap:wireshark-common"
    "hyperfine:hyperfine"
    "/usr/bin/time:time"
    "valgrind:valgrind"
    "ip:iproute2"
    "strace:strace"
    "cc:gcc"
    "curl:curl"
    "setpriv:util-linux"
    "prometheus:prometheus"
    "promtool:prometheus"
    "unshare:util-linux"
    "nsenter:util-linux"
)

have() {
    # sbin may be missing from a non-root PATH; the daemons live there.
    PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1
}

missing_pkgs=()
for entry in "${PROGRAMS[@]}"; do
    prog=${entry%%:*}
    pkg=${entry#*:}
    if ! have "$prog"; then
        say "missing: $prog (package $pkg)"
        case " ${missing_pkgs[*]-} " in
            *" $pkg "*) ;;
            *) missing_pkgs+=("$pkg") ;;
        esac
    fi
done
# gcc alone does not bring the C library headers a build script may need.
if have cc && ! dpkg-query -W -f='${Status}' libc6-dev 2>/dev/null | grep -q 'ok installed'; then
    missing_pkgs+=(libc6-dev)
fi

if [ ${#missing_pkgs[@]} -eq 0 ]; then
    say "all programs present; skipping apt"
else
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing_pkgs[*]}"
    command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian 12"
    export DEBIAN_FRONTEND=noninteractive

    # tshark asks whether non-root users may capture; answer "no" up front.
    say "preseeding wireshark-common/install-setuid=false"
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections

    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        say "temporarily denying service start-up ($policy)"
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi

    say "apt-get update"
    apt-get update
    say "apt-get install ${missing_pkgs[*]}"
    apt-get install -y --no-install-recommends "${missing_pkgs[@]}"

    for entry in "${PROGRAMS[@]}"; do
        prog=${entry%%:*}
        have "$prog" || die "$prog still missing after installing ${entry#*:}"
    done
    say "packages installed"
fi

# The Python tools the tests run, in a virtual environment of their own (never the system's
# site-packages): DMTF's Redfish Service Validator and the python-redfish-library it brings, and
# schemathesis (the daemon's OpenAPI document against the daemon).
venv=${VDS_TEST_VENV:-/opt/vds-test-venv}
py_tools=("redfish-service-validator==3.1.8" "schemathesis==4.32.5")
if [ -x "$venv/bin/rf_service_validator" ] && [ -x "$venv/bin/schemathesis" ]; then
    say "python tools present in $venv"
else
    if ! /usr/bin/python3 -m venv --help >/dev/null 2>&1 || ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
        [ "$(id -u)" -eq 0 ] || die "need root to install python3-venv"
        export DEBIAN_FRONTEND=noninteractive
        say "apt-get update"
        apt-get update
        say "apt-get install python3-venv"
        apt-get install -y --no-install-recommends python3-venv
    fi
    say "creating $venv (if missing) and installing ${py_tools[*]}"
    [ -x "$venv/bin/pip" ] || /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${py_tools[@]}"
    for tool in rf_service_validator schemathesis; do
        [ -x "$venv/bin/$tool" ] || die "$tool missing after pip install"
    done
fi

if command -v rustup >/dev/null 2>&1; then
    installed=$(rustup component list --installed 2>/dev/null || true)
    for comp in clippy rustfmt; do
        if printf '%s\n' "$installed" | grep -q "^$comp"; then
            say "rustup component $comp present"
        else
            say "rustup component add $comp"
            rustup component add "$comp"
        fi
    done
else
    say "rustup not found; skipping clippy/rustfmt"
fi
say "done"
