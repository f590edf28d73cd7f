"""The lease agent's cleanup: removes a lease file only while this host's sanlock daemon holds its lease.

Cleanup acquires each lease through the host's own sanlock daemon (libsanlock_client, via ctypes,
one registration per worker thread) and removes a file only while holding its lease, the rule of
virt-sanlock-cleanup, without a `sanlock client` and an `rm` process per file. Standard library
only, as old as python 3.6 (see virttui.locks.agent).
"""

import ctypes
import errno
import json
import os
import sys
import threading

# in-package imports: a host runs agent, agentcleanup and agentmain as one program, without them
from virttui.locks.agent import LEASE_NAME, PAXOS_DISK_MAGIC, SECTOR, _open_and_read_head, _open_dir

# end of in-package imports

NAME_LEN = 48
PATH_LEN = 1024
ACQUIRE_OWNER_NOWAIT = 0x8
SANLOCK_ERRORS = {  # sanlock_rv.h
    -201: "sanlock error", -202: "lease I/O timed out", -210: "lease read failed", -211: "lease write failed",
    -214: "lease is corrupt (bad checksum)", -220: "lease read failed", -221: "lease write failed",
    -223: "not a lease (bad magic)", -224: "not a lease (bad version)", -225: "not a lease (bad sector size)",
    -226: "lease belongs to another lockspace", -227: "lease names another resource",
    -229: "lease is corrupt (bad checksum)", -240: "lease version changed",
    -241: "lockspace not joined by this host", -242: "lease owner's host_id record is unreadable",
    -243: "held by a live host", -244: "held by another owner", -245: "held by another owner",
    -246: "shared lease held", -247: "held by another host (its owner may have died; retry later)",
}


class _Disk(ctypes.Structure):
    _fields_ = [("path", ctypes.c_char * PATH_LEN), ("offset", ctypes.c_uint64),
                ("pad1", ctypes.c_uint32), ("pad2", ctypes.c_uint32)]


class _Resource(ctypes.Structure):
    _fields_ = [("lockspace_name", ctypes.c_char * NAME_LEN), ("name", ctypes.c_char * NAME_LEN),
                ("lver", ctypes.c_uint64), ("data64", ctypes.c_uint64), ("data32", ctypes.c_uint32),
                ("unused", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("num_disks", ctypes.c_uint32),
                ("disks", _Disk * 1)]


def _safe_target(dfd, path, name):
    """The open fd of a lease file (name in the directory open as dfd, path for sanlock) that is safe
    to remove, or the reason it is not."""
    if not LEASE_NAME.match(name):
        return None, "not a lease file name"
    if len(os.fsencode(path)) >= PATH_LEN:  # sanlock would be handed a cut path: another file
        return None, "path too long for sanlock"
    try:
        fd, head = _open_and_read_head(dfd, name)
    except OSError as exc:
        return None, "symbolic link, not followed" if exc.errno == errno.ELOOP else (exc.strerror or str(exc))
    if len(head) < SECTOR:
        os.close(fd)
        return None, "not a lease (shorter than one sector)"
    if int.from_bytes(head[:4], "little") != PAXOS_DISK_MAGIC:
        os.close(fd)
        return None, "not a lease (bad magic)"
    return fd, ""


def _in_disk_order(directory, names):
    """names by inode number, which on ext4 and xfs follows where the files lie: neighbouring
    files freed in one journal commit get one merged discard and fewer metadata writes than in
    md5 order, which is random. One directory read, no stat per file; unknown names go last."""
    try:  # by path: only an ordering hint, and os.scandir takes no fd before python 3.7
        with os.scandir(directory) as entries:
            inodes = {entry.name: entry.inode() for entry in entries}
    except OSError:
        return names
    last = float("inf")
    return sorted(names, key=lambda name: inodes.get(name, last))


def _replaced(fd, dfd, directory, name):
    """Why the lease sanlock just acquired may not be the file open as fd ('' if it is). sanlock
    opens the path itself, so both the directory at that path and the name in it must still be
    the ones checked."""
    try:
        there = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return "vanished while checking"
    except OSError as exc:
        return exc.strerror or str(exc)
    mine = os.fstat(fd)
    if (mine.st_dev, mine.st_ino) != (there.st_dev, there.st_ino):
        return "replaced while checking"
    try:
        named, opened = os.stat(directory), os.fstat(dfd)
    except OSError as exc:
        return "lease directory: %s" % (exc.strerror or exc)
    if (named.st_dev, named.st_ino) != (opened.st_dev, opened.st_ino):
        return "lease directory replaced while checking"
    return ""


# Concurrent acquisitions: the daemon's paxos reads, not this agent, set the pace; more workers,
# or several leases per sanlock_acquire call, were no faster (docs/performance.md).
WORKERS = 8
FLUSH_EVERY = 0.1  # seconds between batches of cleanup outcomes on stdout


def cleanup(directory, lockspace, names):
    """Yield one outcome dict per file as each is done: removed only while this host held its lease.
    (Not in the order of names: a lease whose acquisition hangs on storage holds back no other.)

    Acquisitions run on up to WORKERS threads, each with its own sanlock registration (the
    daemon runs one command at a time per registered client, and a paxos acquire is mostly
    waiting on direct I/O), which is what makes this several times faster than one
    `sanlock client command` process per file.
    """
    directory = os.path.realpath(directory)
    for name in names:  # answered without the daemon: nothing of it is asked about these
        if not LEASE_NAME.match(name):
            yield {"name": name, "path": os.path.join(directory, name), "removed": False,
                   "reason": "not a lease file name"}
    names = _in_disk_order(directory, [name for name in names if LEASE_NAME.match(name)])
    if not names:
        return
    try:
        dfd = _open_dir(directory)
    except OSError as exc:
        yield {"fatal": "lease directory %s: %s" % (directory, exc.strerror or exc)}
        return
    outcomes = _cleanup_leases(dfd, directory, lockspace, names)
    try:
        for outcome in outcomes:
            yield outcome
    finally:
        outcomes.close()  # its workers stop before the fd they use is closed
        os.close(dfd)


def _cleanup_leases(dfd, directory, lockspace, names):
    """cleanup's outcomes for lease-named files, each looked up in the directory open as dfd."""
    import concurrent.futures

    try:
        lib = ctypes.CDLL("libsanlock_client.so.1", use_errno=True)
    except OSError as exc:
        yield {"fatal": "libsanlock_client is not installed: %s" % exc}
        return
    probe = lib.sanlock_register()
    if probe < 0:
        yield {"fatal": "cannot register with the sanlock daemon (%s); is it running?" % os.strerror(-probe)}
        return
    os.close(probe)
    local = threading.local()
    socks = []
    socks_lock = threading.Lock()

    def one(name):
        sock = getattr(local, "sock", None)
        if sock is None:
            sock = lib.sanlock_register()
            if sock < 0:
                return {"name": name, "path": os.path.join(directory, name), "removed": False,
                        "reason": "cannot register with the sanlock daemon: %s" % os.strerror(-sock)}
            local.sock = sock
            with socks_lock:
                socks.append(sock)
        return _cleanup_one(lib, sock, dfd, directory, lockspace, name)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(WORKERS, len(names))))
    futures = [pool.submit(one, name) for name in names]
    try:
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
    finally:
        for future in futures:
            future.cancel()  # the reader stopped: start nothing more
        pool.shutdown(wait=True)
        for sock in socks:
            os.close(sock)  # ends the registration: sanlock drops anything still held


