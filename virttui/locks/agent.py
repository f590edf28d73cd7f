"""The lease agent: runs ON a host (locally, or as `python3 -c` over SSH) to scan and clean its lease directory.

One agent run replaces thousands of round trips: it lists the directory,
reads the first sector of every file, the kernel lock table and the sanlock
daemon's status, and prints it all as one JSON document; virttui parses the
leader records itself. Cleanup acquires each lease through the host's own
sanlock daemon (libsanlock_client, via ctypes, one registration for the whole
run) and removes a file only while holding its lease, exactly the rule of
virt-sanlock-cleanup, without a `sanlock client` and an `rm` process per file.

Self-contained on purpose: standard library only, no virttui import, so its
source can be sent to a host that has only python3 -- as old as 3.6, the
platform python of RHEL/CentOS 8 hypervisors.
"""

import ctypes
import errno
import fcntl
import hashlib
import json
import mmap
import os
import re
import stat
import subprocess
import sys
import threading
import time

SECTOR = 512
NAME_LEN = 48
PATH_LEN = 1024
ACQUIRE_OWNER_NOWAIT = 0x8
LEASE_NAME = re.compile(r"[0-9a-f]{32}\Z")  # libvirt's sanlock lease names: md5 hex; \Z, not $ ("...\n")
PAXOS_DISK_MAGIC = 0x06152010
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


def _run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    if proc.returncode != 0:
        return None, (proc.stderr.decode("utf-8", "replace").strip() or "exit status %d" % proc.returncode)
    return proc.stdout.decode("utf-8", "replace"), ""


def _locked_inodes():
    """(major, minor, inode) of every file with a lock in the kernel's table."""
    found = []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            for line in handle:
                for word in line.split():
                    parts = word.split(":")
                    if len(parts) == 3 and all(p and all(c in "0123456789abcdef" for c in p.lower()) for p in parts):
                        found.append([int(parts[0], 16), int(parts[1], 16), int(parts[2])])
                        break
    except OSError:
        pass
    return found


HEAD_READ = 4096  # one O_DIRECT read: a whole logical block on 512-byte and 4K-sector disks alike
_buffers = threading.local()


