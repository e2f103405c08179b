"""The Job controller's pure parts (_jobs): parsing, the failure backoff, one sync's plan, the pod a Job makes."""

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._jobs import (
    INDEX_ANNOTATION, JobPod, JobStatus, backoff_delay, failed_pod_lines, failures_in_a_row, job_spec_hash, observe_job,
    parse_job, plan_job, pod_manifest, still_to_drive, success_rule_met, ttl_expired)
from ansible_collections.podkit.docker.plugins.module_utils._lock import job_lock
from ansible_collections.podkit.docker.plugins.module_utils._workloads import resolve_workloads

TEMPLATE = {"metadata": {"labels": {"app": "x"}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}


def spec(**fields):
    return dict(template=TEMPLATE, **fields)


def parse(**fields):
    return parse_job(spec(**fields), TEMPLATE, "pods[0].manifest[0].spec", None)


def pod(serial, phase, index=None, finished=None, codes=None):
    return JobPod(name="x-abc123-%d" % serial, serial=serial, index=index, phase=phase, finished=finished,
                  exit_codes=codes or ({} if phase not in ("Failed", "Succeeded") else {"main": 1 if phase == "Failed" else 0}))


def plan(job, pods, now=1000.0, start=900.0):
    return plan_job(job, JobStatus(spec_hash="h", start_time=start), pods, now, lambda n: "x-abc123-%d" % n)


# Job docs, "Pod backoff failure policy": 10 s, 20 s, 40 s ... capped at six minutes (DefaultJobPodFailureBackOff,
# MaxJobPodFailureBackOff in pkg/controller/job/job_controller.go).
@pytest.mark.parametrize("failures, delay", [(0, 0), (1, 10), (2, 20), (3, 40), (5, 160), (6, 320), (7, 360), (50, 360)])
def test_backoff_doubles_from_10s_capped_at_6_minutes(failures, delay):
    assert backoff_delay(failures) == delay


def test_a_success_resets_the_failures_counted_for_backoff():
    # backoff_utils.go: only the failures after the last success count.
    pods = [pod(0, "Failed", finished=10), pod(1, "Failed", finished=20), pod(2, "Succeeded", finished=30),
            pod(3, "Failed", finished=40)]
    assert failures_in_a_row(pods) == (1, 40)
    assert failures_in_a_row(pods[:2]) == (2, 20)
    assert failures_in_a_row([pod(0, "Running")]) == (0, None)


def test_defaults_are_batch_v1s():
    job = parse()
    assert (job.completions, job.parallelism, job.backoff_limit, job.indexed) == (1, 1, 6, False)
    queue = parse(parallelism=3)
    assert queue.completions is None and queue.parallelism == 3
    assert parse(completionMode="Indexed", completions=4, backoffLimitPerIndex=1).backoff_limit == 2147483647


@pytest.mark.parametrize("fields, text", [
    (dict(completionMode="Indexed", parallelism=2), "spec.completions: an Indexed Job needs completions"),
    (dict(completionMode="Sparse"), "spec.completionMode: 'Sparse' is not one of"),
    (dict(backoffLimit=-1), "spec.backoffLimit: -1 must be a whole number"),
    (dict(activeDeadlineSeconds=0), "spec.activeDeadlineSeconds: 0 must be a whole number of at least 1"),
    (dict(backoffLimitPerIndex=1), "spec.backoffLimitPerIndex: only for completionMode: Indexed"),
    (dict(successPolicy={"rules": [{"succeededCount": 1}]}), "spec.successPolicy: only for completionMode: Indexed"),
    (dict(completionMode="Indexed", completions=4, successPolicy={}), "spec.successPolicy: give rules"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{}]}),
     "spec.successPolicy.rules[0]: give succeededIndexes, succeededCount or both"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededIndexes": "1-4"}]}),
     "rules[0].succeededIndexes: index 4 is past completions - 1 = 3"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededIndexes": "2,0-1"}]}),
     "rules[0].succeededIndexes: '0-1' overlaps or comes before"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededIndexes": "3-1"}]}),
     "the interval '3-1' runs backwards"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededIndexes": "a"}]}),
     "rules[0].succeededIndexes: 'a' is not an index"),
    (dict(completionMode="Indexed", completions=4,
          successPolicy={"rules": [{"succeededIndexes": "0,2", "succeededCount": 3}]}),
     "rules[0].succeededCount: 3 is more than the 2 indexes it counts (succeededIndexes)"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededCount": 0}]}),
     "rules[0].succeededCount: 0 must be a whole number of at least 1"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededCount": 1}] * 21}),
     "spec.successPolicy.rules: 21 rules; the API server allows at most 20"),
    (dict(completionMode="Indexed", completions=4, successPolicy={"rules": [{"succeededCount": 1, "x": 1}]}),
     "spec.successPolicy.rules[0]: give succeededIndexes, succeededCount or both"),
    (dict(managedBy="example.com/queue"), "spec.managedBy: 'example.com/queue' names another controller"),
    (dict(podFailurePolicy={"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}),
     "rules[0].action: FailIndex needs backoffLimitPerIndex"),
    (dict(podFailurePolicy={"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [0, 1]}}]}),
     "0 with operator In is refused"),
])
def test_what_the_api_server_refuses_is_named(fields, text):
    with pytest.raises(PodkitError) as error:
        parse(**fields)
    assert text in error.value.msg


def test_a_template_that_restarts_always_is_refused_naming_the_field():
    template = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    with pytest.raises(PodkitError) as error:
        parse_job({"template": template}, template, "pods[0].manifest[0].spec", None)
    assert "pods[0].manifest[0].spec.template.spec.restartPolicy: None" in error.value.msg
    assert "Never or OnFailure" in error.value.msg


def test_parallelism_bounds_the_pods_made_and_completions_the_total():
    job = parse(completions=5, parallelism=2)
    first = plan(job, [])
    assert first.create == [("x-abc123-0", None), ("x-abc123-1", None)]
    # Two running: nothing more. Four done and one running: nothing more (5 - 4 - 1 = 0).
    assert plan(job, [pod(0, "Running"), pod(1, "Running")]).create == []
    done = [pod(i, "Succeeded", finished=i) for i in range(4)]
    assert plan(job, done + [pod(4, "Running")]).create == []
    assert plan(job, done[:3] + [pod(3, "Running")]).create == [("x-abc123-4", None)]
    complete = plan(job, done + [pod(4, "Succeeded", finished=5)])
    assert complete.status.phase == "Complete" and complete.status.succeeded == 5


def test_failures_past_backoff_limit_fail_the_job_and_retries_wait_for_the_backoff():
    job = parse(backoffLimit=2)
    one = plan(job, [pod(0, "Failed", finished=995)], now=1000)
    assert one.create == [] and one.due == 1005          # 10 s after the failure
    assert plan(job, [pod(0, "Failed", finished=985)], now=1000).create == [("x-abc123-1", None)]
    two = plan(job, [pod(0, "Failed", finished=950), pod(1, "Failed", finished=990)], now=1000)
    assert two.due == 1010                                 # 20 s after the second
    three = plan(job, [pod(i, "Failed", finished=900 + i) for i in range(3)])
    assert three.status.phase == "Failed" and three.status.reason == "BackoffLimitExceeded"


def test_indexed_makes_each_index_once_and_retries_only_the_failed_one():
    job = parse(completionMode="Indexed", completions=3, parallelism=2)
    assert [i for _n, i in plan(job, []).create] == [0, 1]
    pods = [pod(0, "Succeeded", 0, finished=1), pod(1, "Running", 1)]
    assert [i for _n, i in plan(job, pods).create] == [2]
    pods = [pod(0, "Succeeded", 0, finished=1), pod(1, "Failed", 1, finished=2), pod(2, "Succeeded", 2, finished=3)]
    retry = plan(job, pods, now=100)
    assert [i for _n, i in retry.create] == [1] and retry.create[0][0] == "x-abc123-3"
    # An index that succeeds twice (a retried pod) counts once.
    pods = [pod(0, "Succeeded", 0, finished=1), pod(1, "Succeeded", 0, finished=1), pod(2, "Succeeded", 1, finished=1)]
    assert plan(job, pods).status.completed_indexes == [0, 1]


def test_backoff_limit_per_index_and_max_failed_indexes():
    job = parse(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=0, maxFailedIndexes=1)
    pods = [pod(0, "Failed", 0, finished=1), pod(1, "Succeeded", 1, finished=1), pod(2, "Succeeded", 2, finished=1)]
    result = plan(job, pods, now=100)
    # Index 0 failed for good (0 retries); every index is done: the Job fails naming it.
    assert result.status.failed_indexes == [0] and result.status.phase == "Failed"
    assert result.status.reason == "FailedIndexes"
    pods = [pod(0, "Failed", 0, finished=1), pod(1, "Failed", 1, finished=1)]
    assert plan(job, pods, now=100).status.reason == "MaxFailedIndexesExceeded"


def test_success_rule_is_met_as_match_success_policy_counts():
    # The API's own example (SuccessPolicyRule.succeededCount): indexes "1-4", count 3, completed 1, 3, 5: not met,
    # only 1 and 3 count.
    job = parse(completionMode="Indexed", completions=6, successPolicy={"rules": [
        {"succeededIndexes": "1-4", "succeededCount": 3}, {"succeededIndexes": "0,5"}, {"succeededCount": 4}]})
    assert success_rule_met(job.success, [1, 3, 5]) is None
    assert success_rule_met(job.success, [1, 3, 4]) == 0
    assert success_rule_met(job.success, [0, 5]) == 1        # succeededIndexes alone: every one named
    assert success_rule_met(job.success, [0, 1, 2, 5]) == 1  # rules in order: the first met decides
    assert success_rule_met(job.success, [1, 2, 3, 5]) == 0
    assert success_rule_met(job.success, [0, 1, 2, 3]) == 0
    counted = parse(completionMode="Indexed", completions=3, successPolicy={"rules": [{"succeededCount": 2}]})
    assert success_rule_met(counted.success, [1]) is None      # succeededCount alone: any indexes
    assert success_rule_met(counted.success, [0, 2]) == 0


def test_a_met_success_policy_completes_the_job_and_removes_the_lingering_pods():
    # KEP-3998 (GA 1.33): SuccessCriteriaMet, then Complete; the pods still running are removed.
    job = parse(completionMode="Indexed", completions=4, parallelism=4, successPolicy={"rules": [
        {"succeededIndexes": "0,2-3", "succeededCount": 1}]})
    pods = [pod(0, "Failed", 0, finished=1), pod(1, "Running", 1), pod(2, "Succeeded", 2, finished=2), pod(3, "Running", 3)]
    result = plan(job, pods, now=100)
    assert (result.status.phase, result.status.reason) == ("Complete", "SuccessPolicy")
    assert "successPolicy.rules[0] met" in result.status.message
    assert sorted(result.remove) == ["x-abc123-1", "x-abc123-3"] and not result.create
    # Not met yet: the failed index is retried as without the policy.
    pods = [pod(0, "Failed", 0, finished=1), pod(1, "Succeeded", 1, finished=2), pod(2, "Running", 2), pod(3, "Running", 3)]
    result = plan(job, pods, now=100)
    assert result.status.phase == "Running" and [i for _n, i in result.create] == [0]
    # The failure rules come first: past backoffLimit the Job fails even if a later success would meet the policy.
    job = parse(completionMode="Indexed", completions=4, parallelism=4, backoffLimit=0, successPolicy={"rules": [
        {"succeededIndexes": "2"}]})
    pods = [pod(0, "Failed", 0, finished=1), pod(1, "Running", 1), pod(2, "Succeeded", 2, finished=2)]
    assert plan(job, pods, now=100).status.reason == "BackoffLimitExceeded"


def test_a_spec_without_success_policy_hashes_as_before():
    # Adding successPolicy to what podkit reads changes no recorded Job's hash (the Job is not rerun on upgrade).
    assert job_spec_hash(spec(completions=2)) == job_spec_hash(dict(template=TEMPLATE, completions=2))


def test_pod_failure_policy_ignore_failjob_and_count():
    rules = {"rules": [{"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
                       {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                       {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    job = parse(backoffLimit=0, podFailurePolicy=rules)
    ignored = plan(job, [pod(0, "Failed", finished=1, codes={"main": 7})], now=100)
    assert ignored.status.phase == "Running" and ignored.status.failed == 0
    # Not counted against backoffLimit 0, so its index is made again (99 s later: past any backoff).
    assert ignored.create == [("x-abc123-1", None)]
    failjob = plan(job, [pod(0, "Failed", finished=1, codes={"main": 42})])
    assert failjob.status.reason == "PodFailurePolicy"
    counted = plan(job, [pod(0, "Failed", finished=1, codes={"main": 1})])
    assert counted.status.reason == "BackoffLimitExceeded"


def test_deadline_ends_the_job_and_removes_what_runs():
    job = parse(activeDeadlineSeconds=30)
    result = plan(job, [pod(0, "Running")], now=931, start=900)
    assert result.status.reason == "DeadlineExceeded" and result.remove == ["x-abc123-0"]
    assert plan(job, [pod(0, "Running")], now=929, start=900).status.phase == "Running"


def test_work_queue_completes_at_a_success_once_none_runs():
    job = parse(parallelism=2)
    assert len(plan(job, []).create) == 2
    assert plan(job, [pod(0, "Succeeded", finished=1), pod(1, "Running")]).status.phase == "Running"
    assert plan(job, [pod(0, "Succeeded", finished=1), pod(1, "Running")]).create == []
    assert plan(job, [pod(0, "Succeeded", finished=1), pod(1, "Succeeded", finished=2)]).status.phase == "Complete"


def test_suspend_removes_active_pods_and_makes_none():
    job = parse(suspend=True, completions=3, parallelism=3)
    result = plan(job, [pod(0, "Running"), pod(1, "Succeeded", finished=1)])
    assert result.create == [] and result.remove == ["x-abc123-0"] and result.status.phase == "Suspended"
    assert result.status.start_time is None


def test_a_finished_pod_with_a_sidecar_or_sandbox_running_is_stopped():
    finished = pod(0, "Succeeded", finished=1)
    finished.sidecars_running, finished.sandbox_running = ["side"], "sandbox"
    assert plan(parse(completions=2), [finished]).stop == ["x-abc123-0"]


def test_ttl_after_finished():
    job = parse(ttlSecondsAfterFinished=60)
    status = JobStatus(spec_hash="h", phase="Complete", completion_time=100.0)
    assert not ttl_expired(job, status, 159) and ttl_expired(job, status, 160)
    assert not ttl_expired(parse(), status, 10 ** 9)


def test_spec_hash_ignores_suspend_and_ttl_only():
    base = spec(completions=2)
    assert job_spec_hash(base) == job_spec_hash(dict(base, suspend=True, ttlSecondsAfterFinished=5))
    assert job_spec_hash(base) != job_spec_hash(dict(base, completions=3))


def test_indexed_pod_gets_the_annotation_the_variable_from_it_and_its_hostname():
    (manifest, config) = pod_manifest("x-abc123-4", "default", TEMPLATE, "x", 2, [{"kind": "ConfigMap"}])
    assert config == {"kind": "ConfigMap"}
    assert manifest["metadata"]["annotations"][INDEX_ANNOTATION] == "2"
    assert manifest["metadata"]["labels"] == {"app": "x", "batch.kubernetes.io/job-name": "x", "job-name": "x"}
    env = manifest["spec"]["containers"][0]["env"]
    assert env == [{"name": "JOB_COMPLETION_INDEX",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['%s']" % INDEX_ANNOTATION}}}]
    assert manifest["spec"]["hostname"] == "x-2"
    assert "env" not in TEMPLATE["spec"]["containers"][0]        # the template is left as it was
    plain = pod_manifest("x-abc123-0", "default", TEMPLATE, "x", None, [])[0]
    assert "annotations" not in plain["metadata"] and "hostname" not in plain["spec"]


def job_doc(**fields):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": spec(**fields)}


def test_a_job_needs_batch_v1_and_a_cronjob_its_job_template_checked_as_a_job():
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"schedule": "@hourly", "jobTemplate": {"spec": spec()}}}
    (workload,) = resolve_workloads([(0, dict(manifest=[cron], state="present"))], [])
    assert workload.cron.schedule_text == "@hourly" and workload.cron.keep_successful == 3
    bad = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
           "spec": {"schedule": "@hourly", "jobTemplate": {"spec": {"template": {"spec": {
               "containers": [{"name": "m", "image": "busybox"}]}}}}}}
    with pytest.raises(PodkitError) as error:
        resolve_workloads([(0, dict(manifest=[bad], state="present"))], [])
    assert "pods[0].manifest[0].spec.jobTemplate.spec.template.spec.restartPolicy" in error.value.msg
    with pytest.raises(PodkitError) as error:
        resolve_workloads([(0, dict(manifest=[dict(job_doc(), apiVersion="apps/v1")], state="present"))], [])
    assert "apiVersion: 'apps/v1' is not supported for a Job; podkit reads batch/v1" in error.value.msg


def test_a_batch_v1beta1_cronjob_is_read_as_batch_v1_with_a_warning_and_a_v1beta1_job_is_refused():
    """batch/v1beta1 CronJob (removed in Kubernetes 1.25) has batch/v1's fields and defaults (SetDefaults_CronJob:
    Allow, not suspended, history limits 3 and 1): read as batch/v1, the version named in a warning."""
    old = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "c"},
           "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": spec()}}}
    (workload,) = resolve_workloads([(0, dict(manifest=[old], state="present"))], [])
    new = dict(old, apiVersion="batch/v1")
    (same,) = resolve_workloads([(0, dict(manifest=[new], state="present"))], [])
    assert workload.revision == same.revision and workload.cron.record() == same.cron.record()
    assert any("pods[0].manifest[0].apiVersion: batch/v1beta1 was removed in Kubernetes 1.25; read as batch/v1" in w
               for w in workload.warnings), workload.warnings
    with pytest.raises(PodkitError) as error:
        resolve_workloads([(0, dict(manifest=[dict(job_doc(), apiVersion="batch/v1beta1")], state="present"))], [])
    assert "apiVersion: 'batch/v1beta1' is not supported for a Job; podkit reads batch/v1" in error.value.msg


def test_rerun_is_only_for_a_job():
    (job,) = resolve_workloads([(0, dict(manifest=[job_doc()], state="present", rerun="always"))], [])
    assert job.job.rerun == "always" and job.revision == job_spec_hash(spec())
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": dict(TEMPLATE, spec={
                      "containers": TEMPLATE["spec"]["containers"]})}}
    with pytest.raises(PodkitError) as error:
        resolve_workloads([(0, dict(manifest=[deployment], state="present", rerun="always"))], [])
    assert "rerun is for a Job" in error.value.msg


