"""Secrets: environment values marked secret never show in module results, Ansible's output at -v
and --diff (real runs and check mode), Ansible's log file, or facts. The container does get
them (the positive control that the secret was really passed).
"""

import subprocess
import textwrap
import uuid

import pytest

from helpers import BUSYBOX_IMAGE, PAUSE_IMAGE, TOP, ansible_env

from .helpers import MEMBER_COMMAND, assert_converged, basic_pod, run_any

pytestmark = pytest.mark.reliability("secrets")

PLAYBOOK = """
- name: Secrets stay secret
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Deploy a pod with a secret environment value
      podkit.docker.pod:
        name: "{{ pod }}"
        sandbox_image: %(pause)s
        pull: never
        containers:
          - name: app
            image: %(busybox)s
            command: %(command)s
            env:
              - name: TOKEN
                value: "{{ token }}"
                secret: true
              - name: API_KEY
                value: "{{ api_key }}"
              - name: PLAIN
                value: plain-value
            secret_env: [API_KEY]
      register: deployed

    - name: Show what was registered
      ansible.builtin.debug:
        var: deployed

    - name: Read the pod's facts
      podkit.docker.pod_facts:
        name: ["{{ pod }}"]
"""


def _secret():
    return "s3cr3t-%s" % uuid.uuid4().hex


def _playbook(tmp_path, pod, token, api_key, *extra):
    path = tmp_path / "secrets.yml"
    path.write_text(PLAYBOOK % dict(pause=PAUSE_IMAGE, busybox=BUSYBOX_IMAGE, command=MEMBER_COMMAND))
    log = tmp_path / "ansible.log"
    env = ansible_env(ANSIBLE_LOG_PATH=str(log))
    proc = subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-v", "--diff", str(path), "-e", "pod=%s" % pod,
         "-e", "token=%s" % token, "-e", "api_key=%s" % api_key] + list(extra),
        capture_output=True, text=True, env=env, cwd=str(TOP), timeout=600, check=False)
    output = proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")
    return proc, output


def _printenv(client, pod, name):
    return client.containers.get("%s_app" % pod).exec_run(["sh", "-c", 'printf %%s "$%s"' % name]).output.decode().strip()


def test_secret_env_hidden_in_output_diff_and_log(docker_client, pod_name, tmp_path):
    token, api_key = _secret(), _secret()
    proc, output = _playbook(tmp_path, pod_name, token, api_key)
    assert proc.returncode == 0, output[-3000:]
    assert_converged(docker_client, pod_name, members=("app",), memory=None, cpu_quota=None)
    assert _printenv(docker_client, pod_name, "TOKEN") == token
    assert _printenv(docker_client, pod_name, "API_KEY") == api_key
    assert "TOKEN" in output and "podkit_pods" in output, "the run printed too little to check: %s" % output[-2000:]
    for value in (token, api_key):
        assert value not in output, "a secret value was printed:\n%s" % output[-4000:]

    # A changed secret recreates the container; the diff shows that, without either value.
    new_token = _secret()
    check, check_output = _playbook(tmp_path, pod_name, new_token, api_key, "--check")
    assert check.returncode == 0, check_output[-3000:]
    assert "recreate" in check_output, check_output[-3000:]
    proc, output = _playbook(tmp_path, pod_name, new_token, api_key)
    assert proc.returncode == 0, output[-3000:]
    assert "recreate" in output
    assert _printenv(docker_client, pod_name, "TOKEN") == new_token
    for value in (token, new_token, api_key):
        assert value not in check_output + output, "a secret value was printed"


def _secret_forms(token):
    """The three ways the pod module takes a secret env value."""
    return dict(
        flagged=dict(env=[dict(name="TOKEN", value=token, secret=True)]),
        named=dict(env=[dict(name="TOKEN", value=token)], secret_env=["TOKEN"]),
        mapping=dict(secret_env=dict(TOKEN=token)),
    )


@pytest.mark.parametrize("form", ["flagged", "named", "mapping"])
def test_secret_env_hidden_in_a_failed_run(run_module, docker_client, pod_name, form):
    token = _secret()
    container = dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND, resources=dict(limits=dict(memory="12Q")))
    container.update(_secret_forms(token)[form])
    result = run_any("pod", **basic_pod(pod_name, containers=[container]))
    assert result.get("failed") and "memory" in result["msg"], result
    assert token not in repr(result), result


