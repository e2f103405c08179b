"""scripts/test.sh's rule: every stage has a summary line, and a stage that cannot run fails a CI run.

The vm stage is made unbootable for real: its disk cache ($PODKIT_VM_CACHE) is a 1 MiB
tmpfs mounted here, so tests/vm/run.sh --can-boot finds no room for the disk. Nothing
is built or booted: the check refuses before the stage starts, in a few seconds.
"""

import os
import re
import subprocess

import pytest

from helpers import TOP

SCRIPT = TOP / "scripts" / "test.sh"
STAGES = ["lint", "sanity", "galaxy-importer", "docs", "unit", "core-2.16", "core-2.17", "core-2.18", "core-2.19",
          "integration", "molecule", "vm", "reliability-disruptive"]
# The reason run.sh --can-boot gives for the tiny cache (other reasons this machine has may stand beside it).
NO_ROOM = r"only \d+ MiB free under %s \(10240 MiB needed for the disk and the run\)"


@pytest.fixture
def tiny_vm_cache(tmp_path):
    """A disk cache directory on a filesystem far too small for the VM's disk."""
    mount = tmp_path / "vm-cache"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "podkit-test-tiny", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def run_test_sh(tmp_path, *args, **env):
    environ = dict(os.environ)
    environ.pop("CI", None)  # this test itself may run under CI; each case says what it wants
    environ.update(PODKIT_REPORTS=str(tmp_path / "reports"), **env)
    proc = subprocess.run([str(SCRIPT)] + list(args), capture_output=True, text=True, env=environ, timeout=120, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def summary(output):
    """The summary's line for each stage, by stage name."""
    tail = output.split("=== summary\n", 1)[1]
    lines = {}
    for line in tail.splitlines():
        name = line.split(" ", 1)[0]
        if name in STAGES:
            lines[name] = line[len(name):].strip()
    return lines


def test_the_stage_list_is_every_stage_in_order():
    proc = subprocess.run([str(SCRIPT), "--list"], capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == STAGES


def test_with_ci_a_vm_stage_that_cannot_run_fails_the_run_and_says_why(tmp_path, tiny_vm_cache):
    rc, out = run_test_sh(tmp_path, CI="true", PODKIT_STAGES="vm", PODKIT_VM_CACHE=str(tiny_vm_cache))
    assert rc != 0, out
    lines = summary(out)
    assert set(lines) == set(STAGES), out
    assert lines["vm"].startswith("FAILED (cannot run: ") and lines["vm"].endswith(")"), out
    assert re.search(NO_ROOM % re.escape(str(tiny_vm_cache)), lines["vm"]), out
    assert all(lines[name] == "not selected" for name in STAGES if name != "vm"), out
    # The reason is in the log too, and nothing was built or booted.
    assert "vm: cannot run here: only" in out, out
    assert "booting" not in out and "building the disk" not in out, out
    assert not any(tiny_vm_cache.iterdir())


def test_without_ci_the_summary_says_not_run_with_the_reason(tmp_path, tiny_vm_cache):
    rc, out = run_test_sh(tmp_path, "--only", "vm", PODKIT_VM_CACHE=str(tiny_vm_cache))
    assert rc == 0, out
    lines = summary(out)
    assert set(lines) == set(STAGES), out
    assert lines["vm"].startswith("NOT RUN (") and lines["vm"].endswith(")"), out
    assert re.search(NO_ROOM % re.escape(str(tiny_vm_cache)), lines["vm"]), out
    assert not any(tiny_vm_cache.iterdir())


@pytest.mark.parametrize("ci", ["true", "false"])
def test_an_unknown_stage_is_refused_with_the_list(tmp_path, ci):
    rc, out = run_test_sh(tmp_path, CI=ci, PODKIT_STAGES="vm,no-such-stage")
    assert rc == 2, out
    assert "no stage named 'no-such-stage'; the stages are: " + " ".join(STAGES) in out, out
    assert "=== vm" not in out, out


def test_the_waiting_integration_tests_are_files_that_exist_and_run_beside_the_rest_once():
    """The integration stage runs `waiting_tests` in a pytest process of their own and leaves them out of
    the other (--ignore): a file renamed away from the list would run twice, or a name left behind not at all."""
    text = SCRIPT.read_text()
    listed = re.search(r"^waiting_tests=\((.*?)\)", text, re.M | re.S).group(1).split()
    assert listed, "no waiting tests listed"
    for path in listed:
        assert (TOP / path).is_file(), path
        assert "pytest.mark.disruptive" not in (TOP / path).read_text(), "%s stops dockerd: not beside other tests" % path
    assert len(set(listed)) == len(listed)
    assert 'for test in "${waiting_tests[@]}"; do ignore+=(--ignore "$test"); done' in text
