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

# One stage a supported ansible-core (core-<version>: its sanity, unit tests and smoke): the
# older ones are the constraints files in tests/compat, the newest is the project's own (.venv).
own_core=$(sed -n 's/^ansible-core==\([0-9]*\.[0-9]*\)\..*/\1/p' "$top/requirements-dev.txt")
mapfile -t older_cores < <("$top/scripts/setup-core-venvs.sh" --list)
core_stages=()
for version in "${older_cores[@]}" "$own_core"; do core_stages+=("core-$version"); done
stages=(lint sanity galaxy-importer docs unit "${core_stages[@]}" integration molecule vm reliability-disruptive)
# Stages started at the beginning of the run, beside the others, and waited for at their place in
# the order: the VM stage spends most of its 20 minutes in its own guest (TCG), while the stages
# before it mostly wait on the host's engine. Its output is shown whole when it is waited for.
# reliability-disruptive stops and starts the host's dockerd (the VM's two-host test uses it), so
# it comes after the VM stage.
beside=(vm)
# The integration files whose tests mostly wait (podkit-guard's loops and resyncs, a Job's backoff, rollouts
# gated on readiness): a pytest process of their own runs them beside the rest of the integration stage.
# Each process is a whole pytest session (its own round trip and its own check that nothing it named is
# left); the tests share only the engine, where every name is unique to its test.
waiting_tests=(tests/integration/test_jobs.py tests/integration/test_guard_role.py tests/integration/test_workloads.py
               tests/integration/test_workload_corpus.py tests/integration/reliability/test_guard.py
               tests/integration/reliability/test_guard_probes.py tests/integration/reliability/test_teardown.py
               tests/integration/reliability/test_faults.py tests/integration/reliability/test_concurrency.py)
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

# The collection laid out for ansible-test (make sanity-tree), once a run: the sanity stage's copy
# when it ran, else made for the first core stage; every core stage then shares it.
sanity_tree="$top/build/sanity/ansible_collections/podkit/docker"
tree_ready=
core_tree() {
    if [ -z "$tree_ready" ] && { [ -z "${outcome[sanity]:-}" ] || [ ! -d "$sanity_tree" ]; }; then
        make -s --no-print-directory sanity-tree || return 1
    fi
    tree_ready=1
}

# core-<the project's own version>: its sanity and unit tests are the sanity and unit stages; when
# both ran in this run, their outcome is taken and only the smoke runs here, else all runs here.
own_core_stage() {
    if [ -n "${outcome[sanity]:-}" ] && [ -n "${outcome[unit]:-}" ]; then
        echo "core-$own_core: sanity and unit tests: the sanity stage ${outcome[sanity]}, the unit stage ${outcome[unit]}"
        scripts/core-stage.sh "$own_core" "$sanity_tree" --smoke-only || return 1
        [ "${outcome[sanity]}" = ok ] && [ "${outcome[unit]}" = ok ]
    else
        core_tree && scripts/core-stage.sh "$own_core" "$sanity_tree"
    fi
}

# The integration stage: the waiting tests in a pytest process beside the rest (their output follows).
waiting_pid=
integration_stage() {
    local ignore=() test rc_rest rc_waiting
    for test in "${waiting_tests[@]}"; do ignore+=(--ignore "$test"); done
    "$bin/pytest" -q "${waiting_tests[@]}" --junitxml "$reports/integration-waiting.xml" \
        >"$reports/integration-waiting.log" 2>&1 &
    waiting_pid=$!
    "$bin/pytest" -q tests/integration "${ignore[@]}" --junitxml "$reports/integration.xml"
    rc_rest=$?
    wait "$waiting_pid"
    rc_waiting=$?
    waiting_pid=
    echo "--- integration: ${waiting_tests[*]}, run beside the rest (exit $rc_waiting)"
    cat "$reports/integration-waiting.log"
    [ $rc_rest -eq 0 ] && [ $rc_waiting -eq 0 ]
}

