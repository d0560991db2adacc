"""The house rules between the packages, checked on the sources (``ast``, no imports run).

* no module imports another module's private names (``from x import _y``);
* no import cycle among ``regsweep.*`` modules (imports inside functions count: a lazy
  import is still a dependency; ``if TYPE_CHECKING:`` imports do not);
* the matcher never imports the crawler (it sees plain Structs), and nothing in the
  crawler imports ``matcher.checks`` (the crawler states facts; judging them is the
  matcher's), nor the CLI anything but through its commands.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests import paths

PACKAGES = ("crawler", "matcher", "cli")


def _modules(suffix: str = ".py") -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((paths.REPO / pkg).rglob(f"*{suffix}")):
            rel = path.relative_to(paths.REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(["regsweep", *parts])] = path
    return out


def _runtime_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement except those under ``if TYPE_CHECKING:``."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in ast.walk(node):
                skip.add(id(child))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skip:
            yield node


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base.pop()
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module → the regsweep modules it imports; and the private-name imports found."""
    modules = _modules()
    # Compiled extensions are modules too (``from regsweep.matcher import _identity``).
    extensions = _modules(".pyx")
    graph: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(module, node, path.name == "__init__.py")
                targets = []
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    # ``from pkg import submodule`` depends on the submodule itself.
                    targets.append(sub if sub in modules else base)
                    is_module = sub in modules or sub in extensions
                    if (
                        alias.name.startswith("_")
                        and base.startswith("regsweep.")
                        and (not is_module)
                    ):
                        private.append(f"{module} imports {base}.{alias.name}")
            for t in targets:
                if t in modules and t != module:
                    graph[module].add(t)
    return graph, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_module_imports_another_modules_private_names() -> None:
    """Private names stay in their module (a compiled extension's ``_identity`` and a
    package's own ``_`` submodules are modules, not names)."""
    _, private = _graph()
    assert private == []


def test_no_import_cycle_among_regsweep_modules() -> None:
    graph, _ = _graph()
    assert _cycles(graph) == []


def test_the_matcher_never_imports_the_crawler_or_the_cli() -> None:
    graph, _ = _graph()
    bad = [
        (m, t)
        for m, deps in graph.items()
        if m.startswith("regsweep.matcher")
        for t in deps
        if t.startswith(("regsweep.crawler", "regsweep.cli"))
    ]
    assert bad == []


def test_the_crawler_states_facts_and_never_judges_them() -> None:
    graph, _ = _graph()
    bad = [
        (m, t)
        for m, deps in graph.items()
        if m.startswith("regsweep.crawler")
        for t in deps
        if t.startswith(("regsweep.matcher.checks", "regsweep.matcher.judge", "regsweep.cli"))
    ]
    assert bad == []


def test_the_rules_are_checked_on_every_module() -> None:
    """The walk finds the modules it guards (a moved folder must not empty it)."""
    graph, _ = _graph()
    assert {"regsweep.crawler.crawl", "regsweep.matcher.judge", "regsweep.cli.main"} <= set(graph)
    assert "regsweep.matcher.records" in graph["regsweep.matcher.judge"]


def test_the_cycle_finder_finds_cycles() -> None:
    """A lazy import back into a module that imports you is a cycle; a chain is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
