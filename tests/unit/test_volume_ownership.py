"""fsGroup on volumes, Localhost seccomp profiles and remove_claims: the pure parts (modes, plans, arguments)."""

import json
import os
import stat

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._create import member_create_args, volume_create_args
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError
from ansible_collections.podkit.docker.plugins.module_utils._reconcile import PodState, plan_pod
from ansible_collections.podkit.docker.plugins.module_utils._spec import pod_spec_from_manifest
from ansible_collections.podkit.docker.plugins.module_utils._volumefiles import (
    FileVolume, apply_fs_group, digest, group_mode, root_owned, volume_files)
from ansible_collections.podkit.docker.plugins.module_utils._configdata import ConfigSet
from ansible_collections.podkit.docker.plugins.module_utils._wanted import want_pod, want_removal

from unithost import HOST


def manifest(context=None, volumes=None, mounts=None, container_context=None):
    container = dict(name="app", image="busybox", command=["sleep", "1d"], volumeMounts=mounts or [])
    if container_context:
        container["securityContext"] = container_context
    spec = dict(containers=[container], volumes=volumes or [])
    if context:
        spec["securityContext"] = context
    return dict(apiVersion="v1", kind="Pod", metadata=dict(name="own"), spec=spec)


def test_group_mode_is_the_kubelets_mask():
    assert group_mode(0o400, False, True) == 0o440
    assert group_mode(0o600, False, True) == 0o640
    assert group_mode(0o644, False, False) == 0o664
    assert group_mode(0o755, True, False) == 0o2775
    assert group_mode(0o755, True, True) == 0o2755
    assert group_mode(0o777, True, False) == 0o2777


def test_file_volume_modes_and_digest_with_and_without_fs_group():
    configs = ConfigSet()
    volume = FileVolume("downwardAPI", dict(items=[dict(path="name", fieldRef=dict(fieldPath="metadata.name"),
                                                        mode=0o400)]))
    meta = dict(name="own", namespace="default", labels={}, annotations={})
    plain = volume_files(volume, configs, meta, "v")
    owned = volume_files(volume, configs, meta, "v", fs_group=2000)
    assert plain == {"name": (b"own", 0o400)} and owned == {"name": (b"own", 0o440)}
    # No fsGroup: the digest is what it always was (no group in it); a group changes it.
    assert digest(plain) == digest(plain, None) != digest(plain, 2000)


def test_apply_fs_group_walks_the_volume(tmp_path):
    (tmp_path / "sub").mkdir(mode=0o700)
    (tmp_path / "sub" / "file").write_text("x")
    os.chmod(tmp_path / "sub" / "file", 0o600)
    os.symlink("/etc/passwd", str(tmp_path / "link"))
    before = os.stat("/etc/passwd")
    apply_fs_group(str(tmp_path), 2000, read_only=False)
    assert stat.S_IMODE(os.stat(tmp_path / "sub").st_mode) == 0o2770
    assert stat.S_IMODE(os.stat(tmp_path / "sub" / "file").st_mode) == 0o660
    assert os.stat(tmp_path / "sub" / "file").st_gid == 2000 and os.lstat(tmp_path / "link").st_gid == 2000
    after = os.stat("/etc/passwd")       # a symbolic link is not followed out of the volume
    assert (after.st_gid, after.st_mode) == (before.st_gid, before.st_mode)
    assert root_owned(os.stat(tmp_path), 2000, False)
    assert not root_owned(os.stat(tmp_path), 2001, False) and not root_owned(None, 2000, False)


VOLUMES = [dict(name="scratch", emptyDir={}), dict(name="mem", emptyDir=dict(medium="Memory")),
           dict(name="claim", persistentVolumeClaim=dict(claimName="data", readOnly=True)),
           dict(name="host", hostPath=dict(path="/srv"))]
MOUNTS = [dict(name=v["name"], mountPath="/" + v["name"]) for v in VOLUMES]


def test_owned_volumes_are_emptydir_on_disk_and_claims_not_host_path():
    w = want_pod(pod_spec_from_manifest(manifest(dict(fsGroup=2000), VOLUMES, MOUNTS)), HOST)
    assert sorted(w.owned) == ["data", "own_scratch"]
    assert w.owned["data"].read_only is True and w.owned["own_scratch"].read_only is False
    assert w.owned["data"].consumers == ["app"] and w.owned["data"].policy == "Always"
    assert w.members[0].nocopy == ("data", "own_scratch")
    create, host = member_create_args("busybox", "own_app", w.members[0].config, {}, "sid",
                                      dict(nocopy=w.members[0].nocopy))
    assert "own_scratch:/scratch:rw,nocopy" in host["binds"] and "data:/claim:ro,nocopy" in host["binds"]
    assert "/srv:/host:rw" in host["binds"]
    # Without fsGroup nothing changes: no owned volume, plain binds, the same configuration.
    plain = want_pod(pod_spec_from_manifest(manifest(None, VOLUMES, MOUNTS)), HOST)
    assert plain.owned == {} and plain.members[0].nocopy == ()
    assert volume_create_args("own", "own_mem", "Memory", None, 2000)["driver_opts"]["o"] == "mode=2777,gid=2000"
    assert volume_create_args("own", "own_mem", "Memory", 1 << 20)["driver_opts"]["o"] == "size=1048576"


