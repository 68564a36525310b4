"""`veeam-etl check` against the simulator over a real socket: a Portal Administrator, a Portal User
and a bad password (exit 0, 0, 1), an estate file of two EMs, and TLS; counts equal what EM holds,
refused types are listed with the EM role that reads them, and nothing is written anywhere."""

from __future__ import annotations

import json
import ssl

import pytest
import trustme

from etl import registry
from etl.simulator import Simulator, World
from etl.simulator import fleet as sim_fleet
from helpers import cli

SIZE = {"servers": 2, "jobs": 2, "backup_jobs": 2, "vms_per_job": 3, "days": 2}
ADMIN_ROLE = registry.PORTAL_ADMINISTRATOR
ADMIN_ONLY = [t.name for t in registry.TYPES.values() if t.role == ADMIN_ROLE]  # the job types


def counts_in(truth: dict) -> dict[str, int]:
    """What EM lists per table: the truth's rows that are not placeholders (known from links only)."""
    return {t: sum(1 for r in rows.values() if not r.get("placeholder")) for t, rows in truth.items()}


def types_of(report: dict) -> dict[str, dict]:
    return {t["type"]: t for t in report["types"]}


def check_json(*args: str, cwd, password: str | None = "demo", **env: str):
    done = cli("check", *args, "--format", "json", cwd=cwd, password=password, **env)
    return done, (json.loads(done.stdout) if done.stdout.strip() else None)


@pytest.fixture(scope="module")
def sim():
    with Simulator(World(seed=61, **SIZE)) as s:
        s.add_account("viewer", "view-pw", "PortalUser")
        yield s