def test_job_status_times_round_trip_through_the_one_timestamp_parser():
    """Status times written as RFC 3339 are read back by _docker.docker_time, the parser of Docker's times."""
    status = JobStatus(spec_hash="h", start_time=1767225600.0, completion_time=1767225661.0)
    again = JobStatus.from_dict(status.as_dict())
    assert (again.start_time, again.completion_time) == (1767225600.0, 1767225661.0)
    assert JobStatus.from_dict(dict(start_time="not a time")).start_time is None


class EngineWithAPodThatNeverStarted:
    """What Docker answers for one Job pod whose member ``main`` could not be started (its command is not in the
    image: State created, ExitCode 127, Error set) beside a member ``side`` that runs."""

    ERROR = 'exec: "perl": executable file not found in $PATH: unknown'

    def __init__(self):
        owner = {"io.podkit.owner-kind": "Job", "io.podkit.owner-name": "pi", "io.podkit.namespace": "default"}
        pod = {"io.podkit.pod": "pi-abc123-0"}
        self.summaries = [
            dict(Id="sb", State="running", Labels=dict(owner, **dict(pod, **{"io.podkit.role": "sandbox"}))),
            dict(Id="m1", State="created", Created=950,
                 Labels=dict(pod, **{"io.podkit.role": "member", "io.podkit.container": "main"})),
            dict(Id="m2", State="running", Labels=dict(pod, **{"io.podkit.role": "member", "io.podkit.container": "side"})),
        ]
        self.states = {"m1": dict(Status="created", ExitCode=127, Error=self.ERROR),
                       "m2": dict(Status="running", Running=True, ExitCode=0)}

    def containers(self, all=True, filters=None):  # pylint: disable=redefined-builtin,unused-argument
        label = (filters or {}).get("label", "")
        if label.startswith("io.podkit.owner-name="):
            return [s for s in self.summaries if s["Labels"].get("io.podkit.owner-name") == label.split("=", 1)[1]]
        return list(self.summaries)

    def inspect_container(self, container_id):
        return {"State": self.states[container_id], "RestartCount": 0}

    def logs(self, name, tail=None):  # pylint: disable=unused-argument
        return b""


