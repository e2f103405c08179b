"""The pod module: the article's manifest, reconciled like the kubelet, checked through the kernel.

Each test uses its own pod name; images are the local pause and busybox images, never pulled.
"""

import copy
import io
import os
import pathlib
import subprocess
import sys

import pytest

from helpers import (
    BUSYBOX_IMAGE, PAUSE_IMAGE, TOP, ansible_env, cgroup_dirs, container_pid, exec_out, ns_inode, proc_cgroup)

CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")
MEMORY_ROOT = CGROUP_ROOT / "memory"


def article_manifest(pod, host_port=None):
    """The article's Pod (app 256Mi, sidecar 128Mi) with busybox doing what httpbin and curl did."""
    app = {
        "name": "app",
        "image": BUSYBOX_IMAGE,
        "command": ["sh", "-c", "mkdir -p /www && echo hello-from-app > /www/index.html && exec httpd -f -p 80 -h /www"],
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"memory": "256Mi"}},
    }
    if host_port:
        app["ports"][0].update(hostPort=host_port, hostIP="127.0.0.1")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod},
        "spec": {"containers": [
            app,
            {"name": "sidecar", "image": BUSYBOX_IMAGE, "command": ["/bin/sleep", "3650d"],
             "resources": {"limits": {"memory": "128Mi"}}},
        ]},
    }


def deploy(run_module, manifest, check=False, expect_fail=False, **extra):
    return run_module("pod", check=check, expect_fail=expect_fail, manifest=manifest, sandbox_image=PAUSE_IMAGE,
                      pull="never", **extra)


def ids(client, pod):
    return dict((c.labels["io.podkit.container"], c.id)
                for c in client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod}))


def labelled(client, pod):
    return client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod})


def change_and_compare(client, run_module, pod, manifest):
    """Check mode first (nothing may change), then the real run: their actions must be equal."""
    before = ids(client, pod)
    checked = deploy(run_module, manifest, check=True)
    assert checked["changed"]
    assert ids(client, pod) == before
    real = deploy(run_module, manifest)
    assert real["actions"] == checked["actions"]
    again = deploy(run_module, manifest)
    assert not again["changed"] and again["actions"] == []
    return before, ids(client, pod), real["actions"]


def test_article_manifest_deploys_with_the_pod_cgroup_and_shared_namespaces(docker_client, run_module, pod_name):
    manifest = article_manifest(pod_name)
    result = deploy(run_module, manifest)
    assert result["changed"]
    assert result["actions"] == ["create cgroup /podkit/pod-%s" % pod_name, "create sandbox", "create app",
                                 "create sidecar"]
    assert result["pod"]["qos_class"] == "Burstable"
    parent = "/podkit/pod-%s" % pod_name
    assert int((MEMORY_ROOT / parent.lstrip("/") / "memory.limit_in_bytes").read_text()) == 402653184

    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    for name, limit in (("app", 268435456), ("sidecar", 134217728)):
        container = docker_client.containers.get("%s_%s" % (pod_name, name))
        pid = container.attrs["State"]["Pid"]
        for ns in ("net", "ipc"):
            assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns)
        for ns in ("mnt", "pid"):
            assert ns_inode(pid, ns) != ns_inode(sandbox_pid, ns)
        cgroups = proc_cgroup(pid)
        assert cgroups["memory"] == "%s/%s" % (parent, container.id)
        assert int((MEMORY_ROOT / cgroups["memory"].lstrip("/") / "memory.limit_in_bytes").read_text()) == limit
        assert sorted(result["pod"]["containers"][name]["shared_with_sandbox"]) == ["ipc", "net"]
    assert "hello-from-app" in exec_out(docker_client, pod_name + "_sidecar", ["wget", "-qO-", "http://localhost:80/"])
    exec_out(docker_client, pod_name + "_app", ["sh", "-c", "echo ipc > /dev/shm/podkit"])
    assert exec_out(docker_client, pod_name + "_sidecar", ["cat", "/dev/shm/podkit"]).strip() == "ipc"

    for check in (True, False):
        again = deploy(run_module, manifest, check=check)
        assert again["changed"] is False and again["actions"] == []

    # YAML text is the same pod.
    import yaml
    assert deploy(run_module, yaml.safe_dump(manifest))["actions"] == []


