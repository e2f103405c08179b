"""dockerd stopped and started with podkit-guard running: every recorded pod whole again (members
in the new sandboxes' net and ipc namespaces, the published port answering) within 30 s of the
engine answering, with no playbook run. Marked ``disruptive``: it stops the shared engine, so it
runs only in the reliability-disruptive stage (PODKIT_TEST_DISRUPTIVE=1)."""

import time

import docker
import pytest

from helpers import DOCKER_HOST

from .guard import MEMBERS, GuardProcess, answers, free_port, pod_whole, wait_for, web_pod
from .test_disruptive import _start_dockerd, _stop_dockerd

pytestmark = [pytest.mark.disruptive, pytest.mark.reliability("faults")]

WHOLE_S = 30


def test_dockerd_restart_repaired_by_the_guard(tmp_path, pod_names):
    guard = GuardProcess(tmp_path / "state")
    guard.state_dir.mkdir(mode=0o700)
    pods = {pod_names(): free_port(), pod_names(): free_port()}
    for pod, port in pods.items():
        guard.module("pod", **web_pod(pod, port))
    guard.start()
    try:
        try:
            _stop_dockerd()
        finally:
            _start_dockerd()
        client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
        answered = time.monotonic()
        try:
            took = wait_for(lambda: all(pod_whole(client, pod, MEMBERS) and answers(port)
                                        for pod, port in pods.items()), WHOLE_S, step=0.2)
            assert took is not None, "pods not whole within %ss of the engine answering; guard log:\n%s" % (
                WHOLE_S, guard.log_text())
            print("pods whole %.1fs after the engine answered" % (time.monotonic() - answered))
            assert "lost the engine's event stream" in guard.log_text()
        finally:
            client.close()
    finally:
        guard.stop()
