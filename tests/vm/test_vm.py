"""The Debian 12 VM end to end: systemd, cgroup v2 and Docker's systemd cgroup driver, for real.

The tests run in file order against one VM, the README's Vagrant playground: run.sh boots
the box with `vagrant up`, whose provisioner runs site.yml, making it a pod host with the
article's pod `foo`. The kernel (/proc, /sys/fs/cgroup) and systemd are then asked what
they made of it; site.yml again, by `vagrant provision`, must change nothing;
cgroup_parent is driven on the VM directly; one ansible-playbook run converges localhost
(cgroup v1, cgroupfs) and the VM together; last, `vagrant reload` reboots it and
podkit-guard alone makes the pod whole. (run.sh then runs `vagrant destroy -f` and checks
that nothing of the run is left.)
"""

import gzip
import hashlib
import json
import os
import re
import subprocess
import time
import uuid

import pytest

from conftest import TOP, VM_HOST, PlaybookRun
from helpers import STATE_DIR, remove_pod_leftovers, unique_name, wait_for

POD = "foo"  # the article's pod, as inventory/group_vars/podkit_hosts.yml defines it
POD_MEMORY = 402653184  # app 256Mi + sidecar 128Mi: the kubelet's pod limit
MEMBER_MEMORY = {"app": 268435456, "sidecar": 134217728}
INVENTORY = TOP / "inventory"
# What the box adds to the disk (tests/vagrant/make-box.sh) so that site.yml needs no repository.
BOX_PACKAGES = ("cgroup-tools", "busybox-static")
# The one of them the two-host run must install again: cgroup-tools has no maintainer scripts, while busybox-static's
# initramfs hook would have dpkg rebuild the initramfs on its removal and again on its install, minutes under TCG.
# cgroup-tools' man pages would run man-db's trigger, minutes too: the fixture turns man-db's automatic update off
# meanwhile, as Debian's cloud images do.
REINSTALLED = ("cgroup-tools",)
LOCAL_REPO = "/var/cache/podkit-test-repo"


def inode(link):
    return int(re.search(r"\[(\d+)\]", link).group(1))


class Member:
    """What the VM's kernel and Docker say about one container of a pod."""

    def __init__(self, vm, name):
        self.name = name
        inspect = json.loads(vm.out("docker inspect %s" % name))[0]
        self.id = inspect["Id"]
        self.pid = inspect["State"]["Pid"]
        self.cgroup_parent = inspect["HostConfig"]["CgroupParent"]
        self.memory = inspect["HostConfig"]["Memory"]
        lines = vm.out("cat /proc/%d/cgroup" % self.pid).splitlines()
        # cgroup v2: a single line `0::/path`.
        assert len(lines) == 1 and lines[0].startswith("0::"), lines
        self.cgroup = lines[0][3:]
        self.ns = {ns: inode(vm.out("readlink /proc/%d/ns/%s" % (self.pid, ns))) for ns in ("net", "ipc", "uts", "mnt")}


@pytest.fixture(scope="module")
def converged(vm):  # pylint: disable=unused-argument
    """The first site.yml run, by `vagrant up`'s ansible provisioner (run.sh kept its log): Docker from
    Debian's packages (in the box already), the engine enabled, the images built, the pod deployed."""
    with open(os.environ["PODKIT_VM_UP_LOG"]) as handle:
        result = PlaybookRun(subprocess.CompletedProcess(["vagrant", "up"], 0, handle.read(), ""))
    result.assert_ok(VM_HOST)
    return result


@pytest.fixture(scope="module")
def pod(vm, converged):  # pylint: disable=unused-argument,redefined-outer-name
    return {name: Member(vm, "%s_%s" % (POD, name)) for name in ("sandbox", "app", "sidecar")}


