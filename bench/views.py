"""Compare the reporting views of two (or more) sql/ trees on one warehouse: the same rows, and how long.

    git archive main sql | tar -x -C /tmp/main        # the views before a change
    python bench/views.py sqlite:///bench-100000.db --tree /tmp/main/sql --tree sql \\
        --at "2025-08-15 12:00:00" --at "2025-08-16 20:00:00"

For each tree, in one transaction that is rolled back (the warehouse is left as it was): the tree's views
are created (sql/<view>.<dialect>.sql winning over sql/<view>.sql, as etl.views does) with v__clock fixed
at each --at instant (UTC), every public view is read whole, its rows sorted and hashed, and read again
`--repeat` times for its time: CPU seconds of the reading thread on SQLite (less disturbed by other work
on the machine than wall time), EXPLAIN ANALYZE's execution time on PostgreSQL (with the metrics
command's settings, etl.metrics.PG_SETTINGS), the fastest of the repeats, at the first instant. Prints one
Markdown row per view: rows, each tree's time, and whether every tree returned the same rows at every
instant. Exit code 1 when some view's rows differ between trees. Not a test: the times depend on the
machine and what else runs on it.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import time
from pathlib import Path

from sqlalchemy import Connection, create_engine, text

from etl.metrics import PG_SETTINGS

CREATE = re.compile(r"CREATE\s+VIEW\s+(\w+)", re.IGNORECASE)


def definitions(tree: Path, dialect: str) -> dict[str, str]:
    """{file stem: CREATE VIEW statement} of a sql/ tree for `dialect`, in file-name order."""
    chosen: dict[str, str] = {}
    for f in sorted(tree.glob("*.sql"), key=lambda f: f.name):
        stem, _, rest = f.name.partition(".")
        variant = rest[: -len("sql")].rstrip(".")
        if variant and variant != dialect:
            continue
        if variant or stem not in chosen:
            chosen[stem] = f.read_text(encoding="utf-8")
    return chosen


def clock(dialect: str, at: str) -> str:
    if dialect == "postgresql":
        return (
            f"CREATE VIEW v__clock AS SELECT TIMESTAMPTZ '{at}+00' AS now_utc, "
            f"CAST(EXTRACT(EPOCH FROM TIMESTAMPTZ '{at}+00') AS DOUBLE PRECISION) AS now_epoch"
        )
    return (
        f"CREATE VIEW v__clock AS SELECT strftime('%Y-%m-%d %H:%M:%f', '{at}') AS now_utc, "
        f"(julianday('{at}') - 2440587.5) * 86400.0 AS now_epoch"
    )


def replace_views(conn: Connection, sql: dict[str, str], at: str) -> list[str]:
    """Drop every view of the warehouse, create `sql` with the clock at `at`; the public view names."""
    dialect = conn.dialect.name
    listed = (
        "SELECT name FROM sqlite_master WHERE type = 'view'"
        if dialect == "sqlite"
        else "SELECT table_name FROM information_schema.views WHERE table_schema = current_schema()"
    )
    for name in conn.execute(text(listed)).scalars().all():
        conn.execute(text(f"DROP VIEW IF EXISTS {name}" + (" CASCADE" if dialect == "postgresql" else "")))
    names = []
    for stem, statement in sql.items():
        conn.execute(text(clock(dialect, at) if stem == "v__clock" else statement))
        names.append(CREATE.search(statement)[1])
    return [n for n in names if not n.startswith("v__")]


def digest(conn: Connection, view: str) -> tuple[int, str]:
    """(rows, hash of the sorted rows; floats to 12 significant digits)."""
    rows = sorted(
        (
            tuple(f"{v:.12g}" if isinstance(v, float) else v for v in r)
            for r in conn.execute(text(f"SELECT * FROM {view}"))
        ),
        key=repr,
    )
    return len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


def seconds(conn: Connection, view: str) -> float:
    if conn.dialect.name == "sqlite":
        raw = conn.connection.dbapi_connection
        started = time.thread_time()
        raw.execute(f"SELECT * FROM {view}").fetchall()
        return time.thread_time() - started
    plan = conn.execute(text(f"EXPLAIN (ANALYZE, TIMING OFF) SELECT * FROM {view}")).scalars().all()
    return float(re.search(r"Execution Time: ([\d.]+)", plan[-1])[1]) / 1000


def measure(url: str, tree: Path, instants: list[str], repeat: int) -> dict[str, dict]:
    eng = create_engine(url)
    out: dict[str, dict] = {}
    with eng.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            for name, value in PG_SETTINGS.items():
                conn.execute(text("SELECT set_config(:n, :v, true)"), {"n": name, "v": value})
        sql = definitions(tree, conn.dialect.name)
        for i, at in enumerate(instants):
            for view in replace_views(conn, sql, at):
                row = out.setdefault(view, {"digests": []})
                row["digests"].append(digest(conn, view))
                if i == 0:
                    row["seconds"] = min(seconds(conn, view) for _ in range(repeat))
        conn.rollback()
    eng.dispose()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", help="SQLAlchemy URL of a warehouse")
    ap.add_argument("--tree", type=Path, action="append", required=True, help="a sql/ directory (repeatable)")
    ap.add_argument("--at", action="append", help="instant (UTC) the views' clock is fixed at (repeatable)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    instants = args.at or ["2025-08-15 12:00:00"]  # the benchmark estate's simulator clock
    results = [measure(args.url, tree, instants, args.repeat) for tree in args.tree]
    differ = False
    print("| view | rows | " + " | ".join(f"{t} (s)" for t in args.tree) + " | same rows |")
    print("|---|---|" + "---|" * len(args.tree) + "---|")
    for view in results[0]:
        found = [r.get(view) for r in results]
        same = all(f is not None and f["digests"] == found[0]["digests"] for f in found)
        differ |= not same
        times = " | ".join("—" if f is None else f"{f['seconds']:.3f}" for f in found)
        print(f"| {view} | {found[0]['digests'][0][0]:,} | {times} | {'yes' if same else 'NO'} |")
    totals = " | ".join(f"{sum(r[v]['seconds'] for v in r):.3f}" for r in results)
    print(f"| total | | {totals} | |")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
