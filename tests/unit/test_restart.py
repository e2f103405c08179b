"""Container restart rules (KEP-5307): the rule that decides, the engine's policy that honours them."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import Planner, Seen
from ansible_collections.podkit.docker.plugins.module_utils._restart import engine_policy, parse_rules, restarts
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST


def rule(operator, *values):
    return {"action": "Restart", "exitCodes": {"operator": operator, "values": list(values)}}


def pod(container_policy=None, rules=None, pod_policy="Never"):
    container = {"name": "step", "image": "busybox", "command": ["sh", "-c", "exit 42"]}
    if container_policy:
        container["restartPolicy"] = container_policy
    if rules is not None:
        container["restartPolicyRules"] = rules
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"restartPolicy": pod_policy, "containers": [container]}}


@pytest.mark.parametrize("policy, rules, code, expected", [
    ("Never", [("In", (42,))], 42, True),          # the docs' restart-policy example
    ("Never", [("In", (42,))], 1, False),
    ("Never", [("In", (42,))], 0, False),
    ("OnFailure", [("In", (0,))], 0, True),       # a rule restarts what the policy would not
    ("OnFailure", [], 3, True),
    ("Never", [("NotIn", (0, 1))], 1, False),
    ("Never", [("NotIn", (0, 1))], 137, True),
    ("Always", [("In", (3,))], 0, True),
])
def test_the_first_matching_rule_restarts_else_the_policy_decides(policy, rules, code, expected):
    assert restarts(policy, rules, code) is expected


@pytest.mark.parametrize("policy, rules, engine", [
    ("Never", [], "Never"),
    ("Never", [("In", (42,))], "Never"),           # Docker cannot restart on 42 only: podkit does
    ("Never", [("NotIn", (0,))], "OnFailure"),     # exactly Docker's on-failure
    ("OnFailure", [("In", (0,))], "Always"),
    ("OnFailure", [("NotIn", (7,))], "Always"),
    ("OnFailure", [("In", (3,))], "OnFailure"),
    ("Always", [("In", (3,))], "Always"),
])
def test_the_engine_policy_restarts_exactly_what_the_rules_restart_or_nothing(policy, rules, engine):
    assert engine_policy(policy, rules) == engine


def test_rules_reach_the_configuration_and_a_container_without_them_hashes_as_before():
    plain = want_pod(pod_spec_from_manifest(pod()), HOST).members[0]
    own = want_pod(pod_spec_from_manifest(pod("Never")), HOST).members[0]
    assert "restart_rules" not in plain.config and own.hashes() == plain.hashes()
    with_rules = want_pod(pod_spec_from_manifest(pod("Never", [rule("In", 42)])), HOST).members[0]
    assert with_rules.config["restart_policy"] == "Never"
    assert with_rules.config["restart_rules"] == {"policy": "Never", "rules": [["In", [42]]]}
    # The container's own policy wins over the pod's.
    assert want_pod(pod_spec_from_manifest(pod("OnFailure", pod_policy="Always")), HOST).members[0].config[
        "restart_policy"] == "OnFailure"


def _exited(code):
    return Seen({"Id": "x", "Name": "/p_step", "Config": {"Labels": {}},
                 "State": {"Running": False, "ExitCode": code, "FinishedAt": "2026-12-03T10:00:00Z"}})


def test_the_planner_starts_a_stopped_container_on_the_codes_its_rules_name():
    wanted = want_pod(pod_spec_from_manifest(pod("Never", [rule("In", 42)])), HOST).members[0]
    assert Planner.should_start(wanted, _exited(42)) and not Planner.should_start(wanted, _exited(1))
    assert not Planner.should_start(wanted, _exited(0))


@pytest.mark.parametrize("change, expected", [
    (dict(rules=[rule("In", 42)]), "spec.containers[0].restartPolicyRules: a container with restart rules needs its"
                                   " own restartPolicy"),
    (dict(container_policy="Never", rules=[dict(rule("In", 42), action="RestartAllContainers")]),
     "spec.containers[0].restartPolicyRules[0].action: 'RestartAllContainers' is not supported"),
    (dict(container_policy="Never", rules=[{"action": "Restart", "exitCodes": {"operator": "Between", "values": [1]}}]),
     "spec.containers[0].restartPolicyRules[0].exitCodes.operator: 'Between' is not one of In, NotIn"),
    (dict(container_policy="Never", rules=[rule("In")]), "restartPolicyRules[0].exitCodes.values: give 1 to 255"),
    (dict(container_policy="Never", rules=[rule("In", 1, 1)]), "repeats a value"),
    (dict(container_policy="Sometimes"), "spec.containers[0].restartPolicy: 'Sometimes' is not one of"),
])
def test_rules_kubernetes_refuses_or_podkit_cannot_honour_are_named(change, expected):
    with pytest.raises(PodkitError) as caught:
        pod_spec_from_manifest(pod(**change))
    assert expected in caught.value.msg, caught.value.msg


def test_rules_on_init_containers_and_sidecars_are_refused_naming_why():
    manifest = pod("Never", [rule("In", 42)])
    manifest["spec"]["initContainers"] = [{"name": "side", "image": "busybox", "restartPolicy": "Always",
                                           "restartPolicyRules": [rule("In", 1)]}]
    with pytest.raises(PodkitError, match=r"initContainers\[0\].restartPolicyRules: a native sidecar takes no restart"):
        pod_spec_from_manifest(manifest)
    manifest["spec"]["initContainers"][0].pop("restartPolicy")
    with pytest.raises(PodkitError, match=r"initContainers\[0\].restartPolicyRules: podkit runs an init container once"):
        pod_spec_from_manifest(manifest)
    assert parse_rules(None, "x", False) == []


def test_one_restart_table_both_ways():
    from ansible_collections.podkit.docker.plugins.module_utils._restart import DOCKER_RESTART, KUBERNETES_RESTART
    for kubernetes, docker in DOCKER_RESTART.items():
        assert KUBERNETES_RESTART[docker] == kubernetes
    # The sandbox's policy and no policy at all, read back as Kubernetes names them.
    assert (KUBERNETES_RESTART["unless-stopped"], KUBERNETES_RESTART[""]) == ("Always", "Never")
