"""What the tests share that is not a fixture: paths, images, module runs, cleaning, kernel reads.

Read independently of podkit's module_utils, so that a test never trusts podkit to report on itself.
Fixtures live in conftest.py and stand on these.
"""

import http.client
import json
import os
import pathlib
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

TOP = pathlib.Path(__file__).resolve().parent.parent
COLLECTIONS = TOP / "build" / "collections"
LINK = COLLECTIONS / "ansible_collections" / "podkit" / "docker"
DOCKER_HOST = os.environ.get("PODKIT_TEST_DOCKER_HOST", "unix:///var/run/docker.sock")
CGROUP_ROOT = pathlib.Path("/sys/fs/cgroup")

PAUSE_IMAGE = "podkit/pause:latest"
BUSYBOX_IMAGE = "podkit/busybox:latest"
LABEL_POD = "io.podkit.pod"
# Where the pod module records applied specs during tests: never the host's /var/lib/podkit, whose
# records a podkit-guard on this machine would act on. conftest.py points PODKIT_STATE_DIR at it for the
# test process itself too (a test that calls converge_pod in process records as a module run does).
STATE_DIR = pathlib.Path(os.environ.get("PODKIT_STATE_DIR") or TOP / "build" / "podkit-state")
HOST_STATE_DIR = pathlib.Path("/var/lib/podkit")
# Every pod or workload name the tests made up (unique_name): the session-end check in conftest.py fails the
# run if a container or a record of one of them is left.
NAMES_MADE = []


def unique_name(prefix="t", length=8):
    """A name no other test (nor another run on this engine) uses, remembered for the session-end check."""
    name = prefix + uuid.uuid4().hex[:length]
    NAMES_MADE.append(name)
    return name


def use_collection():
    """Make the checkout importable as ansible_collections.podkit.docker..., as on a host: the link
    build/collections/ansible_collections/podkit/docker (what `make setup` makes) and sys.path. Called
    by conftest.py (and the benchmarks) before anything imports the collection, not on import."""
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if not LINK.is_symlink():
        LINK.symlink_to(TOP)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))


