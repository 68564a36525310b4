"""etl.reader: reader processes hand back rows or the page's own error, and never outlive the loader."""

import os
import signal
import subprocess
import sys
import time

import pytest

from etl.errors import ParseError, ReaderError
from etl.reader import Readers


def test_a_reader_hands_back_the_error_of_a_page_and_a_dead_reader_is_a_clear_error():
    readers = Readers(1)
    try:
        with pytest.raises(ParseError, match="http://em/api/q"):
            readers.read_page(b"<QueryResult><Entities>", "BackupServer", "http://em/api/q")
        readers._all[0].proc.kill()
        readers._all[0].proc.wait()
        with pytest.raises(ReaderError, match="reader process"):
            readers.read_page(b"<QueryResult/>", "BackupServer", "http://em/api/q")
    finally:
        readers.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def test_readers_end_when_the_loading_process_is_killed():
    loader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom etl.reader import Readers\n"
            "r = Readers(2)\nprint(*r.pids, flush=True)\ntime.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pids = [int(p) for p in loader.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in pids)
    os.kill(loader.pid, signal.SIGKILL)
    loader.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in pids)  # their input closed with the loader: they went too