def test_port_change_recreates_everything_and_member_changes_only_the_member(docker_client, run_module, pod_name):
    manifest = article_manifest(pod_name, host_port=18000 + int(pod_name[1:5], 16) % 2000)
    deploy(run_module, manifest)
    sandbox = docker_client.containers.get(pod_name + "_sandbox")
    assert sandbox.attrs["HostConfig"]["PortBindings"]["80/tcp"][0]["HostIp"] == "127.0.0.1"

    # A published port is the sandbox's: sandbox and every member are recreated.
    changed = copy.deepcopy(manifest)
    changed["spec"]["containers"][0]["ports"][0]["hostPort"] += 1
    before, after, actions = change_and_compare(docker_client, run_module, pod_name, changed)
    assert actions == ["recreate sandbox: ports changed", "recreate app: sandbox recreated",
                       "recreate sidecar: sandbox recreated"]
    assert all(after[k] != before[k] for k in before)
    port = docker_client.containers.get(pod_name + "_sandbox").attrs["HostConfig"]["PortBindings"]["80/tcp"][0]
    assert int(port["HostPort"]) == changed["spec"]["containers"][0]["ports"][0]["hostPort"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    assert ns_inode(container_pid(docker_client, pod_name + "_app"), "net") == ns_inode(sandbox_pid, "net")

    # env of one member: that member only.
    env = copy.deepcopy(changed)
    env["spec"]["containers"][1]["env"] = [{"name": "MODE", "value": "debug"}]
    before, after, actions = change_and_compare(docker_client, run_module, pod_name, env)
    assert actions == ["recreate sidecar: config changed (env)"]
    assert after["sidecar"] != before["sidecar"]
    assert after["app"] == before["app"] and after["sandbox"] == before["sandbox"]

    # Another image for one member (a tag with another image ID): that member only.
    tag = "podkit/busybox:%s" % pod_name
    image, _logs = docker_client.images.build(
        fileobj=io.BytesIO(("FROM %s\nLABEL io.podkit.test=%s\n" % (BUSYBOX_IMAGE, pod_name)).encode()), tag=tag,
        rm=True, pull=False)
    try:
        assert image.id != docker_client.images.get(BUSYBOX_IMAGE).id
        retagged = copy.deepcopy(env)
        retagged["spec"]["containers"][0]["image"] = tag
        before, after, actions = change_and_compare(docker_client, run_module, pod_name, retagged)
        assert actions == ["recreate app: config changed (image)"]
        assert after["app"] != before["app"] and after["sidecar"] == before["sidecar"]
        assert docker_client.containers.get(pod_name + "_app").image.id == image.id

        # The same reference re-tagged to another image ID: recreated as well.
        docker_client.images.get(BUSYBOX_IMAGE).tag("podkit/busybox", pod_name)
        before, after, actions = change_and_compare(docker_client, run_module, pod_name, retagged)
        assert actions == ["recreate app: image changed (%s)" % tag]
        assert docker_client.containers.get(pod_name + "_app").image.id == docker_client.images.get(BUSYBOX_IMAGE).id
    finally:
        for container in labelled(docker_client, pod_name):
            container.remove(force=True)
        docker_client.images.remove(tag, force=True)
        try:
            docker_client.images.remove(image.id, force=True)
        except Exception:  # pylint: disable=broad-except
            pass


def init_pod(pod, fail_code=None):
    second = "echo two >> /data/log"
    if fail_code is not None:
        second = "echo init-two-breaks; exit %d" % fail_code
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
        "spec": {
            "volumes": [{"name": "data", "emptyDir": {}}],
            "initContainers": [
                {"name": "one", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", "echo one >> /data/log"],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
                {"name": "two", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", second],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            ],
            "containers": [
                {"name": "app", "image": BUSYBOX_IMAGE,
                 "command": ["sh", "-c", "cp /data/log /tmp/seen-at-start && exec sleep 3650d"],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]},
            ],
        },
    }


def test_init_containers_run_in_order_before_the_app(docker_client, run_module, pod_name):
    result = deploy(run_module, init_pod(pod_name))
    assert result["actions"] == [
        "create cgroup /podkit/pod-%s" % pod_name, "create sandbox", "create volume %s_data: emptyDir data" % pod_name,
        "run init one: not run yet", "run init two: after one", "create app"]
    assert exec_out(docker_client, pod_name + "_app", ["cat", "/tmp/seen-at-start"]) == "one\ntwo\n"
    for name in ("one", "two"):
        state = docker_client.containers.get("%s_%s" % (pod_name, name)).attrs["State"]
        assert state["Status"] == "exited" and state["ExitCode"] == 0
    # Completed init containers are not run again on an unchanged pod.
    again = deploy(run_module, init_pod(pod_name))
    assert again["actions"] == []
    assert exec_out(docker_client, pod_name + "_app", ["cat", "/data/log"]) == "one\ntwo\n"

    # state absent removes the emptyDir volume too.
    run_module("pod", name=pod_name, state="absent")
    assert not docker_client.volumes.list(filters={"label": "io.podkit.pod=" + pod_name})


def test_failing_init_container_fails_the_run_and_members_do_not_start(docker_client, run_module, pod_name):
    result = deploy(run_module, init_pod(pod_name, fail_code=3), expect_fail=True)
    assert "two" in result["msg"] and "exit code 3" in result["msg"] and "init-two-breaks" in result["msg"]
    assert result["exit_code"] == 3
    assert not docker_client.containers.list(all=True, filters={"name": "^/%s_app$" % pod_name})
    assert docker_client.containers.get(pod_name + "_two").attrs["State"]["ExitCode"] == 3


def test_concurrent_playbooks_on_a_new_pod_leave_one_of_each(docker_client, pod_name, tmp_path):
    import yaml
    playbook = tmp_path / "pod.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": "Deploy the pod", "podkit.docker.pod": {
            "manifest": article_manifest(pod_name), "sandbox_image": PAUSE_IMAGE, "pull": "never"}}],
    }]))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", str(playbook)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env(),
                              cwd=str(TOP)) for run in range(2)]
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output
    roles = sorted((c.labels["io.podkit.role"], c.labels["io.podkit.container"]) for c in labelled(docker_client, pod_name))
    assert roles == [("member", "app"), ("member", "sidecar"), ("sandbox", "sandbox")]
    assert sum("changed=1" in o for o in outputs) == 1 and sum("changed=0" in o for o in outputs) == 1


