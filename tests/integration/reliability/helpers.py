"""What the reliability suite looks at: the host's own view of a pod, and module runs in the background.

Everything here reads the Docker engine (the SDK), /proc and the cgroup filesystem directly,
independently of podkit's module_utils, so a test never trusts podkit to report on itself.
"""

import atexit
import importlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import docker

from helpers import (BUSYBOX_IMAGE, CGROUP_ROOT, DOCKER_HOST, LABEL_POD, PAUSE_IMAGE, TOP, ansible_env, cgroup_dirs,
                     ns_inode, proc_cgroup)

MIB = 1024 * 1024

# A member that stops at once on SIGTERM (a bare `sleep` as PID 1 ignores it, and every
# recreate would then wait out Docker's 10 s stop timeout).
MEMBER_COMMAND = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 3600 & wait"]

# The pod every fault case starts from: two members with limits, so the pod cgroup gets
# kubelet-derived limits (sum of the members': 96Mi and 750m).
APP_MEMORY, SIDECAR_MEMORY = 64 * MIB, 32 * MIB
POD_MEMORY = APP_MEMORY + SIDECAR_MEMORY
POD_CPU_QUOTA = 75000  # (500m + 250m) over a 100000 us period
MEMBERS = ("app", "sidecar")

# The controllers podkit creates a pod's cgroup parent in (cgroup_parent's default).
POD_CONTROLLERS = ("cpu", "memory", "pids")

# Where a pod lock may live. The pod module's DOCUMENTATION says which; every place is
# searched so a lock left anywhere obvious is found.
LOCK_SEARCH = (("/run", 4), ("/var/lock", 2), ("/var/lib/podkit", 3), ("/tmp", 1), ("/var/tmp", 1))
SLICE_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/run/systemd/transient")


def basic_pod(pod, **overrides):
    """Arguments of the pod module for the standard two-member test pod."""
    args = dict(
        name=pod,
        sandbox_image=PAUSE_IMAGE,
        pull="never",
        containers=[
            dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                 resources=dict(limits=dict(memory="64Mi", cpu="500m"))),
            dict(name="sidecar", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                 resources=dict(limits=dict(memory="32Mi", cpu="250m"))),
        ],
    )
    args.update(overrides)
    return args


def default_parent(pod):
    """DESIGN.md: the cgroupfs default cgroup parent of a pod."""
    return "/podkit/pod-%s" % pod


# ---------------------------------------------------------------------------
# The host's view


def pod_containers(client, pod):
    """Every container labelled as belonging to ``pod`` (any state)."""
    return client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)})


def containers_named(client, fragment):
    """Every container (labelled or not) whose name contains ``fragment``."""
    # The raw list: the SDK's list() inspects every container on the host, and other
    # suites remove theirs concurrently.
    found = []
    for summary in client.api.containers(all=True):
        if any(fragment in name for name in summary.get("Names") or ()):
            try:
                found.append(client.containers.get(summary["Id"]))
            except docker.errors.NotFound:
                pass
    return found


def fingerprint(container):
    """What must not change for a container podkit must leave alone."""
    container.reload()
    state = container.attrs["State"]
    return dict(id=container.id, name=container.name, status=state["Status"], pid=state["Pid"],
                started_at=state["StartedAt"], restart_count=container.attrs["RestartCount"],
                labels=dict(container.labels), cgroup_parent=container.attrs["HostConfig"].get("CgroupParent"))


def cgroup_file(controller, parent, filename):
    return (CGROUP_ROOT / controller / parent.lstrip("/") / filename).read_text().strip()


def lock_files(fragment):
    """Every file or directory in the usual lock places whose name contains ``fragment``."""
    found = []
    for top, depth in LOCK_SEARCH:
        if not os.path.isdir(top):
            continue
        base = top.rstrip("/").count("/")
        for dirpath, dirnames, filenames in os.walk(top):
            if dirpath.count("/") - base >= depth:
                dirnames[:] = []
            # Docker's and containerd's state trees hold container IDs, never pod names; skip them.
            dirnames[:] = [d for d in dirnames if not (dirpath == "/run" and d in ("docker", "containerd"))]
            for name in filenames + dirnames:
                if fragment in name:
                    found.append(os.path.join(dirpath, name))
    return sorted(found)


def slice_files(fragment):
    found = []
    for top in SLICE_DIRS:
        if os.path.isdir(top):
            found.extend(os.path.join(top, n) for n in os.listdir(top) if fragment in n and ".slice" in n)
    return sorted(found)


