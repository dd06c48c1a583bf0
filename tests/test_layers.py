"""The layers of docs/architecture.md hold: every import points down or sideways, none closes a
circle, and every module has a layer. Imports inside functions and under TYPE_CHECKING count:
a linter does not see them, and a lazy import that reaches up is still a circle in the design."""

from __future__ import annotations

import ast
import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "charrnn_cli"


def layers() -> list[tuple[str, list[str]]]:
    """The ```layers block of docs/architecture.md, top layer first: (name, module patterns)."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = re.search(r"```layers\n(.*?)```", doc, re.S)
    assert block, "docs/architecture.md has no ```layers block"
    out = []
    for line in block.group(1).strip().splitlines():
        name, _, patterns = line.partition(":")
        out.append((name.strip(), patterns.split()))
    return out


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name, without the `charrnn_cli.` prefix."""
    found = {}
    for f in PACKAGE.rglob("*.py"):
        parts = list(f.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = f
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules `name` imports anywhere in its file (the facade `charrnn_cli`
    itself, which only names the API lazily, is not a layer and is left out)."""
    pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
    full_pkg = ".".join(p for p in ("charrnn_cli", pkg) if p)
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = full_pkg.split(".")[: len(full_pkg.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets += [f"{base}.{a.name}" for a in node.names]
    out = set()
    for t in targets:
        if not t.startswith("charrnn_cli."):
            continue
        t = t.removeprefix("charrnn_cli.")
        while t and t not in known:
            t = t.rpartition(".")[0]
        if t and t != name:
            out.add(t)
    return out


def graph() -> dict[str, set[str]]:
    known = {m: f for m, f in modules().items() if m}
    return {m: imports(m, f, known) for m, f in known.items()}


def layer_of(module: str, table: list[tuple[str, list[str]]]) -> int | None:
    """The layer's height (the bottom layer is 0), or None when no pattern names the module."""
    for i, (_, patterns) in enumerate(table):
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return len(table) - 1 - i
    return None


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_every_module_has_a_layer():
    table = layers()
    missing = sorted(m for m in graph() if layer_of(m, table) is None)
    assert not missing, f"modules no layer names (docs/architecture.md): {missing}"


def test_imports_point_down_the_layers():
    table = layers()
    names = [n for n, _ in table][::-1]
    up = []
    for m, targets in sorted(graph().items()):
        for t in sorted(targets):
            a, b = layer_of(m, table), layer_of(t, table)
            if a is not None and b is not None and b > a:
                up.append(f"{m} ({names[a]}) -> {t} ({names[b]})")
    assert not up, "imports that point up the layers:\n" + "\n".join(up)


def test_no_import_circle():
    found = circles(graph())
    assert not found, "import circles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checks_can_fail():
    """The circle finder and the layer table catch what they are for (a guard on the test)."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    table = [("top", ["cli"]), ("bottom", ["paths"])]
    assert layer_of("cli", table) == 1 and layer_of("paths", table) == 0
    assert layer_of("nowhere", table) is None


def test_the_base_layer_is_torch_free_by_ruff():
    """No module of the base layer has ruff's torch ban lifted (pyproject.toml)."""
    table = layers()
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.ruff.lint.per-file-ignores]", 1)[1].split("\n[", 1)[0]
    lifted = re.findall(r'^"charrnn_cli/([^"]+)"\s*=\s*\["TID253"\]', section, re.M)
    for pattern in lifted:
        stem = pattern.removesuffix(".py").replace("/", ".")
        options = re.sub(
            r"\{([^}]*)\}", lambda m: "(" + "|".join(m.group(1).split(",")) + ")", stem
        )
        rx = re.compile(options.replace("*", ".*") + "$")
        for m in graph():
            if rx.match(m):
                assert layer_of(m, table) != 0, f"{m} is in the base layer but may import torch"


def test_every_module_has_its_line_in_the_architecture_page():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "charrnn_cli"
    modules = [p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if p.name not in ("__init__.py", "__main__.py")]  # fmt: skip
    assert len(modules) > 50
    assert [m for m in modules if f"`{m}`" not in doc] == []
