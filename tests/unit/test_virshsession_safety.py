"""An interactive virsh reads its stdin with readline: a control character in a command line edits
or ends it, so a name carrying one could smuggle a second command. Such lines are refused before
anything reaches the process, and the session goes on as if nothing happened.

These run Debian's virsh on the test:/// driver (no daemon); a machine without it fails them.
"""

from __future__ import annotations

import shutil

import pytest

from virttui.drivers.errors import ConnectionFailed, DriverError
from virttui.drivers.virshsession import UnsafeCommand, VirshSession, check_command_line

URI = "test:///default"


@pytest.fixture
def session():
    assert shutil.which("virsh") is not None, "virsh is not installed (scripts/test.sh installs libvirt-clients)"
    virsh = VirshSession(URI)
    try:
        yield virsh
    finally:
        virsh.close()


def _description(session: VirshSession) -> str:
    result = session.run("desc test", 20)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("control", ["\r", "\n", "\x7f", "\x1b", "\t", "\x00", "\x15", "\x85", "\x9f"])
def test_a_command_line_with_a_control_character_is_refused_and_the_session_goes_on(session, control):
    before = _description(session)
    pid = session._proc.pid  # noqa: SLF001
    with pytest.raises(UnsafeCommand, match=f"U\\+{ord(control):04X}") as refused:
        session.run(f"dominfo test{control}desc test --new-desc PWNED", 20)
    assert not isinstance(refused.value, ConnectionFailed)  # a per-command refusal: the host stays connected
    assert isinstance(refused.value, DriverError) and "\n" not in str(refused.value)  # one line for the UI
    assert session._proc is not None and session._proc.pid == pid  # noqa: SLF001 - same virsh, not restarted
    assert _description(session) == before  # the guest untouched, the session still in step
    assert session.run("list --name", 20).stdout == "test\n"


def test_the_carriage_return_smuggling_of_a_second_command_is_refused(session):
    """The reproduced exploit: CR ends the first command for readline and runs the rest as another."""
    before = _description(session)
    with pytest.raises(UnsafeCommand):
        session.run("dominfo test\rdesc test --new-desc PWNED", 20)
    with pytest.raises(UnsafeCommand):  # DEL erasing what came before, then a command of its own
        session.run("desc test --new-desc X" + "\x7f" * 24 + "desc test --new-desc PWNED", 20)
    assert "PWNED" not in _description(session) and _description(session) == before


def test_nothing_is_written_for_a_refused_line(session, monkeypatch):
    session.run("list --name", 20)
    sent = []
    monkeypatch.setattr(session, "_exchange", lambda *args: sent.append(args))
    with pytest.raises(UnsafeCommand):
        session.run("list\r--all", 20)
    assert sent == []


def test_a_closed_or_unstarted_session_refuses_without_starting_virsh():
    virsh = VirshSession(URI)
    try:
        with pytest.raises(UnsafeCommand):
            virsh.run("snapshot-create-as test bad\rname", 20)
        assert virsh._proc is None  # noqa: SLF001
    finally:
        virsh.close()


@pytest.mark.parametrize("line", ["list --all", "desc test --new-desc 'héllo wörld ✓'", "snapshot-list test",
                                  "dominfo 'name with spaces ; and \"quotes\"'"])
def test_ordinary_lines_pass_the_check(line):
    check_command_line(URI, line)


def test_text_that_cannot_be_encoded_is_refused_too():
    with pytest.raises(UnsafeCommand):
        check_command_line(URI, "desc test --new-desc \ud800")


def test_unicode_text_still_reaches_virsh(session):
    assert session.run("desc test --new-desc 'héllo ✓'", 20).returncode == 0
    assert _description(session) == "héllo ✓"