@pytest.mark.parametrize("form", ["flagged", "named", "mapping"])
def test_secret_env_forms_hidden_in_result_and_diff(run_module, docker_client, pod_name, form):
    token = _secret()
    container = dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND)
    container.update(_secret_forms(token)[form])
    result = run_module("pod", diff=True, **basic_pod(pod_name, containers=[container]))
    assert result["changed"] and result.get("diff") and token not in repr(result), result
    # The pod is the one asked for (the container is app, whatever the secret is called).
    assert_converged(docker_client, pod_name, members=("app",), memory=None, cpu_quota=None)
    assert _printenv(docker_client, pod_name, "TOKEN") == token


def test_secret_env_hidden_when_the_daemon_is_unreachable(docker_client, pod_name):
    token = _secret()
    args = basic_pod(pod_name, docker_host="unix:///nonexistent.sock", containers=[dict(
        name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND, env=[dict(name="TOKEN", value=token, secret=True)])])
    result = run_any("pod", **args)
    assert result.get("failed") and "docker_host" in result["msg"], result
    assert token not in repr(result), result


def test_secret_env_hidden_in_module_result_and_diff(run_module, docker_client, pod_name):
    token = _secret()
    containers = [dict(name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
                       env=[dict(name="TOKEN", value=token, secret=True)])]
    for check in (True, False):
        result = run_module("pod", check=check, diff=True, **basic_pod(pod_name, containers=containers))
        assert result["changed"] and result.get("diff"), result
        assert token not in repr(result), "secret in the %s result: %s" % ("check-mode" if check else "real", result)
    assert _printenv(docker_client, pod_name, "TOKEN") == token
    facts = run_module("pod_facts", name=[pod_name])
    assert token not in repr(facts)


def test_pod_container_secret_env_hidden(run_module, docker_client, pod_name):
    token, other = _secret(), _secret()
    run_module("pod_sandbox", pod=pod_name, image=PAUSE_IMAGE, pull="never")
    args = dict(pod=pod_name, name="app", image=BUSYBOX_IMAGE, pull="never", command=MEMBER_COMMAND,
                env=dict(PLAIN="plain"), secret_env=dict(TOKEN=token))
    for check in (True, False):
        result = run_module("pod_container", check=check, diff=True, **args)
        assert result["changed"], result
        assert token not in repr(result), result
    assert _printenv(docker_client, pod_name, "TOKEN") == token
    # A changed secret recreates the container, and neither value shows.
    result = run_module("pod_container", diff=True, **dict(args, secret_env=dict(TOKEN=other)))
    assert result["changed"] and token not in repr(result) and other not in repr(result), result
    assert _printenv(docker_client, pod_name, "TOKEN") == other
    # A refused run does not echo it either.
    failed = run_any("pod_container", **dict(args, memory="12Q"))
    assert failed.get("failed") and other not in repr(failed), failed


# A play applying one manifest with podkit.docker.pod; %%(pause)s and the manifest's own placeholders
# are filled when the playbook is written.
POD_PLAY = """
- name: %(play)s
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: %(task)s
      podkit.docker.pod:
        sandbox_image: %%(pause)s
        pull: never
        manifest: |
%(manifest)s      register: deployed

    - name: Show what was registered
      ansible.builtin.debug:
        var: deployed
"""


def _pod_playbook(play, task, manifest):
    return POD_PLAY % dict(play=play, task=task, manifest=textwrap.indent(manifest.lstrip("\n"), " " * 10))


MANIFEST_PLAYBOOK = _pod_playbook("Secrets given as Kubernetes Secrets stay secret",
                                  "Deploy a pod with the Secret it uses", """
apiVersion: v1
kind: Secret
metadata: {name: creds}
data:
  password: {{ password | b64encode }}
stringData:
  token: "{{ token }}"
---
apiVersion: v1
kind: Pod
metadata: {name: "{{ pod }}"}
spec:
  containers:
    - name: app
      image: %(busybox)s
      command: %(command)s
      env:
        - name: PASSWORD
          valueFrom: {secretKeyRef: {name: creds, key: password}}
      envFrom:
        - secretRef: {name: creds}
          prefix: ALL_
""")


def _vvv_runs(tmp_path, path, **variables):
    """The playbook's output (stdout, stderr and log) at -vvv --diff: in check mode, a real run, and again."""
    outputs = []
    for extra in (["--check"], [], []):
        log = tmp_path / "ansible.log"
        proc = subprocess.run(
            ["ansible-playbook", "-i", "localhost,", "-vvv", "--diff", str(path)]
            + [arg for key, value in variables.items() for arg in ("-e", "%s=%s" % (key, value))] + extra,
            capture_output=True, text=True, env=ansible_env(ANSIBLE_LOG_PATH=str(log)), cwd=str(TOP), timeout=600,
            check=False)
        output = proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")
        assert proc.returncode == 0, output[-3000:]
        outputs.append(output)
    return outputs


