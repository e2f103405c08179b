"""The roles podkit.docker.host and podkit.docker.pods, run by ansible-playbook on this machine.

This machine has no systemd (PID 1 is not systemd) and a shared dockerd that must keep
running: the host role is run with an empty daemon.json (it never rewrites the file nor
restarts the engine then). Pods get unique names; the demo's and molecule's `foo` is never
used here.
"""

import hashlib
import pathlib
import re
import subprocess
import sys

import yaml

from helpers import BUSYBOX_IMAGE, LABEL_POD, PAUSE_IMAGE, TOP, ansible_env, play

BIN = pathlib.Path(sys.executable).parent
MEMORY_ROOT = pathlib.Path("/sys/fs/cgroup/memory")


def podkit_containers(client, pod):
    return client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)})


def sleeper_pod(name):
    return {"name": name, "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
                                          "resources": {"limits": {"memory": "64Mi"}}}]}


HOST_VARS = {
    # The engine's own pause image is built from the role's source when its hash
    # changed; nothing is pulled.
    "podkit_host_sandbox_image": PAUSE_IMAGE,
    "podkit_host_build_demo_images": True,
    # No guard left running on this shared machine: test_guard_role.py starts one, scoped to its
    # own record directory, and stops it.
    "podkit_host_guard": False,
}


def test_host_role_on_a_host_without_systemd_then_changes_nothing(tmp_path, docker_client):
    assert pathlib.Path("/proc/1/comm").read_text().strip() != "systemd", "this test is for hosts without systemd"
    out, first = play(tmp_path, ["host"], HOST_VARS, name="first")
    assert "Start the Docker engine in the background and wait for it (no systemd here)" in out

    # The engine answers, cgroup-tools is installed, the interpreter Ansible used imports the libraries.
    docker_client.ping()
    dpkg = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "cgroup-tools"],
                          capture_output=True, text=True, check=False)
    assert dpkg.stdout.startswith("ii"), dpkg
    imports = subprocess.run([sys.executable, "-c", "import docker, cgroupspy, jmespath"],
                             capture_output=True, text=True, check=False)
    assert imports.returncode == 0, imports.stderr

    # The pause image on the engine is the one built from the role's source.
    sources = TOP / "roles" / "host" / "files" / "pause"
    want = hashlib.sha256((sources / "pause.c").read_bytes() + (sources / "Dockerfile").read_bytes()).hexdigest()[:16]
    assert docker_client.images.get(PAUSE_IMAGE).labels.get("io.podkit.source-hash") == want

    _out, second = play(tmp_path, ["host"], HOST_VARS, name="second")
    assert second["changed"] == 0, _out
    assert second["ok"] == first["ok"]


def test_host_role_with_the_system_python_uses_debian_packages_and_a_venv(tmp_path, docker_client):
    """A host whose interpreter is Debian's Python (a VM, a Vagrant box): the libraries Debian
    packages come from apt, cgroupspy from a venv seeing the system packages, and Ansible is
    pointed at that venv; pip never installs into the system Python."""
    system_python = "/usr/bin/python3"
    # The modules run after the role, through the interpreter the role chose.
    tasks = [{"name": "Read the host through a podkit module", "podkit.docker.pod_facts": {"name": ["no-such-pod"]},
              "register": "facts"},
             {"name": "Show the interpreter", "ansible.builtin.debug": {"msg": "interpreter={{ ansible_python_interpreter }}"}},
             {"name": "Check the module ran", "ansible.builtin.assert": {"that": ["facts.ansible_facts.podkit_host.docker_version | length > 0"]}}]
    host_vars = {"ansible_python_interpreter": system_python}
    out, _recap = play(tmp_path, ["host"], HOST_VARS, name="first", host_vars=host_vars, tasks=tasks)
    assert "interpreter=/opt/podkit/venv/bin/python" in out, out
    venv_python = "/opt/podkit/venv/bin/python"
    probe = subprocess.run([venv_python, "-c", "import cgroupspy, docker, jmespath; print(docker.__file__)"],
                           capture_output=True, text=True, check=False)
    assert probe.returncode == 0 and probe.stdout.startswith("/usr/lib/python3/dist-packages/"), probe
    untouched = subprocess.run([system_python, "-c", "import cgroupspy"], capture_output=True, text=True, check=False)
    assert untouched.returncode != 0, "cgroupspy was installed into the system Python"

    out, second = play(tmp_path, ["host"], HOST_VARS, name="second", host_vars=host_vars, tasks=tasks)
    assert second["changed"] == 0, out


