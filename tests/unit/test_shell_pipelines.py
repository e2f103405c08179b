"""No shell pipeline in the project ends in a reader that may stop before the writer is done.

Under `set -o pipefail` (every script here, the Makefile, the roles' shell tasks),
`cmd | grep -q x` fails whenever grep finds x before cmd has written everything: grep
exits, cmd dies of SIGPIPE, the pipeline returns 141 and the test reads "not found".
It hid the Debian VM stage on fresh machines (apt-cache policy | grep -q). The forms
used instead cannot be cut short: capture the output in a variable and test that, or
let the reader consume everything (grep without -q, to /dev/null; pgrep -o, not | head).
"""

import pathlib
import re

import pytest

TOP = pathlib.Path(__file__).resolve().parent.parent.parent

# A single `|` (not `||`), then the command it feeds, up to the next separator.
PIPE = re.compile(r"(?<!\|)\|(?!\|)\s*([^|;&)]*)")
EARLY_GREP_FLAG = re.compile(r"^(-[A-Za-z]*[qm]|--quiet|--silent|--max-count)")


def early_exit_readers(line):
    """The commands in ``line`` that read a pipe and may exit before its writer is done."""
    if line.lstrip().startswith("#"):
        return []
    found = []
    for match in PIPE.finditer(line):
        words = match.group(1).split()
        if not words:
            continue
        if words[0] in ("grep", "egrep", "fgrep", "zgrep") and any(EARLY_GREP_FLAG.match(w) for w in words[1:]):
            found.append(match.group(1).strip())
        elif words[0] == "head":
            found.append(match.group(1).strip())
    return found


def shell_sources():
    """Every file whose text the shell runs: scripts, the Makefile, CI, and the YAML with shell tasks."""
    paths = {TOP / "Makefile", TOP / ".ci" / "run"}
    for pattern in ("scripts/**/*.sh", "tests/**/*.sh", "roles/**/*.sh", "roles/**/*.yml", "playbooks/**/*.yml",
                    "molecule/**/*.yml", "tests/**/*.yml"):
        paths.update(TOP.glob(pattern))
    return sorted(p for p in paths if p.is_file())


@pytest.mark.parametrize("line, readers", [
    ("apt-cache policy \"$p\" 2>/dev/null | grep -q 'Candidate: [0-9]' || why+=(x)", ["grep -q 'Candidate: [0-9]'"]),
    ("dpkg-query -W -f='${Status}' \"$p\" | grep -Fq 'installed' || missing+=(x)", ["grep -Fq 'installed'"]),
    ("x=$(pgrep -x dockerd | head -n 1 || true)", ["head -n 1"]),
    ("grep -Eq '^CONFIG_FW_CFG_SYSFS=(y|m)' \"$config\" || exit 1", []),
    ("cat a b | sha256sum | cut -c1-16", []),
    ("status=$(dpkg-query -W -f='${Status}' \"$p\" 2>/dev/null || true)", []),
    ("find /boot -name 'vmlinuz-*' | sort -V | tail -n 1", []),
    ("# a comment may quote the old `cmd | grep -q x`", []),
    ("name: \"{{ packages | difference(installed) }}\"", []),
])
def test_the_check_finds_early_exiting_readers(line, readers):
    assert early_exit_readers(line) == readers


def test_no_pipeline_ends_in_a_reader_that_can_exit_early():
    sources = shell_sources()
    assert TOP / "tests" / "vm" / "run.sh" in sources and TOP / "scripts" / "setup-host.sh" in sources
    offenders = []
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for reader in early_exit_readers(line):
                offenders.append("%s:%d: ... | %s" % (path.relative_to(TOP), number, reader))
    assert not offenders, "capture the output and test it instead (see this file's docstring):\n" + "\n".join(offenders)
