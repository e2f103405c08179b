"""podkit-guard's pure parts: the pod records (files and modes), the crash-loop backoff and Docker's events.
What the guard logs of a repair is read from the plan's steps as data (test_reconcile: the container of a step)."""

import json
import os
import stat

import pytest

from ansible_collections.podkit.docker.plugins.module_utils import _guard, _record, _status
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError


def test_record_written_root_only_and_read_back(tmp_path):
    params = dict(name="web", state="present", docker_host="unix:///x.sock", timeout=5,
                  containers=[dict(name="app", image="i", env=dict(TOKEN="s3cret"), secret_env=["TOKEN"])])
    path = _record.write_record("web", params, str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path / "pods").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700
    # The timeout is the runner's, not the pod's; the engine is the pod's (a guard repairs its own engine's pods).
    assert _record.read_record("web", str(tmp_path)) == dict(
        name="web", state="present", docker_host="unix:///x.sock", containers=params["containers"])
    assert list(_record.recorded_pods(str(tmp_path))) == [("web", _record.read_record("web", str(tmp_path)))]
    assert os.listdir(tmp_path / "pods") == ["web.json"]     # no temporary file left


def test_record_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("PODKIT_STATE_DIR", str(tmp_path))
    _record.write_record("web", dict(name="web"))
    assert _record.read_record("web") == dict(name="web")
    assert _record.delete_record("web") is True
    assert _record.read_record("web") is None
    assert _record.delete_record("web") is False


def test_an_identical_record_is_not_written_again(tmp_path):
    path = _record.write_record("web", dict(name="web", containers=[dict(name="a")]), str(tmp_path))
    os.utime(path, (1, 1))
    _record.write_record("web", dict(name="web", containers=[dict(name="a")], timeout=9), str(tmp_path))
    assert os.stat(path).st_mtime == 1
    _record.write_record("web", dict(name="web", containers=[dict(name="b")]), str(tmp_path))
    assert os.stat(path).st_mtime > 1 and _record.read_record("web", str(tmp_path))["containers"] == [dict(name="b")]


def test_keep_record_is_quiet_where_it_cannot_write(tmp_path):
    """After a failed apply the apply's error is reported; a record that cannot be written is passed over."""
    (tmp_path / "pods").write_text("a file where the directory should be")
    _record.keep_record("web", dict(name="web"), str(tmp_path))
    with pytest.raises(PodkitError, match="cannot record the spec of pod web"):
        _record.write_record("web", dict(name="web"), str(tmp_path))


def test_a_broken_or_foreign_record_is_no_record(tmp_path):
    (tmp_path / "pods").mkdir()
    (tmp_path / "pods" / "half.json").write_text('{"pod": "half", "par')
    (tmp_path / "pods" / "other.json").write_text(json.dumps(dict(pod="someone-else", params={})))
    (tmp_path / "pods" / ".web.tmp").write_text("{}")
    assert list(_record.recorded_pods(str(tmp_path))) == []


def test_record_refused_names_the_fix(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(_record.PodkitError, match="PODKIT_STATE_DIR"):
        _record.write_record("web", {}, str(tmp_path / "file"))


@pytest.mark.parametrize("restarts, delay", [(0, 0), (1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (30, 300)])
def test_crash_loop_backoff(restarts, delay):
    """After the n-th restart in a row, the next waits 10 s doubling to 300 s (the first: none)."""
    assert _guard.backoff_delay(restarts) == delay


def test_events_name_the_pod():
    event = {"Type": "container", "Action": "health_status: unhealthy",
             "Actor": {"Attributes": {"io.podkit.pod": "web", "io.podkit.container": "app"}}}
    assert _guard.Guard.pod_of(event) == ("web", "event health_status: unhealthy app", False)
    assert _guard.Guard.pod_of(dict(event, Action="die")) == ("web", "event die app", True)
    assert _guard.Guard.pod_of(dict(event, Action="exec_start: sh"))[0] is None
    assert _guard.Guard.pod_of({"Action": "die", "Actor": {"Attributes": {"name": "x"}}})[0] is None


def test_a_burst_is_repaired_once_after_its_last_hold_and_a_die_holds_longer():
    """Events gathered per pod: the repair waits for the burst's last hold (a die's is DIE_HOLD, longer
    than the debounce, so the end of the event stream of an engine that stops is seen first), and
    for the pod's backoff."""
    dirty = {}
    dirty["web"] = _guard.mark(dirty.get("web"), "event start app", 10.0 + _guard.DEBOUNCE, False)
    dirty["web"] = _guard.mark(dirty.get("web"), "event die sandbox", 10.1 + _guard.DIE_HOLD, True)
    dirty["db"] = _guard.mark(None, "event destroy app", 10.0 + _guard.DEBOUNCE, False)
    assert dirty["web"] == ("event start app", 10.1 + _guard.DIE_HOLD, True)
    assert _guard.DIE_HOLD > _guard.DEBOUNCE
    assert _guard.due_pods(dirty, {}, 10.5) == ["db"]
    assert _guard.due_pods(dirty, {}, 11.2) == ["db", "web"]
    assert _guard.due_pods(dirty, {"db": 40.0}, 11.2) == ["web"]


def test_status_of_a_dead_guard_is_not_running(tmp_path):
    (tmp_path / "guard.json").write_text(json.dumps(dict(pid=2 ** 22 + 7, running=True, version="0.1.0")))
    assert _status.read_guard_status(str(tmp_path))["running"] is False
    assert _status.read_guard_status(str(tmp_path / "none")) is None
    assert _status.guard_line(_status.guard_facts(_status.read_guard_status(str(tmp_path)))) == \
        "guard: not running (podkit-guard 0.1.0)"


def test_facts_and_tree_show_the_guard_and_each_containers_repairs():
    status = dict(running=True, pid=os.getpid(), version="0.1.0", last_sync=100.0, pods=dict(web=dict(containers=dict(
        app=dict(repairs=2, last_repair=dict(action="recreate", reason="stale network namespace", trigger="x"))))))
    host, pods = {}, dict(web=dict(containers=dict(app=dict(status="running"), sidecar=dict(status="exited"))))
    _status.annotate(host, pods, status)
    assert host["guard"] == dict(running=True, installed=True, version="0.1.0", pid=os.getpid(), last_sync=100.0)
    app, sidecar = pods["web"]["containers"]["app"], pods["web"]["containers"]["sidecar"]
    assert (app["ready"], app["restart_count"], app["last_repair"]["reason"]) == (True, 2, "stale network namespace")
    assert (sidecar["ready"], sidecar["restart_count"], sidecar["last_repair"]) == (False, 0, None)
    assert _status.container_suffix(app) == ", ready, restarts 2, last repair: recreate (stale network namespace)"
    assert _status.guard_line(host["guard"], now=130.0) == \
        "guard: running, pid %d, podkit-guard 0.1.0, last sync 30s ago" % os.getpid()


def test_a_guard_acts_only_on_the_records_of_its_own_engine(tmp_path):
    _record.write_record("here", dict(name="here", docker_host="unix:///run/docker.sock"), str(tmp_path))
    _record.write_record("old", dict(name="old"), str(tmp_path))      # recorded before docker_host was
    _record.write_record("there", dict(name="there", docker_host="tcp://10.0.0.9:2376"), str(tmp_path))
    guard = _guard.Guard("unix:///var/run/docker.sock", str(tmp_path))
    assert [guard.record(pod) is not None for pod in ("here", "old", "there", "none")] == [True, True, False, False]
    assert _record.recorded_for(dict(docker_host="tcp://10.0.0.9:2376"), "tcp://10.0.0.9:2376")
