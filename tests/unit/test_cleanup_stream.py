"""A remote cleanup is one streamed agent run: its outcomes, its end and its failures.

The real SSH path runs in the real-stack tests (test_leases_real.py); here a scripted stream
stands in for the channel, to reach the endings a healthy host never shows.
"""

from __future__ import annotations

import json
import shlex

import pytest
from support.cleanupstream import DIR, NAMES, ScriptedTransport, manager, outcome

from virttui.locks.agentrunner import CLEANUP_CHUNK, LeaseAgentError
from virttui.locks.naming import sanlock_lease_name


def test_cleanup_of_everything_lets_the_host_list_the_directory_and_reports_progress_per_file():
    lines = [json.dumps({"total": 3}) + "\n", outcome(NAMES[0]), outcome(NAMES[1], False, "held by a live host"),
             outcome(NAMES[2])]
    transport = ScriptedTransport(lines)
    progress = []
    report = manager(transport).cleanup(progress=lambda i, n, o: progress.append((i, n, o.name)))
    assert transport.argvs[0][-3:] == [DIR, "__LIBVIRT__DISKS__", "--all"]
    assert [o.name for o in report.outcomes] == NAMES
    assert [k.reason for k in report.kept] == ["held by a live host"]
    assert progress == [(1, 3, NAMES[0]), (2, 3, NAMES[1]), (3, 3, NAMES[2])]
    assert transport.stream_.closed


def test_an_agent_that_stops_early_is_an_error_not_a_short_report():
    transport = ScriptedTransport([json.dumps({"total": 3}) + "\n", outcome(NAMES[0])], status=None)
    with pytest.raises(LeaseAgentError, match="stopped after 1 of 3 files"):
        manager(transport).cleanup()
    named = ScriptedTransport([outcome(NAMES[0])], status=1)
    with pytest.raises(LeaseAgentError, match=r"after 1 of 3 files \(exit status 1\)"):
        manager(named).cleanup(NAMES)


def test_a_host_without_python3_gets_a_one_line_answer():
    with pytest.raises(LeaseAgentError, match="python3 is needed"):
        manager(ScriptedTransport([], status=127)).cleanup()


def test_garbage_and_fatal_lines_from_the_agent_are_one_line_errors():
    with pytest.raises(LeaseAgentError, match="unreadable output"):
        manager(ScriptedTransport(["Traceback (most recent call last):\n"])).cleanup()
    with pytest.raises(LeaseAgentError, match="unreadable output"):
        manager(ScriptedTransport(['{"total": "many"}\n'])).cleanup()
    with pytest.raises(LeaseAgentError, match="unreadable output"):
        manager(ScriptedTransport(['{"removed": true}\n'])).cleanup()
    with pytest.raises(LeaseAgentError, match="lease directory /x: No such file"):
        manager(ScriptedTransport([json.dumps({"fatal": "lease directory /x: No such file or directory"})
                                   + "\n"])).cleanup()


def test_a_full_chunk_of_names_fits_in_one_shell_argument():
    """The agent's source and the names reach `sh -c` as arguments: Linux caps one at 128 KiB."""
    transport = ScriptedTransport([])
    names = [sanlock_lease_name(f"/images/{i}.img") for i in range(CLEANUP_CHUNK + 1)]
    with pytest.raises(LeaseAgentError):
        manager(transport).cleanup(names)  # the scripted agent answers nothing: only the argv matters
    argv = transport.argvs[0]
    assert argv[-CLEANUP_CHUNK:] == names[:CLEANUP_CHUNK]
    command = "LC_ALL=C.UTF-8 " + shlex.join(argv)  # what SSHTransport.run_lines sends the session's shell
    assert len(command.encode()) < 120 * 1024