def ansible_env(**extra):
    """Environment for ansible, ansible-playbook and module processes run by tests."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_ROLES_PATH=str(TOP / "roles"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PYTHONPATH=str(COLLECTIONS),
        PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        PODKIT_STATE_DIR=env.get("PODKIT_STATE_DIR") or str(STATE_DIR),
    )
    env.update(extra)
    return env


class ModuleRunner:
    """Runs a podkit module as Ansible runs it on the target: a process, JSON in, JSON out."""

    def __init__(self, docker_host=DOCKER_HOST, collections=COLLECTIONS):
        self.docker_host = docker_host
        # Where ansible_collections/podkit/docker is taken from (another checkout for upgrade tests).
        self.collections = collections

    def __call__(self, module, check=False, diff=False, expect_fail=False, **args):
        args.setdefault("docker_host", self.docker_host)
        payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
        proc = subprocess.run(
            [sys.executable, "-m", "ansible_collections.podkit.docker.plugins.modules." + module],
            input=json.dumps(payload), capture_output=True, text=True, env=ansible_env(PYTHONPATH=str(self.collections)),
            timeout=300, check=False)
        try:
            result = json.loads(proc.stdout)
        except ValueError:
            raise AssertionError("module %s printed no JSON (rc %s)\nstdout: %s\nstderr: %s"
                                 % (module, proc.returncode, proc.stdout, proc.stderr))
        failed = bool(result.get("failed"))
        assert "Traceback" not in proc.stderr + result.get("msg", ""), proc.stderr + result.get("msg", "")
        if expect_fail:
            assert failed, "module %s should have failed: %s" % (module, result)
        else:
            assert not failed, "module %s failed: %s" % (module, result.get("msg"))
        return result


def listed_containers(client, filters=None):
    """``(name, labels)`` of every container the engine lists, from the list call alone.

    ``client.containers.list`` inspects each listed container in turn; a container another
    pytest process removes in between (the integration stage runs two beside each other) made
    it raise NotFound. The list answer already holds the names and labels a sweep needs."""
    return [(c["Names"][0].lstrip("/") if c.get("Names") else c["Id"][:12], c.get("Labels") or {})
            for c in client.api.containers(all=True, filters=filters or {})]


def remove_pod_leftovers(client, pod):
    """Remove every container of ``pod`` (labelled, or named ``<pod>_*`` by a test), its cgroups and its
    record (a podkit-guard reading the records would bring the pod back)."""
    seen = set()
    for container in client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)}):
        seen.add(container.id)
        container.remove(force=True, v=True)
    for container in client.containers.list(all=True, filters={"name": "^/?%s_" % pod}):
        if container.id not in seen and container.name.startswith(pod + "_"):
            container.remove(force=True, v=True)
    for volume in client.volumes.list(filters={"label": "%s=%s" % (LABEL_POD, pod)}):
        volume.remove(force=True)
    for path in sorted(cgroup_dirs(pod), key=lambda p: len(pathlib.Path(p).parts), reverse=True):
        try:
            os.rmdir(path)
        except OSError:
            pass
    for path in ("/run/podkit/%s.lock" % pod, STATE_DIR / "pods" / ("%s.json" % pod)):
        try:
            os.unlink(str(path))
        except FileNotFoundError:
            pass
    for root in ("/run/podkit/volumes", "/run/podkit/secrets"):
        shutil.rmtree(os.path.join(root, pod), ignore_errors=True)


def free_port():
    """A TCP port of 127.0.0.1 nothing listens on now (the kernel's pick), for a pod to publish."""
    return free_ports(1)[0]


def free_ports(count):
    """``count`` distinct TCP ports of 127.0.0.1 nothing listens on now. The sockets are held until all are
    picked: ports picked one after the other can repeat (the kernel may hand a just-closed port out again; among
    48 picks that happens a few times in a hundred), and two pods publishing one port cannot both start."""
    sockets = []
    try:
        for _index in range(count):
            sock = socket.socket()
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def exec_out(client, name, cmd):
    """What ``cmd`` prints in container ``name`` (docker exec); it must succeed."""
    code, output = client.containers.get(name).exec_run(cmd)
    assert code == 0, (name, cmd, output)
    return output.decode()


def hierarchies():
    """Every mounted cgroup hierarchy directory under /sys/fs/cgroup (v1 controllers, name=systemd, unified)."""
    if not CGROUP_ROOT.is_dir():
        return []
    return [entry for entry in sorted(CGROUP_ROOT.iterdir()) if entry.is_dir() and not entry.is_symlink()]


def cgroup_dirs(fragment):
    """Every cgroup directory, in every hierarchy, whose path below the hierarchy contains ``fragment``."""
    found = []
    for hierarchy in hierarchies():
        for dirpath, dirnames, _files in os.walk(hierarchy):
            for name in dirnames:
                path = pathlib.Path(dirpath) / name
                if fragment in path.relative_to(hierarchy).as_posix():
                    found.append(str(path))
    return sorted(found)
    # Slices made through systemd (the VM) are cleaned by their own tests.


def container_pid(client, name):
    container = client.containers.get(name)
    return container.attrs["State"]["Pid"]


def ns_inode(pid, ns):
    """The inode of namespace ``ns`` of ``pid``, read from /proc as lsns does."""
    link = os.readlink("/proc/%d/ns/%s" % (pid, ns))
    return int(link.split("[", 1)[1].rstrip("]"))


def proc_environ(pid):
    """{name: value} of the environment of ``pid`` as the kernel holds it (/proc/<pid>/environ)."""
    with open("/proc/%d/environ" % pid, "rb") as handle:
        return dict(item.split("=", 1) for item in handle.read().decode().split("\0") if "=" in item)


def proc_cgroup(pid):
    """{controller: path} from /proc/<pid>/cgroup, parsed here independently of podkit."""
    result = {}
    with open("/proc/%d/cgroup" % pid) as handle:
        for line in handle:
            _hid, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in (controllers.split(",") if controllers else [""]):
                result[controller] = path
    return result


def which(cmd):
    return shutil.which(cmd)


def warning_text(warning):
    """A warning as text: a string, or the summary newer ansible-core returns ({event: {msg}})."""
    if isinstance(warning, str):
        return warning
    return (warning.get("event") or {}).get("msg") or warning.get("msg") or str(warning)


# The Kubernetes version whose v1 schema exported manifests are validated against (kubernetes-validate's newest).
KUBERNETES_SCHEMA = "1.37.0"


def validate_manifest(documents):
    """Each document checked offline against the Kubernetes v1 schema (strict: no unknown field).

    kubernetes-validate is a test requirement (requirements-dev.txt): missing, this fails, never skips.
    """
    import kubernetes_validate  # pylint: disable=import-outside-toplevel
    for document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_SCHEMA, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError("%s %s does not validate against the Kubernetes %s schema: %s at %s\n%s" % (
                document.get("kind"), (document.get("metadata") or {}).get("name"), KUBERNETES_SCHEMA,
                exc.message, "/".join(str(p) for p in exc.path), json.dumps(document, indent=1)))


def converge_manifest(run_module, manifest, **extra):
    """The pod module on ``manifest`` (a Pod, or a list of documents), with the local pause image, never pulling."""
    return run_module("pod", manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never", **extra)


def export_pod(run_module, pod, include_unmanaged=False, required=True):
    """``pod`` as pod_facts exports it (Secrets with their values, the task no_log as the module asks);
    None when pod_facts does not report it and it is not ``required``."""
    facts = run_module("pod_facts", name=[pod], as_manifest=True, as_manifest_secrets=True,
                       include_unmanaged=include_unmanaged, _ansible_no_log=True)
    pods = facts["ansible_facts"]["podkit_pods"]
    if pod not in pods and not required:
        return None
    entry = pods[pod]
    validate_manifest(entry["manifest"])
    return entry


def container_ids(client, pod):
    return sorted((c.name, c.id) for c in client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)}))


