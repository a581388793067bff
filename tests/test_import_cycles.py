"""No import circles between the modules of `crm`, and `crm.common` stays below the features.

The graph is built with `ast` from each module's source, no import runs. Two graphs are checked:

- **Every import, at any depth.** A function-level import still ties two modules together (the circle
  crm.cli → crm.contacts.cli → crm.cli ran through one), so it counts like a top-level one. An import of one of
  the module's own *ancestor packages* (crm.api.segments importing `make_blueprint` from crm.api, the Celery tasks
  importing `make_app` from crm) is not an edge here: Python has run that package's `__init__` before the module
  anyway, and a package's `__init__` that imports its modules inside a function to register them
  (`create_app`, `register_api`) is how a package assembles itself, not a circle.
- **Top-level imports only, ancestors included.** What runs when a module is imported: a circle here fails at
  import time (or invites a bottom-of-file import), so a package `__init__` may not import at module level a
  module that imports the package back.

`from pkg import name` is an edge to the module `pkg.name` when there is one, else to `pkg`.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file (a package's __init__.py is the package)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, is_package: bool, node: ast.AST, modules: set[str]) -> set[str]:
    """The modules of `modules` that one import statement names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    found = set()
    for alias in node.names:
        if f"{target}.{alias.name}" in modules:
            found.add(f"{target}.{alias.name}")
        elif target in modules:
            found.add(target)
    return found


def import_graphs(root: Path, package: str) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(every import without ancestor edges, top-level imports) of each module of `package` under `root`."""
    files = {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    modules = set(files)
    everywhere, top_level = {}, {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        deep = set().union(*(_imported(module, is_package, node, modules) for node in ast.walk(tree)))
        everywhere[module] = {m for m in deep if m != module and not module.startswith(m + ".")}
        top = set().union(*(_imported(module, is_package, node, modules) for node in tree.body))
        top_level[module] = top - {module}
    return everywhere, top_level


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
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
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _describe(graph: dict[str, set[str]], component: list[str]) -> str:
    """One line per module of a circle: what it imports inside the circle."""
    return "\n".join(f"  {m} -> {sorted(graph[m] & set(component))}" for m in component)


def test_no_import_circles_in_crm():
    everywhere, top_level = import_graphs(ROOT, "crm")
    assert len(everywhere) > 50  # the whole package was read
    for name, graph in (("any import", everywhere), ("top-level import", top_level)):
        found = cycles(graph)
        assert not found, f"import circles ({name}):\n" + "\n\n".join(_describe(graph, c) for c in found)


# What crm.common may import besides itself: the unbound extensions and the configuration, nothing of a feature
# package or of crm.api, so every feature can use it without a circle.
COMMON_MAY_IMPORT = {"crm.extensions", "crm.config"}


def test_common_imports_no_feature_and_not_the_api():
    everywhere, _ = import_graphs(ROOT, "crm")
    common = [m for m in everywhere if m == "crm.common" or m.startswith("crm.common.")]
    assert "crm.common.errors" in common
    upward = {m: sorted(t for t in everywhere[m] if not t.startswith("crm.common") and t not in COMMON_MAY_IMPORT)
              for m in common}
    assert not {m: t for m, t in upward.items() if t}, "crm.common imports up into features or crm.api"


def test_the_check_finds_circles(tmp_path):
    """A function-level circle and a package importing, at top level, a module that imports it back."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import x\n")
    (package / "sub" / "__init__.py").write_text("from pkg.sub import child\n")
    (package / "sub" / "child.py").write_text("from pkg.sub import helper\n")
    (package / "c.py").write_text("from pkg.sub import child\n")
    everywhere, top_level = import_graphs(tmp_path, "pkg")
    assert cycles(everywhere) == [["pkg.a", "pkg.b"]]
    assert cycles(top_level) == [["pkg.sub", "pkg.sub.child"]]
    assert "pkg" not in everywhere["pkg.sub.child"] and "pkg.sub" not in everywhere["pkg.sub.child"]
