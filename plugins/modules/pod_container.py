#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pod_container
short_description: A pod member that joins its sandbox's namespaces and cgroup parent
version_added: 0.1.0
description:
  - Creates, recreates, starts, stops or removes the member container C(<pod>_<name>) of a pod, started as
    the article does with C(--network container:<sandbox> --ipc container:<sandbox>) (and
    C(--pid container:<sandbox>) when O(share) contains C(pid)) under the sandbox's cgroup parent.
  - Idempotent from the live state. The member is recreated when its configuration hash changes (the
    reason names the fields, such as C(config changed (env))), when its image ID changed (an image
    re-tagged), or when it is stale - it joined another sandbox than the current one
    (C(io.podkit.sandbox-id) label), or its namespace inodes differ from the sandbox's because the
    sandbox was restarted (C(stale network namespace)). Nothing else is touched.
  - The sandbox owns the hostname, published ports, DNS, C(/etc/hosts) entries and MAC address (Docker
    refuses them on a C(container:) member); set them with M(podkit.docker.pod_sandbox). This module has
    no such options, so passing one fails before Docker is asked.
  - The sandbox (M(podkit.docker.pod_sandbox)) must exist and run.
  - A container named C(<pod>_<name>) without the label C(io.podkit.pod=<pod>) is never changed; the
    module fails naming it.
author:
  - podkit.docker contributors (@podkit)
options:
  pod:
    description:
      - The pod the container belongs to.
    type: str
    required: true
  name:
    description:
      - The container's name in the pod; the Docker container is C(<pod>_<name>). C(sandbox) is reserved.
    type: str
    required: true
  image:
    description:
      - The image. Required unless O(state) is C(stopped) or C(absent).
    type: str
  command:
    description:
      - Overrides the image's entrypoint, as Kubernetes' C(command) does.
    type: list
    elements: str
  args:
    description:
      - Overrides the image's command (C(CMD)), as Kubernetes' C(args) does.
    type: list
    elements: str
  env:
    description:
      - Environment variables.
    type: dict
    default: {}
  secret_env:
    description:
      - Environment variables whose values are never shown in results, diffs or logs.
    type: dict
    default: {}
  working_dir:
    description:
      - The working directory.
    type: str
  user:
    description:
      - The user (C(uid[:gid]) or a name) the process runs as.
    type: str
  volumes:
    description:
      - Mounts, C(source:/path/in/container[:ro|rw]). An absolute C(source) is a host path (bind mount);
        any other C(source) is a pod volume, the Docker volume C(<pod>_<source>) labelled with the pod,
        created when missing and shared by every member that mounts it.
    type: list
    elements: str
    default: []
  memory:
    description:
      - Memory limit, a Kubernetes quantity (C(256Mi)) or a Docker size (C(512m)); at least 6 MiB.
    type: str
  cpus:
    description:
      - CPU limit in cores (C(0.5)) or millicores (C(500m)), a CFS quota over a 100 ms period.
    type: str
  memory_request:
    description:
      - Memory request (Docker's memory reservation). Defaults to O(memory).
    type: str
  cpu_request:
    description:
      - CPU request, written as C(cpu.shares) the way the kubelet computes them. Defaults to O(cpus).
    type: str
  share:
    description:
      - The sandbox namespaces to join. Default C([net, ipc]), plus C(pid) when the sandbox was created
        with C(share_pid=true).
    type: list
    elements: str
    choices: [net, ipc, pid]
  restart_policy:
    description:
      - Kubernetes restart policy, mapped to Docker's C(always), C(on-failure) and C(no).
    type: str
    choices: [Always, OnFailure, Never]
    default: Always
  state:
    description:
      - C(present) and C(started) - the container exists and runs in the current sandbox. C(stopped) - an
        existing container is stopped. C(absent) - it is removed.
    type: str
    choices: [present, started, stopped, absent]
    default: present
  wait_timeout:
    description:
      - Seconds to wait for the container to run after it was started.
    type: int
    default: 60
extends_documentation_fragment:
  - podkit.docker.docker
  - podkit.docker.docker.attributes
  - podkit.docker.docker.pull
seealso:
  - module: podkit.docker.pod_sandbox
  - module: podkit.docker.pod
"""

EXAMPLES = r"""
- name: The article's app, joined to pod foo's sandbox
  podkit.docker.pod_container:
    pod: foo
    name: app
    image: podkit/busybox:latest
    pull: never
    command: [httpd, -f, -p, "80", -h, /www]
    memory: 256Mi

- name: The sidecar, sharing the pod's PID namespace too
  podkit.docker.pod_container:
    pod: foo
    name: sidecar
    image: podkit/busybox:latest
    pull: never
    command: [sleep, "3650d"]
    memory: 128Mi
    share: [net, ipc, pid]
"""

RETURN = r"""
container:
  description: The container after the run (before it in check mode); null when there is none.
  returned: always
  type: dict
  contains:
    id:
      description: Container ID.
      type: str
    name:
      description: Container name, C(<pod>_<name>).
      type: str
    pid:
      description: PID of its main process on the host, 0 when not running.
      type: int
    status:
      description: Docker's status.
      type: str
    image:
      description: The image reference.
      type: str
    image_id:
      description: The image ID.
      type: str
    namespaces:
      description: Namespace inodes by type, as lsns shows them.
      type: dict
    shared_with_sandbox:
      description: The namespace types whose inode equals the sandbox's.
      type: list
      elements: str
  sample: {"name": "foo_app", "pid": 5001, "status": "running", "shared_with_sandbox": ["net", "ipc", "uts"]}
actions:
  description: What was done (in check mode, what would be done), with the reason.
  returned: always
  type: list
  elements: str
  sample: ["recreate sidecar: config changed (env)"]
"""

from ansible_collections.podkit.docker.plugins.module_utils._namespaces import SHAREABLE
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import converge_container, prepare_container
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    PULL_POLICIES, RESTART_POLICIES, SANDBOX_STATES)


def main():
    run_module(
        dict(
            pod=dict(type="str", required=True),
            name=dict(type="str", required=True),
            image=dict(type="str"),
            command=dict(type="list", elements="str"),
            args=dict(type="list", elements="str"),
            env=dict(type="dict", default={}),
            secret_env=dict(type="dict", default={}, no_log=True),
            working_dir=dict(type="str"),
            user=dict(type="str"),
            volumes=dict(type="list", elements="str", default=[]),
            memory=dict(type="str"),
            cpus=dict(type="str"),
            memory_request=dict(type="str"),
            cpu_request=dict(type="str"),
            share=dict(type="list", elements="str", choices=list(SHAREABLE)),
            restart_policy=dict(type="str", default="Always", choices=list(RESTART_POLICIES)),
            pull=dict(type="str", default="missing", choices=list(PULL_POLICIES)),
            state=dict(type="str", default="present", choices=list(SANDBOX_STATES)),
            wait_timeout=dict(type="int", default=60),
        ),
        converge_container, dict(changed=False, container=None, actions=[]),
        prepare=prepare_container,
    )


if __name__ == "__main__":
    main()
