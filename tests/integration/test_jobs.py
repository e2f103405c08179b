"""Jobs (batch/v1) on the real engine: pods from a template run to completion by podkit's Job controller.

Each test reads Docker (the container list sampled from a thread while the module runs, each container's
StartedAt/FinishedAt and exit code, its logs) rather than what the module says. The Jobs of one test run side by
side in one module call, as the module runs them: the slowest (a failing Job's growing backoff) sets the time.
Job pods finish (their containers exited, sandbox stopped): there is nothing running to round-trip, so they are
left out of the round trip, by name.
"""

import json
import pathlib
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import yaml

from conftest import ROUND_TRIPS
from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, STATE_DIR, listed_containers, remove_pod_leftovers

OWNER_NAME = "io.podkit.owner-name"
CORPUS = sorted((pathlib.Path(__file__).resolve().parent.parent / "workload-corpus").glob("job-*.manifest"))
CRON_CORPUS = sorted((pathlib.Path(__file__).resolve().parent.parent / "workload-corpus").glob("cronjob-*.manifest"))
INDEX = "io.podkit.completion-index"


@pytest.fixture
def job_prefix(request, docker_client):
    """A prefix no other test uses; every pod of a Job named with it and every record is removed afterwards."""
    prefix = "j" + uuid.uuid4().hex[:6]
    yield prefix
    ROUND_TRIPS["left_out"].setdefault("a Job's pods (finished: exited containers, a stopped sandbox)", []).append(
        request.node.nodeid)
    for _name, labels in listed_containers(docker_client, {"label": "io.podkit.role=sandbox"}):
        if labels.get(OWNER_NAME, "").startswith(prefix):
            remove_pod_leftovers(docker_client, labels["io.podkit.pod"])
    directory = STATE_DIR / "workloads"
    for record in (directory.iterdir() if directory.is_dir() else []):
        if (".Job.%s" % prefix) in record.name:
            record.unlink()
    for lock in pathlib.Path("/run/podkit/jobs").glob("*.%s*.lock" % prefix):
        lock.unlink()


def job(name, command, restart="Never", init=None, **spec):
    container = {"name": "main", "image": BUSYBOX_IMAGE, "command": ["sh", "-c", command]}
    pod = {"restartPolicy": restart, "containers": [container]}
    if init:
        pod["initContainers"] = init
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": dict(template={"metadata": {"labels": {"app": name}}, "spec": pod}, **spec)}


def apply(run_module, docs, check=False, expect_fail=False, **extra):
    return run_module("pods", check=check, expect_fail=expect_fail, sandbox_image=PAUSE_IMAGE, pull="never",
                      pods=[{"manifest": [doc]} for doc in docs], **extra)


def job_pods(client, name):
    """{pod: sandbox labels} of the Job's pods, from Docker's list alone (a guard may remove them meanwhile)."""
    return dict((labels["io.podkit.pod"], labels) for _name, labels in listed_containers(
        client, {"label": ["%s=%s" % (OWNER_NAME, name), "io.podkit.role=sandbox"]}))


def member(client, pod, name="main"):
    return client.containers.get("%s_%s" % (pod, name))


