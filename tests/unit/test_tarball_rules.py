"""The tarball rules catch what issue 23 found in the 0.1.0 tarball, and pass a clean one."""

from tarball_rules import findings

CLEAN = [
    ("MANIFEST.json", b"{}"),
    ("FILES.json", b"[]"),
    ("README.md", b"# podkit.docker"),
    ("plugins", None),
    ("plugins/modules/pod.py", b"DOCUMENTATION = ''"),
    ("plugins/__init__.py", b""),
    ("plugins/modules/__init__.py", b""),
    ("benchmarks/results/latest.png", b"\x89PNG chart"),
    ("requirements.txt", None),
]


def test_a_clean_tarball_has_no_findings():
    assert findings(CLEAN) == []


def test_the_stray_wheel_at_the_root_is_found():
    found = findings(CLEAN + [("pyflakes-4.1.0-py2.py3-none-any.whl", b"PK wheel")])
    assert len(found) == 2, found
    assert "top-level entry 'pyflakes-4.1.0-py2.py3-none-any.whl' is not in the allowlist" in found[0]
    assert "a generated file (matches *.whl)" in found[1]


def test_the_same_chart_twice_is_found():
    found = findings(CLEAN + [("benchmarks/results/full/latest.png", b"\x89PNG chart")])
    assert found == ["the same content 2 times: benchmarks/results/full/latest.png, benchmarks/results/latest.png; keep one"]


def test_caches_of_a_used_tree_are_found():
    for name in ("molecule/default/.cache/state.yml", "plugins/modules/__pycache__/pod.cpython-311.pyc",
                 "tests/output/junit.xml", ".pytest_cache/v/cache/nodeids", "build/collections/x"):
        found = findings(CLEAN + [(name, b"generated " + name.encode())])
        assert any(line.startswith(name + ": a generated file") for line in found), (name, found)


def test_a_new_top_level_entry_must_be_allowed():
    assert findings(CLEAN + [("notes.txt", b"todo")]) == [
        "notes.txt: top-level entry 'notes.txt' is not in the allowlist (tests/tarball_rules.py TOP_LEVEL)"]
