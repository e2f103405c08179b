"""Every changelog fragment is YAML that antsibull-changelog reads: a mapping of the config's sections (or its
release_summary) to lists of text. A fragment that does not parse fails the sanity, every ansible-core stage
and the release test in CI; here it fails in a second, naming the file."""

import pathlib

import pytest
import yaml

CHANGELOGS = pathlib.Path(__file__).resolve().parents[2] / "changelogs"
FRAGMENTS = sorted((CHANGELOGS / "fragments").glob("*.y*ml"))


def sections():
    config = yaml.safe_load((CHANGELOGS / "config.yaml").read_text())
    # antsibull-changelog's trivial section (changes not shown in the changelog) is always there.
    return set(name for name, _title in config["sections"]) | {config.get("trivial_section_name") or "trivial"}


def test_there_are_fragments_to_read():
    assert FRAGMENTS


@pytest.mark.parametrize("path", FRAGMENTS, ids=[p.name for p in FRAGMENTS])
def test_a_fragment_parses_to_known_sections_of_text(path):
    fragment = yaml.safe_load(path.read_text())
    assert isinstance(fragment, dict) and fragment, path.name
    for section, entries in fragment.items():
        if section == "release_summary":
            assert isinstance(entries, str), path.name
            continue
        assert section in sections(), "%s: unknown section %s" % (path.name, section)
        assert isinstance(entries, list) and all(isinstance(e, str) and e.strip() for e in entries), path.name
