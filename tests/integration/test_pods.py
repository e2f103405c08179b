"""The pods module: every pod of the host in one call, checked through the engine and the kernel.

Each pod gets a unique name from the fixtures. Prune is always narrowed by a selector label
unique to the test: the engine is shared, and an unnarrowed prune would remove every other
podkit pod on it (which is what it is for on a real host).
"""

import json
import os
import pathlib
import uuid

import pytest
import yaml

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, ns_inode, proc_cgroup, warning_text

# Stops at once on SIGTERM, so a recreation does not wait out Docker's stop timeout.
MEMBER_COMMAND = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
MEMBERS = ("app", "sidecar")
MEMORY_ROOT = pathlib.Path("/sys/fs/cgroup/memory")


def native(pod, **extra):
    entry = dict(name=pod, containers=[dict(name=m, image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                                            resources=dict(limits=dict(memory="32Mi"))) for m in MEMBERS])
    entry.update(extra)
    return entry


def manifest(pod, **labels):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "labels": labels},
            "spec": {"containers": [{"name": m, "image": BUSYBOX_IMAGE, "command": MEMBER_COMMAND}
                                    for m in MEMBERS]}}


def pods(run_module, entries, check=False, expect_fail=False, **extra):
    extra.setdefault("sandbox_image", PAUSE_IMAGE)
    extra.setdefault("pull", "never")
    return run_module("pods", check=check, expect_fail=expect_fail, pods=entries, **extra)


def labelled(client, pod):
    return client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod})


def ids(client, names):
    return dict((c.name, c.id) for name in names for c in labelled(client, name))


def assert_whole(client, pod, members=MEMBERS):
    """The pod as the kernel sees it: every member runs in the sandbox's net and IPC namespaces and
    under the pod's cgroup parent."""
    sandbox = client.containers.get(pod + "_sandbox").attrs
    assert sandbox["State"]["Running"], pod
    sandbox_pid = sandbox["State"]["Pid"]
    for member in members:
        attrs = client.containers.get("%s_%s" % (pod, member)).attrs
        assert attrs["State"]["Running"], (pod, member)
        pid = attrs["State"]["Pid"]
        for ns in ("net", "ipc"):
            assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns), (pod, member, ns)
        assert ns_inode(pid, "mnt") != ns_inode(sandbox_pid, "mnt")
        assert proc_cgroup(pid)["memory"] == "/podkit/pod-%s/%s" % (pod, attrs["Id"])


def test_ten_pods_in_one_call_come_up_whole_and_check_mode_predicted_it(docker_client, run_module, pod_names):
    names = [pod_names() for _index in range(10)]
    entries = [native(name) for name in names]

    checked = pods(run_module, entries, check=True)
    assert checked["changed"]
    assert ids(docker_client, names) == {}, "check mode created containers"
    for name in names:
        assert checked["pods"][name]["actions"] == [
            "create cgroup /podkit/pod-%s" % name, "create sandbox", "create app", "create sidecar"]

    result = pods(run_module, entries)
    assert result["changed"]
    assert result["actions"] == checked["actions"]
    assert result["actions"][:4] == ["%s: create cgroup /podkit/pod-%s" % (names[0], names[0]),
                                     "%s: create sandbox" % names[0], "%s: create app" % names[0],
                                     "%s: create sidecar" % names[0]]
    assert sorted(result["pods"]) == sorted(names)
    for name in names:
        assert_whole(docker_client, name)
        pod = result["pods"][name]["pod"]
        assert sorted(pod["containers"]["app"]["shared_with_sandbox"]) == ["ipc", "net"]
        assert int((MEMORY_ROOT / "podkit" / ("pod-" + name) / "memory.limit_in_bytes").read_text()) == 64 * 1024 ** 2
    before = ids(docker_client, names)
    assert len(before) == 30

    for check in (True, False):
        again = pods(run_module, entries, check=check)
        assert again["changed"] is False and again["actions"] == []
        assert all(not p["changed"] for p in again["pods"].values())
    assert ids(docker_client, names) == before


