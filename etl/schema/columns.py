"""What every table is built from: the `MetaData` (whose naming convention names the indexes and
constraints), the instant type, the marks in a column's `info`, and the columns that mean the same in every
entity table that has them, declared once here, with the load metadata etl.load writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, DateTime, ForeignKey, Integer, MetaData, String, Text
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator):
    """An instant: ``timestamptz`` on PostgreSQL; on SQLite stored as UTC text and read back aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: instants must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


# Marks in a column's `info`:
# KEPT: the loader fills the column itself (from a lookup or an inference), not from the entity: a NULL
# from EM never overwrites what is there (etl.load).
KEPT = {"kept": True}
# DERIVED: a value the loader works out rather than reads from EM (the contract: "marked as such"); the
# data dictionary lists these under "Derived values".
DERIVED = {"derived": True}

# --- the columns that mean the same in every entity table that has them: declared once here ----------


def _uid() -> Column:
    return Column(
        "uid",
        String(200),
        primary_key=True,
        comment="EM's UID of the object, `urn:veeam:<Type>:<guid>`: the key. Source: EM's `UID` attribute; "
        "for a placeholder, the field or link that named it (a link's guid is the last segment of its href).",
    )


def _href() -> Column:
    return Column(
        "href",
        Text,
        comment="EM's URL of the object, as EM gave it; for a placeholder, the href of the link that named "
        "it. Source: EM's `Href` attribute.",
    )


def _placeholder() -> Column:
    return Column(
        "placeholder",
        Boolean,
        nullable=False,
        default=False,
        info=DERIVED,
        comment="True when the loader recorded the row only from a child's link because EM would not give "
        "the object (404, or 403 for the account's role): only `uid`, `href` and `name` are known; a later "
        "run that can read it replaces it. Source: the loader.",
    )


def _deleted_at() -> Column:
    return Column(
        "deleted_at",
        UTCDateTime,
        info=DERIVED,
        comment="When a retention sweep found that EM no longer lists the object (UTC; not EM's deletion "
        "time); NULL while EM lists it, cleared if it comes back. Rows are never deleted: the views count "
        "only rows with `deleted_at` NULL. Source: the loader.",
    )


def _source() -> Column:
    return Column(
        "source",
        String(500),
        nullable=False,
        comment="The Enterprise Manager the row came from: its API URL (scheme and host lower-cased, no "
        "credentials), or the name `--source-name` or the estate file gave it. Source: the loader.",
    )


def _load_metadata() -> list[Column]:
    """The load metadata every entity table ends with: written by etl.load on each row it stores, never
    part of the transform's rows."""
    return [
        _source(),
        Column(
            "first_loaded_at",
            UTCDateTime,
            nullable=False,
            comment="When a load first inserted the row (UTC). Source: the loader.",
        ),
        Column(
            "last_loaded_at",
            UTCDateTime,
            nullable=False,
            comment="When a load last wrote the row: inserted it, or found a value changed (UTC). Source: the "
            "loader.",
        ),
        # not a declared foreign key: a per-row check against etl_runs on every insert would cost more
        # than it protects
        Column(
            "run_id",
            Integer,
            nullable=False,
            comment="The run (`etl_runs.id`) that last wrote the row. Source: the loader.",
        ),
    ]


# The load metadata's column names, in the order etl.load writes them.
META_COLUMNS: tuple[str, ...] = tuple(c.name for c in _load_metadata())


def meta_values(source: str, run_id: int, loaded_at: datetime) -> dict[str, Any]:
    """The load metadata of a row that run `run_id` of `source` writes at `loaded_at` (aware), by column
    name in `META_COLUMNS` order."""
    return {"source": source, "first_loaded_at": loaded_at, "last_loaded_at": loaded_at, "run_id": run_id}


def shared_columns() -> list[Column]:
    """Fresh copies of the columns that mean the same in every entity table that has them (uid, href,
    placeholder, deleted_at and the load metadata), as declared here: what tests compare tables with."""
    return [_uid(), _href(), _placeholder(), _deleted_at(), *_load_metadata()]


def _server() -> Column:
    return Column(
        "backup_server_uid",
        String(200),
        ForeignKey("backup_servers.uid"),
        comment="The backup server (Veeam Backup & Replication server) the object belongs to or ran on. "
        "Source: EM's `Up` link of Type `BackupServerReference`.",
    )