def test_ownership_is_planned_before_the_consumer_starts_and_only_when_needed(tmp_path):
    spec = pod_spec_from_manifest(manifest(dict(fsGroup=2000), VOLUMES[:1], MOUNTS[:1]))
    w = want_pod(spec, HOST)
    state = PodState(pod="own", images={"busybox": "sha256:b", spec.sandbox.image: "sha256:p"})
    lines = plan_pod(w, state, "present").lines()
    assert lines.index("set group 2000 on volume own_scratch: new volume") == lines.index("create app") - 1
    # Owned root, nothing to start: nothing to do.
    os.chown(tmp_path, -1, 2000)
    os.chmod(tmp_path, 0o2775)
    state.owners["own_scratch"] = os.stat(tmp_path)
    state.volumes["own_scratch"] = {}
    app = [line for line in plan_pod(w, state, "present").lines() if line.startswith("set group")]
    assert app == ["set group 2000 on volume own_scratch: fsGroupChangePolicy Always, app starts"]
    on_mismatch = want_pod(pod_spec_from_manifest(manifest(dict(fsGroup=2000, fsGroupChangePolicy="OnRootMismatch"),
                                                           VOLUMES[:1], MOUNTS[:1])), HOST)
    assert not [line for line in plan_pod(on_mismatch, state, "present").lines() if line.startswith("set group")]


def test_remove_claims_plans_only_labelled_unshared_claims():
    state = PodState(pod="own", claim_users={"data": [], "shared": ["other_app"]})
    plan = plan_pod(want_removal("own", HOST, remove_claims=True), state, "absent")
    assert plan.lines() == ["remove claim volume data: remove_claims"]
    assert plan.notes == ["remove_claims: the volume of claim shared is kept; other containers mount it (other_app)."]


def test_localhost_seccomp_profile_is_read_hashed_and_passed(tmp_path):
    profile = dict(defaultAction="SCMP_ACT_ALLOW", syscalls=[dict(names=["mkdir", "mkdirat"], action="SCMP_ACT_ERRNO")])
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "no-mkdir.json").write_text(json.dumps(profile, indent=2))
    doc = manifest(dict(seccompProfile=dict(type="Localhost", localhostProfile="profiles/no-mkdir.json")))
    spec = pod_spec_from_manifest(doc, seccomp_root=str(tmp_path))
    member = want_pod(spec, HOST).members[0]
    assert member.config["security"]["seccomp_localhost"]["profile"] == "profiles/no-mkdir.json"
    first = member.hashes()[0]
    _create, host = member_create_args("busybox", "own_app", member.config, {}, "sid",
                                       dict(seccomp_json=member.seccomp_json))
    assert host["security_opt"] == ["seccomp=" + json.dumps(profile, sort_keys=True, separators=(",", ":"))]
    # Whitespace alone changes nothing; a changed rule changes the hash.
    (tmp_path / "profiles" / "no-mkdir.json").write_text(json.dumps(profile))
    assert want_pod(pod_spec_from_manifest(doc, seccomp_root=str(tmp_path)), HOST).members[0].hashes()[0] == first
    profile["syscalls"][0]["names"] = ["mkdir"]
    (tmp_path / "profiles" / "no-mkdir.json").write_text(json.dumps(profile))
    assert want_pod(pod_spec_from_manifest(doc, seccomp_root=str(tmp_path)), HOST).members[0].hashes()[0] != first


@pytest.mark.parametrize("content, expected", [
    (None, "cannot be read"),
    ("{not json", "is not valid JSON"),
    ("[1, 2]", "is not a seccomp profile"),
])
def test_bad_localhost_seccomp_profiles_name_the_field_and_path(tmp_path, content, expected):
    if content is not None:
        (tmp_path / "p.json").write_text(content)
    doc = manifest(container_context=dict(seccompProfile=dict(type="Localhost", localhostProfile="p.json")))
    with pytest.raises(PodkitError) as info:
        pod_spec_from_manifest(doc, seccomp_root=str(tmp_path))
    assert info.value.msg.startswith("spec.containers[0].securityContext.seccompProfile.localhostProfile: the profile %s"
                                     % (tmp_path / "p.json")), info.value.msg
    assert expected in info.value.msg


def test_localhost_seccomp_profile_must_stay_under_the_root():
    doc = manifest(dict(seccompProfile=dict(type="Localhost", localhostProfile="../etc/x.json")))
    with pytest.raises(PodkitError) as info:
        pod_spec_from_manifest(doc)
    assert "spec.securityContext.seccompProfile.localhostProfile: '../etc/x.json' must be a path relative" \
        in info.value.msg


def test_apply_fs_group_never_follows_links_or_opens_special_files(tmp_path):
    target = tmp_path.parent / (tmp_path.name + "-outside")
    target.mkdir()
    (target / "secret").write_text("x")
    os.chmod(target / "secret", 0o600)
    os.symlink(str(target), str(tmp_path / "dirlink"))
    os.mkfifo(str(tmp_path / "fifo"), 0o600)     # opening it would block: it gets the group only
    apply_fs_group(str(tmp_path), 2000, read_only=True)
    assert stat.S_IMODE(os.stat(target / "secret").st_mode) == 0o600 and os.stat(target / "secret").st_gid == 0
    assert os.lstat(tmp_path / "fifo").st_gid == 2000 and stat.S_IMODE(os.lstat(tmp_path / "fifo").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) & 0o2000