# Runs stage $1.
run_stage() {
    case $1 in
        "core-$own_core") own_core_stage ;;
        core-*) core_tree && scripts/core-stage.sh "${1#core-}" "$sanity_tree" ;;
        lint) "$bin/ansible-lint" --profile production -q ;;
        sanity) make -s --no-print-directory sanity ;;
        # Galaxy's importer on the built tarball, offline (tests/galaxy-importer.cfg).
        galaxy-importer) scripts/galaxy-importer.sh ;;
        # The docs site built offline, its lint, and its front page checked in headless Chromium.
        docs) make -s --no-print-directory docs ;;
        unit) "$bin/pytest" -q tests/unit --junitxml "$reports/unit.xml" ;;
        integration) integration_stage ;;
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
declare -A outcome=()   # ok / failed of each stage that ran
failed=0
line() { summary+=("$(printf '%-22s %s' "$1" "$2")"); }

is_selected() { [ ${#selected[@]} -eq 0 ] || [ -n "${selected[$1]:-}" ]; }

# Checks stage $1, records its line when it cannot run, and returns 0 only if it can.
checked() {
    local name=$1 reasons rc why
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
        return 1
    elif [ $rc -ne 0 ]; then
        [ -z "$reasons" ] || echo "$reasons"
        line "$name" "FAILED (its check exited $rc)"
        failed=1
        return 1
    fi
}

# Records stage $1's outcome from its status $2, start time $3 and end time $4 (default: now).
finished() {
    local took=$((${4:-$SECONDS} - $3))
    if [ "$2" -eq 0 ]; then
        outcome[$1]=ok
        line "$1" "$(printf 'ok      %5ds' "$took")"
    else
        outcome[$1]=failed
        line "$1" "$(printf 'FAILED  %5ds' "$took")"
        failed=1
    fi
}

# The stages run beside the others: checked and started now, each into its own log.
declare -A beside_pid=() beside_start=() beside_line=()
for name in "${beside[@]}"; do
    is_selected "$name" || continue
    echo
    echo "=== $name (checked now, run beside the stages before it; its output follows at its place)"
    mark=${#summary[@]}
    if checked "$name"; then
        beside_start[$name]=$SECONDS
        # Its own end is written down: the summary gives the time it took, not the time until it was waited for.
        { run_stage "$name"; rc=$?; echo "$SECONDS" >"$reports/$name.end"; exit $rc; } >"$reports/$name.log" 2>&1 </dev/null &
        beside_pid[$name]=$!
    else
        beside_line[$name]=${summary[$mark]}
        unset "summary[$mark]"
        summary=("${summary[@]}")
    fi
done
# Whatever is still running when this script is stopped is stopped with it.
# (run.sh stops its VM on TERM.)
# shellcheck disable=SC2317  # the EXIT trap calls it
stop_beside() {
    local pid
    for pid in "${beside_pid[@]}" ${waiting_pid:+"$waiting_pid"}; do
        pkill -TERM -P "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
}
trap stop_beside EXIT

for name in "${stages[@]}"; do
    if ! is_selected "$name"; then
        line "$name" "not selected"
        continue
    fi
    if [[ " ${beside[*]} " == *" $name "* ]]; then
        if [ -n "${beside_line[$name]:-}" ]; then
            summary+=("${beside_line[$name]}")
            continue
        fi
        echo
        echo "=== $name (started $((SECONDS - beside_start[$name]))s ago, beside the stages before it)"
        wait "${beside_pid[$name]}"
        rc=$?
        cat "$reports/$name.log"
        unset "beside_pid[$name]"
        ended=$(cat "$reports/$name.end" 2>/dev/null) || ended=$SECONDS
        echo "=== $name ended $((SECONDS - ended))s before it was waited for"
        finished "$name" $rc "${beside_start[$name]}" "$ended"
        continue
    fi
    echo
    echo "=== $name"
    start=$SECONDS
    checked "$name" || continue
    run_stage "$name"
    finished "$name" $? "$start"
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