def test_absent_leaves_no_container_and_no_cgroup(docker_client, run_module, pod_name):
    deploy(run_module, article_manifest(pod_name))
    assert cgroup_dirs(pod_name)
    assert os.path.exists("/run/podkit/%s.lock" % pod_name)     # kept while the pod has a container
    checked = run_module("pod", check=True, name=pod_name, state="absent")
    assert checked["changed"] and len(labelled(docker_client, pod_name)) == 3
    result = run_module("pod", name=pod_name, state="absent")
    assert result["actions"] == checked["actions"]
    assert result["actions"][-1] == "remove cgroup /podkit/pod-%s" % pod_name
    assert labelled(docker_client, pod_name) == []
    assert cgroup_dirs(pod_name) == []
    assert not os.path.exists("/run/podkit/%s.lock" % pod_name)
    assert not run_module("pod", name=pod_name, state="absent")["changed"]


def test_stopped_then_started(docker_client, run_module, pod_name):
    manifest = article_manifest(pod_name)
    deploy(run_module, manifest)
    result = run_module("pod", name=pod_name, state="stopped")
    assert result["actions"] == ["stop app", "stop sidecar", "stop sandbox"]
    assert all(c.status == "exited" for c in labelled(docker_client, pod_name))
    result = deploy(run_module, manifest, state="started")
    assert result["actions"] == ["start sandbox: not running", "recreate app: sandbox restarted",
                                 "recreate sidecar: sandbox restarted"]
    assert "hello-from-app" in exec_out(docker_client, pod_name + "_sidecar", ["wget", "-qO-", "http://localhost:80/"])


def test_a_member_its_rules_restart_is_restarted_by_the_run_even_after_it_was_seen_running(
        docker_client, run_module, pod_name):
    """KEP-5307 restart rules that Docker cannot say (exit 42 only) are kept by podkit: a member that runs a
    moment, long enough to be seen running, then exits 42 is started again by the same run, so the next run
    is a no-op (CI once caught the corpus pod between its start and its exit)."""
    step = ["sh", "-c", "if [ -e /state/done ]; then exec sleep 3650d; fi; touch /state/done; sleep 0.4; exit 42"]
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name}, "spec": {
        "restartPolicy": "Never",
        "volumes": [{"name": "state", "emptyDir": {}}],
        "containers": [{"name": "step", "image": BUSYBOX_IMAGE, "command": step, "restartPolicy": "Never",
                        "restartPolicyRules": [{"action": "Restart",
                                                "exitCodes": {"operator": "In", "values": [42]}}],
                        "volumeMounts": [{"name": "state", "mountPath": "/state"}]}]}}
    deploy(run_module, manifest)
    container = docker_client.containers.get(pod_name + "_step")
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
    assert container.attrs["State"]["Running"], container.attrs["State"]
    # The second instance runs: its command is the sleep the first one's marker leads to.
    assert pathlib.Path("/proc/%d/cmdline" % container_pid(docker_client, pod_name + "_step")).read_bytes().startswith(
        b"sleep\0")
    assert deploy(run_module, manifest)["changed"] is False