def test_roles_render_with_ansible_doc():
    for role, option in (("host", "podkit_host_docker_source"), ("pods", "podkit_pods_prune")):
        proc = subprocess.run([str(BIN / "ansible-doc"), "-t", "role", "podkit.docker.%s" % role],
                              capture_output=True, text=True, env=ansible_env(), check=False, timeout=120)
        assert proc.returncode == 0, proc.stderr
        # Without a terminal ansible-doc marks bold as *main*.
        assert re.search(r"ENTRY POINT: \*?main\b", proc.stdout) and option in proc.stdout, proc.stdout


def test_wrong_type_fails_at_the_roles_start(tmp_path):
    out, recap = play(tmp_path, ["pods"], {"podkit_pods_prune": "sometimes"}, expect_fail=True, name="pods")
    assert "Validating arguments against arg spec 'main'" in out
    assert "argument 'podkit_pods_prune' is of type" in out and "unable to convert to bool" in out, out
    assert recap["ok"] == 0, "a task ran before the argument spec was checked:\n" + out

    out, recap = play(tmp_path, ["host"], {"podkit_host_dockerd_wait_timeout": "soon"}, expect_fail=True, name="host")
    assert "argument 'podkit_host_dockerd_wait_timeout' is of type" in out and "unable to convert to int" in out, out
    assert recap["ok"] == 0, out

    out, recap = play(tmp_path, ["pods"], {"podkit_pods_definitions": [{"name": "x", "containrs": []}]}, expect_fail=True, name="key")
    assert "containrs" in out and "Supported parameters include" in out, out
    assert recap["ok"] == 0, out


def test_the_old_input_name_fails_at_the_roles_start_naming_the_new_one(tmp_path, docker_client, pod_name):
    # podkit_pods is the fact pod_facts sets; the role's input is podkit_pods_definitions.
    old = {"podkit_pods": [sleeper_pod(pod_name)], "podkit_pods_sandbox_image": PAUSE_IMAGE, "podkit_pods_pull": "never"}
    out, recap = play(tmp_path, ["pods"], old, expect_fail=True, name="old-name")
    assert "podkit_pods is a list" in out and "Rename the variable to podkit_pods_definitions" in out, out
    assert recap["changed"] == 0, out
    assert podkit_containers(docker_client, pod_name) == []
    # The fact itself (a mapping, as pod_facts sets it) is no error.
    facts = {"podkit_pods": {"some": {"managed": True}}, "podkit_pods_definitions": []}
    _out, recap = play(tmp_path, ["pods"], facts, name="fact")
    assert recap["failed"] == 0


def test_prune_removes_a_dropped_pod_and_leaves_foreign_containers(tmp_path, docker_client, pod_names):
    kept, dropped, other = pod_names(), pod_names(), pod_names()
    # `kept` comes from a manifest file, named by its metadata.name.
    manifest = tmp_path / "kept.yml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": kept},
        "spec": {"containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"]}]}}))
    common = {"podkit_pods_sandbox_image": PAUSE_IMAGE, "podkit_pods_pull": "never"}
    # Only this test's pods are candidates for pruning (other tests share the engine), and
    # `other` is left out of the pattern to show that the pattern limits pruning.
    scope = {"podkit_pods_prune_pattern": "^(%s|%s)$" % (kept, dropped)}

    play(tmp_path, ["pods"], dict(common, podkit_pods_definitions=[sleeper_pod(other)]), name="other")
    out, _recap = play(tmp_path, ["pods"], dict(common, podkit_pods_definitions=[{"manifest_file": str(manifest)}, sleeper_pod(dropped)]),
                       name="deploy")
    assert "pod %s (podkit" % kept in out and "pod %s (podkit" % dropped in out, "no tree printed:\n" + out
    for pod in (kept, dropped, other):
        assert {c.status for c in podkit_containers(docker_client, pod)} == {"running"}, pod
    assert (MEMORY_ROOT / "podkit" / ("pod-" + dropped)).is_dir()

    # Foreign containers, one named as if it were in the dropped pod: never podkit's to touch.
    foreign = [docker_client.containers.run(BUSYBOX_IMAGE, ["sleep", "3650d"], name="%s_foreign" % pod, detach=True)
               for pod in (kept, dropped)]

    out, recap = play(tmp_path, ["pods"], dict(common, **scope, podkit_pods_definitions=[{"manifest_file": str(manifest)}],
                                               podkit_pods_prune=True), name="prune")
    assert recap["changed"] == 1, out
    # One podkit.docker.pods call deployed and pruned; the report names the pruned pod's actions.
    assert out.count("TASK [podkit.docker.pods : Deploy every listed pod") == 1 and "(item=" not in out, out
    assert re.search(r"%s:\n(\s+- remove .*\n)*\s+- remove sandbox\n" % re.escape(dropped), out), out
    assert podkit_containers(docker_client, dropped) == []
    assert not (MEMORY_ROOT / "podkit" / ("pod-" + dropped)).exists()
    assert {c.status for c in podkit_containers(docker_client, kept)} == {"running"}
    # Listed nowhere but outside the prune pattern: left alone.
    assert {c.status for c in podkit_containers(docker_client, other)} == {"running"}
    for container in foreign:
        container.reload()
        assert container.status == "running", container.name

    # Pruning again finds nothing more to do.
    out, recap = play(tmp_path, ["pods"], dict(common, **scope, podkit_pods_definitions=[{"manifest_file": str(manifest)}],
                                               podkit_pods_prune=True), name="again")
    assert recap["changed"] == 0, out