def test_vagrant_up_provisions_the_box_offline_under_systemd_with_cgroup_v2(vm, converged):  # pylint: disable=redefined-outer-name
    assert converged.changed_tasks(VM_HOST), "the first provision of a fresh box must have changed something"
    assert vm.out("stat -fc %T /sys/fs/cgroup") == "cgroup2fs"
    assert vm.out("ps -p 1 -o comm=") == "systemd"
    wanted = ("docker.io", "containerd", "cgroup-tools", "python3-docker", "python3-venv", "gcc", "busybox-static")
    for package in wanted:
        assert vm.out("dpkg-query -W -f='${Status}' %s" % package) == "install ok installed", package
    # The disk comes with the heavy packages unpacked (build-image.sh; its own installs are in
    # history.image.log) and the box adds the two the disk leaves out (make-box.sh, one apt
    # transaction): the role finds nothing missing and needs no repository, which the run's
    # namespace could not reach. So the box's transaction is the only one in the history.
    preinstalled = set(vm.out("cat /etc/podkit-vm-preinstalled").split(","))
    assert [p for p in wanted if p not in preinstalled] == list(BOX_PACKAGES), preinstalled
    installs = _apt_installs(vm)
    assert len(installs) == 1 and "grub-pc-bin" in installs[0], installs
    for package in BOX_PACKAGES:
        assert re.search(r"^Install: (.*, )?%s:" % re.escape(package), installs[0], re.M), (package, installs[0])
    # The article's check: the sidecar reaches the app over the pod's own localhost.
    assert vm.out("docker exec %s_sidecar wget -qO- http://127.0.0.1:80/" % POD) == "hello from pod %s" % POD
    # The role enabled and started the engine, which the disk leaves disabled.
    assert "podkit.docker.host : Enable and start the Docker engine under systemd" in converged.changed_tasks(VM_HOST)
    assert vm.out("systemctl is-active docker") == "active"
    assert vm.out("systemctl is-enabled docker") == "enabled"
    assert vm.out("docker info --format '{{.CgroupDriver}} {{.CgroupVersion}}'") == "systemd 2"
    # No registry in the VM either: the images were built there from the role's sources.
    assert vm.out("docker image inspect -f '{{index .Config.Labels \"io.podkit.source-hash\"}}' podkit/pause:latest")


def test_pod_cgroup_is_a_systemd_slice(vm, pod):  # pylint: disable=redefined-outer-name
    parents = {m.cgroup_parent for m in pod.values()}
    assert len(parents) == 1, parents
    slice_name = parents.pop()
    assert slice_name.endswith(".slice"), slice_name
    for member in pod.values():
        # systemd puts each container in its own scope right under the pod's slice.
        parent_dir, leaf = member.cgroup.rsplit("/", 1)
        assert leaf == "docker-%s.scope" % member.id, member.cgroup
        assert parent_dir.rsplit("/", 1)[1] == slice_name, member.cgroup
    assert vm.out("systemctl show %s -p ActiveState --value" % slice_name) == "active"
    assert vm.out("systemctl show %s -p ControlGroup --value" % slice_name) == pod["app"].cgroup.rsplit("/", 1)[0]


def test_pod_memory_max_is_the_pod_limit_and_each_scope_has_its_own(vm, pod):  # pylint: disable=redefined-outer-name
    slice_dir = "/sys/fs/cgroup" + pod["app"].cgroup.rsplit("/", 1)[0]
    assert int(vm.out("cat %s/memory.max" % slice_dir)) == POD_MEMORY
    for name, limit in MEMBER_MEMORY.items():
        assert int(vm.out("cat /sys/fs/cgroup%s/memory.max" % pod[name].cgroup)) == limit
        assert pod[name].memory == limit


def test_systemctl_show_agrees_on_memory_max(vm, pod):  # pylint: disable=redefined-outer-name
    slice_name = pod["app"].cgroup_parent
    assert vm.out("systemctl show %s -p MemoryMax" % slice_name) == "MemoryMax=%d" % POD_MEMORY
    for name, limit in MEMBER_MEMORY.items():
        scope = "docker-%s.scope" % pod[name].id
        assert vm.out("systemctl show %s -p MemoryMax" % scope) == "MemoryMax=%d" % limit