def test_a_container_that_could_not_start_fails_its_pod_as_the_kubelets_start_error():
    """Kubernetes counts a container that cannot be started (StartError, a terminated state with exit code 128;
    Docker gives 127 for a command not found) as a failed pod of the Job, against backoffLimit, instead of a pod
    that runs for ever: the running member and the sandbox are stopped with it."""
    api = EngineWithAPodThatNeverStarted()
    owner = {"io.podkit.owner-kind": "Job", "io.podkit.owner-name": "pi"}
    (found,) = observe_job(api, owner, "default", {})
    assert found.phase == "Failed"
    assert found.exit_codes == {"main": 127}
    assert found.start_errors == {"main": api.ERROR}
    assert found.sidecars_running == ["m2"] and found.sandbox_running == "sb"
    # Dated by its creation (it never ran), so the backoff runs from there on every tick: the retry is due
    # 10 s later, not pushed back each time the pod is observed.
    assert found.finished == 950
    assert "main could not start (exit code 127): " + api.ERROR in failed_pod_lines(api, [found])
    # Counted as any failed pod: backoffLimit 0 fails the Job at this first failure.
    assert plan(parse(backoffLimit=0), [found]).status.phase == "Failed"
    retry = plan(parse(backoffLimit=3), [found], now=955.0)
    assert retry.create == [] and retry.due == 960
    assert plan(parse(backoffLimit=3), [found], now=961.0).create == [("x-abc123-1", None)]


