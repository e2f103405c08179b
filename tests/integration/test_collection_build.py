"""The collection as users get it: built into a tarball, installed into an empty path, documented."""

import pathlib
import subprocess
import sys
import tarfile

import yaml

from helpers import TOP, ansible_env

BIN = pathlib.Path(sys.executable).parent
MODULES = sorted(p.stem for p in (TOP / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
ROLES = sorted(p.name for p in (TOP / "roles").iterdir() if (p / "meta" / "argument_specs.yml").exists()) \
    if (TOP / "roles").is_dir() else []


def _run(args, env):
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (" ".join(map(str, args)), proc.stdout, proc.stderr)
    return proc.stdout


def test_build_install_and_document(tmp_path):
    env = ansible_env()
    out = tmp_path / "dist"
    _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", out, TOP], env)
    tarballs = list(out.glob("podkit-docker-*.tar.gz"))
    assert len(tarballs) == 1

    with tarfile.open(tarballs[0]) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    for module in MODULES:
        assert "plugins/modules/%s.py" % module in names
    for junk in (".venv", "build", "tests/output", ".git"):
        assert not any(n == junk or n.startswith(junk + "/") for n in names), junk

    # An empty collections path: nothing but what the tarball installs.
    path = tmp_path / "collections"
    env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(path))
    env.pop("PYTHONPATH", None)
    _run([BIN / "ansible-galaxy", "collection", "install", "--offline", "-p", path, tarballs[0]], env)
    assert (path / "ansible_collections" / "podkit" / "docker" / "MANIFEST.json").is_file()

    # An execution environment holding the collection gets its requirements from it:
    # ansible-builder reads the installed meta/execution-environment.yml, its paths
    # relative to the collection's root.
    introspected = yaml.safe_load(_run([BIN / "ansible-builder", "introspect", "--sanitize", path], env))
    python = [line.split("#")[0].strip() for line in introspected["python"]]
    assert sorted(python) == sorted(l for l in (TOP / "requirements.txt").read_text().splitlines() if l and not l.startswith("#"))
    assert "openssh-client [platform:dpkg]  # from collection podkit.docker" in introspected["system"], introspected

    listed = _run([BIN / "ansible-doc", "-l", "podkit.docker"], env)
    assert MODULES, "the collection has no modules"
    for module in MODULES:
        assert "podkit.docker.%s " % module in listed, listed
        text = _run([BIN / "ansible-doc", "podkit.docker.%s" % module], env)
        assert "OPTIONS" in text and "RETURN VALUES" in text, text
    for role in ROLES:
        text = _run([BIN / "ansible-doc", "-t", "role", "podkit.docker.%s" % role], env)
        # Without a terminal ansible-doc marks bold text as *main*.
        assert "ENTRY POINT: main" in text.replace("*", ""), text