def host_state(client, fragment):
    """Everything on the host that carries ``fragment`` in its name or pod label."""
    containers = {}
    for container in containers_named(client, fragment) + pod_containers(client, fragment):
        containers[container.id] = fingerprint(container)
    return dict(containers=containers, cgroups=cgroup_dirs(fragment), locks=lock_files(fragment),
                slices=slice_files(fragment))


def assert_nothing_of(client, fragment):
    """No container, cgroup directory, slice or lock file of ``fragment`` exists on the host."""
    state = host_state(client, fragment)
    assert state == dict(containers={}, cgroups=[], locks=[], slices=[]), \
        "left on the host for %s: %s" % (fragment, state)


def wait_running(client, name, timeout=30):
    """Wait (bounded, not asserted on) until container ``name`` runs with a PID; returns its PID."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container = client.containers.get(name)
        if container.attrs["State"]["Running"] and container.attrs["State"]["Pid"]:
            return container.attrs["State"]["Pid"]
        time.sleep(0.1)
    raise AssertionError("container %s did not run within %ss" % (name, timeout))


def assert_converged(client, pod, members=MEMBERS, parent=None, memory=POD_MEMORY, cpu_quota=POD_CPU_QUOTA):
    """The pod as the kernel and the engine see it: one sandbox, one running container per member,
    members in the sandbox's net and ipc namespaces (own mnt and pid), everything under the pod's
    cgroup parent, whose directories exist and carry the pod-level limits. Returns {name: container id}.
    """
    parent = parent or default_parent(pod)
    containers = pod_containers(client, pod)
    roles = {}
    for container in containers:
        role = container.labels.get("io.podkit.role")
        key = "sandbox" if role == "sandbox" else container.labels.get("io.podkit.container")
        if role == "init":
            continue
        assert key not in roles, "two containers for %s in pod %s: %s and %s" % (
            key, pod, roles[key].name, container.name)
        roles[key] = container
    assert sorted(roles) == sorted(("sandbox",) + tuple(members)), \
        "pod %s has containers %s" % (pod, sorted((k, c.name) for k, c in roles.items()))
    for container in roles.values():
        container.reload()
        assert container.attrs["State"]["Running"], "%s is %s" % (container.name, container.status)
    sandbox = roles["sandbox"]
    sandbox_pid = sandbox.attrs["State"]["Pid"]
    assert sandbox.name == "%s_sandbox" % pod
    for member in members:
        container = roles[member]
        assert container.name == "%s_%s" % (pod, member)
        pid = container.attrs["State"]["Pid"]
        for ns in ("net", "ipc"):
            assert ns_inode(pid, ns) == ns_inode(sandbox_pid, ns), \
                "%s is not in the sandbox's %s namespace" % (container.name, ns)
        for ns in ("mnt", "pid"):
            assert ns_inode(pid, ns) != ns_inode(sandbox_pid, ns), "%s shares %s with the sandbox" % (container.name, ns)
        assert container.labels.get("io.podkit.sandbox-id") == sandbox.id
    for container in roles.values():
        cgroups = proc_cgroup(container.attrs["State"]["Pid"])
        for controller in POD_CONTROLLERS:
            assert cgroups[controller].startswith(parent + "/"), \
                "%s is in %s cgroup %s, not under %s" % (container.name, controller, cgroups[controller], parent)
    for controller in POD_CONTROLLERS:
        assert (CGROUP_ROOT / controller / parent.lstrip("/")).is_dir(), "no %s cgroup %s" % (controller, parent)
    if memory is not None:
        assert int(cgroup_file("memory", parent, "memory.limit_in_bytes")) == memory
    if cpu_quota is not None:
        assert int(cgroup_file("cpu", parent, "cpu.cfs_quota_us")) == cpu_quota
    return dict((key, container.id) for key, container in roles.items())


# ---------------------------------------------------------------------------
# Module runs

MSG_FIX_WORDS = ("use ", "give ", "write ", "set ", "remove ", "start ", "choose ", "pick ", "rename ", "add ",
                 "build ", "load ", "point ", "run ", "change ", "stop ", "delete ", "such as", "for example",
                 "e.g.", "must ", "expected", "only ", "take ", " reads ", " deploys ", "accepts", "quote", "fix ",
                 "instead")


def assert_refused(result, *needles):
    """A failed module result whose msg names each of ``needles`` and says what to do."""
    assert result.get("failed"), "expected a refusal, got %s" % result
    msg = result.get("msg", "")
    assert "Traceback" not in msg, msg
    low = msg.lower()
    for needle in needles:
        assert str(needle).lower() in low, "msg does not name %r: %s" % (needle, msg)
    assert any(word in low for word in MSG_FIX_WORDS), "msg says what is wrong but not what to do: %s" % msg
    return msg


def module_command(module):
    return [sys.executable, "-m", "ansible_collections.podkit.docker.plugins.modules." + module]


def module_input(args, check=False, diff=False):
    args = dict(args)
    args.setdefault("docker_host", DOCKER_HOST)
    return json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)})


class Background:
    """A module process run as Ansible runs it, started now and collected later."""

    def __init__(self, module, args, preexec=None, env=None):
        self.module = module
        self.proc = subprocess.Popen(module_command(module), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env or ansible_env(),
                                     preexec_fn=preexec)
        self._output = None
        # communicate() feeds stdin and drains both pipes, so a chatty module never blocks on a full pipe.
        self._reader = threading.Thread(target=self._communicate, args=(module_input(args),), daemon=True)
        self._reader.start()

    def _communicate(self, text):
        self._output = self.proc.communicate(text)

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def kill(self):
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)

    def result(self, timeout=300):
        self._reader.join(timeout=timeout)
        assert not self._reader.is_alive(), "module %s still running after %ss" % (self.module, timeout)
        stdout, stderr = self._output
        try:
            result = json.loads(stdout)
        except ValueError:
            raise AssertionError("module %s printed no JSON (rc %s)\nstdout: %s\nstderr: %s"
                                 % (self.module, self.proc.returncode, stdout, stderr))
        assert "Traceback" not in stderr + result.get("msg", ""), stderr + result.get("msg", "")
        result["_stderr"] = stderr
        return result


def run_any(module, **args):
    """Run a module where success and a clear refusal are both acceptable; the caller checks which."""
    return Background(module, args).result()


# Libraries a podkit module imports on a host, copied for run_as (Ansible ships its own module_utils
# with every module; the others are what the host role installs system-wide).
_PAYLOAD_LIBS = ("docker", "requests", "urllib3", "idna", "certifi", "charset_normalizer", "cgroupspy", "yaml",
                 "jmespath", "packaging")
_payload = []


def _module_payload():
    """A directory any user can read holding the collection's plugins, Ansible's module_utils and the
    libraries the modules import: what Ansible puts in place when it runs a module with become_user.
    The checkout itself may sit under a directory only root can enter (a CI work dir)."""
    if _payload:
        return _payload[0]
    import ansible
    top = tempfile.mkdtemp(prefix="podkit-rel-payload-")
    atexit.register(shutil.rmtree, top, True)
    collection = pathlib.Path(top, "ansible_collections", "podkit", "docker")
    shutil.copytree(str(TOP / "plugins"), str(collection / "plugins"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    pathlib.Path(top, "ansible").mkdir()
    pathlib.Path(top, "ansible", "__init__.py").write_text("")
    shutil.copytree(os.path.join(os.path.dirname(ansible.__file__), "module_utils"),
                    os.path.join(top, "ansible", "module_utils"), ignore=shutil.ignore_patterns("__pycache__"))
    for name in _PAYLOAD_LIBS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        shutil.copytree(os.path.dirname(module.__file__), os.path.join(top, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o644)
    _payload.append(top)
    return top


def run_as(module, args, uid=65534, gid=65534, groups=(), check=False):
    """Run a module process under another user (setpriv), as Ansible's become_user would; returns its result."""
    cmd = ["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid]
    cmd += ["--groups=%s" % ",".join(str(g) for g in groups)] if groups else ["--clear-groups"]
    # The interpreter without the test venv (which the user may not be able to read): the standard
    # library of the same Python, the payload for everything else.
    python = "/usr/bin/python%d.%d" % sys.version_info[:2]
    env = dict(PATH="/usr/sbin:/usr/bin:/sbin:/bin", HOME="/tmp", TMPDIR="/tmp", LANG="C.UTF-8",
               PYTHONPATH=_module_payload(), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(cmd + [python, "-s", "-m", "ansible_collections.podkit.docker.plugins.modules." + module],
                          input=module_input(args, check=check), capture_output=True, text=True, env=env,
                          timeout=300, check=False, cwd="/")
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s as uid %d printed no JSON (rc %s)\nstdout: %s\nstderr: %s"
                             % (module, uid, proc.returncode, proc.stdout, proc.stderr))
    assert "Traceback" not in proc.stderr + result.get("msg", ""), proc.stderr + result.get("msg", "")
    return result
