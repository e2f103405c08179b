"""The reliability and security suite: categories, the per-category summary, the disruptive gate.

Every test here carries ``@pytest.mark.reliability("<category>")``. At the end of a run one
line per category says how many cases passed, e.g. ``reliability: faults survived 7/7``.

Tests marked ``disruptive`` stop and start the shared dockerd. They are deselected (and
the run says so) unless PODKIT_TEST_DISRUPTIVE=1, which scripts/test.sh sets only for its
own ``reliability-disruptive`` stage, where nothing else runs against the engine.
"""

import os

import pytest

from .guard import GuardProcess

CATEGORIES = (
    ("faults", "faults survived"),
    ("bad_input", "bad inputs refused"),
    ("ownership", "ownership cases"),
    ("concurrency", "concurrency cases"),
    ("secrets", "secrets kept"),
    ("teardown", "teardown cases"),
)
DISRUPTIVE_ENV = "PODKIT_TEST_DISRUPTIVE"

_category_of = {}   # nodeid -> category
_outcomes = {}      # nodeid -> passed | failed | skipped
_deselected = []


def pytest_configure(config):
    config.addinivalue_line("markers", "reliability(category): a case of the reliability suite, counted in "
                            "its category's summary line (%s)" % ", ".join(c[0] for c in CATEGORIES))


def pytest_collection_modifyitems(config, items):
    keep = []
    for item in items:
        marker = item.get_closest_marker("reliability")
        if marker is not None:
            category = marker.args[0]
            assert category in dict(CATEGORIES), "unknown reliability category %r on %s" % (category, item.nodeid)
            _category_of[item.nodeid] = category
        if item.get_closest_marker("disruptive") is not None and os.environ.get(DISRUPTIVE_ENV) != "1":
            _deselected.append(item)
        else:
            keep.append(item)
    if _deselected:
        config.hook.pytest_deselected(items=_deselected)
        items[:] = keep


def pytest_runtest_logreport(report):
    if report.nodeid not in _category_of:
        return
    if report.when == "call" or report.outcome != "passed":
        previous = _outcomes.get(report.nodeid)
        # A teardown error after a passed call still fails the case.
        if previous != "failed":
            _outcomes[report.nodeid] = "failed" if report.outcome == "failed" else report.outcome


def pytest_terminal_summary(terminalreporter):
    if not _outcomes and not _deselected:
        return
    write = terminalreporter.write_line
    write("")
    for category, label in CATEGORIES:
        ids = [n for n, c in _category_of.items() if c == category and n not in {i.nodeid for i in _deselected}]
        if not ids and not any(_category_of[i.nodeid] == category for i in _deselected):
            continue
        counts = dict(passed=0, failed=0, skipped=0)
        for nodeid in ids:
            outcome = _outcomes.get(nodeid)
            if outcome in counts:
                counts[outcome] += 1
        ran = counts["passed"] + counts["failed"] + counts["skipped"]
        gated = [i for i in _deselected if _category_of.get(i.nodeid) == category]
        if not ran and not gated:
            continue    # not part of this run (e.g. pytest -m disruptive)
        line = "reliability: %s %d/%d" % (label, counts["passed"], ran)
        extra = []
        if counts["failed"]:
            extra.append("%d FAILED" % counts["failed"])
        if counts["skipped"]:
            extra.append("%d skipped (not counted as survived)" % counts["skipped"])
        if gated:
            extra.append("%d disruptive not run here: stage reliability-disruptive runs them with %s=1"
                         % (len(gated), DISRUPTIVE_ENV))
        if extra:
            line += " (" + "; ".join(extra) + ")"
        write(line, red=bool(counts["failed"]), green=not counts["failed"] and bool(counts["passed"]))


# The root fixtures remove a test pod's containers, volumes and cgroups; a pod the test did not
# remove with state absent also keeps its lock file (/run/podkit/<pod>.lock, as a running pod
# should). These overrides drop it too, so the suite leaves /run/podkit as it found it.
LOCK_DIR = "/run/podkit"


def _drop_lock(pod):
    try:
        os.unlink(os.path.join(LOCK_DIR, "%s.lock" % pod))
    except FileNotFoundError:
        pass


@pytest.fixture
def pod_name(pod_name):  # pylint: disable=redefined-outer-name
    yield pod_name
    _drop_lock(pod_name)


@pytest.fixture
def pod_names(pod_names):  # pylint: disable=redefined-outer-name
    made = []

    def make():
        made.append(pod_names())
        return made[-1]

    yield make
    for pod in made:
        _drop_lock(pod)


@pytest.fixture
def guard(tmp_path, pod_name, pod_names):  # pylint: disable=unused-argument
    """A podkit-guard of the test's own (its records in the test's directory), stopped at the end.

    Asks for the pod fixtures so that it is stopped before they remove the pods: a running guard
    would rebuild a recorded pod as the fixture removes it."""
    process = GuardProcess(tmp_path / "state")
    process.state_dir.mkdir(mode=0o700)
    yield process
    process.stop()
