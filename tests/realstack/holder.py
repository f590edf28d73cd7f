"""Namespace holder for a real-stack test host (run as a script, stdlib only).

Started as ``unshare -m --propagation private -- python holder.py SOCKET LOG``.  It keeps the mount
namespace alive, is a child subreaper (so daemonized QEMU processes of the host's libvirtd become
its children and are reaped at once: libvirt's `virsh destroy` waits until the QEMU pid is gone,
which takes ~1.5 s when a lazy init has to reap the zombie), and spawns daemons on request.

Protocol on the unix socket: one JSON line per connection,
``{"argv": [...], "log": PATH, "env": {...}}``, answered by ``{"pid": N}`` or ``{"error": TEXT}``.
Exit statuses of reaped processes are written to LOG.  SIGTERM ends it (default action).

All work happens in the main loop: SIGCHLD only wakes it up through a wakeup fd (a handler that
wrote to the log itself crashed with "reentrant call" when two children exited at once).
"""

import ctypes
import json
import os
import selectors
import signal
import socket
import sys
import time
import traceback

PR_SET_CHILD_SUBREAPER = 36


def main() -> None:
    sock_path, log_path = sys.argv[1], sys.argv[2]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    names: dict[int, str] = {}

    def log(text: str) -> None:
        os.write(log_fd, f"{time.strftime('%H:%M:%S')} {text}\n".encode(errors="replace"))

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            log(f"pid {pid} ({names.pop(pid, 'orphan')}) exited: {os.waitstatus_to_exitcode(status)}")

    def spawn(conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        try:
            req = json.loads(data)
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                pid = os.posix_spawn(
                    req["argv"][0], req["argv"], req.get("env", {}),
                    file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                  (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)],
                    setsid=True)
            finally:
                os.close(fd)
            names[pid] = " ".join(req["argv"])[:100]
            log(f"pid {pid} started: {names[pid]}")
            reply = {"pid": pid}
        except Exception as exc:  # report any failure to the caller
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        conn.sendall(json.dumps(reply).encode() + b"\n")

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log(f"prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler, so the wakeup fd is written

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    server.bind(sock_path)
    os.chmod(sock_path, 0o600)
    server.listen(16)
    sel = selectors.DefaultSelector()
    sel.register(server, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    log(f"holder {os.getpid()} ready")
    while True:
        try:
            for key, _ in sel.select():
                if key.fileobj is server:
                    conn, _ = server.accept()
                    with conn:
                        spawn(conn)
                else:
                    try:
                        while os.read(wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
            reap()
        except Exception:  # the holder must not die: it keeps the namespace and reaps
            log("error in holder loop:\n" + traceback.format_exc())


if __name__ == "__main__":
    main()
