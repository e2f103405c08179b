# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of one pod, declared once: the pod module's argument spec, and each entry's of the pods module.

ansible-test's validate-modules holds the pod module's documentation to its argument spec; the pods
module's entry suboptions and the pods role's podkit_pods_definitions (meta/argument_specs.yml) are held
to this table by tests/unit/test_option_docs.py. Pure; no third-party import.
"""

from __future__ import annotations

from typing import Any, Dict

from ansible_collections.podkit.docker.plugins.module_utils._hostless import DEFAULT_VALIDATE, VALIDATE_MODES
from ansible_collections.podkit.docker.plugins.module_utils._security import SECCOMP_ROOT
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    CGROUP_LIMITS, POD_STATES, PULL_POLICIES, RESTART_POLICIES)

# Without defaults: an entry of pods that leaves an option out takes the module-level value (_pods.merge_entry).
POD_OPTIONS: Dict[str, Dict[str, Any]] = dict(
    name=dict(type="str"),
    state=dict(type="str", choices=list(POD_STATES)),
    manifest=dict(type="raw"),
    manifest_file=dict(type="path"),
    containers=dict(type="list", elements="dict"),
    init_containers=dict(type="list", elements="dict"),
    restart_policy=dict(type="str", choices=list(RESTART_POLICIES)),
    share_process_namespace=dict(type="bool"),
    hostname=dict(type="str"),
    ports=dict(type="list", elements="str"),
    dns=dict(type="list", elements="str"),
    dns_search=dict(type="list", elements="str"),
    host_aliases=dict(type="raw"),
    volumes=dict(type="list", elements="dict"),
    cgroup_parent=dict(type="str"),
    sandbox_image=dict(type="str"),
    pull=dict(type="str", choices=list(PULL_POLICIES)),
    resources=dict(type="dict"),
    cgroup_limits=dict(type="str", choices=list(CGROUP_LIMITS)),
    validate=dict(type="str", choices=list(VALIDATE_MODES)),
    remove_claims=dict(type="bool"),
    seccomp_profile_root=dict(type="path"),
    wait=dict(type="bool"),
    wait_timeout=dict(type="int"),
)
POD_DEFAULTS: Dict[str, Any] = dict(state="present", cgroup_limits="derived", pull="missing", validate=DEFAULT_VALIDATE, remove_claims=False,
                                    seccomp_profile_root=SECCOMP_ROOT, wait=True, wait_timeout=60)
# Per entry of pods only: the pod module takes these from the common Docker options.
_ENTRY_DOCKER = dict(docker_host=dict(type="str", aliases=["docker_url"]), timeout=dict(type="int"))


def _with_defaults(names: Any) -> Dict[str, Dict[str, Any]]:
    return dict((name, dict(POD_OPTIONS[name], **({"default": POD_DEFAULTS[name]} if name in POD_DEFAULTS else {})))
                for name in names)


def pod_argument_spec() -> Dict[str, Dict[str, Any]]:
    """The pod module's options (docker_host and timeout are added by the runner)."""
    return _with_defaults(POD_OPTIONS)


def entry_argument_spec() -> Dict[str, Dict[str, Any]]:
    """An entry of the pods module: every option without a default (the module level fills them in) but
    state, plus its own docker_host and timeout."""
    spec = dict((name, dict(value)) for name, value in POD_OPTIONS.items())
    spec["state"]["default"] = POD_DEFAULTS["state"]
    # Only an entry holding a Job (_jobs): whether a finished Job runs again.
    spec["rerun"] = dict(type="str", choices=["changed", "always", "never"])
    # Only an entry holding a Deployment, StatefulSet or DaemonSet (_workloads): undo its template's rollout.
    spec["rollback"] = dict(type="bool", default=False)
    spec.update((name, dict(value)) for name, value in _ENTRY_DOCKER.items())
    return spec


def shared_argument_spec(names: Any) -> Dict[str, Dict[str, Any]]:
    """The options the pods module takes once for every pod, with the pod module's defaults."""
    return _with_defaults(n for n in names if n in POD_OPTIONS)
