"""Reading the ssh config with paramiko's parser, where no OpenSSH client is installed to resolve it.

paramiko's parser does not follow Include, knows only some Match criteria (it treats any other as
matching) and keeps only the first CertificateFile that applies (ssh offers them all): each such
directive is named in a warning, once per file for the run, never silently ignored. HashKnownHosts
and IdentityAgent it reads as ssh does (first value wins), sshtarget expanding them. A `Match exec`
fails the host instead: paramiko would run it through a shell, and virttui runs one only through
OpenSSH's own resolver (sshresolve). Imports paramiko: only virttui.drivers.ssh's
modules import this one.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import threading

import paramiko

from virttui.boundedread import read_bounded
from virttui.drivers.sshresolve import Directives, ResolveFailed

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

_SETTING_RE = re.compile(r"(\w+)(?:\s*=\s*|\s+)(.+)")  # paramiko's own SETTINGS_REGEX
_MATCH_KNOWN = frozenset({"all", "canonical", "final", "host", "originalhost", "user", "localuser"})
_MATCH_BARE = frozenset({"all", "canonical", "final"})  # criteria without an argument

_warned: set[str] = set()
_warned_lock = threading.Lock()


def unhonoured(text: str) -> tuple[list[str], bool]:
    """The directives of a config paramiko's parser cannot honour, each named once, and whether it
    has a `Match exec`."""
    names: list[str] = []
    has_exec = False
    certificates = 0
    for line in text.splitlines():
        line = line.strip()
        found = _SETTING_RE.match(line) if line and not line.startswith("#") else None
        if found is None:
            continue
        keyword = found.group(1).lower()
        if keyword == "include":
            names.append("Include")
        elif keyword == "certificatefile":
            certificates += 1
            if certificates == 2:  # may apply to different hosts; then the warning is only cautious
                names.append("more than one CertificateFile (it keeps the first that applies)")
        elif keyword == "match":
            try:
                words = shlex.split(found.group(2))
            except ValueError:
                continue  # paramiko refuses the line itself when it parses the file
            while words:
                criterion = words.pop(0).lstrip("!").lower()
                if criterion not in _MATCH_BARE and words:
                    words.pop(0)
                if criterion == "exec":
                    has_exec = True
                elif criterion not in _MATCH_KNOWN:
                    names.append(f"Match {criterion}")
    return list(dict.fromkeys(names)), has_exec


def fallback_directives(path: str, host: str) -> Directives:
    """What paramiko's parser makes of the config at path (absent: none) for host, keywords lowercase."""
    try:
        text = read_bounded(path).decode("utf-8", "replace") if os.path.exists(path) else ""
    except OSError as exc:
        raise ResolveFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    names, has_exec = unhonoured(text)
    if has_exec:
        raise ResolveFailed(f"{path} has a Match exec, which virttui evaluates only through OpenSSH's "
                            f"`ssh -G`, and no OpenSSH client (ssh) is installed")
    if names:
        _warn_once(path, names)
    try:
        entry = paramiko.SSHConfig.from_text(text).lookup(host)
    except (paramiko.SSHException, ValueError) as exc:
        raise ResolveFailed(f"{path}: {exc}") from None
    directives: Directives = {}
    for keyword, value in entry.items():
        if value is not None:
            directives[keyword] = [str(item) for item in value] if isinstance(value, list) else [str(value)]
    return directives


def _warn_once(path: str, names: list[str]) -> None:
    with _warned_lock:
        if path in _warned:
            return
        _warned.add(path)
    log.warning("no OpenSSH client (ssh) found: %s is read with paramiko's parser, which cannot honour %s",
                path, ", ".join(names))


def forget_warnings() -> None:
    """Warn again about every file (a new run, as far as warnings go)."""
    with _warned_lock:
        _warned.clear()
