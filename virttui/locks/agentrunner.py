"""Running virttui.locks.agent on a host: in this process for a local host, as `python3 -c AGENT`
through the host's transport for a remote one, so a scan of any number of files is one round trip.
The agent's answers are JSON; a cleanup's outcomes come one line per file, as each is done.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import cast

AGENT_MODULES = ("agent.py", "agentcleanup.py", "agentmain.py")
_IN_PACKAGE_IMPORTS = re.compile(r"^# in-package imports:.*?^# end of in-package imports\n", re.M | re.S)


def _agent_source() -> str:
    """The agent's modules as one program for a host's python3 -c: their imports of each other dropped."""
    texts = [(Path(__file__).parent / name).read_text(encoding="utf-8") for name in AGENT_MODULES]
    return "\n".join(_IN_PACKAGE_IMPORTS.sub("", text) for text in texts)


AGENT_SOURCE = _agent_source()
# Names per remote agent run.  The whole command reaches the host's shell as one argument, which
# Linux caps at 128 KiB (MAX_ARG_STRLEN); the stream's stdbuf wrapper holds it twice: 1000 md5
# names and the agent's source stay under that (tested).  A cleanup of "everything" sends no
# names: the agent lists the directory itself.
CLEANUP_CHUNK = 1000
ARG_CHUNK = 60 * 1024  # bytes of one `known=` or `reread=` argument of the agent's poll
CLEANUP_LINE_TIMEOUT = 120.0  # seconds without an outcome before a remote cleanup is given up


class LeaseAgentError(OSError):
    """The host's lease directory or sanlock daemon could not be used; str() is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.strerror = message

    def __str__(self) -> str:
        return self.strerror or ""  # always the message: set above


def _json(text: str) -> object:
    """The agent's JSON, ValueError where a host's python3 printed something else: a nesting too deep
    for the parser (RecursionError) included, and no NaN or Infinity (a size of Infinity is no size)."""
    def refuse(constant: str) -> None:
        raise ValueError(f"not a number: {constant}")

    try:
        return json.loads(text, parse_constant=refuse)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _agent_line(line: str) -> dict:
    """One line of a cleanup agent's output: {"total": N}, {"fatal": ...} or an outcome."""
    try:
        item = _json(line)
    except ValueError:
        item = None
    if (not isinstance(item, dict) or not isinstance(item.get("total", 0), int)
            or not ("total" in item or "fatal" in item or {"name", "path", "removed"} <= item.keys())):
        raise LeaseAgentError(f"lease agent: unreadable output {line.strip()[:80]!r}")
    return item


def _chunked(option: str, values: list[str]) -> list[str]:
    """option=V,V,... arguments, each under ARG_CHUNK bytes: Linux caps one argument at 128 KiB."""
    args: list[str] = []
    current: list[str] = []
    size = 0
    for value in values:
        if current and size + len(value) + 1 > ARG_CHUNK:
            args.append(f"{option}={','.join(current)}")
            current, size = [], 0
        current.append(value)
        size += len(value) + 1
    if current:
        args.append(f"{option}={','.join(current)}")
    return args


