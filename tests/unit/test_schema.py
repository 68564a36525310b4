"""etl.schema declares what is shared once: the columns every entity table has (uid, href, placeholder,
deleted_at, the load metadata) are the declared ones wherever they appear, the loader writes the load
metadata the declaration names, and every entity column's comment says where its value comes from."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from etl import db, registry, schema, transform
from etl.load import Loader, data_columns

NOW = datetime(2025, 8, 15, 6, 0, tzinfo=UTC)


def _same(column, declared) -> bool:
    return (
        type(column.type) is type(declared.type)
        and column.type.compile() == declared.type.compile()
        and (column.nullable, column.primary_key, column.comment, dict(column.info))
        == (declared.nullable, declared.primary_key, declared.comment, dict(declared.info))
        and (column.default is None) == (declared.default is None)
    )


def test_every_entity_table_carries_the_shared_columns_as_declared():
    declared = {c.name: c for c in schema.shared_columns()}
    for table in registry.tables():
        assert table.c.uid.primary_key and "href" in table.c, table.name
        assert [c.name for c in table.columns][-len(schema.META_COLUMNS) :] == list(schema.META_COLUMNS)
        for name, want in declared.items():
            if name in table.c:
                assert _same(table.c[name], want), f"{table.name}.{name} differs from its declaration"


def test_the_loader_writes_exactly_the_declared_load_metadata(db_url):
    assert list(schema.meta_values("em", 1, NOW)) == list(schema.META_COLUMNS)
    for table in registry.tables():
        assert set(data_columns(table)) | set(schema.META_COLUMNS) == set(table.c.keys())
        assert not set(data_columns(table)) & set(schema.META_COLUMNS)
    eng = db.engine(db_url)
    try:
        db.migrate(eng)
        with eng.begin() as conn:
            run_id = conn.execute(
                schema.etl_runs.insert()
                .values(source="em", started_at=NOW, status="running", mode="full")
                .returning(schema.etl_runs.c.id)
            ).scalar_one()
            row = {"uid": "urn:veeam:BackupServer:1", "href": "h", "name": "vbr01", "placeholder": False}
            assert Loader(conn, "em", run_id, NOW).upsert(transform.table_rows("backup_servers", [row])) == (
                1,
                0,
            )
        meta = [schema.backup_servers.c[name] for name in schema.META_COLUMNS]
        with eng.connect() as conn:
            stored = conn.execute(select(*meta)).one()
        assert dict(zip(schema.META_COLUMNS, stored, strict=True)) == schema.meta_values("em", run_id, NOW)
    finally:
        eng.dispose()


def test_every_entity_column_comment_says_its_source():
    """EM's element, attribute or link, or the loader: a value the loader works out (declared DERIVED)
    names the loader as its source, or as one of them."""
    entity = [*registry.tables(), schema.repository_space]
    for table in entity:
        for c in table.columns:
            assert "Source: " in c.comment, f"{table.name}.{c.name}"
            source = c.comment.split("Source: ", 1)[1]
            if c.info.get("derived"):
                assert "loader" in source, f"{table.name}.{c.name}"
            elif c.name not in schema.META_COLUMNS and c.name != "observed_at" and c.name != "run_id":
                assert source.startswith("EM's"), f"{table.name}.{c.name}"
