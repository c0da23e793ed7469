"""The package's shape: imports form a DAG, the subpackages of geo/ and model/ import one
way (docs/ARCHITECTURE.md), no package folder holds more than 15 modules and no module grows
past ~400 lines.

Read with ``ast`` (nothing is imported). Every import statement counts: module level, inside
functions (lazy imports) and under ``if TYPE_CHECKING:``, since a cycle hidden behind a lazy
import is still a cycle in the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
# Import package name -> its folder (the CLI installs from cli/ as fsanet_cli).
PACKAGES = {"fsanet_geo": ROOT / "fsanet_geo", "fsanet_cli": ROOT / "cli"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (``__init__`` as the package)."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


MODULES = _modules()


def _all_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of a module: module level, function bodies, TYPE_CHECKING blocks."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from X import ...`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """Project modules that ``node`` (in ``module``) runs: each imported module, for
    ``from PKG import name`` the submodule ``PKG.name`` where one exists (else ``PKG`` itself),
    and the packages above them, except those ``module`` lives in (already importing)."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        source = _resolve(module, node)
        names = {f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                 for alias in node.names}
    own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
    if MODULES.get(module, Path()).name == "__init__.py":
        own_packages.add(module)
    targets = set()
    for name in names:
        parts = name.split(".")
        targets |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} - own_packages
    return {name for name in targets if name in MODULES}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the module)."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[module] = set().union(*(_targets(module, n) for n in _all_imports(tree))) - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import cycle (``a -> b -> ... -> a``) per strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the alphabetically first module of a strongly connected group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start}")  # unreachable for a strongly connected group


def test_the_walk_sees_both_packages() -> None:
    graph = import_graph()
    assert "fsanet_geo" in graph and "fsanet_cli.main" in graph
    assert "fsanet_cli._common" in graph["fsanet_cli.main"]


def test_no_import_cycle() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (every import statement counts):\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_resolves_relative_imports_and_names_the_path() -> None:
    source = {
        "fsanet_geo.a": "from . import b\n",
        "fsanet_geo.b": "from .c import thing\nimport typing\n",
        # The way back to a is a lazy import and a TYPE_CHECKING one: both count.
        "fsanet_geo.c": "def f():\n    import fsanet_geo.a\nif TYPE_CHECKING:\n    from fsanet_geo import a\n",
    }
    saved = dict(MODULES)
    try:
        for name in source:
            MODULES[name] = Path(f"/virtual/{name.rsplit('.', 1)[1]}.py")
        graph = {name: set().union(*(_targets(name, n) for n in _all_imports(ast.parse(text))))
                 for name, text in source.items()}
    finally:
        MODULES.clear()
        MODULES.update(saved)
    assert graph == {"fsanet_geo.a": {"fsanet_geo.b"}, "fsanet_geo.b": {"fsanet_geo.c"},
                     "fsanet_geo.c": {"fsanet_geo.a"}}
    assert find_cycles(graph) == [["fsanet_geo.a", "fsanet_geo.b", "fsanet_geo.c", "fsanet_geo.a"]]


# The concept subpackages in the order their imports run: each may import those before it,
# none imports one after it (docs/ARCHITECTURE.md).
LAYERS = [
    ["fsanet_geo.geo.pixels", "fsanet_geo.geo.seams", "fsanet_geo.geo.outputs", "fsanet_geo.geo.detect"],
]
# The geo vocabulary and the network import none of the subpackages beside them.
VOCABULARY = {"fsanet_geo.geo.settings", "fsanet_geo.geo.windows", "fsanet_geo.geo.detections",
              "fsanet_geo.geo.scene_crs"}
MAX_MODULES_PER_FOLDER = 15


def _layer_of(module: str, layers: list[str]) -> int | None:
    return next((i for i, pkg in enumerate(layers) if module == pkg or module.startswith(pkg + ".")), None)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for each import that runs against the layer order or out of the vocabulary."""
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            for layers in LAYERS:
                mine, theirs = _layer_of(module, layers), _layer_of(target, layers)
                if mine is not None and theirs is not None and theirs > mine:
                    bad.append(f"{module} -> {target}")
            if module in VOCABULARY and target.startswith("fsanet_geo.geo.") and target not in VOCABULARY:
                bad.append(f"{module} -> {target}")
            is_network = module.startswith("fsanet_geo.model.") and not module.startswith("fsanet_geo.model.files")
            if is_network and target.startswith("fsanet_geo.model.files"):
                bad.append(f"{module} -> {target}")
    return bad


def test_subpackages_import_one_way() -> None:
    bad = layer_violations(import_graph())
    assert not bad, "imports against docs/ARCHITECTURE.md's order:\n" + "\n".join(bad)


def test_the_layer_check_names_an_import_against_the_order() -> None:
    graph = {"fsanet_geo.geo.pixels.reader": {"fsanet_geo.geo.detect.run"},
             "fsanet_geo.geo.detect.run": {"fsanet_geo.geo.pixels.reader"},
             "fsanet_geo.geo.windows": {"fsanet_geo.geo.seams.merge"},
             "fsanet_geo.model.head": {"fsanet_geo.model.files.checkpoint"}}
    assert layer_violations(graph) == ["fsanet_geo.geo.pixels.reader -> fsanet_geo.geo.detect.run",
                                       "fsanet_geo.geo.windows -> fsanet_geo.geo.seams.merge",
                                       "fsanet_geo.model.head -> fsanet_geo.model.files.checkpoint"]


def test_no_folder_holds_more_than_15_modules() -> None:
    counts: dict[Path, int] = {}
    for path in MODULES.values():
        if path.name != "__init__.py":
            counts[path.parent] = counts.get(path.parent, 0) + 1
    big = {str(folder.relative_to(ROOT)): n for folder, n in counts.items() if n > MAX_MODULES_PER_FOLDER}
    assert not big, f"folders over {MAX_MODULES_PER_FOLDER} modules: {big}"


def test_no_module_over_400_lines() -> None:
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: " + ", ".join(f"{k} ({v})" for k, v in sorted(long.items()))


MAX_CLI_LINES = 250


def test_the_cli_stays_thin() -> None:
    """A command parses, calls one library function, renders: no cli/ module over 250 lines."""
    long = {name: n for name, path in MODULES.items() if name.startswith("fsanet_cli")
            and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_CLI_LINES}
    assert not long, f"cli/ modules over {MAX_CLI_LINES} lines: {long}"


def test_every_package_is_installed() -> None:
    """pyproject.toml lists packages by name: a new subpackage left out would be missing from a
    wheel (an editable install still finds it, so only this test notices)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