class AgentRunner:
    """Runs agent commands on the host: in-process (local) or through a transport (remote)."""

    def __init__(self, transport=None, python: str = "python3") -> None:  # noqa: ANN001 - Transport | None
        self.transport = transport
        self.python = python

    def _agent(self, *args: str) -> list[str]:
        """The remote command running the agent with args.

        The host's own /usr/bin/python3 when it has one, else python3 from the login PATH: a
        PATH that starts with pyenv shims (as on this test machine) costs ~85 ms a run.  -S: the
        agent needs only the standard library, and skipping site-packages saves ~30 ms more.
        -I: with -c the login's cwd (its home) would come first on sys.path, so a json.py there would
        run as the agent; isolated mode also ignores PYTHON* variables and the user's site-packages.
        """
        return ["sh", "-c", 'p=/usr/bin/python3; [ -x "$p" ] || p="$0"; exec "$p" "$@"', self.python,
                "-I", "-S", "-c", AGENT_SOURCE, *args]

    def scan(self, directory: str, lockspace: str, with_sanlock: bool) -> dict:
        if self.transport is None:
            from virttui.locks import agent

            return agent.scan(directory, lockspace, with_sanlock)
        argv = self._agent("scan", directory, lockspace, *(["sanlock"] if with_sanlock else []))
        return cast(dict, _json(self._run(argv) or "{}"))  # unchecked: callers catch a non-dict's errors

    def poll(self, directory: str, lockspace: str, *, with_sanlock: bool, known: set[str] | None,
             reread: list[str], identity: bool, with_heads: bool, budget: int = 0, rate: float = 0.0) -> dict:
        """The agent's poll (see agent.poll): the daemon's view, and only files that changed."""
        if self.transport is None:
            from virttui.locks import agent

            return agent.poll(directory, lockspace, with_sanlock, known, reread, identity, with_heads, budget, rate)
        args = [*(["sanlock"] if with_sanlock else []), *(["identity"] if identity else []),
                *([] if with_heads else ["no-heads"]), f"budget={int(budget)}", f"rate={float(rate):g}"]
        if known is not None:
            args += ["list", *_chunked("known", sorted(known)), *_chunked("reread", reread)]
        answer = _json(self._run(self._agent("poll", directory, lockspace, *args)) or "{}")
        return cast(dict, answer)  # unchecked: callers catch a non-dict's errors

    def cleanup(self, directory: str, lockspace: str, names: list[str] | None) -> Iterator[dict]:
        """One outcome dict per file, as each is done. names None: every file but the lockspace,
        listed on the host itself (no scan first); the first dict is then {"total": N}."""
        if self.transport is None:
            from virttui.locks import agent, agentcleanup

            if names is None:
                names, error = agent.every_candidate(directory, lockspace)
                if error:
                    yield {"fatal": error}
                    return
                yield {"total": len(names)}
            yield from agentcleanup.cleanup(directory, lockspace, names)
            return
        if names is None:
            yield from self._stream(directory, lockspace, ["--all"])
            return
        for start in range(0, len(names), CLEANUP_CHUNK):
            yield from self._stream(directory, lockspace, ["--", *names[start:start + CLEANUP_CHUNK]])

    def _stream(self, directory: str, lockspace: str, names: list[str]) -> Iterator[dict]:
        """One remote agent run, its outcomes read as they come (the progress bar moves per file)."""
        from virttui.drivers.errors import DriverError

        argv = self._agent("cleanup", directory, lockspace, *names)
        try:
            stream = self.transport.run_lines(argv, line_timeout=CLEANUP_LINE_TIMEOUT)
        except DriverError as exc:
            raise LeaseAgentError(str(exc)) from None
        expected = None if names == ["--all"] else len(names) - 1  # "--", then the names
        seen = 0
        try:
            while True:
                line = stream.readline()
                if not line:
                    break
                if not line.strip():
                    continue
                item = _agent_line(line)
                if "total" in item:
                    expected = item["total"]
                elif "fatal" not in item:
                    seen += 1
                yield item
            status = stream.exit_status()
        finally:
            stream.close()
        if status == 127:
            raise LeaseAgentError("python3 is needed on the host for lease status and cleanup")
        if expected is None or seen < expected:
            done = f"after {seen} of {expected} files" if expected is not None else "before listing the directory"
            why = f"exit status {status}" if status else f"no answer for {CLEANUP_LINE_TIMEOUT:g} s or connection lost"
            raise LeaseAgentError(f"lease agent stopped {done} ({why})")

    def _run(self, argv: list[str]) -> str:
        from virttui.drivers.errors import DriverError

        try:
            result = self.transport.run(argv, timeout=120)
        except DriverError as exc:
            raise LeaseAgentError(str(exc)) from None
        if result.returncode == 127:
            raise LeaseAgentError("python3 is needed on the host for lease status and cleanup")
        if result.returncode != 0:
            last = result.stderr.strip().splitlines()[-1:]
            raise LeaseAgentError(f"lease agent failed: {last[0] if last else f'exit status {result.returncode}'}")
        return result.stdout

