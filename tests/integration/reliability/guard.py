"""A podkit-guard for one test: started through the role's supervisor script, scoped to a record
directory the test owns (so it never acts on another test's or another user's pods), stopped
by the test. Pods are deployed with the pod module recording into that directory."""

import os
import signal
import socket
import subprocess
import sys
import time

import docker

from helpers import BUSYBOX_IMAGE, COLLECTIONS, PAUSE_IMAGE, TOP, ModuleRunner, ns_inode, wait_for

SCRIPT = TOP / "roles" / "host" / "files" / "podkit-guard.sh"
HTTPD = ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"]
SLEEP = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]
MEMBERS = ("web", "sidecar")


def web_pod(pod, port):
    return dict(name=pod, sandbox_image=PAUSE_IMAGE, pull="never", ports=["127.0.0.1:%d:8080" % port],
                containers=[dict(name="web", image=BUSYBOX_IMAGE, command=HTTPD),
                            dict(name="sidecar", image=BUSYBOX_IMAGE, command=SLEEP)])


class GuardProcess:
    def __init__(self, state_dir, resync=5):
        self.state_dir = state_dir
        self.pidfile = state_dir / "supervisor.pid"
        self.log = state_dir / "guard.log"
        self.env = dict(os.environ, PODKIT_GUARD_PYTHON=sys.executable, PODKIT_GUARD_PYTHONPATH=str(COLLECTIONS),
                        PODKIT_GUARD_STATE_DIR=str(state_dir), PODKIT_GUARD_PIDFILE=str(self.pidfile),
                        PODKIT_GUARD_LOG=str(self.log), PODKIT_GUARD_RESYNC=str(resync))
        self.run = ModuleRunner()

    def module(self, module, **args):
        """The module run recording into this guard's directory."""
        old = os.environ.get("PODKIT_STATE_DIR")
        os.environ["PODKIT_STATE_DIR"] = str(self.state_dir)
        try:
            return self.run(module, **args)
        finally:
            if old is None:
                del os.environ["PODKIT_STATE_DIR"]
            else:
                os.environ["PODKIT_STATE_DIR"] = old

    def script(self, action):
        return subprocess.run(["sh", str(SCRIPT), action], env=self.env, capture_output=True, text=True,
                              timeout=60, check=False)

    def start(self):
        done = self.script("start")
        assert done.returncode == 0, done.stdout + done.stderr
        self.wait_synced(after=0)

    def stop(self):
        done = self.script("stop")
        assert done.returncode == 0, done.stdout + done.stderr
        assert self.guard_pids() == [], "a guard outlived its supervisor: %s" % self.guard_pids()

    def supervisor_pid(self):
        return int(self.pidfile.read_text().strip())

    def guard_pids(self):
        """The guard processes of this directory, read from /proc, not from the guard."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as stream:
                    argv = stream.read().split(b"\0")
            except OSError:
                continue
            if b"ansible_collections.podkit.docker.plugins.module_utils._guard" in argv and \
                    str(self.state_dir).encode() in argv:
                found.append(int(entry))
        return found

    def status(self):
        import json
        try:
            return json.loads((self.state_dir / "guard.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_synced(self, after, timeout=30):
        """Until a guard has finished a resync that began after ``after`` (a status 'syncs' count)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status.get("running") and (status.get("syncs") or 0) > after and status.get("pid") in self.guard_pids():
                return status
            time.sleep(0.1)
        raise AssertionError("no guard resync within %ss; log:\n%s" % (timeout, self.log_text()))

    def log_text(self):
        try:
            return self.log.read_text()
        except OSError:
            return ""

    def logged(self, text, timeout=10):
        """True once ``text`` is in the log. The guard logs a repair, a network change or a Job's new phase
        after making it, so a test that saw the effect in Docker or a record can read the log a moment
        before the line is written (seen once in CI: a replica back, its "repair" line not yet there)."""
        return wait_for(lambda: text in self.log_text(), timeout, step=0.1) is not None


def pod_whole(client, pod, members):
    """True when the sandbox and every member run and each member is in the sandbox's net and ipc
    namespaces, as /proc says."""
    try:
        sandbox = client.containers.get("%s_sandbox" % pod)
        if sandbox.status != "running":
            return False
        sandbox_pid = sandbox.attrs["State"]["Pid"]
        for member in members:
            container = client.containers.get("%s_%s" % (pod, member))
            if container.status != "running":
                return False
            pid = container.attrs["State"]["Pid"]
            for ns in ("net", "ipc"):
                if ns_inode(pid, ns) != ns_inode(sandbox_pid, ns):
                    return False
    except (docker.errors.NotFound, docker.errors.APIError, FileNotFoundError, ProcessLookupError):
        return False
    return True


def answers(port):
    """An HTTP answer from 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/")
    except OSError:
        return False


def kill_pause(client, pod):
    """SIGKILL the sandbox's pause process, as the kernel's OOM killer or a stray kill would."""
    pid = client.containers.get("%s_sandbox" % pod).attrs["State"]["Pid"]
    os.kill(pid, signal.SIGKILL)