def test_members_share_the_sandbox_net_and_ipc_namespaces(vm, pod):  # pylint: disable=redefined-outer-name
    sandbox = pod["sandbox"]
    for name in ("app", "sidecar"):
        assert pod[name].ns["net"] == sandbox.ns["net"]
        assert pod[name].ns["ipc"] == sandbox.ns["ipc"]
        # ...and only those: their own filesystem and hostname namespace stay their own.
        assert pod[name].ns["mnt"] != sandbox.ns["mnt"]
    assert pod["app"].ns["net"] != inode(vm.out("readlink /proc/1/ns/net"))
    # The sidecar reaches the app's server over the pod's shared loopback: any HTTP
    # answer (even 404 for the empty document root) proves it; a refused connection does not.
    answer = vm.ssh("docker exec %s_sidecar wget -S -O /dev/null http://localhost:80/ 2>&1" % POD, check=False).stdout
    assert "HTTP/1." in answer, answer


def test_pod_facts_report_cgroup_v2_the_systemd_driver_paths_and_limits(vm, pod):  # pylint: disable=redefined-outer-name
    result = vm.module("podkit.docker.pod_facts", name=[POD])
    assert not result.get("failed"), result.get("msg")
    facts = result["ansible_facts"]
    host = facts["podkit_host"]
    assert int(host["cgroup_version"]) == 2
    assert host["cgroup_driver"] == "systemd"
    article_pod = facts["podkit_pods"][POD]
    cgroup = article_pod["cgroup"]
    slice_dir = "/sys/fs/cgroup" + pod["app"].cgroup.rsplit("/", 1)[0]
    assert cgroup["driver"] == "systemd"
    assert int(cgroup["version"]) == 2
    assert cgroup["docker_cgroup_parent"] == pod["app"].cgroup_parent
    assert slice_dir in cgroup["paths"].values(), cgroup["paths"]
    assert cgroup["limits"]["memory_bytes"] == POD_MEMORY
    assert article_pod["sandbox"]["pid"] == pod["sandbox"].pid
    assert article_pod["sandbox"]["namespaces"]["net"] == pod["sandbox"].ns["net"]
    for name, limit in MEMBER_MEMORY.items():
        member = article_pod["containers"][name]
        assert member["pid"] == pod[name].pid
        assert member["limits"]["memory_bytes"] == limit
        assert set(member["shared_with_sandbox"]) >= {"net", "ipc"}
        paths = member["cgroup_paths"]
        paths = paths.values() if isinstance(paths, dict) else paths
        assert any(str(p).endswith(pod[name].cgroup) for p in paths), (paths, pod[name].cgroup)


def test_a_second_site_run_by_vagrant_provision_changes_nothing(vm, pod):  # pylint: disable=redefined-outer-name
    """`vagrant provision` again: site.yml through Vagrant's own inventory and ssh, as a user runs it. (The
    two-host test below runs site.yml a third time, through the test's inventory, with the VM converged.)"""
    result = PlaybookRun(vm.vagrant("provision"))
    result.assert_ok(VM_HOST)
    assert result.stats[VM_HOST]["changed"] == 0, result.changed_tasks(VM_HOST)
    # Nothing was recreated behind the back of `changed`.
    assert Member(vm, "%s_app" % POD).id == pod["app"].id
    assert Member(vm, "%s_sandbox" % POD).id == pod["sandbox"].id


