"""Reading query pages: body in, rows, rejects and paging out; here or in reader processes.

A full load spends most of its CPU parsing and transforming pages, so long queries are read in
separate processes, off the loading process's GIL. A reader process is `python -m etl.reader`: it
imports only lxml and the pure modules it needs (about 30 MB, not the loader's SQLAlchemy and
HTTP stack), reads length-prefixed pickled requests on stdin and answers on stdout, and ends when
its stdin closes (so it also goes when the loading process is killed). Knows no HTTP and no
warehouse.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import NamedTuple

from lxml import etree

from . import parse, transform
from .errors import DataError, ReaderError
from .transform import Entity, Rows

EXCERPT = 1000
_FRAME = struct.Struct(">Q")  # the length of the pickled message that follows


class Reject(NamedTuple):
    """An entity whose fields could not be read: quarantined, counted, never half-written."""

    type_name: str
    href: str
    uid: str | None
    error: str
    excerpt: str


def read(root: etree._Element, type_name: str, url: str) -> tuple[list[Entity], list[Reject]]:
    """Every `type_name` entity in a document, transformed; unreadable ones become Rejects."""
    entities, rejects = [], []
    for el in parse.entities(root, type_name):
        try:
            entities.append(transform.entity(type_name, el))
        except DataError as exc:
            excerpt = etree.tostring(el, encoding="unicode")[:EXCERPT]
            rejects.append(Reject(type_name, el.get("Href") or url, el.get("UID"), str(exc), excerpt))
    return entities, rejects


def read_page(body: bytes, type_name: str, url: str) -> tuple[Rows, list[Reject], parse.Paging]:
    """A query page's body in, its rows, rejects and paging out. What it returns is compact: in a
    reader process, pickling it back is part of the price of every page."""
    root = parse.em_document(body, url)
    entities, rejects = read(root, type_name, url)
    return transform.rows_of(transform.ENTITY_TYPES[type_name][0], entities), rejects, parse.paging(root, url)


class _Process:
    """One reader process. Requests are written as they come (the process reads the next one as
    soon as it has answered the last: it never waits for us), answers are read in order by a
    thread of our own and handed to the callers."""

    def __init__(self):
        env = dict(os.environ)  # the child finds this very etl package, installed or not
        home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [home, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "etl.reader"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.pending: collections.deque[Future] = collections.deque()  # asked, not yet answered, in order
        self._write = threading.Lock()
        self._gone: ReaderError | None = None  # set once no more answers will come
        self._answers = threading.Thread(
            target=self._read_answers, name=f"reader-{self.proc.pid}", daemon=True
        )
        self._answers.start()

    def submit(self, *args) -> Future:
        blob = pickle.dumps(args, pickle.HIGHEST_PROTOCOL)
        future: Future = Future()
        with self._write:
            if self._gone is not None:
                future.set_exception(self._gone)
                return future
            self.pending.append(future)
            try:
                self.proc.stdin.write(_FRAME.pack(len(blob)) + blob)
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:  # the process is gone, or we closed it
                self.pending.remove(future)
                future.set_exception(self._failed(exc))
        return future

    def _read_answers(self) -> None:
        out = self.proc.stdout
        try:
            while True:
                head = out.read(_FRAME.size)
                if len(head) < _FRAME.size:
                    raise EOFError("no more answers")
                ok, value = pickle.loads(out.read(_FRAME.unpack(head)[0]))  # noqa: S301 - our own child's
                future = self.pending.popleft()
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except Exception as exc:  # noqa: BLE001 - whatever it is, no more answers will come: fail the callers
            with self._write:
                self._gone = self._failed(exc)
                while self.pending:
                    self.pending.popleft().set_exception(self._gone)

    def _failed(self, exc: BaseException) -> ReaderError:
        return ReaderError(
            f"reader process {self.proc.pid} failed (exit code {self.proc.poll()}): "
            f"{type(exc).__name__}: {exc}"
        )

    def close(self) -> None:
        with self._write, contextlib.suppress(OSError):
            self.proc.stdin.close()  # the reader ends at end of input
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._answers.join(timeout=10)
        self.proc.stdout.close()


class Readers:
    """A few reader processes shared by the fetching threads: `read_page` runs in the least busy."""

    def __init__(self, processes: int):
        self._all = [_Process() for _ in range(processes)]

    @property
    def pids(self) -> list[int]:
        return [p.proc.pid for p in self._all]

    def read_page(self, body: bytes, type_name: str, url: str) -> tuple[Rows, list[Reject], parse.Paging]:
        process = min(self._all, key=lambda p: len(p.pending))
        return process.submit(body, type_name, url).result()

    def close(self) -> None:
        for p in self._all:
            p.close()


def _serve() -> None:
    """The reader process: answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the loading process, which closes our stdin
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(_FRAME.size)
        if len(head) < _FRAME.size:
            return
        body, type_name, url = pickle.loads(stdin.read(_FRAME.unpack(head)[0]))  # noqa: S301 - from our parent
        try:
            answer = (True, read_page(body, type_name, url))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
            answer = (False, exc)
        try:
            blob = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an error we cannot send as it is: send what it says
            blob = pickle.dumps((False, ReaderError(f"{type(exc).__name__}: {exc}")), pickle.HIGHEST_PROTOCOL)
        stdout.write(_FRAME.pack(len(blob)) + blob)
        stdout.flush()


if __name__ == "__main__":
    from etl.reader import _serve as serve  # this module under its own name: what we pickle names etl.reader

    serve()