def test_changes_and_absent_entries_in_one_call_check_mode_equals_the_real_run(docker_client, run_module, pod_names):
    keep, change, remove = pod_names(), pod_names(), pod_names()
    pods(run_module, [native(keep), native(change), native(remove)])
    before = ids(docker_client, [keep, change, remove])

    changed_entry = native(change)
    changed_entry["containers"][1]["command"] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3599 & wait"]
    entries = [native(keep), changed_entry, dict(name=remove, state="absent")]
    checked = pods(run_module, entries, check=True, diff=True)
    assert ids(docker_client, [keep, change, remove]) == before
    result = pods(run_module, entries, diff=True)
    assert result["actions"] == checked["actions"]
    assert result["actions"] == ["%s: recreate sidecar: config changed (command)" % change,
                                 "%s: remove app" % remove, "%s: remove sidecar" % remove,
                                 "%s: remove sandbox" % remove, "%s: remove cgroup /podkit/pod-%s" % (remove, remove)]
    assert [d["before_header"] for d in result["diff"]] == ["pod %s" % change, "pod %s" % remove]
    assert result["pods"][keep]["changed"] is False and result["pods"][remove]["pod"] is None

    after = ids(docker_client, [keep, change, remove])
    assert {k: v for k, v in after.items() if k.startswith(keep)} == {k: v for k, v in before.items() if k.startswith(keep)}
    assert after["%s_app" % change] == before["%s_app" % change]
    assert after["%s_sidecar" % change] != before["%s_sidecar" % change]
    assert labelled(docker_client, remove) == []
    assert not os.path.exists("/run/podkit/%s.lock" % remove)
    assert not (MEMORY_ROOT / "podkit" / ("pod-" + remove)).exists()
    assert_whole(docker_client, change)


def test_one_bad_pod_fails_the_call_naming_it_while_the_others_converge(docker_client, run_module, pod_names):
    good = [pod_names() for _index in range(3)]
    bad_quantity, bad_image = pod_names(), pod_names()
    entries = [native(good[0]),
               native(bad_quantity, containers=[dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                                                     resources=dict(limits=dict(memory="12Q")))]),
               native(good[1]),
               native(bad_image, containers=[dict(name="app", image="podkit/absent-%s:none" % uuid.uuid4().hex[:8],
                                                  command=MEMBER_COMMAND)]),
               native(good[2])]
    result = pods(run_module, entries, expect_fail=True)
    msg = result["msg"]
    assert msg.startswith("2 of 5 pods failed")
    assert "pod %s (pods[1]): containers[0].resources.limits.memory" % bad_quantity in msg
    assert "pod %s (pods[3]): " % bad_image in msg and "pull is never" in msg
    for name in good:
        assert name not in msg
        assert_whole(docker_client, name)
        assert result["pods"][name]["changed"] and "failed" not in result["pods"][name]
    assert result["changed"]
    assert result["pods"][bad_quantity]["failed"] and "12Q" in result["pods"][bad_quantity]["msg"]
    assert labelled(docker_client, bad_quantity) == [] and labelled(docker_client, bad_image) == []

    # Fixed, the same call converges the two and leaves the others alone.
    entries[1], entries[3] = native(bad_quantity), native(bad_image)
    fixed = pods(run_module, entries)
    assert sorted(a.split(":", 1)[0] for a in fixed["actions"] if a.endswith("create sandbox")) == \
        sorted([bad_quantity, bad_image])
    assert_whole(docker_client, bad_quantity)


