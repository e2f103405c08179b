"""Multi-document manifests: ConfigMaps and Secrets, env valueFrom and envFrom (pure parsing)."""

import base64

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._configdata import secret_texts
from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod

from unithost import HOST

PASSWORD = "hunter2-very-secret"

TEXT = """
apiVersion: v1
kind: ConfigMap
metadata: {name: game-config}
data:
  lives: "3"
  ui.colour: blue
binaryData:
  blob: %(blob)s
---
apiVersion: v1
kind: Secret
metadata: {name: db-pass}
type: Opaque
data:
  password: %(password)s
stringData:
  user: admin
---
apiVersion: v1
kind: Pod
metadata:
  name: envs
  namespace: team
  labels: {app: web}
  annotations: {build: "42"}
spec:
  serviceAccountName: runner
  containers:
  - name: app
    image: busybox
    command: ["echo", "$(LIVES)"]
    resources: {limits: {memory: 64Mi, cpu: 250m}}
    envFrom:
    - configMapRef: {name: game-config}
      prefix: CFG_
    - secretRef: {name: db-pass}
    env:
    - name: LIVES
      valueFrom: {configMapKeyRef: {name: game-config, key: lives}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: db-pass, key: password}}
    - name: MISSING
      valueFrom: {configMapKeyRef: {name: nowhere, key: x, optional: true}}
    - name: POD_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: POD_NS
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: APP
      valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}
    - name: BUILD
      valueFrom: {fieldRef: {fieldPath: "metadata.annotations['build']"}}
    - name: SA
      valueFrom: {fieldRef: {fieldPath: spec.serviceAccountName}}
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: CPU_LIMIT
      valueFrom: {resourceFieldRef: {resource: limits.cpu, divisor: 1m}}
    - name: MEM_MI
      valueFrom: {resourceFieldRef: {containerName: app, resource: limits.memory, divisor: 1Mi}}
  - name: other
    image: busybox
    env:
    - name: OTHER_CPU
      valueFrom: {resourceFieldRef: {containerName: other, resource: limits.cpu}}
""" % dict(blob=base64.b64encode(b"\x00\x01").decode(), password=base64.b64encode(PASSWORD.encode()).decode())


def test_env_from_every_source():
    pod = pod_spec_from_manifest(TEXT)
    app = pod.containers[0]
    assert app.env["LIVES"] == "3" and app.env["CFG_lives"] == "3" and app.env["CFG_ui.colour"] == "blue"
    assert app.env["PASSWORD"] == PASSWORD and app.env["password"] == PASSWORD and app.env["user"] == "admin"
    assert set(app.secret_env) == {"PASSWORD", "password", "user"}
    assert "MISSING" not in app.env
    assert (app.env["POD_NAME"], app.env["POD_NS"], app.env["APP"], app.env["BUILD"], app.env["SA"]) == (
        "envs", "team", "web", "42", "runner")
    assert app.env_fields == {"POD_IP": "status.podIP"}
    assert app.env["CPU_LIMIT"] == "250" and app.env["MEM_MI"] == "64"
    assert app.config_sources == ["ConfigMap/game-config", "Secret/db-pass"]
    assert pod.containers[1].env_fields == {"OTHER_CPU": "resource:-:limits.cpu:"}
    assert any("serviceAccountName" in w for w in pod.warnings)


def test_runtime_fields_are_filled_at_creation_and_hashed_as_names():
    wanted = want_pod(pod_spec_from_manifest(TEXT), HOST).by_key()
    app, other = wanted["app"], wanted["other"]
    assert app.config["env_fields"] == {"POD_IP": "status.podIP"}
    context = {"status.podIP": "172.17.0.9", "capacity": {"cpu": 2000, "memory": 2 ** 30}}
    create, _host = member_create_args(app.image, app.name, app.config, {}, "sid", context)
    assert create["environment"]["POD_IP"] == "172.17.0.9" and create["entrypoint"] == ["echo", "3"]
    create, _host = member_create_args(other.image, other.name, other.config, {}, "sid", context)
    assert create["environment"]["OTHER_CPU"] == "2"
    assert "********" in str(app.masked_config()) and PASSWORD not in str(app.masked_config())


def test_a_pod_without_sources_hashes_as_before():
    plain = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n"
    assert "env_fields" not in want_pod(pod_spec_from_manifest(plain), HOST).members[0].config


@pytest.mark.parametrize("change, expected", [
    (("name: nowhere, key: x, optional: true", "name: nowhere, key: x"),
     "spec.containers[0].env[2].valueFrom.configMapKeyRef.name: the ConfigMap 'nowhere' is not given"),
    (("key: lives}", "key: deaths}"), "configMapKeyRef.key: the ConfigMap 'game-config' has no key 'deaths'"),
    (("secretRef: {name: db-pass}", "secretRef: {name: nope}"), "spec.containers[0].envFrom[1].secretRef.name: the Secret 'nope'"),
    (("fieldPath: status.podIP", "fieldPath: spec.hostname"), "fieldRef.fieldPath: 'spec.hostname' is not supported"),
    (("resource: limits.cpu, divisor", "resource: limits.gpu, divisor"), "resourceFieldRef.resource: 'limits.gpu'"),
    (("kind: ConfigMap", "kind: Deployment"), "manifest[0].kind: Deployment is a workload"),
    (("kind: ConfigMap", "kind: Service"), "manifest[0].kind: document 1 of 3 (kind 'Service', named 'game-config')"),
    (("password: ", "password: '!!notbase64' #"), "manifest[1].data.password is not valid base64"),
    (("containerName: other, resource", "containerName: ghost, resource"), "no container 'ghost'"),
])
def test_bad_sources_are_named(change, expected):
    with pytest.raises(PodkitError) as info:
        pod_spec_from_manifest(TEXT.replace(*change))
    assert expected in info.value.msg
    assert PASSWORD not in info.value.msg


def test_two_pods_are_refused():
    with pytest.raises(PodkitError, match="2 documents are Pods"):
        pod_spec_from_manifest(TEXT + "---\n" + TEXT.split("---")[2])


def test_secret_texts_finds_written_and_decoded_values():
    found = secret_texts(TEXT)
    assert PASSWORD in found and base64.b64encode(PASSWORD.encode()).decode() in found and "admin" in found
    assert secret_texts("{not yaml: [") == []


def test_list_input_and_kind_list():
    import yaml
    docs = list(yaml.safe_load_all(TEXT))
    assert pod_spec_from_manifest(docs).containers[0].env["LIVES"] == "3"
    assert pod_spec_from_manifest({"apiVersion": "v1", "kind": "List", "items": docs}).name == "envs"