def test_manifest_secret_hidden_in_vvv_diff_and_log(docker_client, pod_name, tmp_path):
    import base64
    path = tmp_path / "manifest-secrets.yml"
    path.write_text(MANIFEST_PLAYBOOK % dict(pause=PAUSE_IMAGE, busybox=BUSYBOX_IMAGE, command=MEMBER_COMMAND))
    password, token = _secret(), _secret()
    outputs = _vvv_runs(tmp_path, path, pod=pod_name, password=password, token=token)
    # -vvv printed the module's arguments (the manifest itself), so the check below had something to find.
    assert "secretKeyRef" in outputs[1] and "kind: Secret" in outputs[1], outputs[1][-3000:]
    assert '"changed": false' in outputs[2] or "changed=0" in outputs[2]
    # The container got both values: the positive control.
    assert _printenv(docker_client, pod_name, "PASSWORD") == password
    assert _printenv(docker_client, pod_name, "ALL_token") == token
    encoded = base64.b64encode(password.encode()).decode()
    for output in outputs:
        for value in (password, token, encoded):
            assert value not in output, "a secret value was printed:\n%s" % output[-4000:]


def test_manifest_secret_hidden_in_a_refused_run(docker_client, pod_name):
    password = _secret()
    manifest = [
        dict(apiVersion="v1", kind="Secret", metadata=dict(name="creds"), stringData=dict(password=password)),
        dict(apiVersion="v1", kind="Pod", metadata=dict(name=pod_name), spec=dict(containers=[dict(
            name="app", image=BUSYBOX_IMAGE, command=MEMBER_COMMAND,
            env=[dict(name="P", valueFrom=dict(secretKeyRef=dict(name="creds", key="passwd")))])]))]
    result = run_any("pod", manifest=manifest, sandbox_image=PAUSE_IMAGE, pull="never")
    assert result.get("failed") and "has no key 'passwd'" in result["msg"], result
    assert password not in repr(result), result


PULL_PLAYBOOK = _pod_playbook("Registry credentials from an imagePullSecret stay secret",
                              "Deploy a pod whose image only a pull with the Secret's credentials brings", """
apiVersion: v1
kind: Secret
metadata: {name: regcred}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"{{ registry }}": {"username": "robot", "password": "{{ password }}"}}}'
---
apiVersion: v1
kind: Pod
metadata: {name: "{{ pod }}"}
spec:
  imagePullSecrets: [{name: regcred}]
  containers:
    - name: app
      image: "{{ image }}"
      imagePullPolicy: IfNotPresent
      command: %(command)s
""")


def test_pull_secret_hidden_in_vvv_diff_and_log(docker_client, pod_name, tmp_path):
    """A real pull from the private loopback registry (tests/registry.py) with a dockerconfigjson Secret:
    its password shows nowhere in -vvv output, --diff or the log, in check mode and real runs."""
    from registry import Registry, remove_image
    try:
        registry = Registry()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the private test registry cannot run: %s" % exc)
    image = None
    try:
        image = registry.push(docker_client, pod_name)
        path = tmp_path / "pull-secret.yml"
        path.write_text(PULL_PLAYBOOK % dict(pause=PAUSE_IMAGE, command=MEMBER_COMMAND))
        outputs = _vvv_runs(tmp_path, path, pod=pod_name, password=registry.password, registry=registry.address,
                            image=image)
        # The pull happened (the positive control), and -vvv printed the manifest around the password.
        assert "pull %s: not on the host" % image in outputs[1], outputs[1][-3000:]
        assert "imagePullSecrets" in outputs[1] and ".dockerconfigjson" in outputs[1]
        assert docker_client.containers.get(pod_name + "_app").attrs["State"]["Running"]
        assert '"changed": false' in outputs[2] or "changed=0" in outputs[2]
        import base64
        pair = base64.b64encode(("robot:%s" % registry.password).encode()).decode()
        for output in outputs:
            for value in (registry.password, pair):
                assert value not in output, "a registry credential was printed:\n%s" % output[-4000:]
    finally:
        run_any("pod", name=pod_name, state="absent")
        if image:
            remove_image(docker_client, image)
        registry.stop()
