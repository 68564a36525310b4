"""The error tree of veeam-etl. Core modules raise these; only ``etl.cli`` catches them.

    VeeamEtlError
    ├── ConfigError          bad usage or configuration                     exit 2
    │   └── EstateError      an estate file that cannot be used: one line per problem
    ├── LockHeld             another run holds the (warehouse, source) lock exit 75
    ├── SourceError          Enterprise Manager could not be read           exit 1
    │   ├── AuthError        logon refused (bad credentials, role)
    │   ├── AccessDenied     403: the account's EM role may not read this (skipped, not fatal)
    │   ├── NotFound         404 for an href EM itself gave us
    │   ├── ForeignLink      an href to another origin: never requested
    │   └── ParseError       a body that is not a readable EM document (retried)
    │       ├── HostileDocument  DOCTYPE / entities / oversized: refused at once
    │       ├── UnexpectedDocument  a well-formed answer of the wrong shape (menu, Refs): never retried
    │       └── DataError    one entity whose fields cannot be read (quarantined, not fatal)
    ├── LoadError            the warehouse refused a batch (rolled back)    exit 1
    ├── MigrationError       the schema upgrade failed (rolled back)        exit 1
    └── WorkerError          a worker process died or answered nonsense     exit 1

    KeyboardInterrupt
    └── Interrupted          SIGINT or SIGTERM: handled like Ctrl-C         exit 128 + signal

Messages name what failed and where (URL, table) and never contain a secret.
"""

from __future__ import annotations

import signal


class VeeamEtlError(Exception):
    """Base of every error the tool raises on purpose."""

    exit_code = 1


class ConfigError(VeeamEtlError):
    exit_code = 2


class EstateError(ConfigError):
    """The estate file cannot be used (etl.estate). `problems` holds one line per problem, each
    naming the file, the EM and the key; the message is those lines."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class LockHeld(VeeamEtlError):
    exit_code = 75


class SourceError(VeeamEtlError):
    """Enterprise Manager did not give us what we asked for."""

    def __init__(self, message: str, url: str | None = None, status: int | None = None):
        super().__init__(message if url is None else f"{message} ({url})")
        self.url = url
        self.status = status


class AuthError(SourceError):
    pass


class AccessDenied(SourceError):
    """HTTP 403 on a query or a link: the account's EM role may not read it (em-api.md, "Roles: what
    an account may read"). A normal answer for a restricted account, never retried: the run skips
    a refused query type and records a refused link's parent from the link, as for a 404."""


class NotFound(SourceError):
    pass


class ForeignLink(SourceError):
    pass


class ParseError(SourceError):
    """A body that is not a well-formed, safe EM document. `retriable` when it may be a cut-off transfer."""

    retriable = True


class HostileDocument(ParseError):
    """A DOCTYPE, entity declaration or oversized body: refused, never retried."""

    retriable = False


class UnexpectedDocument(ParseError):
    """A well-formed EM document that is not what was asked for (the QuerySvc menu answered to a
    query, a References page, entities of another type): retrying would get the same answer."""

    retriable = False


class DataError(ParseError):
    """An entity whose fields cannot be read: quarantined by the pipeline, counted in the summary."""

    retriable = False

    def __init__(self, message: str, url: str | None = None, excerpt: str = ""):
        super().__init__(message, url)
        self.excerpt = excerpt


class LoadError(VeeamEtlError):
    """The warehouse refused a batch; the batch was rolled back."""


class MigrationError(VeeamEtlError):
    """The warehouse refused the schema upgrade (etl.db: Alembic, then the reporting views); the
    upgrade was rolled back and the warehouse is at the revision it had. Exit 1, like a failed run:
    the next run (or `veeam-etl migrate`) tries again."""


class WorkerError(VeeamEtlError):
    """A worker process (etl.workers) died or answered nonsense: not a problem of the page, never retried."""


class Interrupted(KeyboardInterrupt):
    """A signal ended the command (the CLI raises it from its SIGINT and SIGTERM handlers). A
    KeyboardInterrupt, so every stage treats SIGTERM like Ctrl-C: the batch in flight is rolled back,
    the run is recorded failed with ``str(exc)`` ("interrupted by SIGTERM"), the lock is released."""

    def __init__(self, signum: int):
        self.signum = signum
        self.signame = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.signame}")

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process a signal ended: 130 SIGINT, 143 SIGTERM."""
        return 128 + self.signum
