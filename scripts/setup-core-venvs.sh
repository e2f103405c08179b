#!/usr/bin/env bash
# One Python environment per older ansible-core CI proves, in build/core-<version>, from PyPI:
# tests/compat/requirements.txt pinned by tests/compat/constraints-<version>.txt (one file a
# version: the versions are the files there). Each is reinstalled only when its two files
# change; the installs run at once (they wait on the network, and pip's cache is shared).
#
#   scripts/setup-core-venvs.sh            every version
#   scripts/setup-core-venvs.sh 2.16 2.18  only these
#   scripts/setup-core-venvs.sh --list     the versions, oldest first
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
compat="$top/tests/compat"

versions() {
    local file
    for file in "$compat"/constraints-*.txt; do
        file=${file##*/constraints-}
        echo "${file%.txt}"
    done | sort -V
}

if [ "${1:-}" = "--list" ]; then
    versions
    exit 0
fi
if [ $# -gt 0 ]; then
    wanted=("$@")
else
    mapfile -t wanted < <(versions)
fi

install() {
    local version=$1
    local constraints="$compat/constraints-$version.txt"
    if [ ! -f "$constraints" ]; then
        echo "core venvs: no $constraints; the versions are: $(versions | tr '\n' ' ')" >&2
        return 2
    fi
    PODKIT_VENV="$top/build/core-$version" PODKIT_REQUIREMENTS="$compat/requirements.txt" \
        PODKIT_CONSTRAINTS="$constraints" "$top/scripts/setup-venv.sh"
}

pids=()
for version in "${wanted[@]}"; do
    install "$version" &
    pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
exit $failed
