#!/usr/bin/env bash
# One supported ansible-core's proof: the stage core-<version> of scripts/test.sh.
#
#   scripts/core-stage.sh VERSION TREE [--smoke-only]
#
# With that version's own environment (.venv when it is the project's ansible-core, else
# build/core-<version>, made by scripts/setup-core-venvs.sh from PyPI when missing or stale):
#   - ansible-test sanity --python 3.11 in TREE, a copy of the collection laid out by
#     scripts/layout-collection.sh (made once per run and shared by every version);
#   - the unit tests (tests/unit) and the smoke (tests/compat: real plays on localhost by that
#     version's ansible-playbook), in one pytest run.
# Both run at once: sanity keeps a CPU busy while the smoke mostly waits on the engine. Sanity's
# output is kept in $PODKIT_REPORTS/core-<version>-sanity.log and printed after. --smoke-only
# leaves sanity and the unit tests out (scripts/test.sh's core stage for the project's own
# version, whose sanity and unit stages ran them already). The exit status is 0 only if all passed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
version=${1:?usage: core-stage.sh VERSION TREE [--smoke-only]}
tree=${2:?usage: core-stage.sh VERSION TREE [--smoke-only]}
smoke_only=${3:-}
reports=${PODKIT_REPORTS:-$top/build/reports}
mkdir -p "$reports"

own=$("$top/.venv/bin/python" -c 'import ansible.release as r; print(".".join(r.__version__.split(".")[:2]))')
if [ "$version" = "$own" ]; then
    venv="$top/.venv"
else
    venv="$top/build/core-$version"
    "$top/scripts/setup-core-venvs.sh" "$version" || exit 1
fi
got=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
echo "core-$version: ansible-core $got from $venv"
case $got in
    "$version".*) ;;
    *) echo "core-$version: $venv has ansible-core $got, not $version" >&2; exit 1 ;;
esac
export PATH="$venv/bin:$PATH"

sanity_rc=0
if [ -z "$smoke_only" ]; then
    # ansible-test skips its shellcheck test when the program is missing: a skip is no pass.
    command -v shellcheck >/dev/null || { echo "core-$version: shellcheck is not installed (make host installs it)" >&2; exit 1; }
    "$top/scripts/ansible-test-pip.sh" "$venv/bin/python" || exit 1
    log="$reports/core-$version-sanity.log"
    (cd "$tree" && exec "$venv/bin/ansible-test" sanity --venv --requirements --python 3.11 --color no) >"$log" 2>&1 &
    sanity=$!
    tests=(tests/unit tests/compat)
else
    tests=(tests/compat)
fi

cd "$top" || exit 1
"$venv/bin/pytest" -q -p no:cacheprovider "${tests[@]}" --junitxml "$reports/core-$version.xml"
pytest_rc=$?

if [ -z "$smoke_only" ]; then
    wait "$sanity"
    sanity_rc=$?
    echo "--- core-$version: ansible-test sanity (exit $sanity_rc)"
    cat "$log"
fi
[ $pytest_rc -eq 0 ] && [ $sanity_rc -eq 0 ]
