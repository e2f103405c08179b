"""The collection as an infrastructure repository consumes it: installed by `ansible-galaxy collection
install -r requirements.yml` into the repository's own collections path, from the built tarball and,
separately, from git; then its roles (by FQCN, in the repository's playbook) and its playbook
`podkit.docker.site` run against localhost, and a second run changes nothing.

Nothing of this checkout is reachable from the infra repository: its ansible.cfg names only its own
collections path, Python's path is not scanned for collections, the environment carries no
ANSIBLE_COLLECTIONS_PATH, ANSIBLE_ROLES_PATH or PYTHONPATH, and before the install
`ansible-galaxy collection list podkit.docker` must find nothing.

Cost on this 2-core machine (measured when written; the figures are in the report of issue 23): the
host role is the expensive part, so the tarball runs the full site play (host + pods) and git a
lighter play (the host role's `interpreter` entry point, the pods role, a module by FQCN).
"""

import os
import pathlib
import re
import subprocess
import sys
import time

import yaml

from helpers import BUSYBOX_IMAGE, LABEL_POD, PAUSE_IMAGE, TOP, ansible_env

BIN = pathlib.Path(sys.executable).parent
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Nothing of the checkout, nor of the developer's shell, may point Ansible at this tree.
LEAKS = ("ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_ROLES_PATH", "ANSIBLE_CONFIG",
         "PYTHONPATH", "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH", "ANSIBLE_PLAYBOOK_DIR")

ANSIBLE_CFG = """\
[defaults]
# This repository's collections, and nothing else.
collections_path = ./collections
collections_scan_sys_path = false
inventory = ./inventory
interpreter_python = auto_silent
"""


def infra_env(infra):
    env = ansible_env(ANSIBLE_CALLBACK_RESULT_FORMAT="yaml")
    for name in LEAKS:
        env.pop(name, None)
    # ansible-galaxy and ansible-playbook keep their caches and temporary files inside the repository.
    env["HOME"] = str(infra / "home")
    return env


def run(args, infra, check=True, timeout=900):
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=str(infra),
                          env=infra_env(infra), timeout=timeout, check=False)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, "%s failed:\n%s" % (" ".join(map(str, args)), out)
    return proc.returncode, out


def make_infra_repo(tmp_path, pod, source):
    """A throwaway infrastructure repository deploying ``pod`` with podkit.docker from ``source``
    (one entry of requirements.yml's collections)."""
    infra = tmp_path / "infra"
    (infra / "inventory" / "group_vars").mkdir(parents=True)
    (infra / "home").mkdir()
    (infra / "ansible.cfg").write_text(ANSIBLE_CFG)
    (infra / "requirements.yml").write_text(yaml.safe_dump({"collections": [source]}, sort_keys=False))
    (infra / "inventory" / "hosts.yml").write_text(yaml.safe_dump({"podkit_hosts": {"hosts": {"localhost": {
        "ansible_connection": "local",
        # The interpreter running the tests has the modules' libraries, as a prepared host has.
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
    }}}}))
    (infra / "inventory" / "group_vars" / "podkit_hosts.yml").write_text(yaml.safe_dump({
        # The shared engine keeps running: an empty daemon.json is never written, nothing restarts it.
        "podkit_host_sandbox_image": PAUSE_IMAGE,
        # No guard left running on this shared machine (tests/integration/test_guard_role.py runs one).
        "podkit_host_guard": False,
        "podkit_pods_pull": "never",
        # The light play runs no host role, which would leave its image in podkit_sandbox_image.
        "podkit_pods_sandbox_image": PAUSE_IMAGE,
        "podkit_pods_show_tree": False,
        "podkit_pods_definitions": [{
            "name": pod,
            "containers": [
                {"name": "app", "image": BUSYBOX_IMAGE, "command": ["httpd", "-f", "-p", "8080", "-h", "/"],
                 "resources": {"limits": {"memory": "64Mi"}}},
                {"name": "sidecar", "image": BUSYBOX_IMAGE, "command": ["sleep", "3650d"],
                 "resources": {"limits": {"memory": "32Mi"}}},
            ],
        }],
    }))
    # The repository's own playbook: the roles and a module by their fully qualified names.
    (infra / "deploy.yml").write_text(yaml.safe_dump([{
        "name": "Deploy the pods with podkit.docker",
        "hosts": "podkit_hosts",
        "gather_facts": False,
        "tasks": [
            {"name": "Use the interpreter the host role prepared",
             "ansible.builtin.include_role": {"name": "podkit.docker.host", "tasks_from": "interpreter"}},
            {"name": "Deploy the pods", "ansible.builtin.include_role": {"name": "podkit.docker.pods"}},
            {"name": "Read the pod back", "podkit.docker.pod_facts": {"name": [pod]}, "register": "facts"},
            {"name": "Check the members share the sandbox's network namespace",
             "ansible.builtin.assert": {"that": [
                 "facts.ansible_facts.podkit_pods['%s'].containers.app.shared_with_sandbox is superset(['net', 'ipc'])" % pod]}},
        ],
    }], sort_keys=False))
    return infra


