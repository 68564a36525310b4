"""docs/warehouse.md is generated from etl.schema and the views: it must match what the generator prints."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from etl import registry, report, schema, settings, views

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "python scripts/datadict.py > docs/warehouse.md"


def _datadict():
    spec = importlib.util.spec_from_file_location("datadict", ROOT / "scripts" / "datadict.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_data_dictionary_is_in_sync():
    committed = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    assert committed == _datadict().render(), f"docs/warehouse.md is out of date: run `{REGENERATE}`"


def test_every_table_and_column_has_a_comment_and_every_view_column_a_meaning():
    """The declaration walked: each table and column of etl.schema carries a non-empty comment (the
    meaning PostgreSQL stores and the dictionary prints); each view column has a meaning in the script."""
    dd = _datadict()
    missing = [t.name for t in schema.metadata.sorted_tables if not (t.comment or "").strip()]
    missing += [
        f"{t.name}.{c.name}"
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if not (c.comment or "").strip()
    ]
    assert not missing, f"add comment= in etl/schema/ (and a migration), then run `{REGENERATE}`: {missing}"
    for view, columns in dd.view_columns().items():
        missing += [f"{view}.{c}" for c in columns if dd.view_meaning(view, c) == dd.MISSING]
    assert not missing, f"add meanings to scripts/datadict.py, then run `{REGENERATE}`: {missing}"


def test_every_comment_reaches_the_dictionary_under_its_table():
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    dd = _datadict()
    for table in schema.metadata.sorted_tables:
        section = text.split(f"\n### {table.name}\n", 1)[1].split("\n### ", 1)[0]
        assert f"\n{table.comment}\n" in section, table.name
        rows = {
            line.split("|")[1].strip(" `"): line for line in section.splitlines() if line.startswith("| `")
        }
        assert list(rows) == [c.name for c in table.columns], table.name
        for c in table.columns:
            assert rows[c.name].endswith(f"| {dd.cell(c.comment)} |"), f"{table.name}.{c.name}"


def test_every_derived_column_is_listed_under_derived_values_with_its_comment():
    """The contract: a value the product works out itself is marked as such. The dictionary lists each
    column declared DERIVED, with its comment (one that means the same in several tables once, naming
    them), and the views' own derived columns."""
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    section = text.split("\n## Derived values\n", 1)[1].split("\n## ", 1)[0]
    listed = set()
    for line in section.splitlines():
        if not line.startswith("- `"):
            continue
        where, meaning = line[2:].split(": ", 1)
        if "." in where:  # `table.column`
            listed.add((*where.strip("`").split("."), meaning))
        else:  # `column` (table, table, ...)
            column, tables = where.split(" (", 1)
            listed |= {(t, column.strip("`"), meaning) for t in tables.rstrip(")").split(", ")}
    derived = {
        (t.name, c.name, c.comment)
        for t in schema.metadata.sorted_tables
        for c in t.columns
        if c.info.get("derived")
    }
    dd = _datadict()
    views = {(v, c, dd.view_meaning(v, c)) for v, c in dd.DERIVED_VIEW_COLUMNS}
    assert listed == derived | views
    assert {c for _, c, _ in derived} >= {
        "job_uid", "job_uid_source", "vm_restore_point_uid", "vm_restore_point_link", "computer_name",
        "placeholder", "deleted_at", "capacity", "free_space",
    }  # fmt: skip


def test_dictionary_lists_every_public_view_and_table():
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    for name in list(report.VIEWS) + [t.name for t in schema.metadata.sorted_tables]:
        assert f"### {name}\n" in text, name
    assert set(report.VIEWS) == {n for n in views.names("postgresql") if not n.startswith("v__")}
    for phrase in ("Retries folded in", "CURRENT_TIMESTAMP", "rpo_hours", "ORDER BY occurred_utc DESC"):
        assert phrase in text, phrase


def test_bi_guide_uses_the_views_and_a_read_only_role():
    text = (ROOT / "docs" / "bi.md").read_text(encoding="utf-8")
    for phrase in (
        "CREATE ROLE veeam_bi",
        "GRANT USAGE ON SCHEMA",
        "GRANT SELECT ON ALL TABLES",
        "ALTER DEFAULT PRIVILEGES",
        "Grafana",
        "Metabase",
        "Superset",
    ):
        assert phrase in text, phrase
    for view in ("v_replica_job_daily", "v_vm_replica_status", "v_replica_transfer_daily"):
        assert view in text, view


def test_readme_says_which_em_role_reads_each_type_as_the_registry_declares():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Which EM role reads what", 1)[1].split("\n## ", 1)[0]
    rows = {
        tuple(cell.strip().strip("`") for cell in line.strip("|").split("|"))
        for line in section.splitlines()
        if line.startswith("| `")
    }
    assert rows == {(t.name, t.table, t.role) for t in registry.TYPES.values()}


def test_every_run_setting_is_documented_as_a_flag_and_an_estate_key():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    fleet = (ROOT / "docs" / "fleet.md").read_text(encoding="utf-8")
    for s in settings.SETTINGS:
        assert f"`{s.flag}" in readme, s.flag
        assert f"`{s.name}`" in fleet, s.name
