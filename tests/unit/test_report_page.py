"""The HTML page's templates: every warehouse string is escaped by default, wherever it lands (a table
cell, a chip, a chart label, a title attribute), and the page is one self-contained document with its
stylesheet inlined. A Summary built by hand, rendered without a database; the page in a real browser:
tests/e2e/test_report.py."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

from etl.report import page
from etl.report.summary import BackupJob, ReplicaJob, Summary, Tiles

NOW = datetime(2025, 11, 14, 12, 0, tzinfo=UTC)
DAYS = [NOW.date() - timedelta(days=13 - i) for i in range(14)]


def evil(where: str) -> str:
    """Text that is markup, an attribute breaker and an entity at once; `where` tells them apart."""
    return f"<img src=x onerror=alert('{where}')><script>alert(\"{where}\")</script>&amp;\"'{where}"


def _summary() -> Summary:
    """A summary whose every warehouse string (names, results, reasons) is hostile."""
    server, job, vm, repo = evil("server"), evil("job"), evil("vm"), evil("repository")
    day = {"day_utc": DAYS[-1], "job_uid": "urn:veeam:Job:1", "job_name": job, "backup_server_name": server}
    backup_day = {
        **day,
        "backup_server_uid": "urn:veeam:BackupServer:1",
        "job_type": "Backup",
        "runs": 2,
        "attempts": 3,
        "succeeded": 1,
        "warnings": 0,
        "failed": 1,
        "recovered": 0,
        "running": 0,
        "idle": 0,
        "other": 0,
        "success_rate": 0.5,
    }
    machine = {
        "backup_server_uid": "urn:veeam:BackupServer:1",
        "backup_server_name": server,
        "vm_key": "urn:VMware:Vm:1",
        "vm_display_name": evil("machine"),
        "kind": "agent",
        "rpo_status": "breach",
        "rpo_breach": 1,
        "restore_points": 0,
        "point_age_hours": None,
        "newest_point_utc": None,
        "last_result": evil("machine result"),
        "last_reason": evil("machine reason"),
        "last_task_state": "Completed",
        "last_task_result": "Failed",
        "last_task_status": "Failed",
    }
    vm_row = {
        "backup_server_uid": "urn:veeam:BackupServer:1",
        "backup_server_name": server,
        "vm_display_name": vm,
        "rpo_status": "red",
        "rpo_breach": 1,
        "hours_since_success": 30.0,
        "last_success_utc": NOW - timedelta(hours=30),
        "last_result": "Failed",
        "last_task_state": "Completed",
        "last_task_result": "Failed",
        "last_task_status": "Failed",
    }
    repository = {
        "repository_uid": "urn:veeam:Repository:1",
        "repository_name": repo,
        "backup_server_uid": "urn:veeam:BackupServer:1",
        "backup_server_name": server,
        "capacity_bytes": 2**40,
        "free_bytes": 2**38,
        "free_pct": 25.0,
        "free_change_7d_bytes": -(2**30),
        "low_free": 0,
    }
    failure = {
        "occurred_utc": NOW - timedelta(hours=2),
        "result": evil("result"),
        "vm_display_name": vm,
        "vm_key": "urn:VMware:Vm:1",
        "job_name": job,
        "backup_server_name": server,
        "reason": evil("reason"),
        "level": "task",
        "attempt": 2,
        "recovered_by_retry": 0,
        "later_success": 0,
    }
    return Summary(
        generated_utc=NOW,
        last_load_utc=NOW,
        rpo_hours=24.0,
        backup_rpo_hours=24.0,
        repository_low_free_pct=10.0,
        days=DAYS,
        tiles=Tiles(1, 1, 0, 0.5, 1.0, 1, 1, 0, 1, 1, 0, 0.5, 1, 0, 0),
        jobs=[
            ReplicaJob(
                "urn:veeam:Job:1",
                2,
                1,
                0,
                1,
                0,
                0,
                0,
                job,
                server,
                0.5,
                "Stopped",
                evil("last"),
                evil("last"),
            )
        ],
        backup_jobs=[BackupJob("urn:veeam:Job:1", "urn:veeam:BackupServer:1", job, "Backup", server, 2)],
        daily=[
            {
                **day,
                "successes": 1,
                "warnings": 0,
                "failures": 1,
                "running": 0,
                "recovered": 0,
                "success_rate": 0.5,
            }
        ],  # fmt: skip
        source_size=[
            {**day, "backup_server_uid": "urn:veeam:BackupServer:1", "source_bytes": 2**35, "tasks": 3}
        ],
        vms=[vm_row],
        failures=[failure],
        backup_daily=[backup_day],
        backup_runs=[],
        backup_machines=[machine],
        repositories=[repository],
        repository_space=[
            {"repository_uid": "urn:veeam:Repository:1", "day_utc": d, "free_pct": 25.0} for d in DAYS
        ],
        backup_failures=[failure],
    )


class Elements(HTMLParser):
    """Every element a browser's parser sees: (tag, attributes, the classes of it and its ancestors,
    its own text); text is unescaped, as the browser shows it."""

    VOID = {"meta", "col", "wbr", "br", "img", "input", "link", "hr", "circle", "rect", "line", "path"}

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.found: list[dict] = []
        self.open: list[dict] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": "", "title": ""}
        classes = set((element["attrs"].get("class") or "").split())
        element["classes"] = classes | (self.open[-1]["classes"] if self.open else set())
        self.found.append(element)
        if tag not in self.VOID:
            self.open.append(element)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.open.pop()

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        if self.open:
            self.open[-1]["text"] += data
            if self.open[-1]["tag"] == "title" and len(self.open) > 1:
                self.open[-2]["title"] += data


def test_every_warehouse_string_is_escaped_wherever_it_lands():
    html = page.page(_summary())
    elements = Elements(html).found
    # nothing of the data became markup: no script, no image, no event handler anywhere
    assert "script" not in {e["tag"] for e in elements} and "img" not in {e["tag"] for e in elements}
    assert not [a for e in elements for a in e["attrs"] if a.startswith("on")]
    assert "<script>" not in html and "<img" not in html

    def texts(tag: str, cls: str) -> list[str]:
        return [e["text"] for e in elements if e["tag"] == tag and cls in e["classes"]]

    # a table cell: the failure's reason and machine, the job's name in the jobs tables
    assert evil("reason") in texts("td", "reason")
    cells = [e["text"] for e in elements if e["tag"] == "td"]
    assert evil("vm") in cells and evil("job") + " (retry 1)" in cells
    assert evil("repository") in cells and evil("job") in cells
    # a chip: the machine and the VM named in the lists of those needing attention
    chips = texts("span", "chip")
    assert evil("machine") in chips and evil("vm") in chips
    # a chart label: the job's row of a success matrix (its full name in the label's tooltip), the
    # repository's line and the backup server's bars
    labels = [e["title"] for e in elements if e["tag"] == "text" and "label" in e["attrs"].get("class", "")]
    assert evil("job") in labels
    series = {e["attrs"].get("data-series") for e in elements if e["tag"] == "g"}
    assert evil("repository") in series
    assert any(evil("server") in e["text"] for e in elements if e["tag"] == "title")
    assert evil("server") in texts("span", "legend")
    # a title attribute: a chip's tooltip, an outcome's badge
    tips = [e["attrs"].get("title") or "" for e in elements]
    assert any(evil("machine reason") in t for t in tips) and any(evil("vm") in t for t in tips)
    assert evil("result") in [e["attrs"]["title"] for e in elements if "badge" in e["attrs"].get("class", "")]
    assert evil("last") in texts("span", "badge") and evil("result") in texts("span", "badge")


def test_no_template_turns_escaping_off():
    """Every `${...}` of the templates goes through the default filter: none names the `n` filter
    (Mako's "no filter"), and the default filter is markup.escape."""
    lookup = page.templates()
    assert lookup.template_args["default_filters"] == ["escape"]
    assert "from etl.report.markup import escape" in lookup.template_args["imports"][0]
    expressions = [
        expr
        for path in page.TEMPLATES.glob("*.html")
        for expr in re.findall(r"\$\{(.*?)\}", path.read_text(encoding="utf-8"), re.DOTALL)
    ]
    assert len(expressions) > 50
    assert not [e for e in expressions if re.search(r"\|\s*([\w.]+\s*,\s*)*n\b", e)], expressions


def test_the_page_is_one_document_with_its_stylesheet_inlined():
    html = page.page(_summary())
    stylesheet = page.STYLESHEET.read_text(encoding="utf-8")
    assert f"<style>\n{stylesheet}</style>" in html and html.count("<style>") == 1
    elements = Elements(html).found
    tags = {e["tag"] for e in elements}
    assert not tags & {"link", "script", "img", "iframe", "object", "embed", "base", "image", "use"}
    assert not [
        a for e in elements for a in e["attrs"] if a in {"src", "href", "xlink:href", "srcset", "action"}
    ]
    for text in (html, stylesheet):
        assert "url(" not in text and "@import" not in text and "@font-face" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}


