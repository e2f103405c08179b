"""Golden values of the configuration hash, pinned before the reconcile code is moved.

A container's ``io.podkit.config-hash`` (and the per-field hashes in ``io.podkit.config-fields``)
decide whether it is recreated. Any change to what feeds them recreates every pod converged by
an earlier release on the next run, so these literals were computed once from the code at
commit adddfb5 and must never be regenerated to make a refactoring pass. A deliberate change of
the hashed configuration needs a changelog entry saying every pod is recreated.
"""

from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_member, want_pod, want_sandbox
from ansible_collections.podkit.docker.plugins.module_utils._spec import (
    container_spec_from_params, pod_spec_from_params, sandbox_spec_from_params)

from unithost import HOST

PARENT = "/podkit/pod-golden"

NATIVE = dict(
    name="golden", sandbox_image="podkit/pause:latest", pull="never", hostname="gold",
    ports=["127.0.0.1:18080:80/tcp"], dns=["10.0.0.53"], dns_search=["example.test"],
    host_aliases={"db.local": "10.0.0.7"}, restart_policy="Always",
    volumes=[dict(name="data", emptyDir={}), dict(name="conf", hostPath=dict(path="/srv/golden"))],
    init_containers=[dict(name="setup", image="podkit/busybox:latest", command=["sh", "-c", "echo ok > /data/x"],
                          volumeMounts=[dict(name="data", mountPath="/data")])],
    containers=[
        dict(name="app", image="podkit/busybox:latest", command=["httpd", "-f", "-p", "80"], args=["-h", "/data"],
             workingDir="/data", env=[dict(name="MODE", value="gold"), dict(name="TOKEN", value="s3cret", secret=True)],
             ports=[dict(containerPort=8443, hostPort=18443, hostIP="127.0.0.1")],
             volumeMounts=[dict(name="data", mountPath="/data"),
                           dict(name="conf", mountPath="/etc/golden", readOnly=True)],
             resources=dict(limits=dict(memory="256Mi", cpu="500m"), requests=dict(memory="128Mi", cpu="250m"))),
        dict(name="sidecar", image="podkit/busybox:latest", command=["sleep", "3650d"], env={"A": "1"}),
    ],
)

MANIFEST = dict(
    apiVersion="v1", kind="Pod", metadata=dict(name="golden-m", labels={"tier": "web"}),
    spec=dict(
        initContainers=[dict(name="setup", image="podkit/busybox:latest", command=["true"])],
        containers=[dict(name="app", image="podkit/busybox:latest", command=["sleep", "1d"],
                         env=[dict(name="K", value="v")], ports=[dict(containerPort=80, hostPort=18081)],
                         volumeMounts=[dict(name="tmp", mountPath="/tmp")],
                         resources=dict(limits=dict(memory="64Mi", cpu="1"), requests=dict(memory="64Mi", cpu="1")))],
        volumes=[dict(name="tmp", emptyDir=dict(medium="Memory", sizeLimit="16Mi"))]))

SANDBOX_PARAMS = dict(pod="solo", image="podkit/pause:latest", ports=["18082:80"], share_pid=True, labels={"a": "b"},
                      hostname=None, cgroup_parent=None, dns=None, dns_search=None, extra_hosts={"h": "1.2.3.4"},
                      network="bridge", pull="never")
CONTAINER_PARAMS = dict(pod="solo", name="one", image="podkit/busybox:latest", command=["sleep", "1d"], args=None,
                        env={"A": "1"}, secret_env={"PW": "hidden"}, working_dir=None, user="nobody",
                        volumes=["/srv/x:/x:ro", "cache:/cache"], memory="64Mi", cpus="0.5", memory_request=None,
                        cpu_request="100m", share=None, restart_policy="OnFailure", pull="never")


def pod_wanted(params, parent):
    """The wanted containers of a pod module run, keyed as the plan keys them."""
    spec = pod_spec_from_params(params)
    return spec.name, want_pod(spec, HOST, parent).by_key()


def labels_for(pod, wanted):
    return wanted.labels_for(pod)


