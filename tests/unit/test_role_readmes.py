"""Each role's README.md says what its meta/argument_specs.yml says: every variable of every entry
point, with its default, and no variable the spec does not have. Galaxy refuses a collection whose
roles have no README (galaxy-importer: "No role readme found"); a README that drifts from the spec
misleads the users who read it instead of `ansible-doc -t role`."""

import json
import pathlib
import re

import pytest
import yaml

ROLES = pathlib.Path(__file__).resolve().parents[2] / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if (p / "meta" / "argument_specs.yml").is_file())
# A row of a variables table: | `name` | `default as JSON` | description |
ROW = re.compile(r"^\| `(?P<name>[a-z0-9_]+)` \| `(?P<default>.*?)` \| .+ \|$")
HEADING = re.compile(r"^### Entry point `(?P<entry>[a-z0-9_]+)`$")


def spec(role):
    return yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]


def readme_tables(role):
    """{entry point: {variable: default}} from the README's tables; a role with one entry point
    may leave out the heading (its table is then `main`'s)."""
    tables = {}
    entry = "main"
    for line in (ROLES / role / "README.md").read_text().splitlines():
        heading = HEADING.match(line)
        if heading:
            entry = heading.group("entry")
        row = ROW.match(line)
        if row:
            assert row.group("name") not in tables.get(entry, {}), "%s: %s listed twice" % (role, row.group("name"))
            # Inside a table a | is written \|.
            tables.setdefault(entry, {})[row.group("name")] = json.loads(row.group("default").replace("\\|", "|"))
    return tables


def test_there_are_roles():
    assert ROLE_NAMES == ["host", "pods"]


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_readme_lists_every_variable_of_the_spec_with_its_default(role):
    tables = readme_tables(role)
    wanted = {entry: {name: option.get("default") for name, option in value["options"].items()}
              for entry, value in spec(role).items()}
    assert tables == wanted


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_readme_names_no_variable_the_spec_lacks(role):
    known = {name for value in spec(role).values() for name in value["options"]}
    # Not inputs, so named in prose: the facts the roles set or read, the examples' inventory group.
    others = {"podkit_sandbox_image", "podkit_pods", "podkit_hosts"}
    named = set(re.findall(r"\bpodkit_[a-z0-9_]+", (ROLES / role / "README.md").read_text()))
    assert named - known - others == set()


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_readme_names_every_suboption_and_points_to_ansible_doc(role):
    text = (ROLES / role / "README.md").read_text()
    assert "ansible-doc -t role podkit.docker.%s" % role in text
    assert "```yaml" in text, "no example play"
    for value in spec(role).values():
        for name, option in value["options"].items():
            for sub in option.get("options", {}):
                assert "`%s`" % sub in text, "%s: %s[].%s is not in the README" % (role, name, sub)
