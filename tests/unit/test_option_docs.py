"""The pod options are declared once (_podoptions) and documented twice more: as the pods module's entry
suboptions and as the pods role's podkit_pods_definitions (meta/argument_specs.yml). Those copies are held
to the table here: the same names, types, element types, choices and defaults."""

import pathlib

import pytest
import yaml

from ansible_collections.podkit.docker.plugins.module_utils._podoptions import POD_OPTIONS, entry_argument_spec
from ansible_collections.podkit.docker.plugins.modules import pods

TOP = pathlib.Path(__file__).resolve().parents[2]
COMPARED = ("type", "elements", "choices", "default", "aliases")


def entry_docs():
    return yaml.safe_load(pods.DOCUMENTATION)["options"]["pods"]["suboptions"]


def role_docs():
    specs = yaml.safe_load((TOP / "roles" / "pods" / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]["podkit_pods_definitions"]["options"]


def shape(spec):
    """What the docs must say as the spec says it (a raw option is documented without a type)."""
    found = dict((k, spec[k]) for k in COMPARED if spec.get(k) is not None)
    if found.get("type") == "raw":
        del found["type"]
    return found


def test_the_pods_entry_docs_name_every_entry_option_and_only_those():
    assert sorted(entry_docs()) == sorted(entry_argument_spec())


@pytest.mark.parametrize("name", sorted(entry_argument_spec()))
def test_each_pods_entry_option_is_documented_as_the_table_declares_it(name):
    assert shape(entry_docs()[name]) == shape(entry_argument_spec()[name])


def test_the_role_definitions_name_every_pod_option_and_only_those():
    assert sorted(role_docs()) == sorted(POD_OPTIONS)


@pytest.mark.parametrize("name", sorted(POD_OPTIONS))
def test_each_role_definition_option_is_specified_as_the_table_declares_it(name):
    # No default either: an entry that leaves an option out takes the role's (module-level) value.
    assert shape(role_docs()[name]) == shape(POD_OPTIONS[name])
