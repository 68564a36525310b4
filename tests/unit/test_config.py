"""Pure checks of configuration values (etl.settings), the CLI's progress line and closing line, and the
packaging metadata pip reads."""

from __future__ import annotations

import json
import tomllib

import pytest

from etl import logs, pipeline, registry, settings
from etl.cli.output import Progress, table_of
from etl.errors import ConfigError
from helpers import ROOT


@pytest.mark.parametrize(
    "url",
    ["https://em01:9398/api", "http://127.0.0.1:9399/api/", "https://[::1]:9398/api", " https://em01/api "],
)
def test_good_em_urls_pass(url):
    assert settings.em_url(url) == url.strip()


@pytest.mark.parametrize(
    ("url", "phrase"),
    [
        ("", "is empty"),
        ("em01:9398/api", "has no scheme: write https://em01:9398/api"),
        ("//em01/api", "has no scheme: write https://em01/api"),
        ("ftp://em01/api", "scheme ftp:// is not supported"),
        ("https://", "has no host"),
        ("http://em01:65536/api", "port 65536 is not a port number"),
        ("http://em01:-1/api", "port -1 is not a port number"),
        ("https://u:secret@em01/api", "carries a user or password"),
        ("https://em01/api#x", "query or fragment"),
    ],
)
def test_bad_em_urls_name_the_value_and_the_fix(url, phrase):
    with pytest.raises(ConfigError, match="^--url") as caught:
        settings.em_url(url)
    assert phrase in str(caught.value) and "\n" not in str(caught.value)
    assert "secret" not in str(caught.value)


def test_schema_names():
    assert settings.schema_name(None) is None
    assert settings.schema_name("Veeam_2") == "veeam_2"  # PostgreSQL folds unquoted names
    for bad in ("", "2veeam", "veeam,public", "veeam; drop", "a" * 64, '"x"'):
        with pytest.raises(ConfigError, match="not a plain schema name"):
            settings.schema_name(bad)


def test_progress_names_the_rows_of_the_current_type_and_labels_the_total():
    summary = pipeline.Summary(run_id=1, source="s", mode="full")
    summary.tables["replica_task_sessions"] = {"inserted": 1700, "updated": 48}
    summary.tables["vm_replica_points"] = {"inserted": 1905, "updated": 0}
    summary.requests = 12
    line = Progress().line(summary, "ReplicaTaskSession")
    assert " ".join(line.split()) == "ReplicaTaskSession 1748 rows written, 3653 in all tables, 12 requests"
    assert "BackupServer" in Progress().line(summary, "BackupServer")


def test_every_crawled_type_has_a_table_in_the_summary():
    summary = pipeline.Summary(run_id=1, source="s", mode="full")
    for type_name in registry.TYPES:
        assert table_of(type_name) in summary.tables, type_name
    assert table_of("NoSuchType") is None


def test_closing_line_text_and_json_redacted():
    logs.secret("hunter22")
    assert logs.line("bad hunter22", fmt="text") == "veeam-etl: error: bad ***"
    assert (
        logs.line("interrupted by SIGTERM", level="warning", fmt="text")
        == "veeam-etl: interrupted by SIGTERM"
    )
    entry = json.loads(logs.line("bad hunter22", fmt="json"))
    assert (entry["level"], entry["logger"], entry["message"]) == ("error", "etl.cli", "bad ***")


def test_license_is_an_spdx_string_for_a_setuptools_that_reads_it():
    """The TOML-table form made every `pip install` warn three times (deprecated since setuptools 77)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"
    assert "setuptools>=77" in project["build-system"]["requires"]


@pytest.mark.parametrize(
    "url",
    [
        "https://em01.example.com:9398/api",
        "http://127.0.0.1:9399/api",
        "http://127.8.9.10:9399/api",
        "http://localhost:9399/api",
        "http://LOCALHOST/api",
        "http://[::1]:9399/api",
    ],
)
def test_https_and_loopback_are_not_cleartext(url):
    assert settings.cleartext(url) is False


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        ("http://em01.example.com/api", "https://em01.example.com:9398/api"),
        ("http://em01:9399/api", "https://em01:9398/api"),
        ("http://10.0.0.5:8080/veeam/api", "https://10.0.0.5:8080/veeam/api"),
        ("http://[2001:db8::1]:9399/api", "https://[2001:db8::1]:9398/api"),
        ("http://localhost.example.com/api", "https://localhost.example.com:9398/api"),
    ],
)
def test_cleartext_to_another_machine_is_refused_naming_https(url, fix):
    with pytest.raises(ConfigError, match="^--url") as caught:
        settings.cleartext(url)
    assert f"use {fix} " in str(caught.value) and "--allow-cleartext" in str(caught.value)
    assert settings.cleartext(url, allowed=True) is True  # the caller warns


def test_the_user_name_is_shown_even_when_the_password_equals_it(monkeypatch):
    monkeypatch.setattr(logs, "_SECRETS", set())
    monkeypatch.setattr(logs, "_PUBLIC", set())
    logs.secret("demo")
    logs.public("demo")
    assert logs.redact("logged on to http://127.0.0.1:9399/api/ as demo") == (
        "logged on to http://127.0.0.1:9399/api/ as demo"
    )
    logs.secret("veeam1")  # a password inside the user name: the name stays, the password elsewhere goes
    logs.public("CORP\\svc-veeam1")
    assert logs.redact("user CORP\\svc-veeam1, password veeam1") == "user CORP\\svc-veeam1, password ***"


def test_since_is_an_instant_in_the_past():
    from datetime import UTC, datetime, timedelta

    assert settings.since(None) is None
    assert settings.since("2025-08-01") == datetime(2025, 8, 1, tzinfo=UTC)
    assert settings.since("2025-08-01T02:00:00+02:00") == datetime(2025, 8, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match=r"^--since 'yesterday' is not an ISO date"):
        settings.since("yesterday")
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    with pytest.raises(ConfigError, match=f"^--since {tomorrow} is in the future"):
        settings.since(tomorrow)


@pytest.mark.parametrize(
    ("name", "value", "phrase"),
    [
        ("page_size", 0, "must be from 1 to 10000, not 0"),
        ("concurrency", "4", "must be a whole number, not '4'"),
        ("full_refresh", 1, "must be true or false, not 1"),
        ("timeout", 0.5, "must be at least 1, not 0.5"),
    ],
)
def test_a_setting_from_a_file_is_checked_as_click_checks_its_flag(name, value, phrase):
    with pytest.raises(ConfigError, match=f"^key '{name}': {phrase}$"):
        settings.BY_NAME[name].checked(value, f"key '{name}'")


def test_a_whole_number_where_a_number_is_wanted_becomes_a_float():
    assert settings.BY_NAME["timeout"].checked(30, "timeout") == 30.0
    assert isinstance(settings.BY_NAME["timeout"].checked(30, "timeout"), float)
