#!/usr/bin/env bash
# Fails when a test, benchmark or script of the project reads the workspace's ../shared directory,
# which a clone of the repository does not have: the suite must pass from a plain clone, so the
# project keeps its own copy of every table and capture it tests against.
#
# Allowed, listed below with the reason: tools that regenerate an in-repo copy from ../shared (run
# by hand, never by the suite), and optional conformance checks that need a large third-party
# bundle and say they are skipped, and why, when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."

allowed=(
    # Regenerate tests/vectors/*.bin from the captures; the suite reads only the .bin files.
    crates/iscsi-proto/tests/vectors/extract.sh
    crates/isns-proto/tests/vectors/extract.sh
    # The optional conformance check: DMTF's Redfish validator needs DMTF's schema bundle (too
    # large to copy, and DMTF's to publish); without it the test says it is skipped, and why.
    crates/vdsd/tests/redfish.rs
    # This check, which names the directory it looks for.
    scripts/self-contained.sh
)

is_allowed() {
    local f
    for f in "${allowed[@]}"; do [[ $1 == "$f" ]] && return 0; done
    return 1
}

# Code lines (not comments) that name the shared directory: `../shared`, or a path into one of its
# parts (reference/, fixtures/, seed/, redfish/, STYLE.md).
pattern='(\.\./)+shared([/"'"'"']|$)|shared/(reference|fixtures|seed|redfish)/|shared/STYLE\.md'
bad=0
while IFS= read -r -d '' file; do
    is_allowed "$file" && continue
    case $file in
        *.rs) comment='//' ;;
        *) comment='#' ;;
    esac
    hits=$(grep -nE "$pattern" "$file" | grep -vE "^[0-9]+:[[:space:]]*$comment" || true)
    if [[ -n $hits ]]; then
        while IFS= read -r hit; do
            echo "self-contained: $file:${hit%%:*} reads ../shared, which a clone does not have" >&2
        done <<<"$hits"
        bad=1
    fi
done < <(git ls-files -z --cached --others --exclude-standard -- \
    '*.rs' '*.sh' '*.py' '*.toml' 'bench/*' '.ci/*' 'scripts/*')

if [[ $bad -ne 0 ]]; then
    echo "self-contained: copy what the test needs into the repository (see crates/vds-model/tests/data)" >&2
    exit 1
fi
echo "self-contained: no test, benchmark or script reads ../shared"
