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


def test_make_release_changelog_writes_changelog_md_from_the_fragments(tmp_path):
    tree = tmp_path / "ansible_collections" / "podkit" / "docker"
    _run([TOP / "scripts" / "layout-collection.sh", tree])
    fragments = sorted((tree / "changelogs" / "fragments").glob("*.yml"))
    assert fragments, "no changelog fragments"
    env = dict(os.environ, PODKIT_VENV=str(TOP / ".venv"))
    _run(["make", "-s", "-C", tree, "release-changelog", "VENV=%s" % (TOP / ".venv")], env=env)

    version = yaml.safe_load((tree / "galaxy.yml").read_text())["version"]
    changelog = (tree / "CHANGELOG.md").read_text()
    assert changelog.startswith("# podkit\\.docker Release Notes"), changelog[:200]
    assert "## v%s" % version.replace(".", "\\.") in changelog, changelog[:400]
    assert not (tree / "CHANGELOG.rst").exists()
    releases = yaml.safe_load((tree / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert sorted(releases[version]["fragments"]) == sorted(f.name for f in fragments)
    assert not list((tree / "changelogs" / "fragments").glob("*.yml")), "a release folds the fragments in"