def install(infra):
    """Install requirements.yml into the repository's collections path; return the installed copy."""
    # With the checkout leaking in (ANSIBLE_COLLECTIONS_PATH=build/collections), this lists it.
    _rc, out = run([BIN / "ansible-galaxy", "collection", "list", "podkit.docker"], infra, check=False)
    assert "podkit.docker" not in out, "the checkout leaks into the infra repo:\n" + out
    run([BIN / "ansible-galaxy", "collection", "install", "-r", "requirements.yml", "-p", "collections"], infra)
    installed = infra / "collections" / "ansible_collections" / "podkit" / "docker"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    _rc, listed = run([BIN / "ansible-galaxy", "collection", "list", "podkit.docker"], infra)
    assert str(infra / "collections" / "ansible_collections") in listed, listed
    assert str(TOP) not in listed, listed
    return installed


def play(infra, playbook):
    start = time.monotonic()
    _rc, out = run([BIN / "ansible-playbook", playbook], infra)
    # What the consumer test costs CI, play by play (pytest -s shows it).
    print("%s: %.1f s" % (playbook, time.monotonic() - start))
    match = RECAP.search(out)
    assert match, "no PLAY RECAP:\n" + out
    return out, dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def assert_pod_runs(client, pod):
    """What the kernel says: the sandbox and both members run; each member is in the sandbox's
    network and IPC namespaces."""
    containers = {c.labels.get("io.podkit.container") or c.labels["io.podkit.role"]: c
                  for c in client.containers.list(filters={"label": "%s=%s" % (LABEL_POD, pod)})}
    assert set(containers) >= {"sandbox", "app", "sidecar"}, containers
    pids = {name: c.attrs["State"]["Pid"] for name, c in containers.items()}
    for ns in ("net", "ipc"):
        sandbox_ns = os.readlink("/proc/%d/ns/%s" % (pids["sandbox"], ns))
        for member in ("app", "sidecar"):
            assert os.readlink("/proc/%d/ns/%s" % (pids[member], ns)) == sandbox_ns, (member, ns)


def container_ids(client, pod):
    return sorted(c.id for c in client.containers.list(all=True, filters={"label": "%s=%s" % (LABEL_POD, pod)}))


def converge_twice(infra, playbook, client, pod):
    """Run ``playbook`` in the infra repository: the pod is made and runs as the kernel says; the
    second run changes nothing and recreates no container."""
    out, first = play(infra, playbook)
    assert first["changed"] > 0 and first["failed"] == 0, out
    assert_pod_runs(client, pod)
    before = container_ids(client, pod)

    out, second = play(infra, playbook)
    assert second["changed"] == 0, out
    assert container_ids(client, pod) == before


def test_installed_from_the_tarball_site_runs_then_changes_nothing(tmp_path, docker_client, pod_name):
    dist = tmp_path / "dist"
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(dist), str(TOP)],
                   check=True, capture_output=True, env=infra_env(tmp_path))
    tarball, = dist.glob("podkit-docker-*.tar.gz")
    infra = make_infra_repo(tmp_path, pod_name, {"name": str(tarball), "type": "file"})
    install(infra)
    converge_twice(infra, "podkit.docker.site", docker_client, pod_name)


def git_repo_of_the_tree(path):
    """A git repository holding this tree as it is now (tracked files and new ones git does not
    ignore, laid out by scripts/layout-collection.sh), committed: what a clone of the pushed branch
    holds. CI runs in a fresh clone, where this is the clone's own content; here it also covers
    changes not committed yet."""
    subprocess.run([str(TOP / "scripts" / "layout-collection.sh"), str(path)], check=True, capture_output=True)
    subprocess.run(["git", "-c", "user.name=podkit tests", "-c", "user.email=tests@podkit.invalid",
                    "commit", "-q", "-m", "the tree under test"], cwd=str(path), check=True, capture_output=True)
    return subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=str(path), check=True,
                          capture_output=True, text=True).stdout.strip()


def test_installed_from_git_the_infra_playbook_runs_then_changes_nothing(tmp_path, docker_client, pod_name):
    repo = tmp_path / "podkit.docker"
    branch = git_repo_of_the_tree(repo)
    infra = make_infra_repo(tmp_path, pod_name, {"name": "file://%s" % repo, "type": "git", "version": branch})
    installed = install(infra)
    # A git install is built from the repository: what build_ignore leaves out is not installed.
    assert not (installed / ".git").exists()
    converge_twice(infra, "deploy.yml", docker_client, pod_name)
