# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker side: connecting, names and labels of what podkit creates."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

try:
    import docker  # noqa: F401  pylint: disable=unused-import
    from docker.errors import DockerException
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class DockerException(Exception):  # type: ignore[no-redef]
        """Stand-in so except clauses work when the SDK is missing (the module fails first)."""


# Labels on everything the collection creates (shared/DESIGN.md, "Names").
LABEL_POD = "io.podkit.pod"
LABEL_ROLE = "io.podkit.role"
LABEL_CONTAINER = "io.podkit.container"
LABEL_HASH = "io.podkit.config-hash"
LABEL_SANDBOX_ID = "io.podkit.sandbox-id"

ROLE_SANDBOX = "sandbox"
ROLE_MEMBER = "member"
ROLE_INIT = "init"

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"

DOCKER_COMMON_ARGS = dict(
    docker_host=dict(type="str", default=DEFAULT_DOCKER_HOST, aliases=["docker_url"]),
    timeout=dict(type="int", default=60),
)


def sandbox_name(pod):
    return "%s_sandbox" % pod


def member_name(pod, container):
    return "%s_%s" % (pod, container)


def require_sdk(module):
    """Fail the module with Ansible's standard message when the Docker SDK is missing."""
    if not HAS_DOCKER:
        from ansible.module_utils.basic import missing_required_lib
        module.fail_json(msg=missing_required_lib("docker"), exception=DOCKER_IMPORT_ERROR)


def connect(docker_host=DEFAULT_DOCKER_HOST, timeout=60):
    """A Docker API client for ``docker_host``, checked to answer.

    Raises PodkitError (not a traceback) when no daemon answers there.
    """
    import docker as sdk
    try:
        # version="auto" asks the daemon for its API version: that answer doubles as the ping.
        client = sdk.DockerClient(base_url=docker_host, timeout=timeout, version="auto")
    except DockerException as exc:
        raise PodkitError(
            "docker_host: no Docker daemon answers at %s (%s). Start the engine "
            "(systemctl start docker, or dockerd) or point docker_host at its socket."
            % (docker_host, exc))
    return client
