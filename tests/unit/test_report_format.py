"""The report's pure parts: how a session outcome reads, the terminal table, and the SVG charts
(units, titles, labels inside the viewBox, the empty state). The page in a real browser:
tests/e2e/test_report.py."""

from __future__ import annotations

import re

import pytest
from lxml import etree

from etl.report import charts, outcomes
from etl.report import text as terminal

SVG = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------------- outcomes
@pytest.mark.parametrize(
    ("state", "result", "shown"),
    [
        ("Stopped", "Success", "Success"),
        ("Completed", "Failed", "Failed"),
        ("Stopped", "Warning", "Warning"),
        ("Working", "None", "running"),
        ("Working", "Success", "running"),  # not finished, whatever Result says
        ("InProgress", "Failed", "running"),
        ("Starting", None, "running"),
        (None, None, "running"),
        ("WaitingRepository", "None", "WaitingRepository"),  # VBR states EM does not document
        ("Pending", "None", "Pending"),
        ("Postprocessing", "Success", "Postprocessing"),
        ("Stopped", "PartiallySucceeded", "PartiallySucceeded"),  # unknown results shown as sent
        ("Stopped", "None", "no result"),
        ("Completed", None, "no result"),
    ],
)
def test_status(state, result, shown):
    assert outcomes.status(state, result) == shown


def test_terminal_rows_of_views_show_outcomes_not_raw_none():
    rows = [
        {"state": "Working", "result": "None", "session_name": "a"},
        {"state": "Stopped", "result": "Failed", "session_name": "b"},
        {"state": "Idle", "result": "Success", "session_name": "c"},
        {"last_task_state": "InProgress", "last_task_result": "None", "last_result": "Success"},
        {"final_result": "None", "running": 1},
        {"final_result": "None", "running": 0},
        {"final_result": "Mystery", "running": 1},
    ]
    shown = terminal._display_rows(rows)
    assert [r.get("result") for r in shown[:3]] == ["running", "Failed", "Idle"]
    assert shown[3]["last_task_result"] == "running" and shown[3]["last_result"] == "Success"
    assert [r["final_result"] for r in shown[4:]] == ["running", "no result", "Mystery"]
    assert rows[0]["result"] == "None"  # the rows themselves (CSV, JSON) are left as the view gives them


# ---------------------------------------------------------------------- terminal table
def test_table_aligns_wide_characters_and_drops_control_characters():
    rows = [
        {"vm": "alpha", "size": 1, "note": "plain"},
        {"vm": "東京サーバ", "size": 22, "note": "tab\there\nnext"},
        {"vm": "e\u0301cole", "size": 333, "note": "bell\x07"},
    ]
    lines = terminal.table(rows).splitlines()
    ends = set()
    for line in lines[2:]:
        m = re.search(r"\s(\d+)\s", line)
        ends.add(terminal._width(line[: m.end(1)]))
    assert len(ends) == 1  # the numbers end in one terminal column
    notes = ("note", "plain", "tab here next", "bell\ufffd")
    assert (
        len(
            {
                terminal._width(line[: line.index(n)])
                for line, n in zip([lines[0], *lines[2:]], notes, strict=True)
            }
        )
        == 1
    )
    assert "\t" not in "\n".join(lines[2:]) and "\x07" not in "\n".join(lines)
    assert lines[1].split() == ["-" * 10, "-" * 4, "-" * 13]  # 東京サーバ takes 10 columns


def test_table_right_aligns_figures_written_as_text():
    lines = terminal.table([{"rate": "91.7%"}, {"rate": "100.0%"}, {"rate": "-"}]).splitlines()
    assert lines[2:] == [" 91.7%", "100.0%", "     -"]


def test_table_keeps_uids_whole_and_clips_long_text():
    uid = "urn:veeam:ReplicaJobSession:2a88d808-47b5-4e16-96cb-54c8a41f0000"
    out = terminal.table([{"session_uid": uid, "reason": "x" * 200}])
    assert uid in out and "x" * 59 + "…" in out and "x" * 61 not in out


# ---------------------------------------------------------------------- charts
def _parse(svg: str) -> etree._Element:
    """The chart as XML: it must be well-formed (what we generate; no entities, no network)."""
    return etree.fromstring(svg.encode(), etree.XMLParser(resolve_entities=False, no_network=True))


def _texts(root, cls: str) -> list[str]:
    return [(t.text or "").strip() for t in root.iter(f"{SVG}text") if cls in (t.get("class") or "").split()]


def _viewbox(root) -> tuple[float, float]:
    _, _, w, h = (float(v) for v in root.get("viewBox").split())
    return w, h


def test_nice_axis_maximum_and_tick_decimals():
    assert charts.nice_max(0) == (1.0, 0.25)
    assert charts.nice_max(43_438) == (60_000, 20_000)
    assert charts.nice_max(0.4) == (0.4, 0.1)
    assert charts.nice_max(7) == (8, 2)
    assert [charts.decimals(s) for s in (0.25, 0.5, 0.1, 20, 2.5)] == [2, 1, 1, 0, 1]


def test_small_values_get_distinct_ticks():
    svg = charts.stacked_bars(
        "c", "Sizes", ["a", "b"], [("s", [0.1, 0.4])], x_title="day", y_title="size (GB)", unit="GB"
    )
    ticks = _texts(_parse(svg), "y-tick")
    assert ticks == ["0.0", "0.1", "0.2", "0.3", "0.4"]


