"""seccompProfile type Localhost: the JSON profile under seccomp_profile_root is what the kernel enforces.

The kernel's word: ``Seccomp: 2`` (filter mode) in /proc/<pid>/status, and a syscall the profile denies
failing inside the container while the same call succeeds under the runtime's default.
"""

import json

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE

COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def profile(denied):
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


def pod(name, seccomp=None, where="pod"):
    container = {"name": "app", "image": BUSYBOX_IMAGE, "command": COMMAND}
    spec = {"containers": [container]}
    if seccomp is not None:
        holder = spec if where == "pod" else container
        holder["securityContext"] = {"seccompProfile": seccomp}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def localhost(name):
    return {"type": "Localhost", "localhostProfile": name}


def seccomp_mode(client, pod_name):
    pid = client.containers.get(pod_name + "_app").attrs["State"]["Pid"]
    with open("/proc/%d/status" % pid) as handle:
        return next(line.split()[1] for line in handle if line.startswith("Seccomp:"))


def try_mkdir(client, pod_name, path):
    result = client.containers.get(pod_name + "_app").exec_run(["mkdir", path])
    return result.exit_code, result.output.decode()


def test_localhost_profile_is_enforced_and_its_content_hashed(run_module, docker_client, pod_name, tmp_path):
    (tmp_path / "profiles").mkdir()
    path = tmp_path / "profiles" / "no-mkdir.json"
    path.write_text(json.dumps(profile(["mkdir", "mkdirat"]), indent=2))
    args = dict(manifest=pod(pod_name, localhost("profiles/no-mkdir.json")), sandbox_image=PAUSE_IMAGE,
                pull="never", seccomp_profile_root=str(tmp_path))
    run_module("pod", **args)
    assert seccomp_mode(docker_client, pod_name) == "2"
    code, output = try_mkdir(docker_client, pod_name, "/tmp/denied")
    assert code != 0 and "Operation not permitted" in output, (code, output)
    assert run_module("pod", **args)["changed"] is False
    # Whitespace in the file changes nothing; a changed rule recreates the container that uses it.
    path.write_text(json.dumps(profile(["mkdir", "mkdirat"])))
    assert run_module("pod", **args)["changed"] is False
    path.write_text(json.dumps(profile(["rmdir"])))
    result = run_module("pod", diff=True, **args)
    assert result["actions"] == ["recreate app: config changed (security)"], result["actions"]
    assert try_mkdir(docker_client, pod_name, "/tmp/allowed")[0] == 0
    assert seccomp_mode(docker_client, pod_name) == "2"


def test_container_level_profile_wins_over_runtime_default(run_module, docker_client, pod_name, tmp_path):
    (tmp_path / "deny.json").write_text(json.dumps(profile(["mkdir", "mkdirat"])))
    manifest = pod(pod_name, localhost("deny.json"), where="container")
    manifest["spec"]["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}}
    run_module("pod", manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never",
               seccomp_profile_root=str(tmp_path))
    assert try_mkdir(docker_client, pod_name, "/tmp/denied")[0] != 0
    # The control: the runtime's default profile lets mkdir through.
    run_module("pod", manifest=pod(pod_name, {"type": "RuntimeDefault"}), sandbox_image=PAUSE_IMAGE, pull="never")
    assert seccomp_mode(docker_client, pod_name) == "2"
    assert try_mkdir(docker_client, pod_name, "/tmp/allowed")[0] == 0


def test_missing_and_invalid_profiles_name_the_field_and_path(run_module, docker_client, pod_name, tmp_path):
    args = dict(sandbox_image=PAUSE_IMAGE, pull="never", seccomp_profile_root=str(tmp_path))
    missing = run_module("pod", expect_fail=True, manifest=pod(pod_name, localhost("absent.json"), where="container"),
                         **args)
    assert missing["msg"].startswith("spec.containers[0].securityContext.seccompProfile.localhostProfile: the profile "
                                     "%s/absent.json cannot be read" % tmp_path), missing["msg"]
    (tmp_path / "broken.json").write_text("{defaultAction: nope")
    broken = run_module("pod", expect_fail=True, manifest=pod(pod_name, localhost("broken.json")), **args)
    assert broken["msg"].startswith("spec.securityContext.seccompProfile.localhostProfile: the profile %s/broken.json is"
                                    " not valid JSON" % tmp_path), broken["msg"]
    assert not docker_client.containers.list(all=True, filters={"label": "io.podkit.pod=" + pod_name})
