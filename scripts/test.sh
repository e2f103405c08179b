#!/usr/bin/env bash
# Every test and gate, in order; `make test` calls this after `make setup`.
# Each stage runs even when an earlier one failed, so one run shows everything;
# the exit status is non-zero when any stage failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin="$top/.venv/bin"
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$top/build/collections"
export ANSIBLE_ROLES_PATH="$top/roles"

reports="$top/build/reports"
rm -rf "$reports" && mkdir -p "$reports"
declare -a summary=()
failed=0

stage() {  # name, command...
    local name=$1; shift
    local start=$SECONDS rc
    echo
    echo "=== $name"
    "$@"
    rc=$?
    summary+=("$(printf '%-12s %-6s %4ds' "$name" "$([ $rc -eq 0 ] && echo ok || echo FAILED)" $((SECONDS - start)))")
    [ $rc -eq 0 ] || failed=1
}

stage lint        "$bin/ansible-lint" --profile production -q
stage sanity      make -s --no-print-directory sanity
stage unit        "$bin/pytest" -q tests/unit --junitxml "$reports/unit.xml"
stage integration "$bin/pytest" -q tests/integration --junitxml "$reports/integration.xml"
if [ -d molecule ] && ls molecule/*/molecule.yml >/dev/null 2>&1; then
    stage molecule "$bin/molecule" test --all
fi
# Tests that stop and start the shared dockerd (marked `disruptive`) run alone, after every other
# stage that uses the engine; the integration stage above deselects them (and says so).
stage reliability-disruptive env PODKIT_TEST_DISRUPTIVE=1 "$bin/pytest" -q -m disruptive tests/integration \
    --junitxml "$reports/reliability-disruptive.xml"
if [ -x tests/vm/run.sh ]; then
    if tests/vm/run.sh --can-boot; then
        stage vm tests/vm/run.sh
    else
        echo "=== vm: this machine cannot boot the test VM (see tests/vm/run.sh --can-boot); not run"
    fi
fi

echo
echo "=== summary"
printf '%s\n' "${summary[@]}"
# One closing line over every pytest stage, from their JUnit reports.
"$bin/python" - "$reports" <<'PY'
import pathlib, sys, xml.etree.ElementTree as ET
t = f = s = 0
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        t += int(suite.get("tests", 0))
        f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        s += int(suite.get("skipped", 0))
print("pytest: %d passed, %d failed, %d skipped" % (t - f - s, f, s))
PY
exit $failed
