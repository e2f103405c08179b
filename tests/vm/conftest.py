"""The bed of the Debian 12 VM test: the box tests/vm/run.sh booted with `vagrant up`, reached over SSH.

run.sh boots the VM and passes where it listens (PODKIT_VM_SSH_PORT, PODKIT_VM_SSH_KEY,
PODKIT_VM_RUN_DIR), vagrant for it (PODKIT_VM_VAGRANT: the run's network namespace entered)
and the log of the `vagrant up` that provisioned it (PODKIT_VM_UP_LOG). Without them there is
no VM, and these tests are not collected at all: they never pass, skip or fail by accident in
another stage's pytest run.
"""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys
import threading
import time

import pytest

TOP = pathlib.Path(__file__).resolve().parent.parent.parent
HERE = pathlib.Path(__file__).resolve().parent
VM_HOST = "docker-host"  # the Vagrantfile's machine: its provisioner's inventory names it so too
# The virtual environment the host role makes on Debian (PEP 668 forbids pip in
# the system Python); ad-hoc module runs use it, as playbooks/facts.yml does.
VM_PYTHON = os.environ.get("PODKIT_VM_PYTHON", "/opt/podkit/venv/bin/python")

if not os.environ.get("PODKIT_VM_SSH_PORT"):
    collect_ignore_glob = ["test_*.py"]  # pylint: disable=invalid-name


class VM:
    """The booted VM: ssh into it, and run Ansible against it (and localhost)."""

    def __init__(self, port, key, run_dir):
        self.port = int(port)
        self.key = key
        self.run_dir = pathlib.Path(run_dir)
        self.ssh_options = [
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=20",
        ]
        # One connection for all the test's own commands: a new ssh handshake costs
        # seconds under TCG. (Ansible keeps its own master connection.)
        self.control_options = ["-o", "ControlMaster=auto", "-o", "ControlPath=%s/ssh-%%C" % self.run_dir, "-o", "ControlPersist=300"]
        self.inventory = self.run_dir / "vm.yml"
        self._write_inventory()
        self.runs = 0

    def _write_inventory(self):
        # The VM joins the project's group podkit_hosts, so inventory/group_vars applies
        # to it as to localhost when both inventories are given. No network beyond the
        # run's namespace: what the host role would fetch the box already holds
        # (tests/vagrant/make-box.sh), as on an air-gapped host.
        host = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.key,
            "ansible_ssh_common_args": " ".join(shlex.quote(o) for o in self.ssh_options),
            "ansible_python_interpreter": "/usr/bin/python3",
        }
        self.inventory.write_text(json.dumps({"podkit_hosts": {"hosts": {VM_HOST: host}}}, indent=2))

    def ssh(self, command, check=True, timeout=600, stdin=None):
        """Run ``command`` (a shell string) as root in the VM (``stdin``: a file it reads)."""
        proc = subprocess.run(
            ["ssh", "-i", self.key, "-p", str(self.port)] + self.ssh_options + self.control_options + ["root@127.0.0.1", command],
            stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("in the VM, `%s` exited %s:\n%s%s" % (command, proc.returncode, proc.stdout, proc.stderr))
        return proc

    def out(self, command):
        return self.ssh(command).stdout.strip()

    def env(self, **extra):
        env = dict(os.environ)
        env.update(
            ANSIBLE_COLLECTIONS_PATH=str(TOP / "build" / "collections"),
            ANSIBLE_ROLES_PATH=str(TOP / "roles"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_HOST_KEY_CHECKING="False",
            ANSIBLE_PIPELINING="True",
            ANSIBLE_LOCALHOST_WARNING="False",
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="True",
            ANSIBLE_TIMEOUT="60",
            PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""),
        )
        env.update(extra)
        return env

    def _run(self, argv, name):
        """Run an ansible command; keep its output in the run directory for a person to read."""
        self.runs += 1
        log = self.run_dir / ("%02d-%s.log" % (self.runs, name))
        # Written as it runs, so `tail -f` shows where a long run is; each line of the log says the
        # seconds since the run began, so the log shows which tasks the VM's minutes went to.
        lines = []
        start = time.monotonic()
        with open(str(log), "w") as out:
            out.write("$ %s\n" % " ".join(argv))
            out.flush()
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env(), cwd=str(TOP))
            # stderr is read beside stdout, so neither pipe fills while the other is read.
            err = []
            reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
            reader.start()
            watchdog = threading.Timer(1800, proc.kill)  # a run that hangs ends, and its test fails
            watchdog.start()
            for line in proc.stdout:
                lines.append(line)
                out.write("%7.1f %s" % (time.monotonic() - start, line))
                out.flush()
            proc.wait()
            watchdog.cancel()
            reader.join()
        return subprocess.CompletedProcess(argv, proc.returncode, "".join(lines), "".join(err))

    def playbook(self, playbook, *args, inventories=None, name="playbook"):
        """ansible-playbook against the VM (and whatever else the inventories hold)."""
        inventories = inventories or [self.inventory]
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")]
        for inventory in inventories:
            argv += ["-i", str(inventory)]
        return PlaybookRun(self._run(argv + [str(playbook)] + list(args), name))

    def vagrant(self, *args):
        """vagrant for this VM (``provision``, ``reload``), in the run's network namespace."""
        return self._run([os.environ["PODKIT_VM_VAGRANT"]] + list(args), "vagrant-" + args[0])

    def module(self, module, check=False, **args):
        """One module on the VM (ad hoc), with the interpreter the host role set up; returns its result."""
        tree = self.run_dir / ("tree-%d" % (self.runs + 1))
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", str(self.inventory), VM_HOST,
                "-m", module, "-a", json.dumps(args), "-e", "ansible_python_interpreter=" + VM_PYTHON, "--tree", str(tree)]
        if check:
            argv.append("--check")
        proc = self._run(argv, module.rsplit(".", 1)[-1])
        try:
            return json.loads((tree / VM_HOST).read_text())
        except (OSError, ValueError):
            raise AssertionError("%s left no result (rc %s):\n%s\n%s" % (" ".join(argv), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))


