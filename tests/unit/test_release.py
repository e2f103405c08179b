"""The release the tree claims is the release it documents: galaxy.yml's version has a release in
changelogs/changelog.yaml and a section in CHANGELOG.md, and podkit-guard reports that version
(`make release VERSION=X.Y.Z` sets all three)."""

import pathlib
import re

import yaml

from ansible_collections.podkit.docker.plugins.module_utils import _guard

TOP = pathlib.Path(__file__).resolve().parents[2]
VERSION = yaml.safe_load((TOP / "galaxy.yml").read_text())["version"]


def test_the_version_is_semantic_and_at_least_one():
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", VERSION) and int(VERSION.split(".")[0]) >= 1, VERSION


def test_changelog_yaml_and_changelog_md_have_the_release():
    releases = yaml.safe_load((TOP / "changelogs" / "changelog.yaml").read_text())["releases"]
    assert VERSION in releases, sorted(releases)
    assert releases[VERSION]["changes"]["release_summary"].strip()
    changelog = (TOP / "CHANGELOG.md").read_text()
    assert "\n## v%s\n" % VERSION.replace(".", "\\.") in changelog


def test_podkit_guard_reports_the_collections_version():
    assert _guard.VERSION == VERSION


def test_the_readmes_yaml_examples_parse():
    """Users copy these: the README's and the roles' READMEs' YAML blocks are valid YAML."""
    for readme in (TOP / "README.md", TOP / "roles" / "host" / "README.md", TOP / "roles" / "pods" / "README.md"):
        blocks = re.findall(r"^```yaml\n(.*?)^```$", readme.read_text(), re.S | re.M)
        assert blocks, readme
        for block in blocks:
            assert yaml.safe_load(block) is not None, (readme, block)
