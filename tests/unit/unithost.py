"""The host the unit tests plan for, in one place: cgroup v1 with the cgroupfs driver (this machine's
Debian 12 dockerd). A test that needs another host makes its own HostCgroups."""

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import HostCgroups

HOST = HostCgroups(version=1, driver="cgroupfs")
