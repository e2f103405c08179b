"""The local images on the real engine: the pause program's signal handling and reaping."""

import os
import time

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE


def _children(pid):
    """[(pid, state)] of the processes whose parent is ``pid``, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0]))
    return found


def test_pause_stops_on_sigterm_with_exit_0(docker_client, pod_name):
    sandbox = docker_client.containers.run(PAUSE_IMAGE, name=pod_name + "_sandbox", detach=True)
    started = time.monotonic()
    sandbox.stop(timeout=10)  # Docker sends SIGKILL only after 10 s without an exit
    elapsed = time.monotonic() - started
    sandbox.reload()
    assert sandbox.attrs["State"]["ExitCode"] == 0, "pause was killed instead of exiting on SIGTERM"
    assert elapsed < 2, "docker stop took %.1fs: SIGTERM was not handled" % elapsed


def test_pause_exits_0_on_sigint(docker_client, pod_name):
    sandbox = docker_client.containers.run(PAUSE_IMAGE, name=pod_name + "_sandbox", detach=True)
    sandbox.kill(signal="SIGINT")
    assert sandbox.wait(timeout=5)["StatusCode"] == 0


def test_pause_reaps_orphans_in_shared_pid_namespace(docker_client, pod_name):
    sandbox = docker_client.containers.run(
        PAUSE_IMAGE, name=pod_name + "_sandbox", detach=True, ipc_mode="shareable")
    sandbox.reload()
    pause_pid = sandbox.attrs["State"]["Pid"]
    # The subshell starts `sleep 2` in the background and exits at once: the sleep is
    # orphaned and re-parented to PID 1 of the shared namespace, the pause process.
    docker_client.containers.run(
        BUSYBOX_IMAGE, ["sh", "-c", "(sleep 2 &); exec sleep 300"], name=pod_name + "_member",
        detach=True, pid_mode="container:" + sandbox.id)

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not _children(pause_pid):
        time.sleep(0.05)
    adopted = _children(pause_pid)
    assert adopted, "the orphan was not re-parented to the pause process"

    time.sleep(3)  # the orphan has exited by now
    zombies = [(pid, state) for pid, state in _children(pause_pid) if state == "Z"]
    assert zombies == [], "pause left zombies: %s" % zombies
    assert all(not os.path.exists("/proc/%d" % pid) for pid, _state in adopted)


def test_pause_version_flag(docker_client):
    out = docker_client.containers.run(PAUSE_IMAGE, ["--version"], remove=True)
    assert out.decode().startswith("podkit-pause ")


def test_images_are_not_rebuilt_when_sources_are_unchanged(docker_client):
    import subprocess
    from helpers import TOP

    before = {name: docker_client.images.get(name).id for name in (PAUSE_IMAGE, BUSYBOX_IMAGE)}
    proc = subprocess.run([str(TOP / "scripts" / "build-images.sh")], capture_output=True, text=True, check=True)
    assert proc.stdout.count("is up to date") == 2, proc.stdout
    assert "building" not in proc.stdout
    after = {name: docker_client.images.get(name).id for name in (PAUSE_IMAGE, BUSYBOX_IMAGE)}
    assert after == before