def test_secret_env_never_shown(docker_client, run_module, pod_name):
    result = run_module("pod", name=pod_name, sandbox_image=PAUSE_IMAGE, pull="never", diff=True, containers=[
        {"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
         "env": [{"name": "TOKEN", "value": "hush-hush-42", "secret": True}, {"name": "PLAIN", "value": "x"}]}])
    assert "hush-hush-42" not in repr(result)
    assert "TOKEN=hush-hush-42" in docker_client.containers.get(pod_name + "_app").attrs["Config"]["Env"]


def _bad(pod):
    base = article_manifest(pod)
    cases = {}
    case = copy.deepcopy(base)
    del case["spec"]["containers"]
    cases["missing containers"] = (case, "containers")
    case = copy.deepcopy(base)
    case["spec"]["containers"][1]["name"] = "app"
    cases["duplicate name"] = (case, "app")
    case = copy.deepcopy(base)
    case["spec"]["containers"][0]["ports"] = [{"containerPort": 80, "hostPort": 18999}]
    case["spec"]["containers"][1]["ports"] = [{"containerPort": 81, "hostPort": 18999}]
    cases["same hostPort"] = (case, "18999")
    case = copy.deepcopy(base)
    case["kind"] = "Deployment"
    cases["unknown kind"] = (case, "kind")
    case = copy.deepcopy(base)
    # Docker has no SELinux labels per container to give: refused, named by its path.
    case["spec"]["containers"][0]["securityContext"] = {"seLinuxOptions": {"level": "s0:c123,c456"}}
    cases["unsupported field"] = (case, "securityContext.seLinuxOptions")
    case = copy.deepcopy(base)
    case["spec"]["containers"][0]["resources"]["limits"]["memory"] = "1Mi"
    cases["memory below minimum"] = (case, "memory")
    case = copy.deepcopy(base)
    case["spec"]["containers"][0]["resources"]["requests"] = {"memory": "512Mi"}
    cases["request above limit"] = (case, "request")
    return cases


@pytest.mark.parametrize("case", ["missing containers", "duplicate name", "same hostPort", "unknown kind",
                                  "unsupported field", "memory below minimum", "request above limit"])
def test_bad_manifest_is_a_clear_error_and_creates_nothing(docker_client, run_module, pod_name, case):
    manifest, word = _bad(pod_name)[case]
    result = deploy(run_module, manifest, expect_fail=True)
    assert word in result["msg"], result["msg"]
    assert labelled(docker_client, pod_name) == []
    assert not docker_client.containers.list(all=True, filters={"name": "^/%s_" % pod_name})
    assert cgroup_dirs(pod_name) == []


def test_manifest_and_native_options_are_exclusive(docker_client, run_module, pod_name):
    result = deploy(run_module, article_manifest(pod_name), expect_fail=True, hostname="x")
    assert "manifest" in result["msg"] and "hostname" in result["msg"]
    assert (result["changed"], result["actions"]) == (False, [])
    # Refused before the host was touched: no container, no cgroup, no lock file.
    assert docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name}) == []
    assert docker_client.containers.list(all=True, filters={"name": "^/%s_" % pod_name}) == []
    assert cgroup_dirs(pod_name) == []
    assert not os.path.exists("/run/podkit/%s.lock" % pod_name)


def test_init_containers_rerun_after_the_sandbox_restarted(docker_client, run_module, pod_name):
    deploy(run_module, init_pod(pod_name))
    docker_client.containers.get(pod_name + "_sandbox").restart(timeout=1)
    checked = deploy(run_module, init_pod(pod_name), check=True)
    assert checked["actions"] == ["run init one: sandbox restarted", "run init two: after one",
                                  "recreate app: stale network namespace"]
    result = deploy(run_module, init_pod(pod_name))
    assert result["actions"] == checked["actions"]
    # The emptyDir outlives the sandbox, as in Kubernetes: both init containers appended again.
    assert exec_out(docker_client, pod_name + "_app", ["cat", "/tmp/seen-at-start"]) == "one\ntwo\none\ntwo\n"
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    assert ns_inode(container_pid(docker_client, pod_name + "_app"), "net") == ns_inode(sandbox_pid, "net")


def test_restarted_state_gives_new_namespaces_that_members_share(docker_client, run_module, pod_name):
    manifest = article_manifest(pod_name)
    deploy(run_module, manifest)
    old_net = ns_inode(container_pid(docker_client, pod_name + "_sandbox"), "net")
    result = deploy(run_module, manifest, state="restarted")
    assert result["actions"] == ["restart sandbox: state restarted", "recreate app: sandbox restarted",
                                 "recreate sidecar: sandbox restarted"]
    sandbox_net = ns_inode(container_pid(docker_client, pod_name + "_sandbox"), "net")
    assert sandbox_net != old_net
    for name in ("app", "sidecar"):
        assert ns_inode(container_pid(docker_client, "%s_%s" % (pod_name, name)), "net") == sandbox_net
    assert deploy(run_module, manifest)["actions"] == []


