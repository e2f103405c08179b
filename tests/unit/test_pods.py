"""The pods module's own logic without an engine: merging, validation, prune selection, reporting."""

import threading
import time

import pytest

from ansible_collections.podkit.docker.plugins.module_utils import _pods, _record
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._pods import (
    Entry, Outcome, check_selector, diffs, entries_secret_values, failure_message, flatten, merge_entry, pod_result, pod_warnings,
    podkit_pod_names, prune_entries, resolve_entries, run_all, selector_filters)

SHARED = dict(sandbox_image="podkit/pause:latest", pull="never", wait=True, wait_timeout=60,
              docker_host="unix:///var/run/docker.sock", timeout=60)


def manifest(name, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}}


def params(*pods, **extra):
    return dict(SHARED, pods=list(pods), **extra)


def no_file(path):
    raise OSError(2, "No such file or directory", path)


# -- merging


def test_entry_values_win_over_module_level_ones_and_unset_ones_inherit():
    merged = merge_entry(SHARED, dict(name="a", pull="missing", wait=False, wait_timeout=None))
    assert merged["pull"] == "missing"
    # False is a value, not "unset": a pod that does not wait stays so under a module-level wait: true.
    assert merged["wait"] is False
    assert merged["wait_timeout"] == 60
    assert merged["sandbox_image"] == "podkit/pause:latest"
    assert merged["docker_host"] == "unix:///var/run/docker.sock"
    assert merged["state"] == "present"


def test_merge_passes_every_pod_option_and_nothing_of_the_pods_module():
    entry = dict(name="a", containers=[{"name": "app"}], cgroup_parent="/pod-a", state="absent", manifest_file="/x")
    merged = merge_entry(dict(SHARED, prune=True, parallel=2, pods=[entry]), entry)
    assert merged["containers"] == [{"name": "app"}] and merged["cgroup_parent"] == "/pod-a"
    assert merged["state"] == "absent"
    for key in ("prune", "parallel", "pods", "manifest_file"):
        assert key not in merged


# -- validation of the list


def test_names_come_from_name_manifest_text_and_manifest_file():
    import yaml
    files = {"/srv/c.yml": yaml.safe_dump(manifest("c"))}
    entries = resolve_entries(params(
        dict(name="a", containers=[]),
        dict(manifest=manifest("b")),
        dict(manifest_file="/srv/c.yml", pull="missing"),
        dict(manifest=yaml.safe_dump(manifest("d")), name="d"),
    ), read_text=files.__getitem__)
    assert [(e.index, e.name) for e in entries] == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]
    # The file's manifest is handed to the pod as parsed data, with the entry's own options.
    assert entries[2].params["manifest"]["metadata"]["name"] == "c"
    assert entries[2].params["pull"] == "missing" and entries[1].params["pull"] == "never"
    assert entries[3].params["manifest"]["metadata"]["name"] == "d"


def test_a_name_given_twice_is_refused_naming_both_entries():
    with pytest.raises(PodkitError) as caught:
        resolve_entries(params(dict(name="a"), dict(name="b"), dict(manifest=manifest("a"))))
    assert "pods[2].name: pod a is already pods[0]" in caught.value.msg
    assert "Nothing was changed" in caught.value.msg


def test_rollback_on_a_pod_entry_is_refused_naming_the_field():
    with pytest.raises(PodkitError) as caught:
        resolve_entries(params(dict(name="a"), dict(manifest=manifest("b"), rollback=True)))
    assert "pods[1].rollback: only for an entry whose manifest holds a Deployment, StatefulSet or DaemonSet" \
        in caught.value.msg
    assert [e.name for e in resolve_entries(params(dict(name="a", rollback=False)))] == ["a"]


def test_every_bad_entry_is_named_in_one_error():
    with pytest.raises(PodkitError) as caught:
        resolve_entries(params(
            dict(containers=[{"name": "app"}]),
            dict(name="ok"),
            dict(name="x", manifest=manifest("y")),
            dict(manifest=manifest("m"), manifest_file="/m.yml"),
            dict(manifest_file="/missing.yml"),
            dict(name="-bad/name"),
            "not-a-mapping",
            dict(manifest="kind: [unclosed"),
        ), read_text=no_file)
    msg = caught.value.msg
    assert "pods[0]: the pod has no name" in msg
    assert "pods[1]" not in msg
    assert "pods[2].name: 'x' does not match the manifest's metadata.name 'y'" in msg
    assert "pods[3]: manifest and manifest_file are exclusive" in msg
    assert "pods[4].manifest_file: cannot read /missing.yml" in msg and "No such file" in msg
    assert "pods[5].name" in msg
    assert "pods[6]: each entry is a mapping" in msg
    assert "pods[7].manifest: not valid YAML" in msg