def _assert_export_gives_back(pod, entry):
    # What the export says would recreate (the hashes podkit recorded against the manifest's): for a
    # stopped pod, applied with state stopped, the only check of its spec.
    differ = [w for w in entry["manifest_warnings"] if "does not give back" in w or "does not apply as it is" in w]
    assert not differ, (pod, differ)


def _assert_no_action(pod, entry, result, check):
    assert result["changed"] is False and not result["actions"], (
        "applying the export of %s (%s) would act: %s\nwarnings: %s\nmanifest: %s" % (
            pod, "check mode" if check else "real", result["actions"], entry["manifest_warnings"],
            json.dumps(entry["manifest"], indent=1)))


def round_trip(run_module, client, pod):
    """Export ``pod``, validate the export, apply it with the pod module in check mode, then for real:
    neither may act, and every container keeps its ID. Returns the exported entry."""
    before = container_ids(client, pod)
    entry = export_pod(run_module, pod)
    _assert_export_gives_back(pod, entry)
    args = dict(entry["manifest_options"], manifest=entry["manifest"], pull="never", _ansible_no_log=True)
    for check in (True, False):
        _assert_no_action(pod, entry, run_module("pod", check=check, **args), check)
    after = container_ids(client, pod)
    assert after == before, (before, after)
    return entry


def export_pods(run_module, pods):
    """Each of ``pods`` as one pod_facts run exports them (as export_pod does one), every export validated."""
    facts = run_module("pod_facts", name=list(pods), as_manifest=True, as_manifest_secrets=True, _ansible_no_log=True)
    exported = facts["ansible_facts"]["podkit_pods"]
    missing = [pod for pod in pods if pod not in exported]
    assert not missing, "pod_facts does not report %s" % missing
    for pod in pods:
        validate_manifest(exported[pod]["manifest"])
    return dict((pod, exported[pod]) for pod in pods)


