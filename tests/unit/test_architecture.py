"""The packages of ``ordersaga`` import one another in one direction only.

The import graph is read from the source with ``ast`` (every import, also those inside
functions), folded to packages, and checked against the layers below: a package may
import its own layer's or lower ones', never a higher one's, and no two packages may
import each other, even indirectly. Command-line code (typer, rich) lives in ``cli``.
"""

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import ordersaga

SOURCE = Path(ordersaga.__file__).parent

LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"contracts", "config", "observability"}),
    frozenset({"messaging", "db", "auth"}),
    frozenset({"saga"}),
    frozenset({"services"}),
    frozenset({"runtime", "migrations"}),
    frozenset({"tools"}),
    frozenset({"cli"}),
)
"""Lowest first: the wire contract and the settings import nothing of ours; the command
line is the top, and nothing imports it."""

COMMAND_LINE_LIBRARIES = frozenset({"typer", "rich", "click"})

Graph = dict[str, set[str]]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, by its full name (``from a import b`` gives both
    ``a`` and ``a.b``: ``b`` may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).rsplit(".", 0 if path.name == "__init__.py" else 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _package(module: str) -> str | None:
    """The package a module of ours belongs to (``ordersaga.saga.store`` → ``saga``)."""
    parts = module.split(".")
    if parts[0] != "ordersaga" or len(parts) < 2:
        return None
    return parts[1]


def _sources() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def package_graph() -> Graph:
    """Package → the packages it imports (itself left out)."""
    graph: Graph = {}
    for path in _sources():
        source = _package(_module_name(path))
        if source is None:
            continue
        targets = graph.setdefault(source, set())
        for module in _imports(path):
            target = _package(module)
            if target is not None and target != source:
                targets.add(target)
    return graph


def show(graph: Mapping[str, set[str]]) -> str:
    return "\n".join(
        f"  {name} -> {', '.join(sorted(targets)) or '(nothing)'}"
        for name, targets in sorted(graph.items(), key=lambda item: (_rank(item[0]), item[0]))
    )


def _rank(package: str) -> int:
    for rank, layer in enumerate(LAYERS):
        if package in layer:
            return rank
    return len(LAYERS)


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the packages along it, or ``None``."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph.get(node, ())):
            cycle = visit(target, [*path, node])
            if cycle is not None:
                return cycle
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start, [])
        if cycle is not None:
            return cycle
    return None


def test_every_package_has_a_layer() -> None:
    graph = package_graph()
    unplaced = sorted(p for p in graph if _rank(p) == len(LAYERS))
    assert not unplaced, f"packages in no layer: {unplaced}; the graph:\n{show(graph)}"


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle {' -> '.join(cycle or [])}; the graph:\n{show(graph)}"


def test_imports_point_down_the_layers() -> None:
    graph = package_graph()
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if _rank(target) > _rank(source)
    )
    assert not upward, f"imports of a higher layer: {upward}; the graph:\n{show(graph)}"


def test_command_line_libraries_only_in_cli() -> None:
    outside = sorted(
        {
            f"{_module_name(path)} imports {module.split('.')[0]}"
            for path in _sources()
            if _package(_module_name(path)) != "cli"
            for module in _imports(path)
            if module.split(".")[0] in COMMAND_LINE_LIBRARIES
        }
    )
    assert not outside, "typer and rich belong to ordersaga.cli:\n" + "\n".join(outside)


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    graph: Graph = {"db": {"services"}, "services": {"saga"}, "saga": {"db"}}
    assert find_cycle(graph) == ["db", "services", "saga", "db"]
    assert find_cycle({"saga": {"db"}, "db": set()}) is None
    assert _rank("db") < _rank("services")
