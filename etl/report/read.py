"""Reading the public reporting views (sql/): rows as dicts keyed by the view's own columns, in the
view's documented order, each value the same on SQLite and PostgreSQL; and the database's clock.

The one way the report and `veeam-etl metrics` read a public view. Reads only; imports nothing of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Date, bindparam, text

from .. import views
from ..errors import ConfigError
from ..schema import UTCDateTime

# Public views and the order their rows are read in (views themselves keep no order): every view in
# sql/ not named v__*, with the ORDER BY list of its `-- order:` line (etl.views.public).
VIEWS: dict[str, str] = views.public()

Row = dict[str, Any]  # one view row: {column of the view: value}; the view is its typed definition


def instant(value) -> datetime | None:
    """An instant from the warehouse (aware datetime on PostgreSQL, UTC text on SQLite) as an aware
    UTC datetime; None for None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _value(column: str, value):
    """One cell the same on both databases: aware UTC datetimes, dates, ints and floats."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bool):
        return int(value)
    if column == "day_utc" or column.endswith("_day_utc"):
        if isinstance(value, str):
            return date.fromisoformat(value[:10])
        return value.date() if isinstance(value, datetime) else value
    if column.endswith("_utc"):
        return instant(value)
    return value


def _known(name: str) -> None:
    if name not in VIEWS:
        raise ConfigError(f"unknown view {name!r}: choose one of {', '.join(VIEWS)}")


def read_view(
    conn: Connection,
    name: str,
    where: str = "",
    limit: int | None = None,
    columns: Sequence[str] = (),
    **params,
) -> list[Row]:
    """Rows of public view `name` as dicts, in the view's documented order: its `columns` (default every
    column), those matching the SQL condition `where` (bound `params`: a date binds as a date, anything
    else as an instant), at most `limit`. Instants are aware UTC datetimes, `day_utc` columns dates,
    numbers int or float, booleans 0/1. Raises ConfigError for a view that does not exist."""
    _known(name)
    sql = f"SELECT {', '.join(columns) or '*'} FROM {name}{' WHERE ' + where if where else ''}"
    sql += f" ORDER BY {VIEWS[name]}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    stmt = text(sql)
    for key, value in params.items():
        stmt = stmt.bindparams(
            bindparam(
                key,
                value,
                type_=Date if isinstance(value, date) and not isinstance(value, datetime) else UTCDateTime,
            )
        )
    result = conn.execute(stmt)
    keys = list(result.keys())
    return [{c: _value(c, v) for c, v in zip(keys, row, strict=True)} for row in result]


def view_columns(conn: Connection, name: str) -> list[str]:
    """The columns of public view `name`, in the view's order. Raises ConfigError for an unknown view."""
    _known(name)
    return list(conn.execute(text(f"SELECT * FROM {name} WHERE 1 = 0")).keys())


def now(conn: Connection) -> datetime:
    """The database's clock (the helper view v__clock), as the views read it: "now" of every figure."""
    value = instant(conn.execute(text("SELECT now_utc FROM v__clock")).scalar())
    assert value is not None, "v__clock gives the database's clock"
    return value