def test_a_manifest_name_that_is_invalid_names_metadata_name():
    with pytest.raises(PodkitError) as caught:
        resolve_entries(params(dict(manifest=manifest("../etc"))))
    assert "pods[0].metadata.name" in caught.value.msg


def test_an_empty_list_is_no_pods():
    assert resolve_entries(params()) == []


# -- prune selection


def summary(pod=None, **labels):
    if pod is not None:
        labels["io.podkit.pod"] = pod
    return {"Id": "x" * 64, "Names": ["/%s_sandbox" % pod], "Labels": labels}


def test_prune_candidates_are_only_containers_labelled_with_a_pod():
    found = podkit_pod_names([summary("a"), summary("a"), summary("b"), summary(None), summary(""),
                              {"Id": "y", "Labels": None}])
    assert found == ["a", "b"]


def test_prune_selector_narrows_the_candidates():
    summaries = [summary("a", team="web"), summary("b", team="db"), summary("c"), summary(None, team="web")]
    assert podkit_pod_names(summaries, {"team": "web"}) == ["a"]
    assert selector_filters({"team": "web", "tier": "1"}) == ["io.podkit.pod", "team=web", "tier=1"]
    assert selector_filters(None) == ["io.podkit.pod"]


@pytest.mark.parametrize("selector", [{"team": None}, {"team": ["a"]}, {"a=b": "c"}])
def test_a_bad_prune_selector_is_refused(selector):
    with pytest.raises(PodkitError) as caught:
        check_selector(selector)
    assert "prune_selector." in caught.value.msg


def test_prune_removes_the_unlisted_pods_only():
    entries = [Entry(0, "a", {}), Entry(1, "gone", {"state": "absent"})]
    records = {"c": {"cgroup_limits": "unmanaged"}}
    pruned = prune_entries(["a", "c", "b", "gone"], entries, SHARED, record_of=records.get)
    assert [(e.index, e.name, e.params["state"]) for e in pruned] == [(None, "b", "absent"), (None, "c", "absent")]
    assert pruned[0].params["docker_host"] == SHARED["docker_host"]
    assert pruned[0].where == "pod b (pruned)"
    # A pod applied with cgroup_limits unmanaged is pruned so: its cgroup is not podkit's to remove.
    assert [e.params.get("cgroup_limits") for e in pruned] == [None, "unmanaged"]


# -- running and reporting


def test_pods_run_at_most_parallel_at_once_and_outcomes_keep_the_list_order():
    lock = threading.Lock()
    state = dict(now=0, peak=0)

    def converge(entry, _clients, _check, _diff, _host):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.05 if entry.index % 2 else 0.01)
        with lock:
            state["now"] -= 1
        return Outcome(entry=entry, result=dict(actions=["create sandbox"], changed=True))

    entries = [Entry(i, "p%d" % i, {}) for i in range(10)]
    outcomes = run_all(entries, False, False, 3, converge=converge)
    assert [o.entry.name for o in outcomes] == ["p%d" % i for i in range(10)]
    assert state["peak"] == 3
    state["peak"] = 0
    run_all(entries, False, False, 1, converge=converge)
    assert state["peak"] == 1


def test_workers_take_the_api_version_the_module_client_found_for_its_daemon(tmp_path):
    """Each worker's client of the module's own daemon is made with the API version that client found, so
    it asks no GET /version: made here against a socket nobody listens on, it connects without a word to it,
    where a client that asks (another daemon) fails to reach it."""
    silent = "unix://%s" % (tmp_path / "nobody.sock")
    clients = _pods.Clients(known=(silent, "1.41"))
    try:
        client = clients.get(silent, 5)
        assert client.api.api_version == "1.41"
        with pytest.raises(PodkitError):
            clients.get("unix://%s" % (tmp_path / "other.sock"), 5)
    finally:
        clients.close()
    with pytest.raises(PodkitError):
        _pods.Clients().get(silent, 5)