def test_the_pod_exported_under_systemd_applies_back_as_a_no_op(vm, pod):  # pylint: disable=redefined-outer-name
    """The export read on cgroup v2 and a systemd slice (memory.max, cpu.weight): the article pod's
    manifest, applied back with the pod module, changes nothing; no pod-level field is needed."""
    entry = vm.module("podkit.docker.pod_facts", name=[POD], as_manifest=True)["ansible_facts"]["podkit_pods"][POD]
    options = entry["manifest_options"]
    assert "cgroup_limits" not in options and "resources" not in entry["manifest"][0]["spec"], entry["manifest_warnings"]
    limits = [c["resources"]["limits"]["memory"] for c in entry["manifest"][0]["spec"]["containers"]]
    assert sorted(limits) == ["128Mi", "256Mi"]
    result = vm.module("podkit.docker.pod", check=True, manifest=entry["manifest"], pull="never", **options)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is False and result["actions"] == [], (result["actions"], entry["manifest_warnings"])
    assert Member(vm, "%s_app" % POD).id == pod["app"].id


def test_a_pod_sandbox_pod_applies_back_under_systemd_leaving_its_slice_alone(vm, converged):  # pylint: disable=redefined-outer-name,unused-argument
    """pod_sandbox and pod_container leave the pod's slice to systemd (no unit, no limits); the export
    says so (cgroup_limits: unmanaged) and the pod module, applying it, writes neither."""
    name = "rt" + uuid.uuid4().hex[:6]
    try:
        for module, args in (("pod_sandbox", dict(image="podkit/pause:latest")),
                             ("pod_container", dict(name="app", image="podkit/busybox:latest", command=["sleep", "3650d"],
                                                    memory="64Mi"))):
            result = vm.module("podkit.docker." + module, pod=name, pull="never", **args)
            assert not result.get("failed"), result.get("msg")
        entry = vm.module("podkit.docker.pod_facts", name=[name], as_manifest=True)["ansible_facts"]["podkit_pods"][name]
        assert entry["manifest_options"].get("cgroup_limits") == "unmanaged", entry["manifest_warnings"]
        slice_dir = "/sys/fs/cgroup" + Member(vm, "%s_app" % name).cgroup.rsplit("/", 1)[0]
        result = vm.module("podkit.docker.pod", manifest=entry["manifest"], pull="never", **entry["manifest_options"])
        assert not result.get("failed"), result.get("msg")
        assert result["changed"] is False and result["actions"] == [], (result["actions"], entry["manifest_warnings"])
        assert vm.out("cat %s/memory.max" % slice_dir).strip() == "max"
        unit = slice_dir.rsplit("/", 1)[-1]
        assert vm.out("test -e /etc/systemd/system/%s && echo unit || echo none" % unit).strip() == "none"
    finally:
        vm.module("podkit.docker.pod", name=name, state="absent")


