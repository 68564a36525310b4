"""The core's import graph runs one way (README, Development): vocabulary and declarations at the
bottom, `client` knows no tables, `load` and `derive` know no HTTP, `plan` does no I/O, `pipeline`
joins the stages, the commands sit on top; and one object (the Fetcher) talks to EM."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ETL = Path(__file__).resolve().parents[2] / "etl"


def _modules() -> dict[str, Path]:
    """etl's modules by dotted name, the simulator (a separate fake EM) aside."""
    out = {}
    for path in sorted(ETL.rglob("*.py")):
        rel = path.relative_to(ETL.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        name = ".".join(parts)
        if not name.startswith("etl.simulator"):
            out[name] = path
    return out


MODULES = _modules()


def _type_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:` (annotations only, never run)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def imports(name: str) -> set[str]:
    """The etl modules `name` imports when it runs (at the top or inside a function)."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    skip = _type_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else node.module or base
            if node.level == 0 and not target.startswith("etl"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports(name) for name in MODULES}
# the schema package and its modules (one per family of tables)
SCHEMA = sorted(name for name in MODULES if name == "etl.schema" or name.startswith("etl.schema."))


def reach(name: str) -> set[str]:
    """Every module `name` imports, directly or not."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        for m in GRAPH[todo.pop()]:
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def test_the_import_graph_has_no_cycle():
    cycles = sorted(name for name in MODULES if name in reach(name))
    assert cycles == []


@pytest.mark.parametrize(
    ("module", "never"),
    [
        # vocabulary and declarations at the bottom
        ("etl.parse", {"etl.registry", "etl.transform", "etl.client", "etl.schema", "etl.crawl"}),
        ("etl.filters", {"etl.client", "etl.crawl", "etl.schema", "etl.db", "etl.registry"}),
        ("etl.registry", {"etl.client", "etl.crawl", "etl.load", "etl.runs", "etl.pipeline"}),
        ("etl.settings", {"etl.client", "etl.crawl", "etl.schema", "etl.registry", "etl.pipeline"}),
        # the client knows no tables and no entity types
        ("etl.client", {"etl.registry", "etl.schema", "etl.transform", "etl.load", "etl.db", "etl.crawl"}),
        # the warehouse side knows no HTTP
        ("etl.load", {"etl.client", "etl.crawl", "etl.seams", "etl.parents", "etl.store", "etl.pipeline"}),
        ("etl.derive", {"etl.client", "etl.crawl", "etl.seams", "etl.parents", "etl.store", "etl.pipeline"}),
        ("etl.runs", {"etl.client", "etl.crawl", "etl.store", "etl.pipeline", "etl.completeness"}),
        # planning is pure: no engine, no client
        (
            "etl.plan",
            {"etl.client", "etl.crawl", "etl.db", "etl.load", "etl.runs", "etl.derive", "etl.store"},
        ),
        # the paging loop knows EM, not the warehouse
        ("etl.crawl", {"etl.db", "etl.load", "etl.runs", "etl.derive", "etl.store", "etl.parents"}),
        ("etl.completeness", {"etl.pipeline", "etl.client", "etl.store"}),
        # the schema declares tables: no module of it asks EM or runs a load
        *((name, {"etl.client", "etl.crawl", "etl.pipeline"}) for name in SCHEMA),
    ],
)
def test_layers(module, never):
    assert reach(module) & never == set()


def test_the_schema_imports_nothing_of_etl_but_itself():
    """etl.schema is a package of modules (the columns, a module per family of tables): they import
    each other and nothing else of etl."""
    assert len(SCHEMA) > 1
    for name in SCHEMA:
        assert reach(name) <= set(SCHEMA), name


@pytest.mark.parametrize("module", ["etl.plan", "etl.filters", "etl.parse", "etl.transform"])
def test_pure_modules_import_no_database_and_no_http(module):
    tree = ast.parse(MODULES[module].read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert {n.split(".")[0] for n in names} & {"sqlalchemy", "httpx", "socket", "psycopg"} == set()


def test_only_the_commands_import_the_pipeline():
    importers = {name for name, deps in GRAPH.items() if "etl.pipeline" in deps}
    commands = {name for name in MODULES if name == "etl.cli" or name.startswith("etl.cli.")}
    assert importers <= commands | {"etl.demo", "etl.fleet", "etl.verify", "etl.orchestration"}


def test_one_object_talks_to_em():
    """EMClient is built in one place, the Fetcher (etl.crawl): the run, `verify` and `check` use it."""
    built = sorted(
        name
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "EMClient"
    )
    assert built == ["etl.crawl"]
    for command in ("etl.pipeline", "etl.verify", "etl.check"):
        assert "etl.crawl" in GRAPH[command], command


@pytest.mark.parametrize(
    "script",
    sorted(p for folder in ("bench", "scripts") for p in (ETL.parent / folder).rglob("*.py")),
    ids=lambda p: str(p.relative_to(ETL.parent)),
)
def test_the_scripts_beside_the_package_import_only_what_etl_defines(script):
    """bench/ and scripts/ are run by hand, not by the tests: a name they import from etl that a move
    left behind would only show when someone runs them."""
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("etl"):
            module = importlib.import_module(node.module)
            for alias in node.names:
                sub = [Path(d) / alias.name for d in getattr(module, "__path__", [])]  # a submodule
                found = hasattr(module, alias.name) or any(
                    p.with_suffix(".py").is_file() or p.is_dir() for p in sub
                )
                assert found, f"{script.name}: from {node.module} import {alias.name}"
