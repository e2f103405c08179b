# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options every podkit module that talks to the Docker engine takes.
    DOCUMENTATION = r"""
options:
  docker_host:
    description:
      - The Docker daemon's API address, as the Docker SDK for Python takes it.
      - The modules read C(/proc) and the cgroup filesystem, so the daemon must be the one
        on the host the module runs on; a remote TCP daemon is not supported.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for an answer from the Docker API before failing.
    type: int
    default: 60
requirements:
  - docker (Docker SDK for Python) >= 5.0.0 on the Docker host
notes:
  - Runs on the Docker host itself and needs root (or the rights to use the Docker socket and write
    the cgroup filesystem).
"""

    # The pull option of the modules that run one image (pod_sandbox, pod_container).
    PULL = r"""
options:
  pull:
    description:
      - When to pull the image. C(missing) pulls only when it is not on the host, C(always) pulls on
        every run (the container is recreated only if the image ID changed), C(never) fails when it is
        missing.
    type: str
    choices: [missing, always, never]
    default: missing
"""

    # Attributes of a module that changes state through the reconcile cycle.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Computes every action and reports it without applying any.
  diff_mode:
    support: full
    description: Returns the state before and after the actions in C(diff).
  idempotent:
    support: full
    description: A second run with the same arguments reports no change.
"""
