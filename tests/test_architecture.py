"""The package's shape: no import cycles (imports inside functions count), light core modules.

The graph is built from the source with ``ast``, so it sees every ``import`` statement wherever it
stands, including those inside functions and ``TYPE_CHECKING`` blocks that only type checkers run
(those are left out: they never execute). A cycle closed only by a function-level import still
means two modules that cannot be understood apart, so it fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "hwnas"
# Modules a search on a benchmark table loads before it knows it needs torch.
TORCH_FREE = ("hwnas.types", "hwnas.objectives")
MAX_LINES = 520


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                stack.extend(child.orelse)  # type: ignore[attr-defined]
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child
            stack.append(child)


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The hwnas modules that ``name`` imports (a ``from pkg import sub`` names ``pkg.sub``)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name`` mod.
            # (A package's __init__ also runs, but it is a parent, not a dependency edge.)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; groups of more than one module are cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in graph.get(node, ()):
                    groups.append(sorted(group))
    return groups


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # hwnas.cli imports its command modules; the API imports the search package.
    assert "hwnas.api" in graph["hwnas.cli.run"]
    assert any(m.startswith("hwnas.search") for m in graph["hwnas.api"])


def test_no_import_cycles() -> None:
    cycles = strongly_connected(import_graph())
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_core_types_and_objectives_never_import_torch() -> None:
    graph = import_graph()
    known = modules()
    offenders = []
    for name, path in known.items():
        if not name.startswith(TORCH_FREE):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _imports(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if any(n and n.split(".")[0] == "torch" for n in names):
                offenders.append(name)
        offenders += [f"{name} -> {dep}" for dep in graph[name] if not dep.startswith(TORCH_FREE)]
    # types and objectives may import each other and the error types, nothing that pulls torch.
    offenders = [o for o in offenders if not o.endswith("-> hwnas.errors")]
    assert offenders == []


def test_modules_stay_small() -> None:
    big = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}