def test_a_portal_administrator_reads_every_type_and_counts_equal_what_em_holds(sim, tmp_path):
    done, data = check_json("--url", sim.url, "--user", "demo", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (report,) = data["ems"]
    assert report["status"] == "ok" and report["could_load"] and report["logged_on"]
    assert data["exit_code"] == 0
    types = types_of(report)
    assert set(types) == set(registry.TYPES)
    assert not [t for t in types.values() if t["refused"] or t["error"]]
    held = counts_in(sim.truth())
    for t in registry.TYPES.values():
        if t.table != "jobs":  # two query types share the jobs table
            assert types[t.name]["count"] == held[t.table], t.name
    assert sum(types[name]["count"] for name in ADMIN_ONLY) == held["jobs"]  # the types sharing jobs
    assert report["api_versions"] == ["v1_5", "v1_6", "v1_7"]  # what the API root tells
    versions = {uid: row["version"] for uid, row in sim.truth()["backup_servers"].items()}
    assert {s["uid"]: s["vbr_version"] for s in report["servers"]} == versions
    assert report["tls"].startswith("plain HTTP")
    assert list(tmp_path.iterdir()) == []  # no warehouse, no file of any kind

    text = cli("check", "--url", sim.url, "--user", "demo", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    n = len(registry.TYPES)
    assert f"a load could proceed: {n} of {n} query types readable" in text.stdout
    assert "EM API versions  v1_5, v1_6, v1_7" in text.stdout and "(VBR " in text.stdout
    assert "nothing was changed" in text.stdout


def test_a_portal_user_could_load_and_sees_what_it_may_not_read(sim, tmp_path):
    done, data = check_json("--url", sim.url, "--user", "viewer", cwd=tmp_path, password="view-pw")
    assert done.returncode == 0, done.stderr
    (report,) = data["ems"]
    assert report["status"] == "ok"
    types = types_of(report)
    refused = {name for name, t in types.items() if t["refused"]}
    assert refused == set(ADMIN_ONLY) and {"Job", "AgentBackupJob"} <= refused
    assert all(types[name]["role"] == ADMIN_ROLE and types[name]["count"] is None for name in refused)
    assert all(t["count"] is not None for name, t in types.items() if name not in refused)

    text = cli("check", "--url", sim.url, "--user", "viewer", cwd=tmp_path, password="view-pw")
    assert text.returncode == 0, text.stderr
    line = next(ln for ln in text.stdout.splitlines() if ln.strip().startswith("Job "))
    assert f"EM refused it (HTTP 403); the EM role {ADMIN_ROLE} reads it" in line
    assert f"the run would skip {', '.join(ADMIN_ONLY)} (needs {ADMIN_ROLE})" in text.stdout


def test_a_bad_password_could_not_load(sim, tmp_path):
    done, data = check_json("--url", sim.url, "--user", "demo", cwd=tmp_path, password="not-the-password")
    assert done.returncode == 1, done.stderr
    (report,) = data["ems"]
    assert report["status"] == "failed" and not report["logged_on"] and report["types"] == []
    assert "refused the logon of user 'demo' (HTTP 401)" in report["error"]
    assert "refused the logon" in done.stderr and "not-the-password" not in done.stdout + done.stderr
    text = cli("check", "--url", sim.url, "--user", "demo", cwd=tmp_path, password="not-the-password")
    assert text.returncode == 1 and "a load could not proceed" in text.stdout


def test_configuration_errors_exit_2(tmp_path):
    for args, message in (
        (["--url", "em01:9398/api", "--user", "demo"], "has no scheme"),
        (["--url", "https://em01:9398/api"], "Missing option '--user'"),
        (["--url", "https://em01:9398/api", "--user", "demo", "--only", "x"], "--only goes with --config"),
    ):
        done = cli("check", *args, cwd=tmp_path)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_an_estate_file_of_two_ems(tmp_path):
    with sim_fleet.serving(2, seed=62, **SIZE) as (first, second):
        second.add_account("viewer", "view-pw", "PortalUser")
        estate = tmp_path / "estate.toml"
        estate.write_text(
            '[defaults]\nuser = "demo"\npassword_env = "CHECK_PW"\n'
            f'\n[[em]]\nname = "em-admin"\nurl = "{first.url}"\n'
            f'\n[[em]]\nname = "em-viewer"\nurl = "{second.url}"\nuser = "viewer"\npassword_env = "VIEWER_PW"\n'
        )
        done, data = check_json("--config", str(estate), cwd=tmp_path, CHECK_PW="demo", VIEWER_PW="view-pw")
        assert done.returncode == 0, done.stderr
        admin, viewer = data["ems"]
        assert (admin["name"], viewer["name"]) == ("em-admin", "em-viewer")
        assert admin["status"] == viewer["status"] == "ok"
        assert not [t for t in admin["types"] if t["refused"]]
        assert {t["type"] for t in viewer["types"] if t["refused"]} == set(ADMIN_ONLY)
        assert types_of(admin)["BackupServer"]["count"] == counts_in(first.truth())["backup_servers"]

        only, data = check_json(
            "--config", str(estate), "--only", "em-viewer", cwd=tmp_path, CHECK_PW="demo", VIEWER_PW="view-pw"
        )
        assert only.returncode == 0 and [r["name"] for r in data["ems"]] == ["em-viewer"]

        wrong, data = check_json(
            "--config", str(estate), cwd=tmp_path, CHECK_PW="demo", VIEWER_PW="nope-nope"
        )
        assert wrong.returncode == 1  # a load of em-viewer could not proceed
        assert [r["status"] for r in data["ems"]] == ["ok", "failed"]

        unset, data = check_json("--config", str(estate), cwd=tmp_path, CHECK_PW="demo")
        assert unset.returncode == 2  # em-viewer's password variable is not set: configuration
        assert [r["status"] for r in data["ems"]] == ["ok", "config"]
        assert "VIEWER_PW (password_env) is not set" in data["ems"][1]["error"]

        text = cli("check", "--config", str(estate), cwd=tmp_path, CHECK_PW="demo", VIEWER_PW="view-pw")
        assert text.returncode == 0 and text.stdout.count("a load could proceed") == 2
    assert list(tmp_path.iterdir()) == [estate]


def test_tls_status(tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "em-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    with Simulator(World(seed=63, servers=1, jobs=1, days=1), ssl_context=ctx) as sim:
        base = ("--url", sim.url, "--user", "demo")
        verified, data = check_json(*base, "--ca-bundle", str(bundle), cwd=tmp_path)
        assert verified.returncode == 0, verified.stderr
        assert data["ems"][0]["tls"] == f"TLS, certificate verified against the CA bundle {bundle}"
        off, data = check_json(*base, "--insecure", cwd=tmp_path)
        assert off.returncode == 0 and "verification OFF" in data["ems"][0]["tls"]
        untrusted, data = check_json(*base, cwd=tmp_path)
        assert untrusted.returncode == 1
        assert "TLS certificate of 127.0.0.1" in data["ems"][0]["error"]
        assert data["ems"][0]["tls"] == "TLS, certificate verified against the system trust store"
