"""The layer and ownership rules of DESIGN.md, checked on the source (AST, nothing is imported).

- **Imports point downward**: ``api`` → ``engine``, ``crm``, ``connectors``; ``connectors`` → ``crm``;
  ``engine`` and ``crm`` import nothing of ours.
- **Tables have owners**: only ``crm`` imports ``crm.schema``, only ``engine`` imports ``engine.schema``; the other
  layers call the owner's functions.
- **No import circles** among the modules of the product packages (imports at module level; an import inside a
  function is how a late binding is spelled and does not make a circle at import time).

``ALLOWED`` lists what breaks a rule today with the reason it is not moved yet. It may only shrink: an entry that no
longer breaks the rule fails the test too, so whoever fixes one removes it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("engine", "crm", "connectors", "api")
#: which of our packages each layer may import (besides itself)
MAY_IMPORT = {"api": {"engine", "crm", "connectors"}, "connectors": {"crm"}, "engine": set(), "crm": set()}
#: a table module and the only package that may import it
OWNED = {"crm.schema": "crm", "engine.schema": "engine"}

#: (importing module, imported module) → why it is still there. Shrink it; never grow it.
ALLOWED: dict[tuple[str, str], str] = {
    # connectors that run business operations still write CRM rows themselves; each needs owner functions in crm
    # (issue 20 items 3 and 5: the crm.* operators become thin callers of crm/…)
    ("connectors.crm_actions", "crm.schema"): "crm.* operators read and update incident/account rows directly",
    ("connectors.record_documents", "crm.schema"): "letter of record: one function with one reuse rule in crm",
    ("connectors.mail", "crm.schema"): "the mail log and contact history rows; belongs to crm.activities",
    ("connectors.billing", "crm.schema"): "billability and invoice reads; 'when is an order billable' to crm.invoices",
    ("connectors.campaign_actions", "crm.schema"): "campaign members/recipients read directly",
    ("connectors.contract_actions", "crm.schema"): "contract renewal reads contract rows directly",
    ("connectors.sales_actions", "crm.schema"): "quote/order steps read rows directly",
    # pages and demo data outside the owner
    ("api.ui.quote_pages", "crm.schema"): "quote builder: the PDF letter and catalogue reads (one letter-of-record "
                                          "function in crm, item 3)",
    ("api.demo_instances", "crm.schema"): "demo data picks records by querying CRM tables",
    ("api.ui.pages", "engine.schema"): "the dashboard counts process_instance and job rows itself; needs "
                                       "engine functions (instances per process, failed jobs)",
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (or module.name for ``from x import name``), dotted
    top_level: bool  # at module level (not inside a function)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, is_package: bool = False) -> Iterator[Import]:
    """Every import in a module's source, relative ones resolved, with whether it runs at import time."""
    tree = ast.parse(source)
    package = module if is_package else module.rpartition(".")[0]
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            nested.update(id(inner) for inner in ast.walk(node) if inner is not node)
    for node in ast.walk(tree):
        top = id(node) not in nested
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, top)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            for alias in node.names:
                yield Import(module, f"{prefix}.{alias.name}", top)


def product_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(path, root): path for package in PRODUCT for path in sorted((root / package).rglob("*.py"))
            if "__pycache__" not in path.parts}


def resolve(target: str, known: Iterable[str]) -> str | None:
    """The module an import names: ``crm.schema.quote`` → ``crm.schema``; ``from crm import schema`` too."""
    names = set(known)
    candidate = target
    while candidate:
        if candidate in names:
            return candidate
        candidate = candidate.rpartition(".")[0]
    return None


