"""The lease agent's reads: runs ON a host (locally, or over SSH) to scan and poll its lease directory.

One agent run replaces thousands of round trips: it lists the directory,
reads the first sector of every file, the kernel lock table and the sanlock
daemon's status, and prints it all as one JSON document; virttui parses the
leader records itself. Cleanup acquires each lease through the host's own
sanlock daemon (libsanlock_client, via ctypes, one registration for the whole
run) and removes a file only while holding its lease, exactly the rule of
virt-sanlock-cleanup, without a `sanlock client` and an `rm` process per file.

The agent is three modules: this one, agentcleanup (removing files under their leases) and
agentmain (the command line). A host runs them as one program (agentrunner.AGENT_SOURCE), so
each is self-contained on purpose: standard library only, no virttui import, so its
source can be sent to a host that has only python3 -- as old as 3.6, the
platform python of RHEL/CentOS 8 hypervisors.
"""

import errno
import fcntl
import mmap
import os
import re
import stat
import subprocess
import threading
import time

try:  # CPython's own: hashlib would load OpenSSL's libcrypto first (about 3 ms of a console start)
    from _blake2 import blake2b
except ImportError:  # a Python built without it
    from hashlib import blake2b

SECTOR = 512
RACY_SECONDS = 2.0  # wider than any filesystem's timestamp tick (NFS servers may keep whole seconds)
RACY_MARK = "~racy"  # ends the fingerprint of a racy read: no listing's fingerprint matches it
LEASE_NAME = re.compile(r"[0-9a-f]{32}\Z")  # libvirt's sanlock lease names: md5 hex; \Z, not $ ("...\n")
PAXOS_DISK_MAGIC = 0x06152010
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
    return blake2b(text.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()


def is_racy(info, now):
    """Whether the file changed so shortly before `now` that another write within the same
    timestamp tick could leave every attribute as it is (git's racy-file rule)."""
    age = now - max(info.st_mtime, info.st_ctime)
    return -RACY_SECONDS <= age < RACY_SECONDS


def read_fingerprint(name, info):
    """The fingerprint of a file just read; one no listing can match while the read is racy, so
    the next pass reads the file again."""
    return fingerprint(name, info) + (RACY_MARK if is_racy(info, time.time()) else "")


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
                     fp=read_fingerprint(name, info))
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
                     fp=read_fingerprint(name, info))
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