class PlaybookRun:
    """An ansible-playbook run as its default output tells it: recap, changed tasks, failures."""

    RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

    def __init__(self, proc):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.stats = {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                                   "failures": int(m.group(5))} for m in self.RECAP.finditer(self.stdout)}

    def changed_tasks(self, host):
        """Names of the tasks that reported a change on ``host``."""
        names, task = [], None
        for line in self.stdout.splitlines():
            if line.startswith(("TASK [", "RUNNING HANDLER [")):
                task = line.split("[", 1)[1].rsplit("]", 1)[0]
            elif line.startswith("changed: [%s]" % host) and task not in names:
                names.append(task)
        return names

    def failures(self):
        """The output around every failure, for the assertion message."""
        lines = self.stdout.splitlines()
        shown = [line for i, line in enumerate(lines)
                 if any(word in "\n".join(lines[i:i + 3]) for word in ("fatal: [", "failed: [", "UNREACHABLE!", "ERROR!"))]
        return "\n".join(shown)[-6000:] or (self.stdout[-3000:] + self.stderr[-3000:])

    def assert_ok(self, *hosts):
        assert self.rc == 0, self.failures()
        for host in hosts:
            assert host in self.stats, "no recap for %s:\n%s" % (host, self.stdout[-3000:])
            assert self.stats[host]["failures"] == 0 and self.stats[host]["unreachable"] == 0, self.failures()


@pytest.fixture(scope="session")
def vm():
    return VM(os.environ["PODKIT_VM_SSH_PORT"], os.environ["PODKIT_VM_SSH_KEY"], os.environ["PODKIT_VM_RUN_DIR"])
