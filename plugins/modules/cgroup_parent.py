#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: cgroup_parent
short_description: A pod's cgroup parent, with pod-level limits, on cgroup v1, v2 and systemd hosts
version_added: 0.1.0
description:
  - Creates, updates in place or removes the cgroup that Docker containers of one pod are started
    under with C(--cgroup-parent), and sets its memory, CPU and process limits.
  - On a cgroup v1 host with Docker's cgroupfs driver the parent is a path (C(/pod-foo)), created with
    cgroupspy in each hierarchy of O(controllers).
  - On a cgroup v2 host with the cgroupfs driver it is a path in the unified tree; podkit enables the
    C(cpu), C(memory) and C(pids) controllers in every ancestor's C(cgroup.subtree_control) and writes
    C(memory.max), C(cpu.max), C(cpu.weight) and C(pids.max).
  - With Docker's systemd driver it is a slice (C(podkit-pod_foo.slice)), written as a unit file under
    C(/etc/systemd/system) with C(MemoryMax=), C(CPUQuota=), C(CPUWeight=) and C(TasksMax=), so systemd
    knows and keeps the limits.
  - O(state=absent) removes the parent from every hierarchy it exists in (Docker's cgroupfs driver
    creates it in all of them, not only in O(controllers)), deepest first. It refuses while any process
    is still inside, and names them.
  - Limits not given are left as they are. Ancestors the module had to create (such as C(/podkit)
    for C(/podkit/pod-foo)) are shared by pods and left in place on removal.
author:
  - podkit.docker contributors (@podkit)
options:
  name:
    description:
      - The cgroup parent. With the cgroupfs driver a path inside the cgroup tree, such as C(/pod-foo)
        or C(/podkit/pod-foo) (a relative path is taken from the root). With the systemd driver a slice
        unit name such as C(podkit-pod_foo.slice); each C(-) in it names a parent slice.
      - C(..), filesystem paths (C(/sys/fs/cgroup/...), C(/tmp/...)), empty names, a path on a systemd
        host and a slice on a cgroupfs host are refused.
    type: str
    required: true
  driver:
    description:
      - The cgroup driver the parent is made for. V(auto) uses the one the Docker daemon reports
        (C(docker info) CgroupDriver and CgroupVersion).
      - An explicit value must match the daemon's, since containers could not join a parent of the
        other kind; V(systemd) also needs systemd running on the host.
    type: str
    choices: [auto, cgroupfs, systemd]
    default: auto
  memory:
    description:
      - Memory limit of the whole pod. Kubernetes quantities (V(256Mi), V(1Gi), V(129M)) and Docker's
        forms (V(512m), V(512MB), V(1g), binary as C(docker run --memory) reads them).
      - At least 6 MiB. Lowering it below what the pod's processes use fails with a clear message.
    type: raw
  cpus:
    description:
      - CPU limit of the whole pod, as a number of CPUs (V(0.5), V(2)) or millicores (V(500m)); it
        becomes a CFS quota over a 100000 µs period (C(cpu.cfs_quota_us) or C(cpu.max)).
    type: raw
  cpu_shares:
    description:
      - Relative CPU weight as C(cpu.shares) (2 to 262144). On cgroup v2 and systemd it is converted
        to C(cpu.weight) as the kubelet and runc do.
    type: int
  pids_limit:
    description:
      - Most processes the pod may have (C(pids.max), C(TasksMax=)). V(-1) removes the limit.
    type: int
  controllers:
    description:
      - cgroup v1 only, cgroupfs driver only. The hierarchies the parent is created in. Limits need
        their controller (O(memory) needs C(memory), O(cpus) and O(cpu_shares) C(cpu), O(pids_limit)
        C(pids)). Docker itself creates the parent in the other hierarchies when a container starts.
    type: list
    elements: str
    default: [cpu, memory, pids]
  state:
    description:
      - V(present) creates the parent and sets its limits; V(absent) removes it everywhere.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - podkit.docker.docker
  - podkit.docker.docker.attributes
requirements:
  - cgroupspy on cgroup v1 hosts
notes:
  - The v2 and systemd backends are exercised in the project's Debian 12 VM tests; this module's
    local tests run on a cgroup v1, cgroupfs host.
seealso:
  - module: podkit.docker.pod
"""

EXAMPLES = r"""
- name: Give pod foo a cgroup parent with the article's limits (cgroup v1, cgroupfs)
  podkit.docker.cgroup_parent:
    name: /pod-foo
    memory: 512MB
    cpus: 0.5
  register: foo_cgroup

- name: Start a container under it
  community.docker.docker_container:
    name: foo_app
    image: busybox
    command: sleep 3600
    cgroup_parent: "{{ foo_cgroup.cgroup.docker_cgroup_parent }}"

- name: Make a slice with limits on a systemd host
  podkit.docker.cgroup_parent:
    name: podkit-pod_foo.slice
    memory: 1Gi
    cpus: 500m
    pids_limit: 512

- name: Remove the parent once the pod's containers are gone
  podkit.docker.cgroup_parent:
    name: /pod-foo
    state: absent
"""

RETURN = r"""
cgroup:
  description:
    - The cgroup parent after the run (in check mode, as it would be). Null when O(state=absent).
  returned: success
  type: dict
  contains:
    name:
      description: The canonical name (a path with one leading C(/), or a slice).
      type: str
      sample: /pod-foo
    driver:
      description: The cgroup driver, V(cgroupfs) or V(systemd).
      type: str
      sample: cgroupfs
    version:
      description: The cgroup version of the host, 1 or 2.
      type: int
      sample: 1
    docker_cgroup_parent:
      description: What to give Docker as C(--cgroup-parent) (C(cgroup_parent) in the SDK).
      type: str
      sample: /pod-foo
    paths:
      description: Controller (v1 hierarchy, C(name=systemd), or C(unified)) to absolute directory.
      type: dict
      sample: {"cpu": "/sys/fs/cgroup/cpu/pod-foo", "memory": "/sys/fs/cgroup/memory/pod-foo"}
    limits:
      description:
        - Limits as the kernel reports them; null where there is none. C(cpu_shares) on v1,
          C(cpu_weight) on v2.
      type: dict
      sample: {"memory_bytes": 536870912, "cpu_quota_us": 50000, "cpu_period_us": 100000,
               "cpu_shares": 1024, "pids_max": null}
"""

from ansible_collections.podkit.docker.plugins.module_utils._cgroups import (
    CGROUP_DRIVERS, DEFAULT_CONTROLLERS, check_cgroup_parent, converge_cgroup_parent)
from ansible_collections.podkit.docker.plugins.module_utils._runner import run_module


def main():
    run_module(
        dict(
            name=dict(type="str", required=True),
            driver=dict(type="str", default="auto", choices=["auto"] + list(CGROUP_DRIVERS)),
            memory=dict(type="raw"),
            cpus=dict(type="raw"),
            cpu_shares=dict(type="int"),
            pids_limit=dict(type="int"),
            controllers=dict(type="list", elements="str", default=list(DEFAULT_CONTROLLERS)),
            state=dict(type="str", default="present", choices=["present", "absent"]),
        ),
        converge_cgroup_parent, dict(changed=False, cgroup=None),
        # Everything a user can get wrong in the arguments is checked before the engine is reached.
        prepare=check_cgroup_parent,
    )


if __name__ == "__main__":
    main()