def violations(modules: dict[str, str], packages: set[str] | None = None) -> list[tuple[str, str, str]]:
    """(importer, imported module, rule) for every import that breaks the layer or the ownership rule.

    ``modules`` maps dotted module names to their source; ``packages`` are the names that are packages.
    """
    packages = packages or set()
    found: list[tuple[str, str, str]] = []
    for module, source in modules.items():
        layer = module.split(".")[0]
        for imp in imports_of(module, source, module in packages):
            target = resolve(imp.target, modules)
            if target is None:
                continue
            target_layer = target.split(".")[0]
            if target_layer != layer and target_layer not in MAY_IMPORT.get(layer, set()):
                found.append((module, target, f"{layer} may not import {target_layer}"))
            owner = OWNED.get(target)
            if owner is not None and layer != owner:
                found.append((module, target, f"only {owner} may import {target}"))
    return found


def circles(modules: dict[str, str], packages: set[str] | None = None) -> list[list[str]]:
    """The import circles among ``modules`` made of module-level imports (each as the modules in order)."""
    packages = packages or set()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, source in modules.items():
        for imp in imports_of(module, source, module in packages):
            target = resolve(imp.target, modules)
            if imp.top_level and target and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _product_sources() -> tuple[dict[str, str], set[str]]:
    paths = product_modules()
    packages = {name for name, path in paths.items() if path.name == "__init__.py"}
    return {name: path.read_text(encoding="utf-8") for name, path in paths.items()}, packages


#: import circles known today → why; may only shrink
ALLOWED_CIRCLES: dict[tuple[str, ...], str] = {
    ("engine.jobs", "engine.runtime"): "the job executor calls private methods of Engine and the timer-start handler "
                                       "lives in the facade; the unit of work gets its own module (issue 20 item 4)",
}


def test_layers_and_table_owners_hold() -> None:
    sources, packages = _product_sources()
    found = violations(sources, packages)
    new = sorted({(m, t, rule) for m, t, rule in found if (m, t) not in ALLOWED})
    assert not new, "imports that break DESIGN's layer or ownership rule (call the owner's functions):\n" + \
        "\n".join(f"  {m} imports {t}: {rule}" for m, t, rule in new)
    stale = sorted(set(ALLOWED) - {(m, t) for m, t, _rule in found})
    assert not stale, f"these no longer break a rule; remove them from ALLOWED: {stale}"


def test_no_import_circles() -> None:
    sources, packages = _product_sources()
    found = {tuple(c) for c in circles(sources, packages)}
    assert found <= set(ALLOWED_CIRCLES), f"import circles: {sorted(found - set(ALLOWED_CIRCLES))}"
    assert set(ALLOWED_CIRCLES) <= found, f"gone, remove from ALLOWED_CIRCLES: {sorted(set(ALLOWED_CIRCLES) - found)}"


@pytest.mark.parametrize(("module", "source", "rule"), [
    ("api.routes.things", "from crm.schema import account\n", "only crm may import crm.schema"),
    ("api.routes.things", "from crm import schema\n", "only crm may import crm.schema"),
    ("connectors.things", "import engine.schema as tables\n", "connectors may not import engine"),
    ("crm.things", "from api.deps import engine_of\n", "crm may not import api"),
    ("engine.things", "def late():\n    from crm import accounts\n", "engine may not import crm"),
    ("crm.things", "from ..engine import errors\n", "crm may not import engine"),
])
def test_the_checker_catches_a_deliberate_violation(module: str, source: str, rule: str) -> None:
    modules = {module: source, "crm.schema": "", "crm.accounts": "", "engine.schema": "", "engine.errors": "",
               "api.deps": ""}
    assert rule in {r for m, _t, r in violations(modules) if m == module}


def test_the_checker_lets_the_owner_and_the_allowed_directions_pass() -> None:
    modules = {"crm.accounts": "from .schema import account\n", "crm.schema": "",
               "api.routes.things": "from crm import accounts\nfrom ..deps import engine_of\n", "api.deps": "",
               "connectors.things": "from crm.accounts import get_account\n"}
    assert violations(modules) == []


def test_the_checker_finds_a_circle() -> None:
    modules = {"engine.a": "from . import b\n", "engine.b": "from .a import x\n",
               "engine.c": "def late():\n    from . import a\n"}
    assert circles(modules) == [["engine.a", "engine.b"]]