def stamp(text):
    """Docker's RFC 3339 time (nanoseconds) as epoch seconds."""
    return datetime.strptime(text[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


class Sampler:
    """The most pods of a Job with a running main container at once, sampled from Docker while the module runs."""

    def __init__(self, client, name):
        self.client, self.name, self.most, self.samples = client, name, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop.is_set():
            running = self.client.containers.list(filters={"label": ["io.podkit.role=member", "io.podkit.container=main"]})
            count = len([c for c in running if c.labels["io.podkit.pod"].startswith(self.name + "-")])
            self.most, self.samples = max(self.most, count), self.samples + 1
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_jobs_run_side_by_side_to_completion_retries_deadline_indexes_and_sidecar(run_module, docker_client, job_prefix):
    """One call, six Jobs at once: completions 5 within parallelism 2; a failing Job stopped after backoffLimit 2
    with gaps of 10 s then 20 s (the Job controller's backoff); Indexed 3 seeing each index once; a Job stopped at
    activeDeadlineSeconds; a Job whose native sidecar is stopped once its main container ended; a Job that
    podFailurePolicy fails at its first exit code 42; a Job whose command is not in its image (a migration's
    `python manage.py` on the wrong image), each pod failed as the kubelet's StartError until backoffLimit 1.
    Then the same call again: the finished ones are no-ops."""
    many, failing, indexed, deadline, sidecar, policy, missing = ("%s-%s" % (job_prefix, n) for n in (
        "many", "fail", "idx", "late", "side", "pol", "miss"))
    not_in_image = job(missing, "unused", backoffLimit=1)
    not_in_image["spec"]["template"]["spec"]["containers"][0]["command"] = ["python3", "manage.py", "migrate"]
    docs = [
        job(many, "sleep 1", completions=5, parallelism=2),
        job(failing, "echo broken input $HOSTNAME; exit 3", backoffLimit=2),
        job(indexed, "echo index=$JOB_COMPLETION_INDEX host=$(hostname)", completionMode="Indexed", completions=3,
            parallelism=3),
        job(deadline, "sleep 60", activeDeadlineSeconds=3),
        job(sidecar, "sleep 1; echo done", init=[{"name": "proxy", "image": BUSYBOX_IMAGE, "restartPolicy": "Always",
                                                  "command": ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}]),
        job(policy, "exit 42", backoffLimit=5, podFailurePolicy={"rules": [
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}),
        not_in_image,
    ]
    started = time.time()
    with Sampler(docker_client, many) as sampler:
        result = apply(run_module, docs, expect_fail=True, wait_timeout=120)
    jobs = result["workloads"]
    # The failed ones fail the task, named with their pods' exit codes and last log lines; the others complete.
    assert "Job/%s failed (BackoffLimitExceeded" % failing in result["msg"]
    assert "main exited 3: broken input" in result["msg"]
    assert "Job/%s failed (DeadlineExceeded" % deadline in result["msg"]
    assert "Job/%s failed (PodFailurePolicy" % policy in result["msg"]
    for name in (many, indexed, sidecar):
        assert jobs["Job/%s" % name]["job"]["phase"] == "Complete", jobs["Job/%s" % name]

    # completions 5, parallelism 2: five pods, each exited 0, never more than two running at once (sampled).
    pods = job_pods(docker_client, many)
    assert len(pods) == 5
    assert all(member(docker_client, p).attrs["State"]["ExitCode"] == 0 for p in pods)
    assert sampler.samples > 20 and sampler.most == 2
    assert jobs["Job/%s" % many]["job"]["succeeded"] == 5

    # backoffLimit 2: three pods, each exited 3, the gaps between one's end and the next one's start growing
    # (10 s, then 20 s: DefaultJobPodFailureBackOff doubling).
    pods = sorted(job_pods(docker_client, failing), key=lambda p: int(p.rsplit("-", 1)[1]))
    assert len(pods) == 3
    states = [member(docker_client, p).attrs["State"] for p in pods]
    assert [s["ExitCode"] for s in states] == [3, 3, 3]
    gaps = [stamp(states[i + 1]["StartedAt"]) - stamp(states[i]["FinishedAt"]) for i in range(2)]
    assert 10 <= gaps[0] < 15 and 20 <= gaps[1] < 26, gaps

    # Indexed: each index 0..2 once, in the variable, the annotation's label and the hostname <job>-<index>.
    seen = []
    for pod, labels in job_pods(docker_client, indexed).items():
        log = member(docker_client, pod).logs().decode().strip()
        seen.append(int(labels[INDEX]))
        assert log == "index=%s host=%s-%s" % (labels[INDEX], indexed, labels[INDEX])
    assert sorted(seen) == [0, 1, 2]

    # activeDeadlineSeconds 3: its pod was removed at the deadline, long before its sleep 60 ended.
    assert job_pods(docker_client, deadline) == {}
    status = jobs["Job/%s" % deadline]["job"]
    assert status["phase"] == "Failed" and status["reason"] == "DeadlineExceeded"
    assert datetime.strptime(status["completion_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc).timestamp() - started < 30

    # The native sidecar was stopped (by SIGTERM: exit 0) once the main container ended, so the Job completed.
    (pod,) = job_pods(docker_client, sidecar)
    main, proxy = member(docker_client, pod).attrs["State"], docker_client.containers.get(pod + "_proxy").attrs["State"]
    assert main["ExitCode"] == 0 and proxy["Status"] == "exited"
    assert stamp(proxy["FinishedAt"]) >= stamp(main["FinishedAt"])
    assert docker_client.containers.get(pod + "_sandbox").status == "exited"

    # podFailurePolicy FailJob on 42: one pod, no retry although backoffLimit is 5.
    assert len(job_pods(docker_client, policy)) == 1

    # A command not in the image: Docker could not start the container (it stays "created", exit code 127);
    # each such pod counted failed, its sandbox stopped, a retry after the 10 s backoff, then backoffLimit 1.
    assert "Job/%s failed (BackoffLimitExceeded" % missing in result["msg"]
    assert "main could not start (exit code 127)" in result["msg"] and "python3" in result["msg"]
    pods = sorted(job_pods(docker_client, missing), key=lambda p: int(p.rsplit("-", 1)[1]))
    assert len(pods) == 2
    for pod in pods:
        state = member(docker_client, pod).attrs["State"]
        assert (state["Status"], state["ExitCode"]) == ("created", 127) and "python3" in state["Error"]
        assert docker_client.containers.get(pod + "_sandbox").status == "exited"
    assert jobs["Job/%s" % missing]["job"]["failed"] == 2

    # Side by side: every pod of `many` ran during the failing Job's backoff, before its last retry started.
    last_retry = stamp(states[-1]["StartedAt"])
    assert all(stamp(member(docker_client, p).attrs["State"]["FinishedAt"]) < last_retry
               for p in job_pods(docker_client, many))

    # pod_facts shows each Job's status.
    facts = run_module("pod_facts")["ansible_facts"]["podkit_workloads"]
    assert facts["Job/%s" % many]["job"]["succeeded"] == 5 and facts["Job/%s" % many]["job"]["phase"] == "Complete"
    assert facts["Job/%s" % failing]["job"]["failed"] == 3

    # The same call again: the completed Jobs are no-ops (their pods untouched), the failed ones fail again as they
    # ended, nothing run.
    before = dict((p, member(docker_client, p).id) for p in job_pods(docker_client, many))
    again = apply(run_module, docs[:1] + docs[2:3] + docs[4:5])
    assert again["changed"] is False and again["actions"] == []
    assert all("finished (Complete)" in w["job"]["skipped"] for w in again["workloads"].values())
    assert dict((p, member(docker_client, p).id) for p in job_pods(docker_client, many)) == before
    failed_again = apply(run_module, docs[1:2] + docs[6:7], expect_fail=True)
    assert failed_again["changed"] is False and failed_again["msg"].count("BackoffLimitExceeded") == 2
    assert len(job_pods(docker_client, missing)) == 2


def test_job_without_wait_then_rerun_rules(run_module, docker_client, job_prefix):
    """wait: false returns with the pod running; the next run (wait) finishes it; a changed template is run again
    only as rerun says; ttlSecondsAfterFinished 0 removes the pods once finished."""
    name = job_prefix + "-run"
    first = apply(run_module, [job(name, "sleep 2; echo one")], wait=False)
    assert first["changed"] is True
    assert first["workloads"]["Job/%s" % name]["job"]["phase"] == "Running"
    (pod,) = job_pods(docker_client, name)
    assert member(docker_client, pod).status == "running"
    done = apply(run_module, [job(name, "sleep 2; echo one")])
    assert done["workloads"]["Job/%s" % name]["job"]["phase"] == "Complete"
    assert list(job_pods(docker_client, name)) == [pod] and member(docker_client, pod).logs() == b"one\n"

    # A changed template with rerun: never is left as it ran; check mode then predicts the rerun that changed does.
    never = run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never",
                       pods=[{"manifest": [job(name, "echo two")], "rerun": "never"}])
    assert never["changed"] is False and list(job_pods(docker_client, name)) == [pod]
    predicted = apply(run_module, [job(name, "echo two")], check=True)
    assert predicted["changed"] is True and list(job_pods(docker_client, name)) == [pod]
    rerun = apply(run_module, [job(name, "echo two", ttlSecondsAfterFinished=0)])
    assert rerun["workloads"]["Job/%s" % name]["job"]["phase"] == "Complete"
    steps = rerun["workloads"]["Job/%s" % name]["steps"]
    assert steps[0] == "remove %s (rerun: the spec changed)" % pod
    assert [s.split()[0] for s in predicted["workloads"]["Job/%s" % name]["steps"]] == ["remove", "create"]
    # ttlSecondsAfterFinished 0: its pods are gone once it finished; the record keeps it from running again.
    assert job_pods(docker_client, name) == {}
    assert apply(run_module, [job(name, "echo two", ttlSecondsAfterFinished=0)])["changed"] is False
    # state: absent forgets the Job: its record goes, so the same file would run it again.
    record = STATE_DIR / "workloads" / ("default.Job.%s.json" % name)
    lock = pathlib.Path("/run/podkit/jobs/default.%s.lock" % name)
    assert record.is_file() and lock.is_file()
    run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never",
               pods=[{"manifest": [job(name, "echo two", ttlSecondsAfterFinished=0)], "state": "absent"}])
    assert not record.exists() and not lock.exists(), "the Job forgotten: its record and its lock file go"


def sleeping(token):
    """Pids of the processes whose command line is ``sleep <token>``, from /proc."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == b"sleep\0%d\0" % token:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_success_policy_completes_a_leader_worker_job_and_removes_the_workers(run_module, docker_client, job_prefix):
    """successPolicy (KEP-3998, GA in Kubernetes 1.33): index 0, the leader, exits 0 while the workers would run
    for ten minutes; the rule succeededIndexes "0" completes the Job (reason SuccessPolicy) and the lingering
    workers are removed: their processes gone from the kernel, their containers from Docker. Then a no-op."""
    name = job_prefix + "-chief"
    token = 600 + int(job_prefix[1:], 16) % 97
    command = 'if [ "$JOB_COMPLETION_INDEX" = 0 ]; then sleep 3; exit 0; fi; exec sleep %d' % token
    doc = job(name, command, completionMode="Indexed", completions=3, parallelism=3,
              successPolicy={"rules": [{"succeededIndexes": "0"}]})
    first = apply(run_module, [doc], wait=False)
    pods = job_pods(docker_client, name)
    assert sorted(labels[INDEX] for labels in pods.values()) == ["0", "1", "2"]
    assert len(sleeping(token)) == 2, "the two workers run their sleep"
    assert first["workloads"]["Job/%s" % name]["job"]["phase"] == "Running"
    done = apply(run_module, [doc])["workloads"]["Job/%s" % name]["job"]
    assert (done["phase"], done["reason"]) == ("Complete", "SuccessPolicy"), done
    assert done["completed_indexes"] == [0]
    assert sleeping(token) == [], "the workers' processes are gone"
    left = job_pods(docker_client, name)
    assert [labels[INDEX] for labels in left.values()] == ["0"], "only the leader's pod stays, for its logs"
    (leader,) = left
    assert member(docker_client, leader).attrs["State"]["ExitCode"] == 0
    assert apply(run_module, [doc])["changed"] is False


def test_check_mode_refuses_what_the_real_run_would_naming_the_field(run_module, docker_client, job_prefix):
    """A Job's pods are planned from its template in check mode too: a ConfigMap key the file does not hold (a
    real file's job_action against its ConfigMap's job-action) is refused there, naming the field, before any
    run, and nothing is made."""
    name = job_prefix + "-key"
    doc = job(name, "echo $ACTION")
    doc["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "ACTION", "valueFrom": {"configMapKeyRef": {"name": name + "-settings", "key": "job_action"}}}]
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name + "-settings"},
                "data": {"job-action": "rotate"}}
    refused = run_module("pods", check=True, expect_fail=True, sandbox_image=PAUSE_IMAGE, pull="never",
                         pods=[{"manifest": [settings, doc]}])
    assert ("spec.containers[0].env[0].valueFrom.configMapKeyRef.key: the ConfigMap '%s-settings' has no key "
            "'job_action'" % name) in refused["msg"]
    assert job_pods(docker_client, name) == {}


def test_job_corpus_runs_to_completion_and_reruns_as_a_no_op(run_module, docker_client, job_prefix):
    """Our own Job files (tests/workload-corpus/job-*.manifest), in one call: each completes (the suspended one
    stays suspended with no pod), then the same call changes nothing."""
    assert len(CORPUS) >= 8
    entries, wanted = [], {}
    for path in CORPUS:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            if doc["kind"] == "Job":
                doc["metadata"]["name"] = "%s-%s" % (job_prefix, doc["metadata"]["name"])
                wanted["Job/%s" % doc["metadata"]["name"]] = doc
        entries.append({"manifest": docs})
    first = run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=60, pods=entries)
    assert sorted(first["workloads"]) == sorted(wanted)
    for key, doc in wanted.items():
        status, name = first["workloads"][key]["job"], doc["metadata"]["name"]
        spec = doc["spec"]
        if spec.get("suspend"):
            assert status["phase"] == "Suspended" and job_pods(docker_client, name) == {}, key
            continue
        assert status["phase"] == "Complete", (key, status)
        pods = job_pods(docker_client, name)
        # ttlSecondsAfterFinished 0: gone once finished; the others' pods each ended 0, as many as completions.
        assert len(pods) == (0 if spec.get("ttlSecondsAfterFinished") == 0 else spec.get("completions", 1)), key
        for pod in pods:
            labels = ["io.podkit.pod=%s" % pod, "io.podkit.role=member"]
            members = docker_client.containers.list(all=True, filters={"label": labels})
            assert members and all(m.attrs["State"]["Status"] == "exited" and m.attrs["State"]["ExitCode"] == 0
                                   for m in members), key
    again = run_module("pods", sandbox_image=PAUSE_IMAGE, pull="never", wait_timeout=60, pods=entries)
    assert again["changed"] is False, again["actions"]


def cronjob(name, command, **spec):
    job_spec = job(name, command)["spec"]
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": dict(schedule="* * * * *", jobTemplate={"spec": job_spec}, **spec)}


def cron_jobs(client, name):
    """{Job name: [its pods]} of a CronJob's Jobs (<cronjob>-<minutes since the epoch>), from Docker."""
    found = {}
    labels = ["io.podkit.owner-kind=Job", "io.podkit.role=sandbox"]
    # The list's summaries, not containers.list (which inspects each): a Job pod of another test removed
    # between the two calls would fail the inspect.
    for sandbox in client.api.containers(all=True, filters={"label": labels}):
        owner = sandbox["Labels"][OWNER_NAME]
        if owner.startswith(name + "-") and owner[len(name) + 1:].isdigit():
            found.setdefault(owner, []).append(sandbox["Labels"]["io.podkit.pod"])
    return found


def stamp_of(minute):
    return datetime.fromtimestamp(minute * 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def running_jobs(client, name):
    """The CronJob's Jobs with a main container running now."""
    running = client.api.containers(filters={"label": ["io.podkit.role=member", "io.podkit.container=main"]})
    pods = set(c["Labels"]["io.podkit.pod"] for c in running)
    return sorted(job for job, mine in cron_jobs(client, name).items() if pods & set(mine))


def test_cronjobs_under_the_guard_policies_history_and_one_catch_up(tmp_path, docker_client, job_prefix):
    """One guard and one wait across one minute boundary for four CronJobs of * * * * *: without the guard the
    module refuses them. Their records then say they were made 4.5 minutes ago while the guard was stopped: at
    its restart each gets exactly one catch-up Job (the cronjob controller's mostRecentScheduleTime), and at the
    next minute `every` runs again and keeps successfulJobsHistoryLimit 1 Job, `forbid` (a 75 s Job) does not
    start a second, `replace` (a 600 s Job) has its first Job removed for the second, `catch` runs again."""
    from reliability.guard import GuardProcess
    state = tmp_path / "state"
    state.mkdir()
    guard = GuardProcess(state, resync=60)
    names = dict((n, "%s-%s" % (job_prefix, n)) for n in ("every", "forbid", "replace", "catch"))
    docs = [cronjob(names["every"], "echo tick", successfulJobsHistoryLimit=1),
            cronjob(names["forbid"], "sleep 75", concurrencyPolicy="Forbid"),
            cronjob(names["replace"], "sleep 600", concurrencyPolicy="Replace"),
            cronjob(names["catch"], "echo caught up")]
    # Our own CronJob files (tests/workload-corpus/cronjob-*.manifest), recorded beside them: accepted, no-ops on
    # the second run, each with its next run in pod_facts.
    corpus = []
    for path in CRON_CORPUS:
        file_docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in file_docs:
            if doc["kind"] == "CronJob":
                doc["metadata"]["name"] = "%s-%s" % (job_prefix, doc["metadata"]["name"])
        corpus.append({"manifest": file_docs})

    def apply(**extra):
        return guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never",
                            pods=[{"manifest": [d]} for d in docs] + corpus, **extra)

    refused = apply(expect_fail=True)
    assert "CronJob/%s: a CronJob's schedule is kept by podkit-guard, which does not run on this host" % names["every"] \
        in refused["msg"]
    # Well clear of a minute boundary, so that the guard's restart below happens within one minute.
    while datetime.now(timezone.utc).second > 45:
        time.sleep(1)
    guard.start()
    try:
        first = apply()
        assert first["changed"] is True and apply()["changed"] is False
        # The guard stopped; each record rewritten as if the CronJobs had been made 4.5 minutes ago, so that at
        # its restart each has missed five runs (the guard down all that time).
        guard.stop()
        made = datetime.now(timezone.utc).replace(second=0, microsecond=0).timestamp()
        for name in names.values():
            record = state / "cronjobs" / ("default.%s.json" % name)
            body = json.loads(record.read_text())
            body["created"] = stamp_of(made / 60 - 4.5)
            record.write_text(json.dumps(body))
        guard.start()
        b0 = int(made // 60)      # the minute just begun: the most recent of the five missed runs
        b1 = b0 + 1
        job_of = dict((key, lambda minute, key=key: "%s-%d" % (names[key], minute)) for key in names)
        deadline = time.time() + 20
        while time.time() < deadline and not all(cron_jobs(docker_client, n) for n in names.values()):
            time.sleep(0.5)
        for key, name in names.items():
            # Exactly one catch-up: the run of b0, none of the four before it.
            assert sorted(cron_jobs(docker_client, name)) == [job_of[key](b0)], guard.log_text()
        assert guard.log_text().count("5 runs missed, the most recent one caught up") == 4

        # One boundary, b1, sampled meanwhile for Forbid's overlap.
        most_forbid = 0
        while time.time() < b1 * 60 + 10:
            most_forbid = max(most_forbid, len(running_jobs(docker_client, names["forbid"])))
            time.sleep(0.5)
        # every: b0 then b1; the history keeps 1 successful Job, so b0's pods are gone.
        assert sorted(cron_jobs(docker_client, names["every"])) == [job_of["every"](b1)], guard.log_text()
        # forbid: b0 (75 s) still running at b1, so no second Job, never two running at once.
        assert sorted(cron_jobs(docker_client, names["forbid"])) == [job_of["forbid"](b0)]
        assert most_forbid == 1
        assert running_jobs(docker_client, names["forbid"]) == [job_of["forbid"](b0)]
        assert "run of %s held back: concurrencyPolicy Forbid" % stamp_of(b1) in guard.log_text()
        # replace: b0's Job removed for b1's, which runs.
        assert running_jobs(docker_client, names["replace"]) == [job_of["replace"](b1)]
        assert sorted(cron_jobs(docker_client, names["replace"])) == [job_of["replace"](b1)]
        # catch (the default history of 3): the catch-up, then b1.
        assert sorted(cron_jobs(docker_client, names["catch"])) == [job_of["catch"](m) for m in (b0, b1)]
        facts = guard.module("pod_facts")["ansible_facts"]["podkit_workloads"]
        every = facts["CronJob/%s" % names["every"]]["cronjob"]
        assert every["last_schedule_time"] == stamp_of(b1) and every["next_run"] == stamp_of(b1 + 1)
        assert every["last_successful_time"] is not None and every["active"] == []
        assert facts["Job/%s" % job_of["every"](b1)]["job"]["phase"] == "Complete"
        assert apply()["changed"] is False
        assert len(corpus) >= 4
        for entry in corpus:
            (doc,) = [d for d in entry["manifest"] if d["kind"] == "CronJob"]
            item = facts["CronJob/%s" % doc["metadata"]["name"]]["cronjob"]
            assert item["schedule"] == doc["spec"]["schedule"]
            assert (item["next_run"] is None) == bool(doc["spec"].get("suspend")), item
        # state: absent forgets a schedule and removes its Jobs' pods (the running one too).
        gone = guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never",
                            pods=[{"manifest": [docs[2]], "state": "absent"}])
        assert gone["changed"] is True and cron_jobs(docker_client, names["replace"]) == {}
        assert not (state / "cronjobs" / ("default.%s.json" % names["replace"])).exists()
    finally:
        guard.stop()


def test_a_job_left_running_goes_on_under_the_guard_until_its_ttl_and_never_has_two_drivers(
        tmp_path, docker_client, job_prefix):
    """wait: false returns after the Job's first pod; with no module run after it, podkit-guard takes the Job on
    as Kubernetes' Job controller would (three completions, one at a time), then removes its pods when
    ttlSecondsAfterFinished expires, and stops following it. A second Job given wait: false and straight after
    wait: true is driven by that run alone while it runs (the Job's lock): exactly its completions are made."""
    from reliability.guard import GuardProcess
    state = tmp_path / "state"
    state.mkdir()
    guard = GuardProcess(state, resync=60)
    alone, both = job_prefix + "-alone", job_prefix + "-both"
    left = job(alone, "sleep 1; echo done", completions=3, ttlSecondsAfterFinished=4)
    shared = job(both, "sleep 1; echo done", completions=4, parallelism=2)

    def apply_one(doc, **extra):
        return guard.module("pods", sandbox_image=PAUSE_IMAGE, pull="never", pods=[{"manifest": [doc]}], **extra)

    def record(name):
        return json.loads((state / "workloads" / ("default.Job.%s.json" % name)).read_text())

    guard.start()
    try:
        first = apply_one(left, wait=False)["workloads"]["Job/%s" % alone]["job"]
        assert (first["phase"], first["active"]) == ("Running", 1)
        assert "follow" in record(alone), "the record holds what the guard needs to go on"
        deadline = time.time() + 90
        most = 0
        while time.time() < deadline and record(alone)["job"]["phase"] != "Complete":
            running = docker_client.api.containers(filters={"status": "running", "label": [
                "%s=%s" % (OWNER_NAME, alone), "io.podkit.role=member"]})
            most = max(most, len(running))
            time.sleep(0.3)
        done = record(alone)["job"]
        assert (done["phase"], done["succeeded"]) == ("Complete", 3), guard.log_text()
        assert most <= 1, "parallelism 1 held while the guard drove the Job"
        pods = job_pods(docker_client, alone)
        assert len(pods) == 3 and all(member(docker_client, p).attrs["State"]["ExitCode"] == 0 for p in pods)
        assert guard.logged("job=Job/%s Complete" % alone), guard.log_text()
        # ttlSecondsAfterFinished 4: the guard removes the pods once it expired, and then stops following.
        deadline = time.time() + 30
        while time.time() < deadline and job_pods(docker_client, alone):
            time.sleep(0.5)
        assert job_pods(docker_client, alone) == {}, guard.log_text()
        assert "follow" not in record(alone) and record(alone)["job"]["phase"] == "Complete"
        assert apply_one(left, wait=False)["changed"] is False

        # Two drivers never at once: the module run holds the Job's lock while it waits.
        apply_one(shared, wait=False)
        result = apply_one(shared)["workloads"]["Job/%s" % both]["job"]
        assert (result["phase"], result["succeeded"]) == ("Complete", 4)
        pods = job_pods(docker_client, both)
        assert len(pods) == 4, "exactly the Job's completions were made, by one driver at a time: %s" % sorted(pods)
        assert "follow" not in record(both)
    finally:
        guard.stop()