def round_trip_many(run_module, client, entries):
    """round_trip for many pods in three module runs, not three a pod: ``entries`` maps each pod to its
    export (export_pods); all are applied with one pods run in check mode, then one for real (each pod
    exactly as the pod module converges it): no pod may act, and every container keeps its ID."""
    before = dict((pod, container_ids(client, pod)) for pod in entries)
    for pod, entry in entries.items():
        _assert_export_gives_back(pod, entry)
    listed = [dict(entry["manifest_options"], name=pod, manifest=entry["manifest"]) for pod, entry in entries.items()]
    for check in (True, False):
        result = run_module("pods", check=check, pods=listed, pull="never", _ansible_no_log=True)
        for pod, entry in entries.items():
            _assert_no_action(pod, entry, result["pods"][pod], check)
    after = dict((pod, container_ids(client, pod)) for pod in entries)
    assert after == before, (before, after)


RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def play(tmp_path, roles, variables, expect_fail=False, name="play", host_vars=None, tasks=None):
    """Run ``roles`` (then ``tasks``) on localhost with ``variables`` by the ansible-playbook beside the
    running Python (so a per-version venv runs its own ansible-core); return (stdout, recap dict)."""
    import yaml  # pylint: disable=import-outside-toplevel
    playbook = tmp_path / ("%s.yml" % name)
    playbook.write_text(yaml.safe_dump([{
        "name": "Roles under test",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{"role": "podkit.docker.%s" % role} for role in roles],
        "tasks": tasks or [],
    }]))
    extra = tmp_path / ("%s-vars.json" % name)
    extra.write_text(json.dumps(variables))
    inventory = tmp_path / ("%s-inventory.yml" % name)
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": dict(ansible_connection="local", **(host_vars or {}))}}}))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(inventory), "-e", "@%s" % extra,
         str(playbook)],
        capture_output=True, text=True, env=ansible_env(ANSIBLE_CALLBACK_RESULT_FORMAT="yaml"),
        timeout=900, check=False, cwd=str(tmp_path))
    out = proc.stdout + proc.stderr
    match = RECAP.search(proc.stdout)
    assert match, "no PLAY RECAP:\n" + out
    recap = dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))
    if expect_fail:
        assert proc.returncode != 0 and recap["failed"] == 1, out
    else:
        assert proc.returncode == 0 and recap["failed"] == 0, out
    return out, recap


def lookup(client, container, name):
    """The addresses Docker's DNS (127.0.0.11) gives ``name`` inside ``container``'s network namespace: resolving
    is the proof, no connection is made to a bridge address."""
    out = client.containers.get(container).exec_run(["nslookup", name, "127.0.0.11"]).output.decode()
    answer = out.split("Name:", 1)[1] if "Name:" in out else ""
    return sorted(line.split()[-1] for line in answer.splitlines() if line.strip().startswith("Address"))


def tcp_listeners(port):
    """The local addresses the kernel has a TCP socket listening on ``port`` at (/proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as stream:
            for line in stream.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:
                    found.append(address)
    return found


def free_node_port():
    """A port of Kubernetes' nodePort range (30000-32767) nothing on this host listens on or holds."""
    for _attempt in range(50):
        port = random.randint(30000, 32767)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if not tcp_listeners(port):
            return port
    raise AssertionError("no free port in 30000-32767")


def http_get_local(port, path="/index.html"):
    """An HTTP GET to a port published on 127.0.0.1 (never a bridge address): (status, body), or (None, why)
    for a connection that failed."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as answer:
            return answer.status, answer.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, ""
    except (OSError, http.client.HTTPException) as error:
        return None, str(error)


def wait_for(predicate, timeout, step=0.05):
    """Seconds until ``predicate()`` held, or None when it did not within ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(step)
    return None
