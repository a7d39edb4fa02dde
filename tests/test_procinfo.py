"""Process identity by host, pid and start time."""

import os
import subprocess
import sys

from logbook.engine.procinfo import HOST, is_alive, process_start_time


def test_a_live_process_is_alive_only_with_its_own_start_time():
    start = process_start_time(os.getpid())
    assert start is not None
    assert is_alive(os.getpid(), start) is True
    assert is_alive(os.getpid(), start + 1) is False  # same pid, another process: a reused pid


def test_an_ended_process_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start_time(proc.pid)
    proc.wait()
    assert is_alive(proc.pid, start) is False
    assert is_alive(None, None) is False


def test_another_host_cannot_be_checked():
    assert is_alive(os.getpid(), None, host=HOST + "-elsewhere") is None
