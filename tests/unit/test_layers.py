"""The layers of module_utils stay layers: the engine (_docker) imports nothing of podkit's above it."""

import ast
import pathlib

MODULE_UTILS = pathlib.Path(__file__).resolve().parents[2] / "plugins" / "module_utils"
PREFIX = "ansible_collections.podkit.docker.plugins.module_utils."


def podkit_imports(path):
    """The module_utils files ``path`` imports, wherever in the file (deferred imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            found.add(node.module[len(PREFIX):])
    return found


def test_the_engine_layer_imports_only_errors_and_labels():
    assert podkit_imports(MODULE_UTILS / "_docker.py") == {"_errors", "_labels"}


def test_the_layer_below_the_engine_imports_nothing_of_podkit():
    assert podkit_imports(MODULE_UTILS / "_errors.py") == set()
    assert podkit_imports(MODULE_UTILS / "_labels.py") <= {"_errors"}
