# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a container that exited is started again: its restart policy and restart rules (pure).

Kubernetes' container restart rules (KEP-5307, feature gate ContainerRestartRules): a container may
give its own ``restartPolicy`` (Always, OnFailure, Never), overriding the pod's, and with it
``restartPolicyRules``: a list of ``{action: Restart, exitCodes: {operator: In|NotIn, values}}``.
When the container exits, the first rule whose exit codes match decides (its action); when none
matches, the container's restart policy does. The API server requires the container's
``restartPolicy`` wherever rules are given and refuses rules on a native sidecar.

On one Docker host the engine restarts what its restart policy says, and podkit (the module's run,
podkit-guard on the container's die event) starts a stopped container when ``restarts`` says so.
``engine_policy`` gives the Docker policy that restarts exactly the exit codes the rules and the
policy restart (always, on-failure), or, where Docker has no such policy (restart on 42 only),
none: the engine never restarts what Kubernetes would not, and the reconcile does the rest.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

# Kubernetes' restart policies as Docker's, and Docker's read back (the sandbox's unless-stopped, and no
# policy at all, as Kubernetes would name them): the one table of both directions.
DOCKER_RESTART = {"Always": "always", "OnFailure": "on-failure", "Never": "no"}
KUBERNETES_RESTART = dict([(docker, kube) for kube, docker in DOCKER_RESTART.items()], **{"unless-stopped": "Always", "": "Never"})

RULE_OPERATORS = ("In", "NotIn")
# A process's exit status is one byte (a signal gives 128 + its number), as the kubelet reads it.
EXIT_CODES = range(256)
MAX_VALUES = 255            # the API server's limit on exitCodes.values

Rule = Tuple[str, Tuple[int, ...]]      # (operator, exit codes)


def parse_rules(value: Any, path: str, policy_given: bool) -> List[Rule]:
    """A container's ``restartPolicyRules`` as (operator, codes); an error naming the field for what
    Kubernetes' validation refuses or podkit cannot honour (any action but Restart)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise PodkitError("%s must be a list of rules ({action: Restart, exitCodes: {operator, values}})." % path)
    if value and not policy_given:
        raise PodkitError("%s: a container with restart rules needs its own restartPolicy (Always, OnFailure or"
                          " Never), as the API server requires; add it beside the rules." % path)
    rules: List[Rule] = []
    for index, rule in enumerate(value):
        where = "%s[%d]" % (path, index)
        if not isinstance(rule, dict) or set(rule) - {"action", "exitCodes"}:
            raise PodkitError("%s: give action and exitCodes (and nothing else)." % where)
        if rule.get("action") != "Restart":
            raise PodkitError("%s.action: %r is not supported; podkit honours Restart (restart this container)%s."
                              % (where, rule.get("action"), "; RestartAllContainers restarts the whole pod in place,"
                                 " which podkit does not do" if rule.get("action") == "RestartAllContainers" else ""))
        codes = rule.get("exitCodes")
        if not isinstance(codes, dict) or set(codes) - {"operator", "values"}:
            raise PodkitError("%s.exitCodes: give operator (In or NotIn) and values (exit codes)." % where)
        if codes.get("operator") not in RULE_OPERATORS:
            raise PodkitError("%s.exitCodes.operator: %r is not one of In, NotIn." % (where, codes.get("operator")))
        values = codes.get("values")
        if not isinstance(values, list) or not values or len(values) > MAX_VALUES or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            raise PodkitError("%s.exitCodes.values: give 1 to %d exit codes (whole numbers from 0), got %r."
                              % (where, MAX_VALUES, values))
        if len(set(values)) != len(values):
            raise PodkitError("%s.exitCodes.values: %r repeats a value; each exit code once." % (where, values))
        rules.append((codes["operator"], tuple(sorted(values))))
    return rules


def restarts(policy: str, rules: List[Rule], exit_code: Optional[int]) -> bool:
    """Whether a container that exited with ``exit_code`` is restarted: the first rule that matches
    decides (every rule's action is Restart), else ``policy``."""
    for operator, values in rules:
        if (exit_code in values) == (operator == "In"):
            return True
    if policy == "Always":
        return True
    if policy == "OnFailure":
        return exit_code != 0
    return False


def recorded_restarts(config_rules: Dict[str, Any], exit_code: Optional[int]) -> bool:
    """``restarts`` for the rules as a container's configuration holds them (``restart_rules``:
    {policy, rules: [[operator, [codes]]]})."""
    rules = [(operator, tuple(values)) for operator, values in config_rules.get("rules") or []]
    return restarts(config_rules.get("policy") or "Never", rules, exit_code)


def engine_policy(policy: str, rules: List[Rule]) -> str:
    """The engine's restart policy for ``policy`` and ``rules``, in the pod's words: Always or OnFailure
    where Docker's always / on-failure restart exactly the exit codes ``restarts`` does, else Never (the
    engine restarts nothing; podkit starts the container on the codes the rules name)."""
    if not rules:
        return policy
    restarted = set(code for code in EXIT_CODES if restarts(policy, rules, code))
    if len(restarted) == len(EXIT_CODES):
        return "Always"
    if restarted == set(EXIT_CODES) - {0}:
        return "OnFailure"
    return "Never"


def rules_manifest(rules: List[Any]) -> List[Any]:
    """Rules as a Pod manifest writes them (the export's form; ``parse_rules`` reads them back)."""
    return [{"action": "Restart", "exitCodes": {"operator": operator, "values": list(values)}}
            for operator, values in rules]
