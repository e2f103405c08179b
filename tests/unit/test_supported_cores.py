"""The ansible-core versions the collection claims are the ones CI proves (issue 23).

CI proves each version in its own stage of scripts/test.sh (core-<version>): the older ones are the
constraints files in tests/compat, the newest is the project's own .venv (requirements-dev.txt).
The collection's minimum (meta/runtime.yml, the roles' meta) must be the oldest of them.
"""

import pathlib
import re
import subprocess

import yaml

TOP = pathlib.Path(__file__).resolve().parents[2]
PIN = re.compile(r"^ansible-core==(\d+)\.(\d+)\.(\d+)$", re.M)


def proven():
    """(major, minor) of every version a core stage proves, oldest first."""
    versions = []
    for path in sorted((TOP / "tests" / "compat").glob("constraints-*.txt")):
        pins = PIN.findall(path.read_text())
        assert len(pins) == 1, "%s pins ansible-core once: %s" % (path, pins)
        assert path.name == "constraints-%s.%s.txt" % pins[0][:2], "%s pins ansible-core %s" % (path, pins[0])
        versions.append(tuple(int(n) for n in pins[0][:2]))
    own = PIN.findall((TOP / "requirements-dev.txt").read_text())
    assert len(own) == 1
    versions.append(tuple(int(n) for n in own[0][:2]))
    return sorted(versions)


def test_every_minor_version_from_the_oldest_to_the_project_s_own_is_proven():
    versions = proven()
    assert versions == [(2, minor) for minor in range(versions[0][1], versions[-1][1] + 1)], versions
    assert versions[0] == (2, 16), "issue 23 promises 2.16 to 2.19"


def test_requires_ansible_and_the_roles_minimum_are_the_oldest_proven():
    oldest = "%d.%d" % proven()[0]
    runtime = yaml.safe_load((TOP / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"] == ">=%s.0" % oldest
    for role in ("host", "pods"):
        meta = yaml.safe_load((TOP / "roles" / role / "meta" / "main.yml").read_text())
        assert str(meta["galaxy_info"]["min_ansible_version"]) == oldest, role


def test_scripts_test_sh_has_a_stage_for_each_proven_version_in_order():
    listed = subprocess.run([str(TOP / "scripts" / "test.sh"), "--list"], capture_output=True, text=True,
                            check=True, timeout=30).stdout.split()
    cores = [stage for stage in listed if stage.startswith("core-")]
    assert cores == ["core-%d.%d" % v for v in proven()]
    # After the unit tests (the newest's sanity and units are those stages), before the disruptive one.
    assert listed.index("unit") < listed.index(cores[0]) and listed.index(cores[-1]) < listed.index(
        "reliability-disruptive")
