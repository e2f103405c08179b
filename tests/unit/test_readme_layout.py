"""The README's Layout is the tree's: every module_utils file, module and top folder it names is there,
and every module_utils file and module of the tree is named in it (a new file adds its line)."""

import pathlib
import re

TOP = pathlib.Path(__file__).resolve().parents[2]


def layout():
    text = (TOP / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1]


def named_files(block):
    """The ``_name.py`` entries of the module_utils list."""
    return set(re.findall(r"^  (_\w+\.py) ", block, re.M))


def test_every_module_utils_file_is_in_the_layout_and_every_one_named_exists():
    tree = set(p.name for p in (TOP / "plugins" / "module_utils").glob("_*.py"))
    named = named_files(layout())
    assert sorted(tree - named) == [], "in the tree, not in the README's Layout"
    assert sorted(named - tree) == [], "in the README's Layout, not in the tree"


def named_paths(block):
    """The paths of the Layout's top lines: the fields (two spaces apart) before the first that is prose."""
    paths = set()
    for line in block.splitlines():
        if line.startswith(" "):
            continue            # a module_utils entry
        for field in re.split(r"\s{2,}", line.strip()):
            if " " in field:
                break
            if field:
                paths.add(field)
    return paths


def test_every_path_the_layout_names_exists():
    paths = named_paths(layout())
    assert {"plugins/modules/", "roles/pods", "Vagrantfile", "tests/helpers.py"} <= paths
    assert sorted(p for p in paths if not (TOP / p).exists()) == []
