"""What the collection tarball may hold: the rules tests/integration/test_collection_build.py applies
to a real `ansible-galaxy collection build`, kept apart so tests/unit/test_tarball_rules.py can show
each rule catching what it is for (issue 23: a stray wheel, a chart shipped twice, molecule's cache).

A new top-level file or directory is a decision: add it to TOP_LEVEL here, or to galaxy.yml's
build_ignore if users should not get it.
"""

import fnmatch
import hashlib
import tarfile

# Every top-level entry a user may find in the installed collection, and why it is there.
TOP_LEVEL = {
    "MANIFEST.json", "FILES.json",          # written by ansible-galaxy
    "README.md", "LICENSE", "CHANGELOG.md",
    "galaxy.yml",                           # never shipped (ansible-galaxy leaves it out); allowed for clarity
    "changelogs", "docs", "meta", "plugins", "roles", "playbooks", "inventory",
    "images",                               # the pause and busybox sources the host role builds
    "molecule", "tests", "benchmarks", "scripts",  # how the collection is proven, for those who check
    "Makefile", "Vagrantfile", "pytest.ini", ".ansible-lint", ".yamllint",
    "requirements.txt", "bindep.txt",      # the execution environment's requirements (links into meta/)
    "requirements-dev.txt", "constraints.txt",
}

# Names that only a build, a test run or a tool's cache makes; none belongs in a release.
GENERATED = (
    "*.pyc", "*.pyo", "*/__pycache__/*", "__pycache__/*", "*/.pytest_cache/*", ".pytest_cache/*",
    "*/.cache/*", ".cache/*", "*/.ansible/*", ".ansible/*", "build/*", "*/build/*",
    "tests/output/*", "benchmarks/results/raw/*", "*.whl", "*.tar.gz", "*.egg-info/*", "*.retry",
    ".venv/*", "*/.venv/*", ".git/*", ".vagrant/*",
)


def findings(entries):
    """What is wrong with a tarball's entries: a list of lines, empty when nothing is.

    ``entries`` is a list of (name, content): content is the file's bytes, or None for a directory
    or a link (links are listed, never compared).
    """
    found = []
    by_content = {}
    for name, content in entries:
        top = name.split("/", 1)[0]
        if top not in TOP_LEVEL:
            found.append("%s: top-level entry %r is not in the allowlist (tests/tarball_rules.py TOP_LEVEL)" % (name, top))
        generated = [pattern for pattern in GENERATED if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(name + "/", pattern)]
        if generated:
            found.append("%s: a generated file (matches %s); add it to galaxy.yml build_ignore" % (name, generated[0]))
        # Empty files (__init__.py, .keep) are alike by nature; anything else twice is a copy.
        if content:
            by_content.setdefault(hashlib.sha256(content).hexdigest(), []).append(name)
    for names in by_content.values():
        if len(names) > 1:
            found.append("the same content %d times: %s; keep one" % (len(names), ", ".join(sorted(names))))
    return found


def tarball_entries(path):
    """(name, content) of every member of the tarball at ``path``, content None unless a regular file."""
    entries = []
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            name = member.name[2:] if member.name.startswith("./") else member.name
            content = tar.extractfile(member).read() if member.isfile() else None
            entries.append((name, content))
    return entries
