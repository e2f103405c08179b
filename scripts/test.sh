#!/usr/bin/env bash
# Every test and gate, in order; `make test` calls this after `make setup`.
#
#   scripts/test.sh                  every stage
#   scripts/test.sh --only vm,unit   only these stages (the same as PODKIT_STAGES="vm unit")
#   scripts/test.sh --list           the stages, in order
#
# Each stage runs even when an earlier one failed, so one run shows everything, and
# every stage has a line in the summary, run or not:
#   ok / FAILED              it ran (with its time)
#   FAILED (cannot run: R)   it cannot run on this machine, and CI is set: a CI run that
#                            leaves out a stage proves less than it claims, so it fails
#   NOT RUN (R)              it cannot run on this machine, and CI is not set (a developer's
#                            machine that cannot boot the VM, say); not a failure
#   not selected             left out by --only / PODKIT_STAGES
# The exit status is non-zero when any stage failed. JUnit reports go to
# $PODKIT_REPORTS (default build/reports), emptied first.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
bin="$top/.venv/bin"
export PATH="$bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$top/build/collections"
export ANSIBLE_ROLES_PATH="$top/roles"

stages=(lint sanity galaxy-importer docs unit integration molecule reliability-disruptive vm)
# The status run.sh --can-boot (or any stage's check) returns for "cannot run here".
cannot_run=77

usage() {
    echo "usage: $0 [--only STAGE[,STAGE...]] [--list]   (stages: ${stages[*]})" >&2
    exit 2
}

selection=${PODKIT_STAGES:-}
while [ $# -gt 0 ]; do
    case $1 in
        --only) [ $# -ge 2 ] || usage; selection=$2; shift 2 ;;
        --only=*) selection=${1#--only=}; shift ;;
        --list) printf '%s\n' "${stages[@]}"; exit 0 ;;
        *) usage ;;
    esac
done
declare -A selected=()
for name in ${selection//,/ }; do
    if [[ " ${stages[*]} " != *" $name "* ]]; then
        echo "test.sh: no stage named '$name'; the stages are: ${stages[*]}" >&2
        exit 2
    fi
    selected[$name]=1
done

case ${CI:-} in
    "" | 0 | false | False | FALSE | no) ci= ;;
    *) ci=1 ;;
esac

reports=${PODKIT_REPORTS:-$top/build/reports}
export PODKIT_REPORTS=$reports
rm -rf "$reports" && mkdir -p "$reports"

# Runs stage $1.
run_stage() {
    case $1 in
        lint) "$bin/ansible-lint" --profile production -q ;;
        sanity) make -s --no-print-directory sanity ;;
        # Galaxy's importer on the built tarball, offline (tests/galaxy-importer.cfg).
        galaxy-importer) scripts/galaxy-importer.sh ;;
        # The docs site built offline, its lint, and its front page checked in headless Chromium.
        docs) make -s --no-print-directory docs ;;
        unit) "$bin/pytest" -q tests/unit --junitxml "$reports/unit.xml" ;;
        integration) "$bin/pytest" -q tests/integration --junitxml "$reports/integration.xml" ;;
        molecule) "$bin/molecule" test --all ;;
        # Tests that stop and start the shared dockerd (marked `disruptive`) run alone, after
        # every other stage that uses the engine; the integration stage deselects them (and says so).
        reliability-disruptive)
            PODKIT_TEST_DISRUPTIVE=1 "$bin/pytest" -q -m disruptive tests/integration \
                --junitxml "$reports/reliability-disruptive.xml" ;;
        vm) tests/vm/run.sh ;;
    esac
}

# Whether stage $1 can run on this machine: 0 if it can; $cannot_run, with one reason a
# line on stdout, if it cannot. Any other status means the check itself broke.
check_stage() {
    case $1 in
        vm) tests/vm/run.sh --can-boot ;;
        *) return 0 ;;
    esac
}

declare -a summary=()
failed=0
line() { summary+=("$(printf '%-22s %s' "$1" "$2")"); }

for name in "${stages[@]}"; do
    if [ ${#selected[@]} -gt 0 ] && [ -z "${selected[$name]:-}" ]; then
        line "$name" "not selected"
        continue
    fi
    echo
    echo "=== $name"
    start=$SECONDS
    reasons=$(check_stage "$name")
    rc=$?
    if [ $rc -eq $cannot_run ] && [ -n "$reasons" ]; then
        while IFS= read -r reason; do echo "$name: cannot run here: $reason"; done <<<"$reasons"
        why=${reasons//$'\n'/; }
        if [ -n "$ci" ]; then
            echo "=== $name: FAILED: CI=${CI} and this stage cannot run here"
            line "$name" "FAILED (cannot run: $why)"
            failed=1
        else
            echo "=== $name: NOT RUN (CI is not set, so this machine may skip it)"
            line "$name" "NOT RUN ($why)"
        fi
        continue
    elif [ $rc -ne 0 ]; then
        [ -z "$reasons" ] || echo "$reasons"
        line "$name" "FAILED (its check exited $rc)"
        failed=1
        continue
    fi
    run_stage "$name"
    rc=$?
    if [ $rc -eq 0 ]; then
        line "$name" "$(printf 'ok      %5ds' $((SECONDS - start)))"
    else
        line "$name" "$(printf 'FAILED  %5ds' $((SECONDS - start)))"
        failed=1
    fi
done

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