def _cleanup_one(lib, sock, dfd, directory, lockspace, name):
    path = os.path.join(directory, name)
    fd, reason = _safe_target(dfd, path, name)
    if fd is None:
        return {"name": name, "path": path, "removed": False, "reason": reason}
    try:
        res = _Resource()
        res.lockspace_name = lockspace.encode()
        res.name = name.encode()  # 32 characters: checked by _safe_target
        res.num_disks = 1
        # sanlock takes only a path: _replaced checks afterwards that it led to this fd's file
        res.disks[0].path = os.fsencode(path)  # under PATH_LEN bytes: checked by _safe_target
        args = (ctypes.POINTER(_Resource) * 1)(ctypes.pointer(res))
        rv = lib.sanlock_acquire(sock, -1, ACQUIRE_OWNER_NOWAIT, 1, args, None)
        if rv < 0:
            why = "held by this host" if rv == -errno.EEXIST else SANLOCK_ERRORS.get(rv) or (
                os.strerror(-rv) if -rv < 200 else "sanlock error %d" % rv)
            return {"name": name, "path": path, "removed": False, "reason": why}
        try:
            why = _replaced(fd, dfd, directory, name)  # never remove a file whose lease we may not hold
            if why:
                return {"name": name, "path": path, "removed": False, "reason": why}
            os.unlink(name, dir_fd=dfd)  # while holding the lease: nobody can be using it
            return {"name": name, "path": path, "removed": True, "reason": ""}
        except OSError as exc:
            return {"name": name, "path": path, "removed": False, "reason": exc.strerror or str(exc)}
        finally:
            lib.sanlock_release(sock, -1, 0, 1, args)
    finally:
        os.close(fd)


def _write_outcomes(outcomes):
    """One JSON line per outcome, flushed every FLUSH_EVERY seconds by a timer thread: a line per
    file would be a packet per file through sshd and paramiko (CPU taken from the sanlock daemon on
    a busy host; a progress bar needs a few updates a second), and a timer, not the next outcome,
    sends what is done even while the next acquisition hangs on storage."""
    lock = threading.Lock()
    done = threading.Event()

    def flusher():
        while not done.wait(FLUSH_EVERY):
            with lock:
                sys.stdout.flush()

    thread = threading.Thread(target=flusher, daemon=True)
    thread.start()
    try:
        for outcome in outcomes:
            line = json.dumps(outcome) + "\n"
            with lock:
                sys.stdout.write(line)
    finally:
        done.set()
        thread.join()
        with lock:
            sys.stdout.flush()
