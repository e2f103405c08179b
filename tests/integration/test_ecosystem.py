"""The files a collection ships for its ecosystem: the execution environment and the changelog.

Each is driven with the tool that reads it: ansible-builder makes the execution
environment's build context from meta/execution-environment.yml (building the image
would need a registry; the context does not; the same file read as the installed
collection's metadata is checked in test_collection_build.py), and `make release-changelog` turns the
changelog fragments into CHANGELOG.md, in a copy of the tree, as a release would.
"""

import os
import pathlib
import subprocess
import sys

import yaml

from helpers import TOP

BIN = pathlib.Path(sys.executable).parent


def _run(args, **kwargs):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300, check=False, **kwargs)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(map(str, args)), proc.stdout, proc.stderr)
    return proc


def test_ansible_builder_creates_the_execution_environments_build_context(tmp_path):
    definition = yaml.safe_load((TOP / "meta" / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    context = tmp_path / "context"
    _run([BIN / "ansible-builder", "create", "-f", TOP / "meta" / "execution-environment.yml", "-c", context,
          "--output-filename", "Containerfile"], cwd=str(tmp_path))

    build = context / "_build"
    # Real files with the collection's requirements, not links that would dangle in the context.
    for name, source in (("requirements.txt", TOP / "requirements.txt"), ("bindep.txt", TOP / "bindep.txt")):
        assert (build / name).is_file() and not (build / name).is_symlink(), name
        assert (build / name).read_text() == source.read_text(), name
    python = (build / "requirements.txt").read_text()
    for library in ("docker", "cgroupspy", "jmespath"):
        assert "\n%s==" % library in "\n" + python, python
    assert "openssh-client [platform:dpkg]" in (build / "bindep.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {"collections": [{"name": "podkit.docker"}]}

    containerfile = (context / "Containerfile").read_text()
    assert "COPY _build/requirements.txt requirements.txt" in containerfile, containerfile
    assert "COPY _build/bindep.txt bindep.txt" in containerfile, containerfile
    assert "ansible-core==2.19.14" in containerfile, containerfile


LATE_FRAGMENT = """---
minor_changes:
  - podkit.docker - a change merged after the release was cut (a test's fragment).
"""


def _changelog(tree):
    return (yaml.safe_load((tree / "changelogs" / "changelog.yaml").read_text())["releases"],
            (tree / "CHANGELOG.md").read_text())


def test_make_release_changelog_folds_late_fragments_into_the_release_and_starts_the_next(tmp_path):
    """`make release-changelog` (antsibull-changelog release --update-existing) on a released tree: a
    fragment added after the release of galaxy.yml's version joins that release; with the next
    VERSION it opens a release of its own. Either way CHANGELOG.md is written from changelog.yaml."""
    tree = tmp_path / "ansible_collections" / "podkit" / "docker"
    _run([TOP / "scripts" / "layout-collection.sh", tree])
    version = yaml.safe_load((tree / "galaxy.yml").read_text())["version"]
    released, _md = _changelog(tree)
    assert version in released, "galaxy.yml's version %s has no release in changelogs/changelog.yaml" % version
    before = set(released[version]["fragments"])
    env = dict(os.environ, PODKIT_VENV=str(TOP / ".venv"))
    make = ["make", "-s", "-C", tree, "release-changelog", "VENV=%s" % (TOP / ".venv")]

    fragments = tree / "changelogs" / "fragments"
    fragments.mkdir(exist_ok=True)
    pending = set(f.name for f in fragments.glob("*.yml"))
    (fragments / "99-late.yml").write_text(LATE_FRAGMENT)
    _run(make, env=env)
    releases, changelog = _changelog(tree)
    assert sorted(releases) == sorted(released)
    assert set(releases[version]["fragments"]) == before | pending | {"99-late.yml"}
    assert changelog.startswith("# podkit\\.docker Release Notes"), changelog[:200]
    assert "## v%s" % version.replace(".", "\\.") in changelog, changelog[:400]
    assert "a change merged after the release was cut" in changelog
    assert not (tree / "CHANGELOG.rst").exists()
    assert not list(fragments.glob("*.yml")), "a release folds the fragments in"

    major, minor, patch = map(int, version.split("."))
    following = "%d.%d.%d" % (major, minor, patch + 1)
    (fragments / "99-next.yml").write_text(LATE_FRAGMENT.replace("after the release was cut", "for the next release"))
    _run(make + ["VERSION=%s" % following], env=env)
    releases, changelog = _changelog(tree)
    assert releases[following]["fragments"] == ["99-next.yml"]
    assert "99-next.yml" not in releases[version]["fragments"]
    assert changelog.index("## v%s" % following.replace(".", "\\.")) < changelog.index("## v%s" % version.replace(".", "\\."))