def _open_dir(directory):
    """The lease directory's fd: every entry is looked up in it (dir_fd), never by a path that a
    renamed or swapped component could lead elsewhere between two steps."""
    # The configured directory itself may be a symlink (to an NFS mount, say): the operator chose it,
    # so it is followed, once, here; entries inside it never are.
    return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _open_and_read_head(dfd, name):
    """Open a lease file (name in the directory open as dfd) and read its first sector as sanlock
    does, past the page cache (O_DIRECT): on NFS a cached leader can be stale, and cached pages cost
    the daemon an invalidation on each direct write. Where the filesystem refuses O_DIRECT, a
    buffered read. Returns (fd, head)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    # never open a device node: its driver's open acts (a tape rewinds)
    seen = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    if stat.S_ISLNK(seen.st_mode):
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
    if not stat.S_ISREG(seen.st_mode):
        raise OSError(errno.EINVAL, "not a regular file")
    try:
        fd = os.open(name, flags | os.O_DIRECT, dir_fd=dfd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        fd = os.open(name, flags, dir_fd=dfd)
    try:
        info = os.fstat(fd)
        if (info.st_dev, info.st_ino) != (seen.st_dev, seen.st_ino):
            raise OSError(errno.EAGAIN, "replaced while being read")
        buf = getattr(_buffers, "buf", None)
        if buf is None:
            buf = _buffers.buf = mmap.mmap(-1, HEAD_READ)  # page-aligned, as O_DIRECT wants
        try:
            count = os.readv(fd, [buf])  # at offset 0, just opened (a positioned read needs python 3.7)
            return fd, bytes(buf[:min(count, SECTOR)])
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
            return fd, os.pread(fd, SECTOR, 0)
    except BaseException:
        os.close(fd)
        raise


def fingerprint(name, info):
    """What changes when a lease file is written, replaced or resized, in 12 hex digits: a caller that
    holds a file's fingerprint has its current leader record and need not read it again."""
    text = "%s/%d/%r/%r/%d" % (name, info.st_size, info.st_mtime, info.st_ctime, info.st_ino)
    return hashlib.blake2b(text.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def _read_head(dfd, name, with_head=True):
    """The file's first sector. Closing it would drop POSIX locks THIS process held on it; the
    agent and virttui hold none (lockd's locks belong to virtlockd), so scanning never frees a lease."""
    entry = {"name": name}
    if not with_head:  # lockd: no leader record, only which inode the name is
        try:
            info = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError as exc:
            entry["error"] = exc.strerror
            return entry
        entry.update(size=info.st_size, dev=[os.major(info.st_dev), os.minor(info.st_dev)], ino=info.st_ino,
                     fp=fingerprint(name, info))
        if not stat.S_ISREG(info.st_mode):
            entry["error"] = "not a regular file"
        return entry
    try:
        fd, head = _open_and_read_head(dfd, name)
    except OSError as exc:
        entry["error"] = "symbolic link, not followed" if exc.errno == errno.ELOOP else exc.strerror
        return entry
    try:
        info = os.fstat(fd)
        entry.update(size=info.st_size, dev=[os.major(info.st_dev), os.minor(info.st_dev)], ino=info.st_ino,
                     fp=fingerprint(name, info))
        entry["head"] = head.hex()
    except OSError as exc:
        entry["error"] = exc.strerror
    finally:
        os.close(fd)
    return entry


def scan(directory, lockspace, with_sanlock):
    """Everything lease status needs from this host, as one JSON-able dict."""
    result = {"dir": directory, "files": [], "error": ""}
    try:
        dfd = _open_dir(directory)
    except OSError as exc:
        result["error"] = exc.strerror or str(exc)
        return result
    try:
        try:
            names = sorted(os.listdir(dfd))
        except OSError as exc:
            result["error"] = exc.strerror or str(exc)
            return result
        result["locks"] = _locked_inodes()  # first: reading the files can't change what others hold
        result["files"] = [_read_head(dfd, name) for name in names]
    finally:
        os.close(dfd)
    if with_sanlock:
        _daemon(result, lockspace)
    return result


def _daemon(result, lockspace):
    """What the host's sanlock daemon holds and which host_ids it sees live: no storage I/O."""
    result["status"], result["status_error"] = _run(["sanlock", "client", "status"])
    # each host_id's state (LIVE, FAIL, DEAD...) and generation; host_status only where gets can't
    result["hosts"], result["hosts_error"] = _run(["sanlock", "client", "gets", "-h", "1"])
    if result["hosts_error"]:
        result["host_status"], result["host_status_error"] = _run(
            ["sanlock", "client", "host_status", "-s", lockspace])


def poll(directory, lockspace, with_sanlock, known=None, reread=(), identity=False, with_heads=True,
         budget=0, rate=0.0):
    """One poll's worth: the daemon's view (sanlock's answers, the kernel lock table), and only
    what can have changed on storage. known: None reads no file at all; else the fingerprints the
    caller holds, and the directory is listed with each entry's fingerprint, the first sector read
    only of files whose fingerprint is not known or that are named in reread. identity: also the
    lockspace file's first sector. "reads" counts the sectors read.

    budget: at most this many first sectors read (0: no limit); files left unread are listed with
    "pending". rate: at most this many reads a second, spaced out, so that sanlock's own renewals
    on the same storage never queue behind a burst of them (0: as fast as the storage answers)."""
    # the kernel lock table is what virtlockd holds; a sanlock host's daemon says what it holds
    result = {"dir": directory, "error": "", "reads": 0, "locks": [] if with_sanlock else _locked_inodes()}
    # the directory is opened on every poll (a lookup, no data read): a host that lost its mount says so
    try:
        dfd = _open_dir(directory)
    except OSError as exc:
        result["error"] = exc.strerror or str(exc)
        return result
    try:
        if identity:
            result["lockspace_head"] = _read_head(dfd, lockspace)
            result["reads"] += 1
        if known is not None:
            pacer = _Pacer(rate, budget)
            result["files"] = _changed_entries(dfd, lockspace, known, set(reread), with_heads, result, pacer)
    except OSError as exc:
        result["error"] = exc.strerror or str(exc)
        return result
    finally:
        os.close(dfd)
    if with_sanlock:
        _daemon(result, lockspace)
    return result


class _Pacer:
    """Spaces reads at most `rate` a second, and stops after `budget` of them."""

    def __init__(self, rate, budget):
        self.gap = 1.0 / rate if rate and rate > 0 else 0.0
        self.left = budget if budget and budget > 0 else -1
        self.next_at = 0.0

    def take(self):
        """Whether one more read may be made now (after waiting its turn)."""
        if self.left == 0:
            return False
        self.left -= 1
        if self.gap:
            now = time.monotonic()
            if now < self.next_at:
                time.sleep(self.next_at - now)
            self.next_at = max(now, self.next_at) + self.gap
        return True


def _changed_entries(dfd, lockspace, known, reread, with_heads, result, pacer):
    entries = []
    wanted = []  # files to read: changed ones first, then those named to be read again
    for name in sorted(os.listdir(dfd)):
        if name == lockspace:
            continue
        try:
            info = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except OSError:
            continue  # gone since the listing
        fp = fingerprint(name, info)
        if fp in known and name not in reread:
            entries.append({"name": name, "fp": fp})
        else:
            wanted.append((fp in known, name, fp))
    for _again, name, fp in sorted(wanted):
        if with_heads and not pacer.take():
            entries.append({"name": name, "fp": fp, "pending": True})
            continue
        entry = _read_head(dfd, name, with_heads)
        entry.setdefault("fp", fp)
        if with_heads and "head" in entry:
            result["reads"] += 1
        entries.append(entry)
    return entries


def every_candidate(directory, lockspace):
    """Every name in the lease directory but the lockspace file, sorted; or the reason it can't be listed."""
    try:
        names = sorted(os.listdir(directory))
    except OSError as exc:
        return [], "lease directory %s: %s" % (directory, exc.strerror or exc)
    return [name for name in names if name != lockspace], ""


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


def main(argv):
    if len(argv) >= 3 and argv[0] == "scan":
        print(json.dumps(scan(argv[1], argv[2], len(argv) > 3 and argv[3] == "sanlock")))
        return 0
    if len(argv) >= 3 and argv[0] == "poll":
        options = _poll_options(argv[3:])
        if options is not None:
            print(json.dumps(poll(argv[1], argv[2], **options)))
            return 0
    if len(argv) >= 4 and argv[0] == "cleanup" and (argv[3:] == ["--all"] or argv[3] == "--"):
        if argv[3] == "--all":  # a file named "--all" arrives as "-- --all", never as this
            names, error = every_candidate(argv[1], argv[2])
            if error:
                print(json.dumps({"fatal": error}))
                return 0
            print(json.dumps({"total": len(names)}), flush=True)
        else:
            names = argv[4:]
        _write_outcomes(cleanup(argv[1], argv[2], names))
        return 0
    print(json.dumps({"fatal": "usage: agent scan DIR LOCKSPACE [sanlock] | poll DIR LOCKSPACE [OPTION...] | "
                                "cleanup DIR LOCKSPACE (--all|-- NAME...)"}))
    return 2


def _poll_options(args):
    """poll's options: sanlock, identity, no-heads, list (the directory, knowing no fingerprint),
    known=FP,FP... and reread=NAME,NAME... (each may repeat: one argument stays under Linux's cap)."""
    options = {"with_sanlock": False, "known": None, "reread": [], "identity": False, "with_heads": True,
               "budget": 0, "rate": 0.0}
    for arg in args:
        key, _, value = arg.partition("=")
        if arg == "sanlock":
            options["with_sanlock"] = True
        elif arg == "identity":
            options["identity"] = True
        elif arg == "no-heads":
            options["with_heads"] = False
        elif arg == "list":
            options["known"] = options["known"] or set()
        elif key == "known":
            options["known"] = (options["known"] or set()) | set(filter(None, value.split(",")))
        elif key == "reread":
            options["reread"].extend(filter(None, value.split(",")))
        elif key in ("budget", "rate") and value.replace(".", "", 1).isdigit():
            options[key] = float(value) if key == "rate" else int(value)
        else:
            return None
    return options


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
