"""Structure rules for the corpuskit package, checked by reading its source (no imports).

Why: issue 17 asks that a newcomer can read any module in one sitting and follow the layers of
DESIGN.md. These tests keep that true after the redesign:

- no module over ``MAX_MODULE_LINES`` lines;
- no function over ``MAX_FUNCTION_LINES`` lines, data tables aside. A *data table* is a function
  whose body (after an optional docstring) is a single ``return <literal>`` or a single assignment
  of a literal (dict/list/tuple/set display, possibly nested, of constants): it has no logic to
  split, and splitting it would scatter one table over several functions;
- no import cycle between corpuskit modules, counting module-level imports only (imports inside a
  function run lazily and are the accepted way to break a cycle; ``if TYPE_CHECKING:`` blocks are
  not run either and are skipped);
- no module under ``corpuskit/stages/`` imports ``corpuskit.executors``: stages never know which
  executor runs them.

Each failure lists every offender with its size, so one run shows the whole to-do list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "corpuskit"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    """Map every dotted corpuskit module name to its file."""
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _is_literal(node: ast.AST) -> bool:
    """True for a constant or a container display built only of constants (a data table)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_is_literal(item) for item in node.elts)
    if isinstance(node, ast.Dict):
        keys_ok = all(key is None or _is_literal(key) for key in node.keys)
        return keys_ok and all(_is_literal(value) for value in node.values)
    return False


def _is_data_table(func: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A function whose body is one literal (returned or assigned) after an optional docstring."""
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1:
        return False
    statement = body[0]
    if isinstance(statement, (ast.Return, ast.Assign, ast.AnnAssign)):
        return statement.value is not None and _is_literal(statement.value)
    return False


def _function_lengths(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(qualified name, first line, line count) for every function, nested ones included."""
    found: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                if not _is_data_table(child):
                    found.append((name, child.lineno, child.end_lineno - first + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def _is_type_checking_block(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: top level, and inside top-level try/if."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif _is_type_checking_block(node):
                visit(node.orelse)
            elif isinstance(node, (ast.If, ast.Try)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module name an ImportFrom refers to."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The corpuskit modules that ``module`` imports at module level."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in _module_level_imports(_tree(path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            # ``from pkg import sub`` depends on the submodule only (importing any module runs
            # its parent packages first, which is not counted for ``import pkg.sub`` either);
            # ``from pkg import name`` depends on the package itself.
            base = _resolve(module, is_package, node)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
    return targets


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imported_modules(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(components)


def _cycle_path(graph: dict[str, set[str]], component: list[str]) -> str:
    """One concrete loop inside a component, e.g. ``a -> b -> a``, to show where to cut."""
    members = set(component)
    start = component[0]
    path = [start]
    seen = {start}
    while True:
        nxt = sorted(t for t in graph[path[-1]] if t in members)
        back = [t for t in nxt if t == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        fresh = [t for t in nxt if t not in seen]
        if not fresh:
            return " -> ".join(path + [nxt[0]])
        path.append(fresh[0])
        seen.add(fresh[0])


def _rel(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_no_module_over_limit() -> None:
    offenders = sorted(
        (f"{_rel(path)}: {lines} lines", lines)
        for path in _modules().values()
        if (lines := _line_count(path)) > MAX_MODULE_LINES
    )
    if offenders:
        listing = "\n".join(text for text, _ in offenders)
        pytest.fail(f"{len(offenders)} modules over {MAX_MODULE_LINES} lines:\n{listing}", False)


def test_no_function_over_limit() -> None:
    offenders = []
    for path in _modules().values():
        for name, line, length in _function_lengths(_tree(path)):
            if length > MAX_FUNCTION_LINES:
                offenders.append(f"{_rel(path)}:{line} {name}: {length} lines")
    if offenders:
        listing = "\n".join(sorted(offenders))
        header = f"{len(offenders)} functions over {MAX_FUNCTION_LINES} lines (data tables exempt)"
        pytest.fail(f"{header}:\n{listing}", False)


def test_no_import_cycle() -> None:
    graph = _import_graph()
    components = _cycles(graph)
    listing = "\n".join(
        f"{len(c)} modules: {', '.join(c)}\n  e.g. {_cycle_path(graph, c)}" for c in components
    )
    if components:
        pytest.fail(f"{len(components)} import cycles (module-level imports):\n{listing}", False)


def test_stages_do_not_import_executors() -> None:
    graph = _import_graph()
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith("corpuskit.stages")
        for target in targets
        if target == "corpuskit.executors" or target.startswith("corpuskit.executors.")
    )
    if offenders:
        pytest.fail("stage modules import an executor:\n" + "\n".join(offenders), False)


# The checker itself: small synthetic sources, so a bug in it cannot hide offenders.


def test_data_table_is_exempt_but_logic_is_not() -> None:
    table = "def table():\n    '''doc'''\n    return {\n" + "    'a': (1, 2),\n" * 70 + "    }\n"
    logic = "def work(x):\n" + "    x = x + 1\n" * 70 + "    return x\n"
    assert _function_lengths(ast.parse(table)) == []
    assert _function_lengths(ast.parse(logic)) == [("work", 1, 72)]


def test_methods_and_nested_functions_are_measured() -> None:
    source = (
        "class A:\n    def m(self):\n        def inner(x):\n            return x\n"
        "        return 2\n"
    )
    names = [name for name, _, _ in _function_lengths(ast.parse(source))]
    assert names == ["A.m", "A.m.inner"]


def test_cycle_finder_sees_loops_and_ignores_chains() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycle_path(graph, ["a", "b", "c"]) == "a -> b -> c -> a"
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_lazy_and_type_checking_imports_do_not_count() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n    import json\n"
        "try:\n    import zlib\nexcept ImportError:\n    import gzip\n"
        "def f():\n    import sys\n"
    )
    names = [
        alias.name for node in _module_level_imports(ast.parse(source)) for alias in node.names
    ]
    assert names == ["TYPE_CHECKING", "os", "zlib", "gzip"]


def test_from_package_import_submodule_depends_on_the_submodule_only(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from pkg import sub\n")
    (pkg / "sub.py").write_text("from pkg import helper\nfrom pkg import VALUE\n")
    (pkg / "helper.py").write_text("")
    known = {"pkg", "pkg.sub", "pkg.helper"}
    assert _imported_modules("pkg", pkg / "__init__.py", known) == {"pkg.sub"}
    assert _imported_modules("pkg.sub", pkg / "sub.py", known) == {"pkg.helper", "pkg"}


def test_relative_imports_resolve_to_corpuskit_modules() -> None:
    node = ast.parse("from ..executors import base").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve("corpuskit.stages.minhash", False, node) == "corpuskit.executors"
    node = ast.parse("from . import models").body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve("corpuskit.train", True, node) == "corpuskit.train"