NATIVE_HASHES = {
    "app": (
        "6f01f5b665c5a072",
        {
            "args": "7c04f3e8",
            "cgroup_parent": "6829c90b",
            "command": "e24937b1",
            "env": "c457864f",
            "image": "a0ad8e0b",
            "mounts": "d57335ef",
            "resources": "5b3bf39f",
            "restart_policy": "35543ac7",
            "share": "111e9deb",
            "user": "74234e98",
            "working_dir": "81ce9ab8",
        },
    ),
    "sandbox": (
        "2b8d3d6099001188",
        {
            "cgroup_parent": "6829c90b",
            "dns": "e74f2a16",
            "dns_options": "4f53cda1",
            "dns_search": "386bfc15",
            "extra_hosts": "2c12cf09",
            "hostname": "8dd7871b",
            "image": "d307bb3d",
            "labels": "44136fa3",
            "network": "5b3f874c",
            "ports": "fddd28c4",
            "qos_class": "982ce7bb",
            "share_pid": "fcbcf165",
        },
    ),
    "setup": (
        "36e86af08b186320",
        {
            "args": "74234e98",
            "cgroup_parent": "6829c90b",
            "command": "6d1d3f6d",
            "env": "44136fa3",
            "image": "a0ad8e0b",
            "mounts": "2523c399",
            "resources": "d06bb45a",
            "restart_policy": "4c8a2083",
            "share": "111e9deb",
            "user": "74234e98",
            "working_dir": "74234e98",
        },
    ),
    "sidecar": (
        "855239e80adb4353",
        {
            "args": "74234e98",
            "cgroup_parent": "6829c90b",
            "command": "f975fc7a",
            "env": "c73dd9fc",
            "image": "a0ad8e0b",
            "mounts": "4f53cda1",
            "resources": "d06bb45a",
            "restart_policy": "35543ac7",
            "share": "111e9deb",
            "user": "74234e98",
            "working_dir": "74234e98",
        },
    ),
}

NATIVE_LABELS = {
    "app": {
        # Issue 17: which env variables hold Secret values (names only); a label outside the hash.
        "io.podkit.origin": '{"secret":["TOKEN"]}',
        "io.podkit.config-fields": (
            "args=7c04f3e8,"
            "cgroup_parent=6829c90b,"
            "command=e24937b1,"
            "env=c457864f,"
            "image=a0ad8e0b,"
            "mounts=d57335ef,"
            "resources=5b3bf39f,"
            "restart_policy=35543ac7,"
            "share=111e9deb,"
            "user=74234e98,"
            "working_dir=81ce9ab8"
        ),
        "io.podkit.config-hash": "6f01f5b665c5a072",
        "io.podkit.container": "app",
        "io.podkit.pod": "golden",
        "io.podkit.role": "member",
    },
    "sandbox": {
        "io.podkit.config-fields": (
            "cgroup_parent=6829c90b,"
            "dns=e74f2a16,"
            "dns_options=4f53cda1,"
            "dns_search=386bfc15,"
            "extra_hosts=2c12cf09,"
            "hostname=8dd7871b,"
            "image=d307bb3d,"
            "labels=44136fa3,"
            "network=5b3f874c,"
            "ports=fddd28c4,"
            "qos_class=982ce7bb,"
            "share_pid=fcbcf165"
        ),
        "io.podkit.config-hash": "2b8d3d6099001188",
        "io.podkit.container": "sandbox",
        "io.podkit.pod": "golden",
        "io.podkit.qos-class": "Burstable",
        "io.podkit.role": "sandbox",
    },
    "setup": {
        "io.podkit.config-fields": (
            "args=74234e98,"
            "cgroup_parent=6829c90b,"
            "command=6d1d3f6d,"
            "env=44136fa3,"
            "image=a0ad8e0b,"
            "mounts=2523c399,"
            "resources=d06bb45a,"
            "restart_policy=4c8a2083,"
            "share=111e9deb,"
            "user=74234e98,"
            "working_dir=74234e98"
        ),
        "io.podkit.config-hash": "36e86af08b186320",
        "io.podkit.origin": "{}",  # issue 17: recorded on every member, outside the hash
        "io.podkit.container": "setup",
        "io.podkit.pod": "golden",
        "io.podkit.role": "init",
    },
    "sidecar": {
        "io.podkit.config-fields": (
            "args=74234e98,"
            "cgroup_parent=6829c90b,"
            "command=f975fc7a,"
            "env=c73dd9fc,"
            "image=a0ad8e0b,"
            "mounts=4f53cda1,"
            "resources=d06bb45a,"
            "restart_policy=35543ac7,"
            "share=111e9deb,"
            "user=74234e98,"
            "working_dir=74234e98"
        ),
        "io.podkit.config-hash": "855239e80adb4353",
        "io.podkit.origin": "{}",  # issue 17: recorded on every member, outside the hash
        "io.podkit.container": "sidecar",
        "io.podkit.pod": "golden",
        "io.podkit.role": "member",
    },
}