def test_a_start_error_without_an_exit_code_is_counted_as_128():
    api = EngineWithAPodThatNeverStarted()
    api.states["m1"] = dict(Status="created", ExitCode=0, Error="error mounting /nowhere")
    (found,) = observe_job(api, {"io.podkit.owner-kind": "Job", "io.podkit.owner-name": "pi"}, "default", {})
    assert found.phase == "Failed" and found.exit_codes == {"main": 128}


def test_with_backoff_limit_per_index_the_backoff_counts_the_index_s_own_failures():
    """KEP-3850 (the controller's getRemainingTimePerIndex): an index retries 10 s after its own last failure,
    doubling with its own failures; an index that never failed starts at once, whatever the others did."""
    job = parse(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=2)
    pods = [pod(0, "Failed", 0, finished=990), pod(1, "Failed", 0, finished=995), pod(2, "Failed", 1, finished=998)]
    result = plan(job, pods, now=1000)
    # Index 2 never failed: made now. Index 0 (2 failures, the last at 995) is due at 1015; index 1 at 1008.
    assert result.create == [("x-abc123-3", 2)] and result.due == 1008
    assert plan(job, pods, now=1009).create == [("x-abc123-3", 1), ("x-abc123-4", 2)]
    # Without backoffLimitPerIndex, the Job's failures in a row hold every new pod back.
    whole = parse(completionMode="Indexed", completions=3, parallelism=3, backoffLimit=6)
    held = plan(whole, pods, now=1000)
    assert held.create == [] and held.due == 998 + 40


