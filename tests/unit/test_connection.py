"""One description of an EM connection (etl.estate.Connection) for the flags and the estate file:
the same password, TLS and cleartext rules, each message naming the flag or the estate-file key;
every field reaches both the flags of `run`, `verify` and `check` and the estate file's keys."""

from __future__ import annotations

import inspect
import logging
from dataclasses import fields

import click
import pytest

from etl import cli, estate, logs
from etl.errors import ConfigError, EstateError
from etl.estate import Connection

HTTPS = "https://em01.example.com:9398/api"


def from_flags(url: str = HTTPS, **kw) -> Connection:
    return Connection.from_flags(url, "svc", **kw)


def from_estate(url: str = HTTPS, **kw) -> Connection:
    keys = kw if "password_file" in kw else {"password_env": "LAB_PW", **kw}
    lines = [f"{k} = {str(v).lower() if isinstance(v, bool) else repr(str(v))}" for k, v in keys.items()]
    text = '[[em]]\nname = "lab"\nuser = "svc"\n' + f'url = "{url}"\n' + "\n".join(lines) + "\n"
    (em,) = estate.parse(text, "/etc/veeam-etl/estate.toml").ems
    return em.connection


BUILDERS = {"flags": from_flags, "estate": from_estate}


@pytest.fixture(autouse=True)
def own_secrets(monkeypatch):
    """The secrets and public names a test registers stay with the test."""
    monkeypatch.setattr(logs, "_SECRETS", set())
    monkeypatch.setattr(logs, "_PUBLIC", set())


# how each builder's messages name a field
NAMED = {
    "flags": {"password_file": "--password-file", "ca_bundle": "--ca-bundle", "url": "--url"},
    "estate": {
        "password_file": "em 'lab': cannot read password_file",
        "ca_bundle": "em 'lab': ca_bundle",
        "url": "em 'lab': key 'url'",
    },
}


def test_every_field_is_an_estate_key_and_a_flag_of_each_command_that_reads_em():
    connection_fields = [f.name for f in fields(Connection) if f.name != "entry"]
    assert set(connection_fields) == set(estate.CONNECTION_KEYS)
    assert set(connection_fields) <= set(estate.EM_KEYS)
    flags = set(inspect.signature(Connection.from_flags).parameters) - {"cls"}
    assert flags == set(connection_fields) - {"password_env"}  # the flags' variable is VEEAM_EM_PASSWORD
    for command in (cli.run, cli.verify, cli.check):
        assert flags <= {p.name for p in command.params}, command.name
    # what --config excludes is what each EM gives in the file
    assert set(estate.PER_EM_FLAGS) == flags | {"source_name"}


def test_the_connection_flags_are_the_ones_from_flags_reads():
    @cli.options.em_connection_options
    def command(**kw):
        pass

    declared = {p.name for p in click.command()(command).params}
    assert declared == set(inspect.signature(Connection.from_flags).parameters) - {"cls"}


@pytest.mark.parametrize("source", BUILDERS)
def test_an_empty_or_missing_password_file_is_refused(source, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match=f"{empty} is empty") as caught:
        BUILDERS[source](password_file=empty).password()
    assert "password_file" in str(caught.value) or "--password-file" in str(caught.value)
    with pytest.raises(ConfigError, match=f"cannot read .*{tmp_path / 'nope'}") as caught:
        BUILDERS[source](password_file=tmp_path / "nope").password()
    assert NAMED[source]["password_file"] in str(caught.value)


@pytest.mark.parametrize("source", BUILDERS)
def test_the_password_is_a_secret_and_the_user_is_not(source, tmp_path):
    (tmp_path / "pw").write_text("s3cret-pw\r\n")
    logon = BUILDERS[source](password_file=tmp_path / "pw").open()
    assert (logon.url, logon.user, logon.password, logon.verify) == (HTTPS, "svc", "s3cret-pw", True)
    assert "s3cret-pw" not in repr(logon)
    assert logs.redact("svc logged on with s3cret-pw") == "svc logged on with ***"


