"""Adding an entity type is one declaration (etl.registry) and one table (etl.schema): a type made
up for this test is queried, parsed, transformed, linked to its parent and loaded end to end, over a
real socket, with nothing else changed."""

from __future__ import annotations

from replay import Replay
from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text, select

from etl import db, parse, pipeline, registry, schema

NS = "http://www.veeam.com/ent/v1.0"
SERVER = "urn:veeam:BackupServer:7445e6ce-0000-4171-b909-000000000001"


def widget_columns(el, fields, url, row) -> dict:
    """The made-up type's own columns: one integer field."""
    return {"size": parse.integer(fields.get("Size"), url)}


def page(origin: str) -> bytes:
    widgets = "".join(
        f'<Widget Type="Widget" UID="urn:veeam:Widget:{i}" Name="w{i}" Href="{origin}/api/widgets/{i}?format=Entity">'
        f'<Links><Link Rel="Up" Type="BackupServerReference" Href="{origin}/api/backupServers/'
        f'7445e6ce-0000-4171-b909-000000000001" Name="vbr01.example.local"/></Links><Size>{i * 10}</Size></Widget>'
        for i in range(1, 4)
    )
    return (
        f'<QueryResult xmlns="{NS}"><Entities><Widgets>{widgets}</Widgets></Entities>'
        f'<PagingInfo PageNum="1" PageSize="500" PagesCount="1"/></QueryResult>'
    ).encode()


def test_a_new_entity_type_is_one_declaration_and_one_table(tmp_path):
    table = Table(
        "widgets",
        schema.metadata,
        Column("uid", String(200), primary_key=True),
        Column("href", Text),
        Column("backup_server_uid", String(200), ForeignKey("backup_servers.uid")),
        Column("name", String(500)),
        Column("size", Integer),
        *schema._load_metadata(),
    )
    declaration = registry.EntityType(
        "Widget",
        "widgets",
        widget_columns,
        parents=(registry.Parent("backup_server_uid", "BackupServer", "BackupServerReference"),),
    )
    registry.register(declaration)
    eng = db.engine(f"sqlite:///{tmp_path}/w.db")
    try:
        db.migrate(eng)
        table.create(eng)  # the test's table: in the product, a migration creates it
        with Replay({"BackupServer": "backup-server-v13.xml"}) as em:
            em.queries["widget"] = page(em.url.removesuffix("/api"))
            summary = pipeline.run(eng, em.url, "demo", "demo")
        assert summary.tables["widgets"] == {"inserted": 3, "updated": 0}
        with eng.connect() as conn:
            got = conn.execute(select(table.c.uid, table.c.backup_server_uid, table.c.size)).all()
        assert sorted(got) == [(f"urn:veeam:Widget:{i}", SERVER, i * 10) for i in range(1, 4)]
    finally:
        del registry.TYPES["Widget"]
        schema.metadata.remove(table)
        eng.dispose()