def _imports(path) -> set[str]:
    """The modules of etl.report (and etl.metrics) that module `path` imports, by their short name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {a.name for a in node.names}
        elif (
            isinstance(node, ast.ImportFrom) and node.level == 2 and (node.module or "").startswith("report")
        ):
            found.add(node.module or "")
    return found


def test_the_renderers_depend_on_the_summary_never_the_other_way():
    """The report's modules import one way: reading and the summary import no renderer, nothing imports
    in a loop; `veeam-etl metrics` takes only the view reader from the report."""
    package = Path(page.__file__).parent
    graph = {p.stem: _imports(p) for p in package.glob("*.py")}
    below = {"read", "outcomes", "figures", "summary"}
    renderers = set(graph) - below - {"__init__"}
    assert {"text", "data", "page", "charts"} <= renderers
    for name in below:
        assert not graph[name] & renderers, (name, graph[name] & renderers)

    def reaches(start: str, seen: set[str]) -> set[str]:
        for nxt in graph.get(start, set()) - seen:
            seen.add(nxt)
            reaches(nxt, seen)
        return seen

    assert not [name for name in graph if name != "__init__" and name in reaches(name, set())]
    metrics = Path(page.__file__).parents[1] / "metrics"
    taken = {m for p in metrics.glob("*.py") for m in _imports(p) if m.startswith("report")}
    assert taken == {"report.read"}, taken
