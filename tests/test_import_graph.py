"""The import graph of ``p4dsim``: no cycle anywhere, module size limits.

Every module is parsed with :mod:`ast`; every ``import``/``from ... import`` counts, at
module level or inside a function, except those under ``if TYPE_CHECKING:`` (annotations
only, never executed). An import of a package counts as an import of its ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "p4dsim"

#: the most lines a module of p4dsim may hold, and replay.py in particular
MAX_LINES = 600
MAX_REPLAY_LINES = 300


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_pkg: bool, modules: set[str]) -> set[str]:
    """Modules of p4dsim that ``tree`` imports at run time."""
    found: set[str] = set()

    def resolve(name: str) -> None:
        # the longest prefix that is a module of p4dsim (``from a.b import c``: a.b.c or a.b)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                resolve(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                resolve(f"{mod}.{a.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    names = set(files)
    graph = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        graph[name] = {
            m
            for m in _imports(tree, name, path.name == "__init__.py", names)
            if not name.startswith(m + ".")  # a package's own __init__ runs first anyway
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := dfs(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := dfs(n)):
            return c
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_count():
    tree = ast.parse(
        "def f():\n    from p4dsim.b import x\nif TYPE_CHECKING:\n    import p4dsim.c\n"
    )
    assert _imports(tree, "p4dsim.a", False, {"p4dsim.a", "p4dsim.b", "p4dsim.c"}) == {"p4dsim.b"}


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_module_sizes():
    too_long = {
        _module_name(p): n
        for p in PKG.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"
    replay = len((PKG / "replay.py").read_text().splitlines())
    assert replay <= MAX_REPLAY_LINES, f"replay.py has {replay} lines"