def test_prune_removes_only_unlisted_podkit_pods_and_never_a_foreign_container(docker_client, run_module, pod_names):
    group = "g" + uuid.uuid4().hex[:8]
    keep, gone, also_gone, other_group, foreign = [pod_names() for _index in range(5)]
    pods(run_module, [dict(manifest=manifest(n, **{"podkit-test": group})) for n in (keep, gone, also_gone)]
         + [dict(manifest=manifest(other_group, **{"podkit-test": group + "x"}))])
    # Named and labelled like a pod's sandbox of the group, but not podkit's: never touched.
    stranger = docker_client.containers.run(BUSYBOX_IMAGE, MEMBER_COMMAND, name=foreign + "_sandbox", detach=True,
                                            labels={"podkit-test": group, "io.podkit.role": "sandbox"})
    before = ids(docker_client, [keep, other_group])
    entries = [dict(manifest=manifest(keep, **{"podkit-test": group}))]

    checked = pods(run_module, entries, check=True, prune=True, prune_selector={"podkit-test": group})
    assert len(labelled(docker_client, gone)) == 3
    result = pods(run_module, entries, prune=True, prune_selector={"podkit-test": group})
    assert result["actions"] == checked["actions"]
    assert sorted(result["pods"]) == sorted([keep, gone, also_gone])
    assert result["pods"][gone]["pruned"] and result["pods"][gone]["state"] == "absent"
    assert "%s: remove sandbox" % gone in result["actions"]
    assert not any(a.startswith(keep) for a in result["actions"])
    for name in (gone, also_gone):
        assert labelled(docker_client, name) == []
        assert not (MEMORY_ROOT / "podkit" / ("pod-" + name)).exists()
        assert not os.path.exists("/run/podkit/%s.lock" % name)
    assert ids(docker_client, [keep, other_group]) == before
    stranger.reload()
    assert stranger.status == "running"
    assert_whole(docker_client, keep)

    again = pods(run_module, entries, prune=True, prune_selector={"podkit-test": group})
    assert again["changed"] is False and again["actions"] == []


def test_shared_options_are_overridden_by_an_entry_and_every_way_to_give_a_pod(
        docker_client, run_module, pod_names, tmp_path):
    plain, from_dict, from_text, from_file, own_image, elsewhere = [pod_names() for _index in range(6)]
    alias = "podkit/pause:%s" % own_image
    docker_client.images.get(PAUSE_IMAGE).tag(alias)
    try:
        path = tmp_path / "pod.yml"
        path.write_text(yaml.safe_dump(manifest(from_file)))
        entries = [native(plain), dict(manifest=manifest(from_dict)), dict(manifest=yaml.safe_dump(manifest(from_text))),
                   dict(manifest_file=str(path)), native(own_image, sandbox_image=alias),
                   native(elsewhere, docker_host="unix:///nonexistent/%s.sock" % elsewhere)]
        result = pods(run_module, entries, expect_fail=True, parallel=2)
        assert result["msg"].startswith("1 of 6 pods failed")
        assert "pod %s (pods[5]): docker_host: no Docker daemon answers at unix:///nonexistent/" % elsewhere \
            in result["msg"]
        for name in (plain, from_dict, from_text, from_file, own_image):
            assert_whole(docker_client, name)
        images = dict((n, docker_client.containers.get(n + "_sandbox").attrs["Config"]["Image"])
                      for n in (plain, from_file, own_image))
        assert images == {plain: PAUSE_IMAGE, from_file: PAUSE_IMAGE, own_image: alias}
        assert labelled(docker_client, elsewhere) == []
    finally:
        for name in (own_image,):
            for container in labelled(docker_client, name):
                container.remove(force=True)
        docker_client.images.remove(alias)


def test_a_list_that_names_a_pod_twice_changes_nothing(docker_client, run_module, pod_names):
    first, second = pod_names(), pod_names()
    result = pods(run_module, [native(first), native(second), dict(manifest=manifest(first))], expect_fail=True)
    assert "pods[2].name: pod %s is already pods[0]" % first in result["msg"]
    assert ids(docker_client, [first, second]) == {}


@pytest.mark.parametrize("check", [True, False])
def test_secrets_never_reach_results_or_diffs(docker_client, run_module, pod_names, check):
    good, bad = pod_names(), pod_names()
    token, other = "s3cr3t-" + uuid.uuid4().hex, "s3cr3t-" + uuid.uuid4().hex
    entries = [native(good, containers=[dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                                             env=[dict(name="TOKEN", value=token, secret=True)])]),
               native(bad, containers=[dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                                            env=[dict(name="KEY", value=other)], secret_env=["KEY"],
                                            resources=dict(limits=dict(memory="12Q")))])]
    result = pods(run_module, entries, check=check, diff=True, expect_fail=True)
    text = json.dumps(result)
    assert "TOKEN" in text and bad in result["msg"]
    assert token not in text and other not in text
    if not check:
        code, out = docker_client.containers.get(good + "_app").exec_run(["sh", "-c", 'printf %s "$TOKEN"'])
        assert code == 0 and out.decode() == token
        # A changed secret shows as a change, never as its value.
        entries[0]["containers"][0]["env"][0]["value"] = token + "-new"
        again = pods(run_module, entries[:1], diff=True)
        assert again["actions"] == ["%s: recreate app: config changed (env)" % good]
        assert token not in json.dumps(again)


