"""The test bed: a real Docker engine, the real cgroup filesystem, the real modules.

Fixtures here never mock what podkit drives. Modules are run the way Ansible runs
them on a host (a Python process reading ANSIBLE_MODULE_ARGS, printing JSON), and
every test pod gets a unique name and is removed afterwards with its containers
and cgroup directories, whatever the test did.
"""

import pathlib
import sys
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from helpers import BUSYBOX_IMAGE, DOCKER_HOST, PAUSE_IMAGE, ModuleRunner, remove_pod_leftovers  # noqa: E402


@pytest.fixture(scope="session")
def docker_client():
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
    client.ping()
    for image in (PAUSE_IMAGE, BUSYBOX_IMAGE):
        client.images.get(image)  # built by `make images`; raises if missing
    yield client
    client.close()


@pytest.fixture
def run_module():
    return ModuleRunner()


@pytest.fixture
def pod_name(docker_client):
    """A pod name no other test uses; everything of it is removed afterwards."""
    name = "t" + uuid.uuid4().hex[:8]
    remove_pod_leftovers(docker_client, name)
    yield name
    remove_pod_leftovers(docker_client, name)


@pytest.fixture
def pod_names(docker_client):
    """A factory of unique pod names, all cleaned up afterwards."""
    names = []

    def make():
        names.append("t" + uuid.uuid4().hex[:8])
        return names[-1]

    yield make
    for name in names:
        remove_pod_leftovers(docker_client, name)


_SESSION_START = None


def pytest_sessionstart(session):
    global _SESSION_START  # pylint: disable=global-statement
    import time
    _SESSION_START = int(time.time()) - 1


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if anything during it made the engine pull an image: tests never pull."""
    import time
    if _SESSION_START is None:
        return
    try:
        import docker
        client = docker.DockerClient(base_url=DOCKER_HOST, version="auto")
        events = list(client.events(since=_SESSION_START, until=int(time.time()) + 1, decode=True,
                                    filters={"type": "image", "event": "pull"}))
    except Exception:  # pylint: disable=broad-except
        return  # no engine: the tests that needed one have failed already
    # An attempted pull cannot leave the host: scripts/start-dockerd.sh points the
    # engine's proxy at a closed loopback port. A pull that succeeded shows here, except
    # those from the private registry the pull tests run on loopback (tests/registry.py).
    from registry import is_loopback_pull
    events = [e for e in events if not is_loopback_pull(e.get("id", ""))]
    if events:
        names = sorted({e.get("id", "?") for e in events})
        session.config.get_terminal_writer().line(
            "ERROR: the tests made the engine pull images: %s" % names, red=True)
        session.exitstatus = 1