def test_missing_image_with_pull_never_is_a_clear_error(docker_client, run_module, pod_name):
    manifest = article_manifest(pod_name)
    manifest["spec"]["containers"][1]["image"] = "podkit/not-here:%s" % pod_name
    result = deploy(run_module, manifest, expect_fail=True)
    assert "podkit/not-here:%s" % pod_name in result["msg"] and "never" in result["msg"]
    assert labelled(docker_client, pod_name) == []


def test_members_made_together_join_the_running_sandbox_after_the_init_containers(docker_client, run_module, pod_name):
    """Members are created and started together once the sandbox runs and the init containers
    completed in order; the actions stay in plan order, so check mode still predicts them."""
    manifest = init_pod(pod_name)
    app = manifest["spec"]["containers"][0]
    manifest["spec"]["containers"] = [dict(app, name=name) for name in ("app", "b", "c", "d")]
    checked = deploy(run_module, manifest, check=True)
    result = deploy(run_module, manifest)
    assert result["actions"] == checked["actions"]
    assert result["actions"][-6:] == ["run init one: not run yet", "run init two: after one",
                                      "create app", "create b", "create c", "create d"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    for name in ("app", "b", "c", "d"):
        pid = container_pid(docker_client, "%s_%s" % (pod_name, name))
        assert [ns_inode(pid, ns) for ns in ("net", "ipc")] == [ns_inode(sandbox_pid, ns) for ns in ("net", "ipc")]
        assert ns_inode(pid, "mnt") != ns_inode(sandbox_pid, "mnt")
        # Each member started after both init containers had written.
        assert exec_out(docker_client, "%s_%s" % (pod_name, name), ["cat", "/tmp/seen-at-start"]) == "one\ntwo\n"
    # A new sandbox takes every member with it, all recreated together into its namespaces.
    manifest["spec"]["hostname"] = "changed"
    checked = deploy(run_module, manifest, check=True)
    result = deploy(run_module, manifest)
    assert result["actions"] == checked["actions"]
    assert [a.split(":")[0] for a in result["actions"] if a.startswith("recreate")] == [
        "recreate sandbox", "recreate app", "recreate b", "recreate c", "recreate d"]
    sandbox_pid = container_pid(docker_client, pod_name + "_sandbox")
    for name in ("app", "b", "c", "d"):
        pid = container_pid(docker_client, "%s_%s" % (pod_name, name))
        assert ns_inode(pid, "net") == ns_inode(sandbox_pid, "net")
    assert deploy(run_module, manifest)["actions"] == []


def _status(pid):
    with open("/proc/%d/status" % pid) as handle:
        return dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)


def test_native_entries_apply_security_context_lifecycle_and_tty(docker_client, run_module, pod_name):
    # Native container entries take a manifest's securityContext, lifecycle, stdin and tty: the kernel
    # must show them applied, not merely accepted (they were once taken and dropped).
    app = {"name": "app", "image": BUSYBOX_IMAGE, "command": ["sleep", "3600"], "tty": True, "stdin": True,
           "securityContext": {"runAsUser": 1000, "runAsGroup": 3000, "allowPrivilegeEscalation": False,
                               "capabilities": {"drop": ["ALL"]}},
           "lifecycle": {"stopSignal": "SIGINT"}}
    run_module("pod", name=pod_name, containers=[app], sandbox_image=PAUSE_IMAGE, pull="never")
    pid = container_pid(docker_client, pod_name + "_app")
    status = _status(pid)
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["3000"] * 4, status
    assert int(status["CapEff"], 16) == 0 and status["NoNewPrivs"].strip() == "1", status
    config = docker_client.api.inspect_container(pod_name + "_app")["Config"]
    assert config["Tty"] is True and config["OpenStdin"] is True and config["StopSignal"] == "SIGINT"
    assert run_module("pod", name=pod_name, containers=[app], sandbox_image=PAUSE_IMAGE, pull="never")["changed"] is False
    both = dict(app, user="1000")
    result = run_module("pod", expect_fail=True, name=pod_name, containers=[both], sandbox_image=PAUSE_IMAGE,
                        pull="never")
    assert "containers[0]: give the user either as user or as securityContext" in result["msg"], result["msg"]
