"""The collection as users get it: built into a tarball, installed into an empty path, documented."""

import pathlib
import shutil
import subprocess
import sys
import tarfile

import yaml

from helpers import TOP, ansible_env
from tarball_rules import findings, tarball_entries

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
    assert findings(tarball_entries(tarballs[0])) == []

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


# What a tree that has been worked in holds besides its sources: each must stay out of the tarball.
USED_TREE_LEFTOVERS = (
    "molecule/default/.cache/molecule.yml", "plugins/module_utils/__pycache__/_spec.cpython-311.pyc",
    "tests/unit/__pycache__/test_spec.cpython-311-pytest-9.2.0.pyc", ".pytest_cache/v/cache/nodeids",
    "tests/output/junit/unit.xml", "build/collections/README", ".venv/pyvenv.cfg", ".ansible/collections/x",
    "benchmarks/results/raw/bench0.json", ".cache/pip/x", "roles/host/.ansible/tmp",
    "pyflakes-4.1.0-py2.py3-none-any.whl", "podkit-docker-0.1.0.tar.gz",
)


def test_tarball_of_a_used_tree_holds_only_the_allowlist(tmp_path):
    """A copy of this tree with a used tree's leftovers planted in it builds to a tarball that holds
    only allowlisted top-level entries, no generated file and no file twice (tests/tarball_rules.py)."""
    tree = tmp_path / "tree"
    shutil.copytree(TOP, tree, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git", "build", "output"))
    for leftover in USED_TREE_LEFTOVERS:
        (tree / leftover).parent.mkdir(parents=True, exist_ok=True)
        (tree / leftover).write_text("left over: %s\n" % leftover)
    out = tmp_path / "dist"
    _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", out, tree], ansible_env())
    tarball, = out.glob("podkit-docker-*.tar.gz")
    entries = tarball_entries(tarball)
    assert findings(entries) == []
    names = {name for name, _content in entries}
    assert "plugins/modules/pod.py" in names and "roles/host/tasks/main.yml" in names
