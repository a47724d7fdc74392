#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine as root: installs what the tests need (tgt,
# istgt, libiscsi-bin, tshark, ...), then checks formatting and lints and runs every test, including
# the ones against real tgtd and istgt on loopback. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> installing test dependencies"
scripts/install-deps.sh

echo "==> nothing reads ../shared (the suite passes from a plain clone)"
scripts/self-contained.sh

# A clean clone builds once: incremental compilation's caches would only take disk (3 GB) and time.
if [[ "${CI:-}" == true ]]; then
    export CARGO_INCREMENTAL=0
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

echo "==> cargo test"
cargo test --workspace --no-fail-fast