@pytest.mark.parametrize("source", BUILDERS)
def test_a_password_that_holds_the_user_name_is_still_masked(source, tmp_path):
    """The user name is shown as it is, but it must not cut the password apart: "svc" inside
    "svc-Passw0rd" would leave both halves unmasked."""
    (tmp_path / "pw").write_text("svc-Passw0rd\n")
    BUILDERS[source](password_file=tmp_path / "pw").open()
    assert logs.redact("svc: refused svc-Passw0rd") == "svc: refused ***"
    assert logs.redact("as svc (password svc-Passw0rdsvc-Passw0rd)") == "as svc (password ******)"


@pytest.mark.parametrize("source", BUILDERS)
def test_a_ca_bundle_that_is_not_pem_is_refused_naming_where_it_came_from(source, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="holds no PEM certificate") as caught:
        BUILDERS[source](ca_bundle=bundle).tls()
    assert str(caught.value).startswith(f"cannot use the CA bundle {NAMED[source]['ca_bundle']} {bundle}")


@pytest.mark.parametrize(("source", "named"), [("flags", "(--insecure)"), ("estate", "(insecure = true)")])
def test_insecure_turns_verification_off_and_says_so(source, named, caplog):
    with caplog.at_level(logging.WARNING, logger="etl"):
        assert BUILDERS[source](insecure=True).tls() is False
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"TLS certificate verification is OFF {named}: anyone on the path can read" in warning
    assert warning.startswith("em 'lab': ") == (source == "estate")


@pytest.mark.parametrize(
    ("source", "refused", "allowed"),
    [
        ("flags", "--url http://em01.example.com:9399/api is plain HTTP", "(--allow-cleartext)"),
        (
            "estate",
            "em 'lab': key 'url' http://em01.example.com:9399/api is plain HTTP",
            "(allow_cleartext = true)",
        ),
    ],
)
def test_cleartext_to_another_machine_is_refused_unless_allowed_then_warned(source, refused, allowed, caplog):
    url = "http://em01.example.com:9399/api"
    with pytest.raises(ConfigError) as caught:
        BUILDERS[source](url)
    assert refused in str(caught.value) and "https://em01.example.com:9398/api" in str(caught.value)
    assert isinstance(caught.value, EstateError) == (source == "estate")
    with caplog.at_level(logging.WARNING, logger="etl"):
        assert BUILDERS[source](url, allow_cleartext=True).tls() is True
    (warning,) = [r.getMessage() for r in caplog.records]
    assert f"{url} is plain HTTP {allowed}: the EM password and session token cross the network" in warning


def test_loopback_http_needs_no_opt_in():
    for build in BUILDERS.values():
        assert build("http://127.0.0.1:9399/api").tls() is True


def test_where_the_password_comes_from_when_no_file_is_given(monkeypatch):
    monkeypatch.delenv("VEEAM_EM_PASSWORD", raising=False)
    monkeypatch.delenv("LAB_PW", raising=False)
    with pytest.raises(ConfigError, match="^no password: set VEEAM_EM_PASSWORD, use --password-file"):
        from_flags().password()
    assert from_flags().password(ask=lambda: "typed") == "typed"  # a terminal asks
    with pytest.raises(
        ConfigError, match=r"^em 'lab': environment variable LAB_PW \(password_env\) is not set"
    ):
        from_estate().password()
    monkeypatch.setenv("VEEAM_EM_PASSWORD", "from-env")
    monkeypatch.setenv("LAB_PW", "lab-env")
    assert from_flags().password() == "from-env" and from_estate().password() == "lab-env"


def test_an_unusable_connection_asks_for_no_password(tmp_path):
    asked = []
    with pytest.raises(ConfigError, match="no such file"):
        from_flags(ca_bundle=str(tmp_path / "missing.pem")).open(ask=lambda: asked.append(1) or "pw")
    assert asked == []
