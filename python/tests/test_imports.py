"""The package's modules form layers: no module imports, directly or through others, a module
that imports it back. Every import counts, those inside functions included (a deferred import
hides a circle from Python's loader, not from the reader)."""

import ast
from pathlib import Path

import spikeloc

PACKAGE = Path(spikeloc.__file__).resolve().parent


def _modules() -> dict:
    """Dotted module name -> source path, for every module of the package (compiled
    extensions too, with their library as path: they import nothing from the package)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.so")) + sorted(PACKAGE.rglob("*.pyd")):
        parts = list(path.relative_to(PACKAGE.parent).parts)
        parts[-1] = parts[-1].split(".")[0]
        out[".".join(parts)] = path
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set:
    """The package modules that module ``name`` imports."""
    if path.suffix != ".py":
        return set()
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[:len(here.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _cycle(graph: dict):
    """One import circle as a list of modules (first == last), or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node, [])
            if found:
                return found
    return None


def test_the_import_graph_sees_deferred_imports():
    """The walker finds imports inside functions (so the test below can fail)."""
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert "spikeloc.network" in graph["spikeloc.checkpoint"]
    assert "spikeloc.evaluation" in graph["spikeloc.analysis"]
    assert "spikeloc.variants" in graph["spikeloc.network"]   # imported in a method
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circles_among_the_package_modules():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert len(graph) > 20
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
