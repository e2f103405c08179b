"""A private image registry on loopback for the pull tests: Debian's docker-registry (distribution v2)
with htpasswd (bcrypt) authentication, over plain HTTP on 127.0.0.1:<free port>.

Docker treats 127.0.0.0/8 registries as insecure (plain HTTP allowed), and Go never sends loopback
traffic through a proxy, so the engine reaches it although scripts/start-dockerd.sh points the engine's
proxy at a closed port: nothing leaves the host. The registry is started for the tests and stopped
after them (by its own PID); the packages are installed by scripts/setup-host.sh, run here when they
are missing. If it cannot run, the tests fail: they never skip.
"""

import pathlib
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from helpers import BUSYBOX_IMAGE, TOP

TOOLS = ("docker-registry", "htpasswd")
USER = "robot"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_tools():
    """The registry and htpasswd, installed through the project's host set-up when missing."""
    if all(shutil.which(t) for t in TOOLS):
        return
    proc = subprocess.run([str(TOP / "scripts" / "setup-host.sh")], capture_output=True, text=True, check=False)
    missing = [t for t in TOOLS if not shutil.which(t)]
    if missing:
        raise RuntimeError("the pull tests need %s (Debian packages docker-registry and apache2-utils); "
                           "scripts/setup-host.sh did not install them (rc %s): %s"
                           % (", ".join(missing), proc.returncode, (proc.stdout + proc.stderr)[-2000:]))


class Registry:
    """One running registry: ``address`` (127.0.0.1:port), ``password``, ``push(client)`` of the busybox image."""

    def __init__(self):
        ensure_tools()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="podkit-registry-"))
        self.port = _free_port()
        self.address = "127.0.0.1:%d" % self.port
        self.password = "reg-pw-%s" % uuid.uuid4().hex
        htpasswd = subprocess.run(["htpasswd", "-nbB", USER, self.password], capture_output=True, text=True,
                                  check=True).stdout
        (self.root / "htpasswd").write_text(htpasswd)
        (self.root / "config.yml").write_text(
            "version: 0.1\n"
            "log: {level: warn}\n"
            "storage: {filesystem: {rootdirectory: %s}}\n"
            "http: {addr: '%s', secret: '%s'}\n"
            "auth: {htpasswd: {realm: podkit-test, path: %s}}\n"
            % (self.root / "data", self.address, uuid.uuid4().hex, self.root / "htpasswd"))
        self.log = open(self.root / "registry.log", "wb")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            ["docker-registry", "serve", str(self.root / "config.yml")], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self):
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.process.poll() is not None:
                break
            try:
                urllib.request.urlopen("http://%s/v2/" % self.address, timeout=2)  # pylint: disable=consider-using-with
            except urllib.error.HTTPError as exc:
                if exc.code == 401:     # answering, and asking for credentials
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("docker-registry did not answer on %s with 401: %s"
                           % (self.address, (self.root / "registry.log").read_text()[-2000:]))

    def push(self, client, name):
        """The local busybox image pushed as <address>/podkit-test/<name>:1, the local tag removed again:
        only a pull can bring it back."""
        ref = "%s/podkit-test/%s" % (self.address, name)
        client.images.get(BUSYBOX_IMAGE).tag(ref, "1")
        try:
            for line in client.images.push(ref, "1", stream=True, decode=True,
                                           auth_config={"username": USER, "password": self.password}):
                if "error" in line:
                    raise RuntimeError("pushing %s:1 to the test registry failed: %s" % (ref, line["error"]))
        finally:
            client.images.remove(ref + ":1")
        return ref + ":1"

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


def remove_image(client, ref):
    """Untag ``ref`` if a test pulled it (the image's content is the busybox image's, which stays)."""
    import docker
    try:
        client.images.remove(ref)
    except docker.errors.ImageNotFound:
        pass


def is_loopback_pull(image):
    """A pull event's image on a loopback registry: a pull from the test registry, which never left the host."""
    return image.startswith("127.") and ":" in image.split("/", 1)[0] and "/" in image
