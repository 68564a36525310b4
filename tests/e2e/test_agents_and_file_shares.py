"""Agent computers and file shares end to end, over a real loopback socket: the simulator's agent
computers on several backup servers are judged by their agent restore points in v_vm_backup_status,
the report (table, JSON, HTML) and the demo; file-share (NAS) sessions have their real job; what the
loader works out itself is marked; an undocumented value is warned about once per warehouse."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape

from sqlalchemy import select, text

from etl import db, report, schema
from etl.report.read import instant
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, cli

RPO = 24.0


def _run(sim: Simulator, db_url: str, *extra: str):
    done = cli("run", "--url", sim.url, "--user", "demo", "--db", db_url, *extra)
    assert done.returncode == 0, done.stderr
    return done


def _expected_agents(truth: dict, now: datetime) -> dict[tuple[str, str], str]:
    """{(backup server, computer): rpo_status} worked out from the simulator's truth, the view's rule
    written out again: the newest agent point within the RPO, else a finished task that succeeded within
    it (warning), else breach; warning when the point is older than half the RPO or the newest finished
    task ended anything but Success."""
    sessions = truth["backup_job_sessions"]
    newest_point: dict[tuple[str, str], datetime] = {}
    for p in truth["agent_restore_points"].values():
        key = (p["backup_server_uid"], p["computer_name"])
        newest_point[key] = max(newest_point.get(key, p["creation_time_utc"]), p["creation_time_utc"])
    last_task: dict[tuple[str, str], dict] = {}
    for t in truth["backup_task_sessions"].values():
        if sessions[t["job_session_uid"]]["job_type"] != "AgentManagement" or t["state"] != "Completed":
            continue
        key = (t["backup_server_uid"], t["vm_display_name"])
        if key not in last_task or t["creation_time_utc"] > last_task[key]["creation_time_utc"]:
            last_task[key] = t
    out = {}
    for key in set(newest_point) | set(last_task):
        point, task = newest_point.get(key), last_task.get(key)
        age = None if point is None else (now - point).total_seconds() / 3600
        point_ok = age is not None and age <= RPO
        task_ok = task is not None and task["result"] in ("Success", "Warning")
        task_ok = task_ok and (now - task["end_time_utc"]).total_seconds() / 3600 <= RPO
        if not point_ok and not task_ok:
            out[key] = "breach"
        elif not point_ok or age > RPO / 2 or (task is not None and task["result"] != "Success"):
            out[key] = "warning"
        else:
            out[key] = "ok"
    return out


def test_agent_computers_are_protected_by_their_agent_points_and_nas_sessions_have_their_job(
    db_url, tmp_path
):
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(seed=2, servers=3, jobs=2, vms_per_job=3, days=4, backup_jobs=3, now=now)
    with Simulator(world) as sim:
        _run(sim, db_url)
        truth = world.truth()
        eng = db.engine(db_url)
        assert_equal_to_truth(eng, truth)
    assert len(truth["agent_restore_points"]) > 20

    with eng.connect() as conn:
        clock = instant(conn.execute(text("SELECT now_utc FROM v__clock")).scalar())
        machines = report.read_view(conn, "v_vm_backup_status")
    agents = {(m["backup_server_uid"], m["vm_key"]): m for m in machines if m["kind"] == "agent"}
    expected = _expected_agents(truth, clock)
    assert {k: m["rpo_status"] for k, m in agents.items()} == expected
    assert all(m["keyed_by"] == "computer_name" and m["vm_uid"] is None for m in agents.values())
    # computers on several backup servers, protected by fresh agent points
    ok = [m for m in agents.values() if m["rpo_status"] == "ok"]
    assert len({m["backup_server_uid"] for m in agents.values()}) >= 2 and ok
    assert all(m["restore_points"] and m["point_age_hours"] < RPO / 2 for m in ok)
    assert not any(m["rpo_breach"] for m in agents.values() if (m["point_age_hours"] or RPO + 1) < RPO)
    # the computer whose agent has been unreachable for two days
    offline = world.backup.agent_jobs[0].computers[-1][0]
    (lost,) = [m for m in agents.values() if m["vm_key"] == offline]
    assert (lost["rpo_status"], lost["rpo_breach"], lost["last_result"]) == ("breach", 1, "Failed")
    assert lost["point_age_hours"] > RPO and "not reachable" in lost["last_reason"]
    assert lost["last_job_name"] == world.backup.agent_jobs[0].name  # the agent job, not the per-computer one

    # file-share sessions run under their real job (name, schedule), counted in the job views
    with eng.connect() as conn:
        nas = (
            conn.execute(
                select(schema.jobs).where(
                    schema.jobs.c.uid.in_(
                        select(schema.backup_job_sessions.c.job_uid).where(
                            schema.backup_job_sessions.c.job_type == "NasBackup"
                        )
                    )
                )
            )
            .mappings()
            .all()
        )
        runs = report.read_view(conn, "v_backup_job_runs", "job_type = 'NasBackup'")
        daily = report.read_view(conn, "v_backup_job_daily", "job_type = 'NasBackup'")
    (job,) = nas
    assert (job["placeholder"], job["name"], job["schedule_enabled"]) == (False, "Shared Files Backup", True)
    assert job["next_run_utc"] is not None and "/nas/jobs/" in job["href"]
    assert runs and {r["job_name"] for r in runs} == {"Shared Files Backup"}
    assert sum(d["runs"] for d in daily) == len(runs) and all(r["job_uid"] == job["uid"] for r in runs)

    # what the loader worked out is marked
    with eng.connect() as conn:
        backups = conn.execute(select(schema.backups)).mappings().all()
        replicas = conn.execute(select(schema.replicas)).mappings().all()
    jobs = {j.guid: j for j in world.backup.jobs + world.backup.agent_jobs}
    source = {}
    for b in backups:
        job_kind = None if b["job_uid"] is None else jobs[b["job_uid"].rsplit(":", 1)[-1]].job_type
        source.setdefault((job_kind, b["backup_type"]), set()).add(b["job_uid_source"])
    assert source[("Backup", "Standard")] == {"link"}  # its points were made by the job's tasks
    assert source[("AgentBackup", "ParentBackup")] == {"query"}
    assert source[(None, "Standard")] == {None}  # a backup whose job EM no longer lists
    assert all(b["job_uid_source"] in ("query", "link", "parent") for b in backups if b["job_uid"])
    assert replicas and all(r["job_uid"] and r["job_uid_source"] in ("query", "link") for r in replicas)

    # the report says machines, and shows the computers as the view judges them
    out = cli("report", "--db", db_url)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    headline = next(x for x in lines if "Machines backed up:" in x)
    assert f"{len(agents)} agent computers" in headline
    attention = [x for x in lines if offline in x]
    assert any("breach" in x and " agent " in x for x in attention), attention
    servers = {m["backup_server_uid"]: m["backup_server_name"] for m in agents.values()}
    for m in ok:  # a computer is its name on its server: names repeat across servers
        assert not any(
            re.search(rf"{re.escape(m['vm_key'])}\s+agent\s+{servers[m['backup_server_uid']]}", x)
            for x in lines
        )
    summary = json.loads(cli("report", "--db", db_url, "--format", "json").stdout)
    assert summary["tiles"]["backup_agent_computers"] == len(agents)
    assert {
        (m["backup_server_uid"], m["vm_key"]): m["rpo_status"]
        for m in summary["backup_machines"]
        if m["kind"] == "agent"
    } == expected
    page = tmp_path / "report.html"
    assert cli("report", "--db", db_url, "--format", "html", "--out", str(page)).returncode == 0
    html = page.read_text(encoding="utf-8")
    chips = unescape(re.search(r'id="backup-machine-chips">(.*?)</div>', html, re.DOTALL).group(1))
    assert re.search(
        rf'class="chip red"[^>]*>\s*<i title="agent computer">agent</i>{re.escape(offline)}', chips
    )
    assert not any(  # ok machines are not called out
        f'title="agent computer {m["vm_key"]} on {servers[m["backup_server_uid"]]}:' in chips for m in ok
    )
    assert f"{len(agents)} agent computers" in unescape(html)
    eng.dispose()


def test_the_demo_judges_its_agent_computers_by_their_agent_points(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    done = cli("demo", "--db", url, "--report", str(tmp_path / "demo.html"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    eng = db.engine(url)
    with eng.connect() as conn:
        agents = report.read_view(conn, "v_vm_backup_status", "kind = 'agent'")
    eng.dispose()
    assert len(agents) == 6 and len({a["backup_server_uid"] for a in agents}) == 2
    # one computer has been unreachable for two days: the only breach; the others have fresh points
    (lost,) = [a for a in agents if a["rpo_breach"]]
    assert (lost["rpo_status"], lost["last_result"]) == ("breach", "Failed") and lost["point_age_hours"] > RPO
    others = [a for a in agents if a is not lost]
    assert all(a["restore_points"] and a["point_age_hours"] <= RPO for a in others)
    assert len([a for a in others if a["rpo_status"] == "ok"]) >= 2
    for a in others:  # ok exactly when the point is younger than half the RPO and the last task succeeded
        fresh = a["point_age_hours"] <= RPO / 2 and a["last_result"] == "Success"
        assert a["rpo_status"] == ("ok" if fresh else "warning"), a
    ok = [(a["vm_key"], a["backup_server_name"]) for a in others if a["rpo_status"] == "ok"]
    # the page and `report` call out the unreachable computer, and none of those within the RPO (names
    # repeat across backup servers: a computer is its name on its server)
    html = unescape((tmp_path / "demo.html").read_text(encoding="utf-8"))
    chips = re.search(r'id="backup-machine-chips">(.*?)</div>', html, re.DOTALL).group(1)
    assert f'title="agent computer {lost["vm_key"]} on {lost["backup_server_name"]}:' in chips
    assert not any(f'title="agent computer {name} on {server}:' in chips for name, server in ok)
    assert "Machines backed up" in html and "6 agent computers" in html
    table = cli("report", "--db", url)
    assert table.returncode == 0, table.stderr
    attention = table.stdout.split("needing attention", 1)[1].split("Repositories,", 1)[0].splitlines()
    assert any(
        re.match(rf"\s*breach\s+{re.escape(lost['vm_key'])}\s+agent\s+{lost['backup_server_name']}", x)
        for x in attention
    )
    assert not any(
        re.search(rf"{re.escape(name)}\s+agent\s+{server}", x) for name, server in ok for x in attention
    )


def test_an_undocumented_value_is_warned_about_once_per_warehouse(db_url):
    url = db_url
    warned = "is not a value EM documents"
    with Simulator(World(seed=4, servers=1, jobs=1, vms_per_job=2, days=4, copy_jobs=2)) as sim:
        first = _run(sim, url)
        # the object-storage Kind and the copy sessions' Idle state: once each, counted in the run
        assert first.stderr.count(warned) == 2, first.stderr
        assert "'AmazonS3Compatible'" in first.stderr and "'Idle'" in first.stderr
        assert "new undocumented values: 2" in first.stdout
        second = _run(sim, url)
        assert warned not in second.stderr and "new undocumented values: 0" in second.stdout
    with Simulator(World(seed=5, servers=1, jobs=1, vms_per_job=2, days=4, copy_jobs=2)) as other:
        third = _run(other, url)  # another EM into the same warehouse sends the same values
        assert warned not in third.stderr
    eng = db.engine(url)
    with eng.connect() as conn:
        assert conn.scalars(select(schema.etl_runs.c.new_values).order_by(schema.etl_runs.c.id)).all() == [
            2,
            0,
            0,
        ]
        recorded = conn.execute(
            select(schema.etl_undocumented_values.c.entity_type, schema.etl_undocumented_values.c.value)
        ).all()
    eng.dispose()
    assert sorted(recorded) == [("BackupJobSession", "Idle"), ("Repository", "AmazonS3Compatible")]
    status = cli("status", "--db", url)
    assert status.returncode == 0, status.stderr
    listed = status.stdout.split("does not list", 1)[1]
    assert "BackupJobSession.state" in listed and "'Idle'" in listed and "Repository.kind" in listed
    assert "(run 1, " in listed
    as_json = json.loads(cli("status", "--db", url, "--json").stdout)
    assert {(v["column_name"], v["value"]) for v in as_json["values"]} == {
        ("state", "Idle"),
        ("kind", "AmazonS3Compatible"),
    }


def test_a_warehouse_first_loaded_before_agent_points_catches_up(db_url):
    """Agent points EM listed before the warehouse read them (an upgraded warehouse: its watermarks are
    those of the other types) are read whole on the next run: the type has no watermark yet."""
    now = datetime.now(UTC).replace(microsecond=0)
    world = World(seed=6, servers=2, jobs=1, vms_per_job=2, days=3, now=now)
    with Simulator(world) as sim:
        _run(sim, db_url)
        eng = db.engine(db_url)
        with eng.begin() as conn:
            conn.execute(schema.agent_restore_points.delete())
            conn.execute(
                schema.etl_watermarks.delete().where(
                    schema.etl_watermarks.c.entity_type == "AgentRestorePoint"
                )
            )
        world.advance(timedelta(hours=1))
        _run(sim, db_url)
        assert_equal_to_truth(eng, world.truth())
        eng.dispose()


def test_the_simulator_serves_every_type_the_loader_reads():
    """Each declared entity type (registry.TYPES) has entities at its query type in the default estate,
    with a `Type` the declaration recognises: agent restore points and NAS jobs included."""
    import xml.etree.ElementTree as ET

    import httpx

    from etl import registry

    with Simulator(World(seed=3, servers=2, jobs=1, vms_per_job=2, days=2)) as sim:
        c = httpx.Client(timeout=30)
        token = c.post(sim.url + "/sessionMngr/?v=latest", auth=("demo", "demo")).headers[
            "X-RestSvcSessionId"
        ]
        for name, entity_type in registry.TYPES.items():
            r = c.get(
                f"{sim.url}/query?type={name}&format=Entities&pageSize=5",
                headers={"X-RestSvcSessionId": token},
            )
            assert r.status_code == 200, (name, r.text[:200])
            entities = [el for wrapper in ET.fromstring(r.content)[0] for el in wrapper]  # noqa: S314
            assert entities and all(el.get("Type") in entity_type.types for el in entities), name


def test_every_type_whose_job_the_loader_works_out_marks_where_it_came_from():
    """A declaration with `job_types` (no entity names its job) gets job_uid and job_uid_source, both
    filled by the loader alone (EM's NULL never overwrites them)."""
    from etl import registry

    typed = [t for t in registry.TYPES.values() if t.job_types is not None]
    assert {t.table for t in typed} == {"backups", "replicas"}
    for t in typed:
        table = schema.table(t.table)
        for column in ("job_uid", "job_uid_source"):
            assert column in table.c and table.c[column].info.get("kept"), (t.table, column)