MANIFEST_LABELS = {
    "app": {
        "io.podkit.config-fields": (
            "args=74234e98,"
            "cgroup_parent=10e79e97,"
            "command=4ed76b93,"
            "env=398a8595,"
            "image=a0ad8e0b,"
            "mounts=5cf217eb,"
            "resources=4b95aa1a,"
            "restart_policy=35543ac7,"
            "share=111e9deb,"
            "user=74234e98,"
            "working_dir=74234e98"
        ),
        "io.podkit.config-hash": "739c96e1b136e4a6",
        "io.podkit.origin": "{}",  # issue 17: recorded on every member, outside the hash
        "io.podkit.container": "app",
        "io.podkit.pod": "golden-m",
        "io.podkit.role": "member",
    },
    "sandbox": {
        "io.podkit.config-fields": (
            "cgroup_parent=10e79e97,"
            "dns=4f53cda1,"
            "dns_options=4f53cda1,"
            "dns_search=4f53cda1,"
            "extra_hosts=4f53cda1,"
            "hostname=411d2bab,"
            "image=d307bb3d,"
            "labels=4360a45a,"
            "network=5b3f874c,"
            "ports=d9e30496,"
            "qos_class=982ce7bb,"
            "share_pid=fcbcf165"
        ),
        "io.podkit.config-hash": "47a2a9e8cf1e89e9",
        "io.podkit.container": "sandbox",
        "io.podkit.pod": "golden-m",
        "io.podkit.qos-class": "Burstable",
        "io.podkit.role": "sandbox",
        "tier": "web",
    },
    "setup": {
        "io.podkit.config-fields": (
            "args=74234e98,"
            "cgroup_parent=10e79e97,"
            "command=8894cdad,"
            "env=44136fa3,"
            "image=a0ad8e0b,"
            "mounts=4f53cda1,"
            "resources=d06bb45a,"
            "restart_policy=4c8a2083,"
            "share=111e9deb,"
            "user=74234e98,"
            "working_dir=74234e98"
        ),
        "io.podkit.config-hash": "e4606f511da7281c",
        "io.podkit.origin": "{}",  # issue 17: recorded on every member, outside the hash
        "io.podkit.container": "setup",
        "io.podkit.pod": "golden-m",
        "io.podkit.role": "init",
    },
}

SANDBOX_MODULE_LABELS = {
    "a": "b",
    "io.podkit.config-fields": (
        "cgroup_parent=d9446546,"
        "dns=4f53cda1,"
        "dns_options=4f53cda1,"
        "dns_search=4f53cda1,"
        "extra_hosts=1fad2f55,"
        "hostname=c9408ee2,"
        "image=d307bb3d,"
        "labels=db4a7ecb,"
        "network=5b3f874c,"
        "ports=76186b09,"
        "share_pid=b5bea41b"
    ),
    "io.podkit.config-hash": "b0fd94367e680e8f",
    "io.podkit.container": "sandbox",
    "io.podkit.pod": "solo",
    "io.podkit.role": "sandbox",
    "io.podkit.share-pid": "true",
}

CONTAINER_MODULE_LABELS = {
    # Issue 17: which env variables hold Secret values (names only); a label outside the hash.
    "io.podkit.origin": '{"secret":["PW"]}',
    "io.podkit.config-fields": (
        "args=74234e98,"
        "cgroup_parent=d9446546,"
        "command=4ed76b93,"
        "env=9ef143cc,"
        "image=a0ad8e0b,"
        "mounts=33993653,"
        "resources=43728651,"
        "restart_policy=9b8df8b6,"
        "share=9db05c75,"
        "user=13a30320,"
        "working_dir=74234e98"
    ),
    "io.podkit.config-hash": "d400c03df56b592c",
    "io.podkit.container": "one",
    "io.podkit.pod": "solo",
    "io.podkit.role": "member",
}


def test_native_pod_hashes_are_unchanged():
    _pod, wanted = pod_wanted(NATIVE, PARENT)
    assert dict((key, item.hashes()) for key, item in wanted.items()) == NATIVE_HASHES


def test_native_pod_labels_are_unchanged():
    pod, wanted = pod_wanted(NATIVE, PARENT)
    assert dict((key, labels_for(pod, item)) for key, item in wanted.items()) == NATIVE_LABELS


def test_manifest_pod_labels_are_unchanged():
    pod, wanted = pod_wanted(dict(manifest=MANIFEST, sandbox_image="podkit/pause:latest", pull="never"),
                             "/podkit/pod-golden-m")
    assert dict((key, labels_for(pod, item)) for key, item in wanted.items()) == MANIFEST_LABELS


def test_pod_sandbox_module_labels_are_unchanged():
    wanted = want_sandbox(sandbox_spec_from_params(SANDBOX_PARAMS), "/podkit/pod-solo")
    assert labels_for("solo", wanted) == SANDBOX_MODULE_LABELS


def test_pod_container_module_labels_are_unchanged():
    spec, volumes = container_spec_from_params(CONTAINER_PARAMS)
    wanted = want_member("solo", spec, volumes, "/podkit/pod-solo", share=("net", "ipc", "pid"))
    assert labels_for("solo", wanted) == CONTAINER_MODULE_LABELS


def test_secret_values_are_hashed_not_labelled():
    pod, wanted = pod_wanted(NATIVE, PARENT)
    assert "s3cret" not in repr(labels_for(pod, wanted["app"]))
    spec, volumes = container_spec_from_params(CONTAINER_PARAMS)
    assert "hidden" not in repr(labels_for("solo", want_member("solo", spec, volumes, "/podkit/pod-solo")))