STUB_DOCKERD = """#!/bin/sh
# A stand-in engine: records its pid, "answers" while it runs, exits on TERM.
echo $$ >"$PODKIT_DOCKERD_PIDFILE"
echo "$$" >"$STUB_DIR/answering"
trap 'rm -f "$STUB_DIR/answering"; exit 0' TERM
while :; do sleep 0.1; done
"""
STUB_DOCKER = """#!/bin/sh
# `docker version` succeeds while the stand-in engine runs.
[ -f "$STUB_DIR/answering" ] && kill -0 "$(cat "$STUB_DIR/answering")" 2>/dev/null && echo stub-engine
"""
STUB_PGREP = """#!/bin/sh
# Sees only the stand-in engine, never this host's real dockerd.
pid=$(cat "$PODKIT_DOCKERD_PIDFILE" 2>/dev/null) && kill -0 "$pid" 2>/dev/null && echo "$pid"
"""


def test_dockerd_script_starts_and_restarts_an_engine_without_systemd(tmp_path):
    """The role's start task and restart handler run podkit-dockerd.sh; here against a stand-in
    engine (stub dockerd, docker and pgrep first on PATH, pid file and sockets under tmp_path),
    so this machine's shared dockerd is never stopped."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, text in (("dockerd", STUB_DOCKERD), ("docker", STUB_DOCKER), ("pgrep", STUB_PGREP)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    pidfile = tmp_path / "docker.pid"
    env = dict(ansible_env(), PATH="%s:/usr/bin:/bin" % stubs, STUB_DIR=str(tmp_path),
               PODKIT_DOCKERD_PIDFILE=str(pidfile), PODKIT_CONTAINERD_DIR=str(tmp_path / "containerd"),
               PODKIT_DOCKER_SOCK=str(tmp_path / "docker.sock"), PODKIT_DOCKERD_LOG=str(tmp_path / "dockerd.log"),
               PODKIT_DOCKERD_WAIT="10")
    script = TOP / "roles" / "host" / "files" / "podkit-dockerd.sh"

    def run(mode):
        proc = subprocess.run([str(script), mode], capture_output=True, text=True, env=env, timeout=60, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout.strip().splitlines()

    def alive(pid):
        return pathlib.Path("/proc/%d" % pid).exists() and \
            "Z" not in pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]

    pidfile.write_text("999999999\n")  # stale: names no process
    try:
        out = run("start")
        assert out[-1] == "podkit-dockerd: changed" and any("removing stale" in line for line in out), out
        first = int(pidfile.read_text())
        assert alive(first)

        assert run("start")[-1] == "podkit-dockerd: unchanged"
        assert int(pidfile.read_text()) == first

        out = run("restart")
        assert out[-1] == "podkit-dockerd: changed", out
        second = int(pidfile.read_text())
        assert second != first and alive(second) and not alive(first)
    finally:
        pid = pidfile.read_text().strip()
        if pid.isdigit() and alive(int(pid)):
            subprocess.run(["kill", pid], check=False)


def test_pods_role_passes_validate_shared_and_per_entry(tmp_path, docker_client, pod_names):
    # podkit_pods_validate is the default of every entry, an entry's own validate wins: the strict entry is
    # refused naming the field, the one that says ignore converges with the same hostless field.
    strict_name, lenient_name = pod_names(), pod_names()

    def manifest(name):
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeSelector": {"disk": "ssd"},
                         "containers": [{"name": "main", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"]}]}}
    out, _recap = play(tmp_path, ["pods"], {
        "podkit_pods_definitions": [{"manifest": manifest(strict_name)},
                                    {"manifest": manifest(lenient_name), "validate": "ignore"}],
        "podkit_pods_validate": "strict", "podkit_pods_sandbox_image": PAUSE_IMAGE, "podkit_pods_pull": "never",
        "podkit_pods_show_tree": False}, expect_fail=True)
    assert "spec.nodeSelector" in out and strict_name in out, out
    assert podkit_containers(docker_client, strict_name) == []
    assert [c.name for c in podkit_containers(docker_client, lenient_name)] != []