def test_cgroup_parent_writes_updates_in_place_and_removes_a_slice(vm, converged):  # pylint: disable=redefined-outer-name,unused-argument
    name = "podkit-vmtest_%s.slice" % uuid.uuid4().hex[:8]

    def kernel():
        cgroup = vm.out("systemctl show %s -p ControlGroup --value" % name)
        assert cgroup.endswith("/" + name), cgroup
        path = "/sys/fs/cgroup" + cgroup
        return path, vm.out("cat %s/memory.max" % path), vm.out("cat %s/cpu.max" % path), vm.out("stat -c %%i %s" % path)

    made = vm.module("podkit.docker.cgroup_parent", name=name, memory="100Mi", cpus=0.5)
    assert made["changed"] and not made.get("failed"), made.get("msg")
    path, memory_max, cpu_max, dir_inode = kernel()
    assert (memory_max, cpu_max) == ("104857600", "50000 100000")
    assert vm.out("systemctl show %s -p MemoryMax" % name) == "MemoryMax=104857600"
    assert made["cgroup"]["driver"] == "systemd" and made["cgroup"]["version"] == 2
    assert made["cgroup"]["docker_cgroup_parent"] == name
    assert path in made["cgroup"]["paths"].values(), made["cgroup"]["paths"]
    assert made["cgroup"]["limits"]["memory_bytes"] == 104857600
    assert (made["cgroup"]["limits"]["cpu_quota_us"], made["cgroup"]["limits"]["cpu_period_us"]) == (50000, 100000)

    again = vm.module("podkit.docker.cgroup_parent", name=name, memory="100Mi", cpus=0.5)
    assert not again["changed"], again

    checked = vm.module("podkit.docker.cgroup_parent", check=True, name=name, memory="200Mi", cpus="1500m")
    assert checked["changed"]
    assert kernel()[1:3] == ("104857600", "50000 100000"), "check mode changed the kernel's limits"

    updated = vm.module("podkit.docker.cgroup_parent", name=name, memory="200Mi", cpus="1500m")
    assert updated["changed"] and not updated.get("failed"), updated.get("msg")
    assert kernel() == (path, "209715200", "150000 100000", dir_inode), "not updated in place"
    assert vm.out("systemctl show %s -p MemoryMax" % name) == "MemoryMax=209715200"

    removed = vm.module("podkit.docker.cgroup_parent", name=name, state="absent")
    assert removed["changed"] and not removed.get("failed"), removed.get("msg")
    assert vm.ssh("test -e %s" % path, check=False).returncode == 1, "the slice's cgroup is still there"
    # systemd synthesises any slice asked about, so "gone" means: inactive, no unit
    # file, no drop-in (set-property's included) that would bring old limits back.
    shown = dict(line.split("=", 1) for line in vm.out(
        "systemctl show %s -p ActiveState -p FragmentPath -p DropInPaths -p MemoryMax" % name).splitlines())
    assert shown == {"ActiveState": "inactive", "FragmentPath": "", "DropInPaths": "", "MemoryMax": "infinity"}, shown
    assert not vm.module("podkit.docker.cgroup_parent", name=name, state="absent")["changed"]


def _apt_installs(vm):
    """The apt history's transactions that installed something, oldest first."""
    history = vm.out("cat /var/log/apt/history.log").split("\n\n")
    return [entry for entry in history if re.search(r"^Install: ", entry, re.M)]


@pytest.fixture
def box_packages_removed(vm, tmp_path):
    """A package the box adds, removed from the VM, so the next site.yml run must find it missing and install it:
    the host role's apt path, which the box otherwise spares it. The VM has no network (the run's namespace), so it
    comes from a local repository of this host's .deb of it (Debian 12 too); the VM's own sources are set aside
    meanwhile and put back afterwards. Returns the number of install transactions before."""
    start = time.monotonic()
    repo = tmp_path / "repo"
    repo.mkdir()
    download = ["apt-get", "download"] + list(REINSTALLED)
    if subprocess.run(download, cwd=str(repo), capture_output=True, timeout=300, check=False).returncode != 0:
        subprocess.run([str(TOP / "scripts" / "apt-get.sh"), "update", "-qq"], capture_output=True, timeout=600, check=True)
        subprocess.run(download, cwd=str(repo), capture_output=True, timeout=300, check=True)
    entries = []
    for downloaded in sorted(repo.glob("*.deb")):
        deb = downloaded.rename(repo / (downloaded.name.split("_")[0] + ".deb"))  # no epoch's %3a in the name apt fetches
        control = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True).stdout.rstrip("\n")
        data = deb.read_bytes()
        entries.append("%s\nFilename: ./%s\nSize: %d\nSHA256: %s\n" % (control, deb.name, len(data), hashlib.sha256(data).hexdigest()))
    assert len(entries) == len(REINSTALLED), sorted(repo.iterdir())
    (repo / "Packages.gz").write_bytes(gzip.compress("\n".join(entries).encode()))
    archive = tmp_path / "repo.tar"
    subprocess.run(["tar", "-C", str(repo), "-cf", str(archive), "."], check=True)
    with open(str(archive), "rb") as handle:
        vm.ssh("mkdir -p %s && tar -C %s -xf -" % (LOCAL_REPO, LOCAL_REPO), stdin=handle)
    vm.ssh("mv /etc/apt/sources.list /etc/apt/sources.list.podkit-test && "
           "{ ! test -e /var/lib/man-db/auto-update || mv /var/lib/man-db/auto-update /var/lib/man-db/auto-update.podkit-test; } && "
           "echo 'deb [trusted=yes] file:%s ./' >/etc/apt/sources.list.d/podkit-test.list && "
           "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq %s >/dev/null" % (LOCAL_REPO, " ".join(REINSTALLED)))
    for package in REINSTALLED:  # dpkg-query exits 1 for a package it no longer knows
        assert vm.ssh("dpkg-query -W -f='${db:Status-Abbrev}' %s" % package, check=False).stdout.strip() != "ii", package
    before = len(_apt_installs(vm))
    print("%s removed, a local repository in its place, in %.1fs" % (", ".join(REINSTALLED), time.monotonic() - start))
    yield before
    vm.ssh("mv /etc/apt/sources.list.podkit-test /etc/apt/sources.list; rm -rf /etc/apt/sources.list.d/podkit-test.list %s; "
           "! test -e /var/lib/man-db/auto-update.podkit-test || mv /var/lib/man-db/auto-update.podkit-test /var/lib/man-db/auto-update"
           % LOCAL_REPO, check=False)


