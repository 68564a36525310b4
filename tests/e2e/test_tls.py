"""TLS against a simulator serving HTTPS with a certificate made for the test (trustme): verification
is on by default and a refused certificate fails at once with a clear message; `--ca-bundle` (or
VEEAM_EM_CA_BUNDLE) trusts EM's CA; `--insecure` works only when asked for, and warns.
"""

from __future__ import annotations

import ssl

import pytest
import trustme
from sqlalchemy import func, select

from etl import db, schema
from etl.simulator import Simulator, World
from helpers import assert_equal_to_truth, cli


def world() -> World:
    return World(seed=4, servers=1, jobs=2, vms_per_job=2, days=2)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def bundle(ca, tmp_path_factory):
    path = tmp_path_factory.mktemp("tls") / "em-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def https(ca, *names: str) -> Simulator:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*(names or ("127.0.0.1", "localhost"))).configure_cert(ctx)
    return Simulator(world(), ssl_context=ctx)


def test_simulator_serves_https(ca):
    with https(ca) as sim:
        assert sim.url.startswith("https://127.0.0.1:")


def test_untrusted_certificate_fails_at_once_with_a_clear_message(ca, tmp_path):
    with https(ca) as sim:
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", f"sqlite:///{tmp_path}/w.db")
    assert done.returncode == 1, done.stderr
    assert "TLS certificate of 127.0.0.1" in done.stderr and "was not accepted" in done.stderr
    assert "--ca-bundle" in done.stderr and "Traceback" not in done.stderr
    assert "retrying" not in done.stderr  # not retried
    assert sim.requests == 0  # the handshake failed: no request, no password sent
    with db.engine(f"sqlite:///{tmp_path}/w.db").connect() as conn:
        failed = conn.execute(select(schema.etl_runs.c.status, schema.etl_runs.c.retries)).one()
    assert tuple(failed) == ("failed", 0)  # one attempt, not the retry budget


def test_ca_bundle_flag_and_environment(ca, bundle, tmp_path):
    with https(ca) as sim:
        url = f"sqlite:///{tmp_path}/w.db"
        done = cli("run", "--url", sim.url, "--user", "demo", "--db", url, "--ca-bundle", bundle)
        assert done.returncode == 0, done.stderr
        assert "verification is OFF" not in done.stderr
        eng = db.engine(url)
        assert_equal_to_truth(eng, sim.truth())
        eng.dispose()
        again = cli("run", "--url", sim.url, "--user", "demo", "--db", url, VEEAM_EM_CA_BUNDLE=bundle)
        assert again.returncode == 0, again.stderr


def test_insecure_only_by_flag_and_loudly(ca, tmp_path):
    with https(ca) as sim:
        done = cli(
            "run", "--url", sim.url, "--user", "demo", "--db", f"sqlite:///{tmp_path}/w.db", "--insecure"
        )
    assert done.returncode == 0, done.stderr
    assert "TLS certificate verification is OFF" in done.stderr


def test_certificate_for_another_name_is_refused(ca, bundle, tmp_path):
    with https(ca, "em01.lab.local") as sim:  # trusted CA, but not issued for 127.0.0.1
        done = cli(
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            f"sqlite:///{tmp_path}/w.db",
            "--ca-bundle",
            bundle,
        )
    assert done.returncode == 1 and "was not accepted" in done.stderr and "mismatch" in done.stderr
    assert "Traceback" not in done.stderr


def test_bundle_of_another_ca_is_refused(ca, tmp_path):
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with https(ca) as sim:
        done = cli(
            "run",
            "--url",
            sim.url,
            "--user",
            "demo",
            "--db",
            f"sqlite:///{tmp_path}/w.db",
            "--ca-bundle",
            str(other),
        )
    assert done.returncode == 1 and "was not accepted" in done.stderr


def test_unreadable_bundle_is_a_configuration_error(tmp_path):
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    done = cli(
        "run",
        "--url",
        "https://127.0.0.1:9/api",
        "--user",
        "demo",
        "--db",
        f"sqlite:///{tmp_path}/w.db",
        "--ca-bundle",
        str(junk),
    )
    assert (
        done.returncode == 2 and "cannot use the CA bundle" in done.stderr and "Traceback" not in done.stderr
    )
    assert "no PEM certificate" in done.stderr.splitlines()[-1]
    # checked before the run starts: an existing warehouse records no failed run for it
    url = f"sqlite:///{tmp_path}/w.db"
    assert cli("migrate", "--db", url).returncode == 0
    again = cli(
        "run", "--url", "https://127.0.0.1:9/api", "--user", "demo", "--db", url, "--ca-bundle", str(junk)
    )
    assert again.returncode == 2, again.stderr
    eng = db.engine(url)
    with eng.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(schema.etl_runs)) == 0
    eng.dispose()