def outcomes():
    ok = Outcome(Entry(0, "web", {"state": "present"}), result=dict(
        changed=True, actions=["create sandbox", "create app"], pod={"name": "web"},
        diff=dict(before={}, after={}, prepared="create sandbox\n")))
    same = Outcome(Entry(1, "db", {"state": "present"}), result=dict(
        changed=False, actions=[], pod={"name": "db"}, diff=dict(before={}, after={}, prepared="")))
    bad = Outcome(Entry(2, "cache", {"state": "present"}), result=dict(
        changed=True, actions=["create sandbox"], exit_code=3), error="init container setup failed with exit code 3")
    pruned = Outcome(Entry(None, "old", {"state": "absent"}), result=dict(changed=True, actions=["remove sandbox"]))
    return [ok, same, bad, pruned]


def test_actions_are_flat_and_prefixed_by_pod_in_order():
    assert flatten(outcomes()) == ["web: create sandbox", "web: create app", "cache: create sandbox",
                                   "old: remove sandbox"]


def test_per_pod_results_say_what_failed_and_what_was_pruned():
    web, db, cache, old = [pod_result(o) for o in outcomes()]
    assert web == dict(changed=True, actions=["create sandbox", "create app"], pod={"name": "web"}, state="present")
    assert db["changed"] is False and "failed" not in db
    assert cache["failed"] is True and cache["msg"].startswith("init container setup failed")
    assert cache["exit_code"] == 3 and cache["changed"] is True
    assert old["pruned"] is True and old["state"] == "absent"


def test_the_failure_message_names_each_failed_pod_and_why():
    msg = failure_message(outcomes())
    assert msg.startswith("1 of 4 pods failed")
    assert "pod cache (pods[2]): init container setup failed with exit code 3" in msg
    assert "web" not in msg
    assert failure_message(outcomes()[:2]) is None


def test_one_diff_per_changed_pod_headed_by_its_name():
    found = diffs(outcomes())
    # db changes nothing; cache failed before it had a diff.
    assert [d["before_header"] for d in found] == ["pod web"]
    assert found[0]["prepared"] == "create sandbox\n" and found[0]["after_header"] == "pod web"


def test_secret_values_of_every_entry_are_found_before_parsing():
    found = entries_secret_values(params(
        dict(name="a", containers=[{"name": "app", "env": [{"name": "T", "value": "s1", "secret": True},
                                                           {"name": "P", "value": "plain"}]}]),
        dict(name="b", init_containers=[{"name": "i", "secret_env": {"K": "s2"}}]),
        "not-a-mapping",
    ))
    assert sorted(found) == ["s1", "s2"]


@pytest.mark.parametrize("module", ["pods", "pod"])
def test_the_invocation_logged_on_the_host_masks_secret_values(tmp_path, module):
    """AnsibleModule logs its arguments to the host's journal or syslog as it starts; the sink is
    captured here (this machine has neither) and the secret must not be in what was logged."""
    import json
    import subprocess
    import sys
    token = "s3cr3t-logged-%s" % tmp_path.name
    pod = {"name": "a", "containers": [{"name": "app", "image": "busybox",
                                        "env": [{"name": "TOKEN", "value": token, "secret": True}]}]}
    args = {"ANSIBLE_MODULE_ARGS": dict(pod if module == "pod" else {"pods": [pod]},
                                        docker_host="unix:///nonexistent.sock")}
    script = (
        "import sys\n"
        "import ansible.module_utils.basic as basic\n"
        "logged = []\n"
        "basic.has_journal = False\n"
        "basic.AnsibleModule._log_to_syslog = lambda self, msg: logged.append(msg)\n"
        "from ansible_collections.podkit.docker.plugins.modules import %s as module\n"
        "try:\n"
        "    module.main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stderr.write('LOGGED:' + repr(logged))\n" % module)
    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(args), capture_output=True, text=True,
                          env=dict(__import__("os").environ, PYTHONPATH=":".join(sys.path)), check=False, timeout=60)
    logged = proc.stderr.split("LOGGED:", 1)[-1]
    assert "Invoked with" in logged and "TOKEN" in logged, proc.stderr
    assert token not in logged and token not in proc.stdout