def test_charts_have_titles_axis_units_and_tooltips_with_units():
    days = [f"{d:02} Nov" for d in range(1, 15)]
    line = _parse(
        charts.line_chart(
            "l", "Rate", days, [("job", [0.5] * 14)], x_title="day (UTC)", y_title="success rate (%)"
        )
    )
    bars = _parse(
        charts.stacked_bars(
            "b", "Size", days, [("srv", [5.0] * 14)], x_title="day (UTC)", y_title="size (TB)", unit="TB"
        )
    )
    matrix = _parse(
        charts.heat_matrix(
            "m",
            "Rate (%)",
            [("job", [0.5] * 14, ["50.0% of 2 runs"] * 14)],
            days,
            x_title="day",
            y_title="job",
        )
    )
    for root, title in ((line, "Rate"), (bars, "Size"), (matrix, "Rate (%)")):
        assert root.find(f"{SVG}title").text == title and _texts(root, "chart-title") == [title]
        assert root.get("data-empty") == "false"
    assert _texts(line, "axis-title") == ["day (UTC)", "success rate (%)"]
    assert _texts(bars, "axis-title") == ["day (UTC)", "size (TB)"]
    assert all(t.endswith("%") for t in _texts(line, "y-tick"))
    assert all(
        r.find(f"{SVG}title").text.endswith("5.0 TB")
        for r in bars.iter(f"{SVG}rect")
        if r.get("class") == "bar"
    )
    cells = [r for r in matrix.iter(f"{SVG}rect") if r.get("class") == "cell"]
    assert len(cells) == 14 and all("%" in c.find(f"{SVG}title").text for c in cells)
    assert set(_texts(matrix, "cell-text")) == {"50%"}


def test_labels_stay_inside_the_viewbox():
    """The longest label is cut with "…" to the label column, the last day label is kept inside the
    right edge; estimated widths are generous, so a label within them is within the viewBox."""
    long_name = "Domain Controllers and Exchange Servers in the Frankfurt Datacenter Replication"
    days = [f"{d:02} Nov" for d in range(1, 15)]
    svg = charts.heat_matrix(
        "m", "Rate", [(long_name, [1.0] * 14, [""] * 14), ("Dev", [1.0] * 14, [""] * 14)], days,
        x_title="day", y_title="job",
    )  # fmt: skip
    root = _parse(svg)
    width, _ = _viewbox(root)
    labels = [t for t in root.iter(f"{SVG}text") if t.get("class") == "label"]
    shown = "".join(labels[0].itertext()).replace(long_name, "", 1)  # the text, without its <title>
    head, tail = shown.split("…")
    assert head and tail and long_name.startswith(head) and long_name.endswith(tail)
    for t in labels:
        text = (t.text or "").strip()
        assert float(t.get("x")) - charts.text_width(text, charts.LABEL) >= 0, text
    for t in root.iter(f"{SVG}text"):
        if "x-tick" in (t.get("class") or ""):
            half = charts.text_width(t.text, charts.TICK) / 2
            assert float(t.get("x")) - half >= 0 and float(t.get("x")) + half <= width, t.text


def test_shortened_names_keep_their_distinguishing_end():
    names = [
        f"Very Long Job Name For The Frankfurt Datacenter File & Print {n:02} Replication" for n in (3, 4)
    ]
    shown = [charts.fit(n, 200, charts.LABEL) for n in names]
    assert shown[0] != shown[1] and all("…" in s and charts.text_width(s, charts.LABEL) <= 200 for s in shown)
    assert charts.fit("short", 200, charts.LABEL) == "short"


def test_an_empty_chart_says_so_and_draws_no_axis():
    days = ["01 Nov", "02 Nov"]
    empties = [
        charts.line_chart("l", "Rate", days, [("job", [None, None])], x_title="d", y_title="r (%)"),
        charts.line_chart("l", "Rate", days, [], x_title="d", y_title="r (%)"),
        charts.stacked_bars("b", "Size", days, [("s", [0, 0])], x_title="d", y_title="s (GB)", unit="GB"),
        charts.stacked_bars("b", "Size", days, [], x_title="d", y_title="s (GB)", unit="GB"),
        charts.heat_matrix("m", "Rate", [], days, x_title="d", y_title="job"),
        charts.donut("d", "VMs", [("ok", 0, charts.GREEN)], "0", "VMs", unit="VMs"),
    ]
    for svg in empties:
        root = _parse(svg)
        assert root.get("data-empty") == "true"
        assert _texts(root, "empty") == [charts.NO_DATA]
        assert not _texts(root, "tick") and not _texts(root, "axis-title")
        assert root.find(f"{SVG}title").text
    custom = charts.stacked_bars(
        "b", "Size", days, [], x_title="d", y_title="s", unit="GB", empty=(charts.NOTHING, "no task ended")
    )
    assert _texts(_parse(custom), "empty") == [charts.NOTHING] and "no task ended" in custom


def test_chart_labels_are_escaped():
    svg = charts.heat_matrix("m", "<b>", [("<script>", [1.0], ["&"])], ["d"], x_title="<x>", y_title="y")
    root = _parse(svg)  # well-formed XML: nothing leaked as markup
    assert not list(root.iter("script")) and "<script>" not in svg and "&lt;script&gt;" in svg
