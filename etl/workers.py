"""A small pool of worker processes with the shape of `concurrent.futures.Executor`.

A full load spends most of its CPU parsing and transforming pages, so long queries are read in
worker processes, off the loading process's GIL. A worker is `python -m etl.workers`: it imports
only what the functions it is given need (for page reading: lxml and the pure modules, about 30 MB,
not the loader's SQLAlchemy and HTTP stack), runs length-prefixed pickled calls from stdin and
answers on stdout, and ends when its stdin closes — so it also goes when the loading process is
killed. Functions and arguments travel by pickle: module-level functions only.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

from . import logs
from .errors import WorkerError

_FRAME = struct.Struct(">Q")  # the length of the pickled message that follows


class _Worker:
    """One worker process. Calls are written as they come (the worker reads the next one as soon
    as it has answered the last: it never waits for us); answers are read in order by a thread of
    our own and handed to the callers' futures."""

    def __init__(self) -> None:
        # the child reads pages, never EM: no variable holding a registered secret (the EM password
        # from VEEAM_EM_PASSWORD or an estate's password_env) reaches its environment
        env = {k: v for k, v in os.environ.items() if not logs.is_secret(v)}
        # the child finds this very etl package, installed or not
        home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [home, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "etl.workers"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.pending: collections.deque[Future] = collections.deque()  # asked, not yet answered, in order
        self._write = threading.Lock()
        self._gone: WorkerError | None = None  # set once no more answers will come
        self._answers = threading.Thread(
            target=self._read_answers, name=f"worker-{self.proc.pid}", daemon=True
        )
        self._answers.start()

    def submit(self, call: tuple) -> Future:
        blob = pickle.dumps(call, pickle.HIGHEST_PROTOCOL)
        future: Future = Future()
        with self._write:
            if self._gone is not None:
                future.set_exception(self._gone)
                return future
            self.pending.append(future)
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(_FRAME.pack(len(blob)) + blob)
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:  # the process is gone, or we closed it
                self.pending.remove(future)
                future.set_exception(self._failed(exc))
        return future

    def _read_answers(self) -> None:
        out = self.proc.stdout
        assert out is not None
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

    def _failed(self, exc: BaseException) -> WorkerError:
        return WorkerError(
            f"worker process {self.proc.pid} failed (exit code {self.proc.poll()}): {type(exc).__name__}: {exc}"
        )

    def close(self) -> None:
        with self._write, contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the worker ends at end of input
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._answers.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ProcessPool(Executor):
    """`processes` worker processes; `submit(fn, *args)` runs fn in the least busy one.

    Results come back as futures; an exception fn raises is raised by `future.result()`. A worker
    that dies fails its pending futures (and every later call to it) with WorkerError.
    """

    def __init__(self, processes: int):
        self._workers = [_Worker() for _ in range(max(1, processes))]
        self._shut = False

    @property
    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self._shut:
            raise RuntimeError("cannot submit to a pool that was shut down")
        worker = min(self._workers, key=lambda w: len(w.pending))
        return worker.submit((fn, args, kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the workers' input; they finish what they were given and end."""
        if self._shut:
            return
        self._shut = True
        for w in self._workers:
            w.close()


def _serve() -> None:
    """The worker process: answer calls until stdin closes; leave quietly when the loader is gone."""
    # Ctrl-C and SIGTERM are for the loading process (systemd and Kubernetes signal every process of
    # the unit); it ends the run and closes our stdin, and we end at end of input.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    frozen = False
    try:
        while True:
            head = stdin.read(_FRAME.size)
            if len(head) < _FRAME.size:
                return
            fn, args, kwargs = pickle.loads(stdin.read(_FRAME.unpack(head)[0]))  # noqa: S301 - from our parent
            try:
                answer = (True, fn(*args, **kwargs))
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who raises it
                answer = (False, exc)
            try:
                blob = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - an error we cannot send as it is: send what it says
                blob = pickle.dumps(
                    (False, WorkerError(f"{type(exc).__name__}: {exc}")), pickle.HIGHEST_PROTOCOL
                )
            stdout.write(_FRAME.pack(len(blob)) + blob)
            stdout.flush()
            if not frozen:  # the modules the calls need are imported now: keep the collector off them
                gc.freeze()
                frozen = True
    except (BrokenPipeError, ConnectionResetError):  # the loading process is gone: nobody to answer
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit


if __name__ == "__main__":
    # this module under its own name, so that what the loader pickles (etl.workers.…) resolves here
    from etl.workers import _serve as serve

    serve()