def test_warnings_are_named_by_pod_in_list_order():
    first = Outcome(Entry(0, "a", {"state": "present"}), result=dict(warnings=["spec.nodeSelector means nothing"]))
    second = Outcome(Entry(1, "b", {"state": "present"}), result={})
    third = Outcome(Entry(2, "c", {"state": "present"}), result=dict(warnings=["x", "y"]))
    assert pod_warnings([first, second, third]) == [
        "pod a: spec.nodeSelector means nothing", "pod c: x", "pod c: y"]


def test_a_multi_document_manifest_text_is_named_by_its_pod():
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {k: v}\n---\n"
            "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: app, image: busybox}]\n")
    entries = resolve_entries(params(dict(manifest=text)))
    assert [e.name for e in entries] == ["web"]
    assert [doc["kind"] for doc in entries[0].params["manifest"]] == ["ConfigMap", "Pod"]


def test_validate_is_shared_and_overridden_like_the_other_options():
    assert merge_entry(dict(SHARED, validate="strict"), dict(name="a"))["validate"] == "strict"
    assert merge_entry(dict(SHARED, validate="strict"), dict(name="a", validate="ignore"))["validate"] == "ignore"


def test_one_table_of_pod_options_serves_pod_and_pods():
    """pod's argument spec and each pods entry's come from one table (_podoptions); _pods merges exactly them."""
    from ansible_collections.podkit.docker.plugins.module_utils._podoptions import (
        entry_argument_spec, pod_argument_spec, shared_argument_spec)
    from ansible_collections.podkit.docker.plugins.module_utils._pods import ENTRY_OPTIONS, SHARED_OPTIONS
    pod, entry = pod_argument_spec(), entry_argument_spec()
    # rerun and rollback: an entry's own, for a Job and for a rollout (the pod module runs neither).
    assert set(entry) == set(ENTRY_OPTIONS) | {"manifest_file", "rerun", "rollback"}
    assert set(pod) | {"docker_host", "timeout", "rerun", "rollback"} == set(entry)
    for name, spec in pod.items():
        assert dict(spec, default=None) == dict(entry[name], default=None), name
    assert [n for n, s in entry.items() if "default" in s] == ["state", "rollback"]
    shared = shared_argument_spec(SHARED_OPTIONS)
    assert set(shared) == set(SHARED_OPTIONS) - {"docker_host", "timeout"}
    assert all(shared[n] == pod[n] for n in shared)


def test_prune_finds_recorded_pods_by_their_recorded_labels_and_engine(tmp_path, monkeypatch):
    """A recorded pod is the host's even when its containers are gone: prune finds it by its record,
    narrowed by the selector on the labels the record gives the sandbox, and by its engine."""
    monkeypatch.setenv("PODKIT_STATE_DIR", str(tmp_path))

    def manifest(name, **labels):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}}
    _record.write_record("mine", dict(name="mine", manifest=manifest("mine", team="a")))
    _record.write_record("theirs", dict(name="theirs", manifest=manifest("theirs", team="b")))
    _record.write_record("native", dict(name="native", containers=[dict(name="app", image="busybox")]))
    _record.write_record("far", dict(name="far", manifest=manifest("far", team="a"), docker_host="tcp://10.0.0.9:2376"))
    here = "unix:///var/run/docker.sock"
    assert _pods.recorded_pod_names(here) == ["mine", "native", "theirs"]
    assert _pods.recorded_pod_names(here, {"team": "a"}) == ["mine"]
    assert _pods.recorded_pod_names("tcp://10.0.0.9:2376", {"team": "a"}) == ["far"]


def test_an_entry_named_by_generate_name_and_one_without_a_pod_are_told_apart():
    """generateName gives the entry its stable name (the prefix less its '-'); a manifest without a Pod is
    named for what it holds, document by document, not only for the missing name."""
    text = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: '1'}\n---\n"
            "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {}\n")
    generated = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "batch-"},
                 "spec": {"containers": [{"name": "a", "image": "b"}]}}
    assert [e.name for e in resolve_entries(params(dict(manifest=generated)))] == ["batch"]
    with pytest.raises(PodkitError) as caught:
        resolve_entries(params(dict(manifest=text)))
    assert ("pods[0]: the pod has no name (no document is a Pod (found: document 1 of 2 (kind 'ConfigMap', named"
            " 'settings'); document 2 of 2 (kind 'Service', named 'web'))") in caught.value.msg, caught.value.msg
