"""PID 1 of a sandbox: builds the private file system, brings up loopback, then runs the payload unprivileged.

Started by the runner as `unshare --mount --pid --net --ipc --uts --fork --kill-child python -I -S init.py
SPEC.json` (real root on the host, so it may mount). Standard library only: it runs before any isolation
exists and must not import project code. Steps:

1. a tmpfs becomes the new root; only the binds named in the spec appear in it (read-only unless said),
   plus a fresh /proc (this PID namespace only), a minimal /dev, a private /tmp and /dev/shm;
2. the loopback interface is brought up (the only interface of the new network namespace);
3. this process chroots into the new root and forks the payload, which drops to an unprivileged uid/gid
   with no supplementary groups, sets `no_new_privs` and its rlimits, then execs with a scrubbed env;
4. as PID 1 it reaps every orphan; when the payload exits, everything left in the namespace is killed.
   SIGTERM is forwarded to every process of the namespace;
5. it watches the lifeline (a socket whose other end only the auditor holds, fd `lifeline_fd` of the spec):
   end-of-file there means the auditor is gone, however it died, and init kills the namespace (SIGKILL to
   every process, then its own exit, after which the kernel kills whatever is left). On the same socket it
   reports when the payload started (`{"event": "started"}`, with CLOCK_MONOTONIC, shared with the host) and
   how it ended (`{"event": "exited", "status": code or -signal}`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import glob
import json
import os
import resource
import signal
import socket
import stat
import struct
import sys
import threading
import time

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)


def fail(message: str) -> None:
    sys.stderr.write(f"golfaudit-sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(125)


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    if _libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        fail(f"mount {src} -> {dst} ({fstype}) failed: {os.strerror(err)}")


def make_mountpoint(path: str, like_file: bool) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if like_file:
        if not os.path.exists(path):
            with open(path, "w"):
                pass
    else:
        os.makedirs(path, exist_ok=True)


def bind(src: str, dst: str, readonly: bool) -> None:
    is_file = not stat.S_ISDIR(os.stat(src).st_mode)
    make_mountpoint(dst, is_file)
    mount(src, dst, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | (MS_RDONLY if readonly else 0)
    mount(None, dst, None, flags)


def build_root(spec: dict) -> str:
    root = spec["root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=16m")
    os.makedirs(root + "/tmp")           # first, so binds below /tmp (a --target site dir) stay visible
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec.get('tmp_size', '1g')}")
    for entry in spec["binds"]:
        src, dst = entry["src"], root + entry["dst"]
        if os.path.islink(src) and entry.get("keep_links", True) and os.path.dirname(entry["dst"]) == "/":
            os.symlink(os.readlink(src), dst)            # /bin -> usr/bin and the like
            continue
        if not os.path.exists(src):
            continue
        bind(src, dst, entry.get("ro", True))
    os.makedirs(root + "/proc", exist_ok=True)
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = root + "/dev"
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=64k")
    extra = [p for pattern in spec.get("devices", []) for p in sorted(glob.glob(pattern))]
    for node in [f"/dev/{d}" for d in DEVICES] + extra:
        if os.path.exists(node):
            bind(node, root + node, readonly=False)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(dev + "/shm")
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={spec.get('shm_size', '1g')}")
    mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return root


def loopback_up() -> None:
    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | IFF_UP))


def exec_payload(spec: dict) -> None:
    """In the forked child: drop privileges, set limits, exec. Never returns."""
    try:
        os.chdir(spec["cwd"])
        for name, value in spec.get("rlimits", {}).items():
            resource.setrlimit(getattr(resource, name), (value, value))
        uid, gid = spec["uid"], spec["gid"]
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        if ctypes.CDLL(None).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            fail("prctl(no_new_privs) failed")
        os.umask(0o022)
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)     # this Python ignores it; the payload gets the default
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        fail(f"cannot start {spec['argv'][0]}: {exc}")


def kill_all(sig: int) -> None:
    try:
        os.kill(-1, sig)          # every process of this PID namespace except PID 1
    except ProcessLookupError:
        pass


def tell(line: socket.socket | None, message: dict) -> None:
    if line is None:
        return
    try:
        line.sendall((json.dumps(message) + "\n").encode())
    except OSError:
        pass                      # the auditor is gone: the watcher ends the namespace


def watch_lifeline(line: socket.socket) -> None:
    """Block until the auditor's end closes, then end every process of the namespace and this one."""
    try:
        while line.recv(4096):
            pass
    except OSError:
        pass
    kill_all(signal.SIGKILL)
    os._exit(137)


def main() -> None:
    with open(sys.argv[1]) as handle:
        spec = json.load(handle)
    if os.getpid() != 1:
        fail("must run as PID 1 of a new PID namespace")
    line = None
    if spec.get("lifeline_fd") is not None:
        line = socket.socket(fileno=spec["lifeline_fd"])
        line.set_inheritable(False)          # the payload never holds it
    root = build_root(spec)
    loopback_up()
    os.chroot(root)
    os.chdir("/")
    signal.signal(signal.SIGTERM, lambda *_: kill_all(signal.SIGTERM))
    signal.signal(signal.SIGINT, lambda *_: kill_all(signal.SIGINT))
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        exec_payload(spec)
    tell(line, {"event": "started", "pid": child, "monotonic": time.monotonic()})
    if line is not None:
        threading.Thread(target=watch_lifeline, args=(line,), daemon=True).start()
    code = 125
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child:
            code = os.waitstatus_to_exitcode(status)
            tell(line, {"event": "exited", "status": code, "monotonic": time.monotonic()})
            code = 128 - code if code < 0 else code
            kill_all(signal.SIGKILL)      # leftovers (setsid children, daemons) die with the payload
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
