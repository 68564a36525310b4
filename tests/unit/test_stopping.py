"""A signal lands wherever the main thread happens to be, library code included: the stop still
happens, and the only word of it on stderr is the CLI's own line, never a library's traceback."""

from __future__ import annotations

import gc
import logging
import logging.handlers
import os
import signal
import sys

import pytest
from sqlalchemy import create_engine, event

from etl import logs, stopping
from etl.errors import Interrupted


@pytest.fixture(autouse=True)
def _clean_stop():
    stopping.reset()
    yield
    stopping.reset()
    logging.getLogger().handlers.clear()


def test_a_signal_while_a_connection_is_rolled_back_on_return_stops_without_a_library_traceback(capsys):
    logs.setup()
    engine = create_engine("sqlite://")

    @event.listens_for(engine, "reset")
    def _signal_now(*_args):  # SIGTERM arrives while the pool rolls the connection back
        os.kill(os.getpid(), signal.SIGTERM)

    with (
        stopping.handling_signals(),
        pytest.raises(Interrupted, match="interrupted by SIGTERM"),
        engine.connect(),
    ):
        pass
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Exception during reset" not in err, err
    assert stopping.requested() is not None  # every loading thread stops at its next request
    engine.dispose()


def test_a_signal_inside_a_finalizer_is_taken_as_asked_for_quietly_and_stops_at_the_next_request(
    capsys, monkeypatch
):
    monkeypatch.setattr("sys.unraisablehook", sys.__unraisablehook__)  # Python's: prints a traceback

    class SignalledWhileFinalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)

    with stopping.handling_signals():
        obj = SignalledWhileFinalized()
        del obj
        gc.collect()
        with pytest.raises(Interrupted, match="SIGTERM"):
            stopping.check()  # what the client does before its next request
    assert "Traceback" not in capsys.readouterr().err


def test_anything_else_raised_in_a_finalizer_still_reaches_the_previous_hook(monkeypatch):
    seen: list[BaseException] = []
    monkeypatch.setattr("sys.unraisablehook", lambda u: seen.append(u.exc_value))

    class Broken:
        def __del__(self):
            raise ValueError("a finalizer bug")

    with stopping.handling_signals():
        obj = Broken()
        del obj
        gc.collect()
    assert [type(e) for e in seen] == [ValueError]


def test_a_logged_stop_keeps_an_etl_message_without_its_traceback_and_drops_a_librarys(capsys):
    logs.setup()
    try:
        raise Interrupted(signal.SIGINT)
    except Interrupted:
        logging.getLogger("sqlalchemy.pool.impl.QueuePool").error("Exception during reset", exc_info=True)
        logging.getLogger("etl.pipeline").warning("run 3 stopped", exc_info=True)
        logging.getLogger("etl.pipeline").error("a real failure")
    err = capsys.readouterr().err
    assert "Exception during reset" not in err and "Traceback" not in err, err
    assert "run 3 stopped" in err and "a real failure" in err, err


def test_a_stop_chained_to_a_real_error_is_reported_with_that_error(capsys):
    logs.setup()
    try:
        try:
            raise ConnectionResetError("the server closed the connection")
        except ConnectionResetError:
            raise Interrupted(signal.SIGTERM)  # noqa: B904 - implicitly chained, as a signal lands
    except Interrupted:
        logging.getLogger("sqlalchemy.pool.impl.QueuePool").error("Exception during reset", exc_info=True)
    err = capsys.readouterr().err
    assert "Exception during reset" in err and "ConnectionResetError" in err, err


def test_a_stop_left_out_of_our_log_line_is_still_whole_for_any_other_handler(capsys):
    logs.setup()
    other = logging.handlers.MemoryHandler(capacity=10)
    logging.getLogger().addHandler(other)
    try:
        raise Interrupted(signal.SIGINT)
    except Interrupted:
        logging.getLogger("etl.pipeline").warning("run 3 stopped", exc_info=True)
    assert "Traceback" not in capsys.readouterr().err
    (record,) = other.buffer
    assert isinstance(record.exc_info[1], Interrupted)  # the record itself is not stripped
    assert "Traceback" in logging.Formatter().format(record)


def test_a_stop_taken_in_a_finalizer_after_the_last_check_is_said_when_the_command_finishes(caplog):
    with caplog.at_level(logging.WARNING, logger="etl.stopping"), stopping.handling_signals():
        stopping.request(signal.SIGTERM)  # what the handler does before its raise is swallowed
    assert "SIGTERM arrived as the command was finishing; it finished" in caplog.text