@pytest.fixture
def daemonset_name(docker_client):
    """A DaemonSet name no other test uses; its pod on this host (and its workload record) removed afterwards."""
    name = unique_name("d", 7)
    yield name
    for sandbox in docker_client.containers.list(all=True, filters={"label": "io.podkit.owner-name=%s" % name}):
        remove_pod_leftovers(docker_client, sandbox.labels["io.podkit.pod"])
    for record in (STATE_DIR / "workloads").glob("*%s*" % name) if (STATE_DIR / "workloads").is_dir() else ():
        record.unlink()
    for network in docker_client.networks.list(names=["podkit-%s" % name]):
        network.remove()


def daemonset_pods_in_vm(vm, name):
    """{pod: sandbox running?} of the DaemonSet's pods in the VM, from its Docker."""
    out = vm.out("docker ps -a --filter label=io.podkit.owner-name=%s --filter label=io.podkit.role=sandbox "
                 "--format '{{.Label \"io.podkit.pod\"}} {{.State}}'" % name)
    return dict(line.split() for line in out.splitlines() if line.strip())


def test_one_run_converges_localhost_and_the_vm_each_in_its_own_cgroup_world(vm, pod_name, docker_client, daemonset_name,
                                                                             box_packages_removed):  # pylint: disable=redefined-outer-name
    """site.yml on both hosts at once, then pod_facts on each (tests/vm/both-hosts.yml). The same run's DaemonSet
    lands once on each host (issue 24: one pod on each host the play runs on). In the VM, the run finds the box's
    package removed (box_packages_removed) missing, and installs it through the host role's apt path."""
    daemonset = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": daemonset_name},
                 "spec": {"selector": {"matchLabels": {"app": daemonset_name}},
                          "template": {"metadata": {"labels": {"app": daemonset_name}},
                                       "spec": {"containers": [{"name": "agent", "image": "podkit/busybox:latest",
                                                                "command": ["sleep", "3650d"]}]}}}}
    pods = [{"manifest": daemonset, "pull": "never"}, {
        "name": pod_name,
        "pull": "never",
        "containers": [
            {"name": "app", "image": "podkit/busybox:latest", "command": ["httpd", "-f", "-p", "80", "-h", "/var/www"],
             "resources": {"limits": {"memory": "256Mi"}}},
            {"name": "sidecar", "image": "podkit/busybox:latest", "command": ["sleep", "3650d"],
             "resources": {"limits": {"memory": "128Mi"}}},
        ],
    }]
    expect = {
        "localhost": {"version": 1, "driver": "cgroupfs", "parent": "/podkit/pod-%s" % pod_name, "memory_bytes": POD_MEMORY},
        VM_HOST: {"version": 2, "driver": "systemd", "parent": "podkit-pod_%s.slice" % pod_name, "memory_bytes": POD_MEMORY},
    }
    extra = vm.run_dir / "both-hosts-vars.json"
    extra.write_text(json.dumps({"podkit_pods_definitions": pods, "podkit_vm_test_pod": pod_name, "podkit_vm_expect": expect}))
    result = vm.playbook(TOP / "tests" / "vm" / "both-hosts.yml", "-e", "@%s" % extra,
                         inventories=[INVENTORY, vm.inventory], name="both-hosts")
    # both-hosts.yml asserts each host's facts; a failed assertion fails the run.
    result.assert_ok("localhost", VM_HOST)
    for line in ("localhost: cgroup v1, cgroupfs", "%s: cgroup v2, systemd" % VM_HOST):
        assert line in result.stdout, result.stdout[-3000:]

    # The host role's apt path: what was missing, found by its own check (not by apt), installed in one
    # transaction (each one more costs minutes under TCG).
    installs = _apt_installs(vm)
    assert len(installs) == box_packages_removed + 1, installs[box_packages_removed:]
    for package in REINSTALLED:
        assert re.search(r"^Install: (.*, )?%s:" % re.escape(package), installs[-1], re.M), (package, installs[-1])
        assert vm.out("dpkg-query -W -f='${db:Status-Abbrev}' %s" % package).strip() == "ii", package
    assert "podkit.docker.host : Install the missing packages" in result.changed_tasks(VM_HOST), result.changed_tasks(VM_HOST)

    # What each kernel says: a v1 memory hierarchy path here, a slice there.
    local_app = docker_client.containers.get("%s_app" % pod_name)
    with open("/proc/%d/cgroup" % local_app.attrs["State"]["Pid"]) as handle:
        memory_line = [line for line in handle if re.match(r"^\d+:([^:]*,)?memory(,[^:]*)?:", line)][0]
    assert memory_line.rstrip().split(":", 2)[2].startswith("/podkit/pod-%s/" % pod_name)
    remote_app = Member(vm, "%s_app" % pod_name)
    assert remote_app.cgroup.rsplit("/", 2)[1] == "podkit-pod_%s.slice" % pod_name

    # The DaemonSet: exactly one pod on each host, running, read from each host's Docker.
    here = docker_client.containers.list(all=True, filters={"label": [
        "io.podkit.owner-name=%s" % daemonset_name, "io.podkit.role=sandbox"]})
    assert [c.status for c in here] == ["running"], [(c.name, c.status) for c in here]
    there = daemonset_pods_in_vm(vm, daemonset_name)
    assert list(there.values()) == ["running"], there
    assert list(there) == [here[0].labels["io.podkit.pod"]], "the same template, the same pod name on each host"


