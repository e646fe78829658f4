"""The layout stays one home per concern: no import cycles, every module importable on its own, and the
README's configuration table lists every config field with the values the config accepts."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from sddlab.config import _SECTION_TYPES, choices

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "sddlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(module_name(path) for path in PACKAGE.rglob("*.py"))


def runtime_imports(path: Path) -> set[str]:
    """The sddlab modules `path` imports when it runs (imports under `if TYPE_CHECKING:` are hints only)."""
    tree = ast.parse(path.read_text())
    hints = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
             and getattr(block.test, "id", "") == "TYPE_CHECKING" for node in ast.walk(block)}
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in hints:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            for alias in node.names:  # `from sddlab.data import tabular` imports the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_itself_back_through_others():
    graph = {module_name(path): runtime_imports(path) - {module_name(path)} for path in PACKAGE.rglob("*.py")}
    assert graph["sddlab.experiment"] >= {"sddlab.training", "sddlab.store"}  # the graph sees real imports
    assert find_cycle(graph) is None


def test_core_modules_import_sddlab_at_module_level_only():
    """Only the command line and other app modules may import lazily (start-up speed, optional extras)."""
    lazy = []
    for path in PACKAGE.rglob("*.py"):
        if "app" in path.relative_to(PACKAGE).parts:
            continue
        for function in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.FunctionDef)):
            lazy += [f"{module_name(path)}:{node.lineno}" for node in ast.walk(function)
                     if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sddlab")]
    assert lazy == []


def app_imports(source: str, module: str) -> list[int]:
    """Lines where `source` (the module `module`) imports `sddlab.app` or below: any depth, type hints,
    relative imports and `importlib.import_module("sddlab.app...")` included."""
    package = module.rpartition(".")[0]
    lines = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base]).strip(".")
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            names = [arg.value for arg in node.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        if any(name == "sddlab.app" or name.startswith("sddlab.app.") for name in names):
            lines.append(node.lineno)
    return lines


def test_the_import_finder_sees_every_way_to_import_the_app():
    planted = ("import sddlab.app.cli\nfrom sddlab.app import widgets\nfrom ..app.progress import Bar\n"
               "if TYPE_CHECKING:\n    from sddlab.app.tables import format_table\n"
               "def f():\n    importlib.import_module('sddlab.app.cli')\n"
               "from sddlab.apps import x\nfrom sddlab import application\n")
    assert app_imports(planted, "sddlab.lockstep.group") == [1, 2, 3, 5, 7]


def test_imports_point_down_the_flow_nothing_below_the_app_imports_it():
    """Core modules never import `sddlab.app`: progress bars, widgets and the command line listen to events
    and call the core, never the other way round."""
    entry = PACKAGE / "__main__.py"  # `python -m sddlab` is the command line itself
    upward = {module_name(path): app_imports(path.read_text(), module_name(path))
              for path in PACKAGE.rglob("*.py") if "app" not in path.relative_to(PACKAGE).parts and path != entry}
    assert len(upward) > 50 and "sddlab.runs" in upward and "sddlab.lockstep.group" in upward
    assert {name: lines for name, lines in upward.items() if lines} == {}


def test_every_module_imports_on_its_own_in_a_fresh_interpreter():
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {MODULES!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'sddlab' or m.startswith('sddlab.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as error:\n"
        "        failed.append(f'{name}: {type(error).__name__}: {error}')\n"
        "print('\\n'.join(failed))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def readme_config_rows() -> dict[str, str]:
    """`section.field` -> the rest of its row, from the README's configuration table."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Configuration"):]
    return {match.group(1): match.group(2) for match in re.finditer(r"^\| `([a-z_]+\.[a-z_]+)` \|(.*)\|$",
                                                                       section, flags=re.MULTILINE)}


def test_the_readme_configuration_table_lists_every_field_and_its_allowed_values():
    rows = readme_config_rows()
    fields = {f"{section}.{field}" for section, model in _SECTION_TYPES.items() for field in model.model_fields}
    assert set(rows) == fields
    for path, row in rows.items():
        try:
            allowed = choices(path)
        except ValueError:
            continue
        listed = set(re.findall(r"`([^`]+)`", row.split("|")[1]))
        assert {str(value) for value in allowed} <= listed, f"{path}: the README omits allowed values"