def _restart_sandbox(client, pod):
    client.containers.get(pod + "_sandbox").restart(timeout=1)


def _remove_member(client, pod):
    client.containers.get(pod + "_app").remove(force=True)


@pytest.mark.parametrize("change", [_restart_sandbox, _remove_member], ids=["sandbox-restarted", "member-removed"])
def test_a_pod_changed_between_the_observation_and_its_lock_is_planned_from_what_is(
        docker_client, run_module, pod_names, change):
    """The pods module observes every pod once, before each pod's lock is taken: a slice that went
    stale meanwhile (here a hand changes the pod; another run would do the same) must not be acted
    on. A restarted sandbox keeps its ID and state, only its PID and namespaces tell it."""
    from ansible_collections.podkit.docker.plugins.module_utils._docker import connect
    from ansible_collections.podkit.docker.plugins.module_utils._pods import merge_entry
    from ansible_collections.podkit.docker.plugins.module_utils._reconcile import (
        converge_pod, observe_pods, still_current)
    pod = pod_names()
    pods(run_module, [native(pod)])
    params = merge_entry(dict(sandbox_image=PAUSE_IMAGE, pull="never", wait=True, wait_timeout=60,
                              docker_host="unix:///var/run/docker.sock", timeout=60), native(pod))
    client = connect(params["docker_host"], 60)
    try:
        fresh = observe_pods(client, [pod])[pod]
        assert still_current(client, fresh)
        assert converge_pod(client, params, False, observed=fresh)["actions"] == []
        stale = observe_pods(client, [pod])[pod]
        change(docker_client, pod)
        assert not still_current(client, stale)
        # Planned from the stale slice the pod would look whole and nothing would be done.
        result = converge_pod(client, params, False, observed=stale)
    finally:
        client.close()
    assert any(a.startswith(("create app", "recreate app")) for a in result["actions"]), result["actions"]
    assert_whole(docker_client, pod)
    assert pods(run_module, [native(pod)])["changed"] is False


def test_multi_document_entries_warnings_by_pod_and_validate_shared_or_own(docker_client, run_module, pod_names):
    """An entry's manifest text may hold the Pod with the ConfigMap it uses; fields that mean nothing on
    one host are named in warnings by pod; a module-level validate: strict refuses such a pod unless the
    entry says otherwise, and the others converge."""
    relaxed, strict, plain = pod_names(), pod_names(), pod_names()

    def text(pod):
        pod_doc = manifest(pod)
        pod_doc["spec"]["nodeSelector"] = {"disktype": "ssd"}
        pod_doc["spec"]["containers"][0]["env"] = [
            {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}}]
        settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                    "data": {"greeting": "hello-" + pod}}
        return yaml.safe_dump_all([pod_doc, settings])

    entries = [dict(manifest=text(relaxed), validate="warn"), dict(manifest=text(strict)), native(plain)]
    result = pods(run_module, entries, expect_fail=True, validate="strict")
    assert result["msg"].startswith("1 of 3 pods failed")
    assert "pod %s (pods[1]): validate is strict" % strict in result["msg"]
    assert "spec.nodeSelector" in result["msg"]
    warnings = [warning_text(w) for w in result.get("warnings") or []]
    assert any(w.startswith("pod %s: " % relaxed) and "spec.nodeSelector" in w for w in warnings), warnings
    assert_whole(docker_client, relaxed)
    assert_whole(docker_client, plain)
    assert labelled(docker_client, strict) == []
    pid = docker_client.containers.get(relaxed + "_app").attrs["State"]["Pid"]
    environ = pathlib.Path("/proc/%d/environ" % pid).read_bytes().split(b"\0")
    assert ("GREETING=hello-" + relaxed).encode() in environ
    again = pods(run_module, entries[:1] + entries[2:], validate="strict")
    assert again["changed"] is False and again["actions"] == []