def _pod_whole_in_vm(vm, pod):
    """True when the VM's kernel shows the pod whole: sandbox and members running, each member in
    the sandbox's net and ipc namespaces (/proc/<pid>/ns read in the VM)."""
    script = (
        "set -e; s=$(docker inspect -f '{{.State.Running}} {{.State.Pid}}' %(pod)s_sandbox); "
        "set -- $s; [ \"$1\" = true ]; sp=$2; "
        "for m in app sidecar; do r=$(docker inspect -f '{{.State.Running}} {{.State.Pid}}' %(pod)s_$m); "
        "set -- $r; [ \"$1\" = true ]; "
        "for ns in net ipc; do [ \"$(readlink /proc/$2/ns/$ns)\" = \"$(readlink /proc/$sp/ns/$ns)\" ]; done; done"
    ) % dict(pod=pod)
    try:
        return vm.ssh(script, check=False, timeout=30).returncode == 0
    except subprocess.TimeoutExpired:
        return False     # a VM still busy booting under TCG: not whole yet, ask again


def test_vagrant_reload_leaves_the_pod_whole_within_60s_of_sshd_with_no_ansible_run(vm, converged):  # pylint: disable=redefined-outer-name,unused-argument
    """podkit-guard (the host role's systemd service, enabled, after docker.service) repairs the pod
    a reboot leaves: `vagrant reload` runs no provisioner, so no Ansible runs between the reboot and
    the check. The sandbox and app are the same containers, restarted in the new boot."""
    assert vm.out("systemctl is-enabled podkit-guard") == "enabled"
    assert vm.out("systemctl is-active podkit-guard") == "active"
    assert vm.out("systemctl show podkit-guard -p Restart --value") == "always"
    assert "docker.service" in vm.out("systemctl show podkit-guard -p After --value")
    assert vm.ssh("test -f /var/lib/podkit/pods/%s.json" % POD, check=False).returncode == 0
    assert vm.out("stat -c %%a /var/lib/podkit/pods/%s.json" % POD) == "600"
    assert vm.out("stat -c %a /var/lib/podkit/pods") == "700"
    before = {name: vm.out("docker inspect -f '{{.Id}} {{.State.StartedAt}}' %s_%s" % (POD, name)).split()
              for name in ("sandbox", "app")}
    # A fault only the guard can mend after the boot: with the guard stopped (still enabled), the sidecar
    # is removed, so Docker has nothing to restore; without the guard the pod would come up without it.
    vm.ssh("systemctl stop podkit-guard && docker rm -f %s_sidecar" % POD)
    assert vm.ssh("docker inspect %s_sidecar" % POD, check=False).returncode != 0
    boot_id = vm.out("cat /proc/sys/kernel/random/boot_id")
    # The reboot itself is not what is measured (TCG, beside the other CI stages): Vagrant waits for
    # sshd as `vagrant up` does (the Vagrantfile's boot_timeout under qemu).
    reload = vm.vagrant("reload")
    assert reload.returncode == 0, (reload.stdout[-3000:], reload.stderr[-3000:])
    answered = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the forwarded port, once Vagrant's own ssh answered
        try:
            proc = vm.ssh("cat /proc/sys/kernel/random/boot_id", check=False, timeout=10)
        except subprocess.TimeoutExpired:
            continue
        if proc.returncode == 0 and proc.stdout.strip():
            answered = time.monotonic()
            break
        time.sleep(1)
    assert answered is not None, "sshd answered Vagrant after the reload, but not on the forwarded port within 120 s"
    assert proc.stdout.strip() != boot_id, "vagrant reload did not reboot the box"
    whole = None
    if wait_for(lambda: _pod_whole_in_vm(vm, POD), 60 - (time.monotonic() - answered), step=1) is not None:
        whole = time.monotonic() - answered
    log = vm.ssh("journalctl -b -u podkit-guard -u docker --no-pager -o short-precise | tail -60", check=False).stdout
    assert whole is not None, "pod %s not whole within 60 s of sshd answering; journal:\n%s" % (POD, log)
    assert vm.out("systemctl is-active podkit-guard") == "active"
    for name, (container, started) in before.items():
        now = vm.out("docker inspect -f '{{.Id}} {{.State.StartedAt}}' %s_%s" % (POD, name)).split()
        assert now[0] == container, "%s_%s was recreated, not restarted, across the reboot" % (POD, name)
        assert now[1] != started, "%s_%s was not started again in the new boot" % (POD, name)
    assert vm.out("docker exec %s_sidecar wget -qO- http://127.0.0.1:80/" % POD) == "hello from pod %s" % POD
    print("pod %s whole %.1fs after sshd answered; journal of this boot (docker, podkit-guard):\n%s" % (POD, whole, log))