class _Run:
    """What still_to_drive reads of a JobRun."""

    def __init__(self, phase, ttl=None, observed=(), removed=(), check_mode=False):
        self.status = JobStatus(spec_hash="h", phase=phase)
        self.job = parse(ttlSecondsAfterFinished=ttl) if ttl is not None else parse()
        self.observed = [pod(i, "Succeeded", finished=1) for i in range(len(observed))]
        for p, name in zip(self.observed, observed):
            p.name = name
        self.removed = list(removed)
        self.check_mode = check_mode


@pytest.mark.parametrize("run, follow", [
    (_Run("Running"), True),                                       # wait: false, or past wait_timeout
    (_Run("Running", check_mode=True), False),                     # check mode records nothing
    (_Run("Complete"), False),                                     # finished, no TTL: nothing left to do
    (_Run("Failed", ttl=30, observed=["a"]), True),                # its TTL has pods to remove
    (_Run("Complete", ttl=30, observed=["a"], removed=["a"]), False),  # removed already
    (_Run("Suspended"), False),                                    # only a changed spec starts it again
])
def test_the_guard_follows_a_job_while_it_runs_or_its_ttl_has_pods_to_remove(run, follow):
    assert still_to_drive(run) is follow


def test_the_job_lock_is_held_by_one_driver_and_only_tried_by_the_guard(tmp_path):
    with job_lock("default", "x", lock_dir=str(tmp_path)) as run_holds:
        assert run_holds is True
        with job_lock("default", "x", blocking=False, lock_dir=str(tmp_path)) as guard_holds:
            assert guard_holds is False
        with job_lock("default", "y", blocking=False, lock_dir=str(tmp_path)) as other:
            assert other is True
    with job_lock("default", "x", blocking=False, lock_dir=str(tmp_path)) as guard_holds:
        assert guard_holds is True
    assert (tmp_path / "jobs" / "default.x.lock").is_file()
