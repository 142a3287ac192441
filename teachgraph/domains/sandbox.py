"""Run untrusted Python (student- or teacher-written programs) in a contained child process.

`run_python(code)` never executes the program inside the teachgraph process. It starts a fresh
interpreter (`python -I -S`: isolated mode, standard library only) that runs this very file as a
small bootstrap ("the runner"); the runner closes the doors it can close, then executes the
program as `__main__`. The containment comes in layers, and every layer that the machine offers is
used; `SandboxResult.isolation` and `isolation_available()` say which were in force.

Real containment (the kernel enforces these; a program cannot talk its way out):

* process_group - the child is a new session and process group with a scrubbed environment; the
  parent kills the whole group with SIGKILL on wall timeout, on output overflow, and always at the
  end (before reaping the leader, so the group id cannot be recycled under us).
* netns / userns - where `unshare --net` (root) or `unshare --user --map-root-user --net`
  (unprivileged user namespaces) works, the child runs in an empty network namespace: no
  interfaces but a down loopback, so nothing on the host or the network can be reached.
* rlimits - RLIMIT_CPU (SIGXCPU, then SIGKILL a second later), RLIMIT_AS (memory),
  RLIMIT_FSIZE (largest file), RLIMIT_NOFILE, RLIMIT_CORE=0, and RLIMIT_NPROC where it counts
  (the kernel ignores it for root, which is why process creation is also refused below). The soft
  RLIMIT_STACK is raised (to half the memory limit, at most 256 MB) so that deep recursion through
  C frames (lru_cache) works as it does in competitive-programming judges.
* no_new_privs and caps - setuid binaries cannot raise privileges, and every capability is
  dropped, so a root child cannot raise its hard limits, mount, load modules, ptrace, ...
* landlock - (Linux 5.13+) the temporary directory is the only place where files can be written,
  created, removed or renamed; reading is limited to the interpreter's standard library, /usr,
  /lib* and a few device files (so a program cannot print the machine's secrets); nothing can be
  executed; TCP bind/connect are refused and signals cannot leave the sandbox (newer ABIs).
* seccomp - a BPF filter refuses fork/vfork/clone of processes (threads are fine), execve,
  socket(), signals to other processes, chmod/chown (which Landlock does not cover; a root child
  owns the system's files), ptrace, namespaces, mounts, io_uring, bpf, keyrings.
* the parent reads stdout/stderr concurrently with a byte cap (the parent never buffers more
  than `output_bytes`), feeds stdin without deadlocking, and deletes the temporary directory; a
  watchdog thread in the runner ends the sandbox if the parent process dies (it holds a pipe).

Best-effort layer (always installed, also where the kernel offers none of the above):

* audit_guard - a `sys.addaudithook` hook installed just before the program runs refuses
  sockets, process creation, ctypes, signals to other processes, writes/creates/deletes/renames
  outside the temporary directory, reads outside the read roots, and a few escape hatches
  (gc object walks, sub-interpreters). A refusal raises PermissionError("sandbox: ...") and is
  reported to the parent on a private pipe, which turns a failing run into status "blocked".
  Audit hooks run inside the program's own interpreter, so a determined program may find a way
  around them (CPython documents them as not a sandbox); they give clear errors for the common
  cases, and the kernel layers above are what actually contain a program that gets past them.

Limitations: where neither seccomp nor RLIMIT_NPROC (non-root users) applies, a program that
defeats the audit hook could fork; its children stay in the process group killed at the end unless
they call setsid. Landlock does not confine utime/xattrs or opening another same-user process's
pipes through /proc/<pid>/fd (the guard refuses both outside the sandbox). There is no pid or
mount namespace: the program can see the host's process list. Only the standard library is
importable (-S). The parent can set TEACHGRAPH_SANDBOX_DISABLE to a comma list of layers (netns,
landlock, seccomp, caps) to switch them off, e.g. to test the fallbacks; the guard always stays.

The file doubles as the runner: `python -I -S sandbox.py --teachgraph-sandbox-child CONFIG`. The
child half uses only `os`, `sys`, `json` and modules imported lazily, and the module stops at the
`__main__` check below before any parent-side import (subprocess must never be preloaded there).
"""

from __future__ import annotations

import json
import os
import sys

_CHILD_FLAG = "--teachgraph-sandbox-child"
_MAIN_NAME = "main.py"
_EXIT_CPU = 152  # 128 + SIGXCPU: the runner's SIGXCPU handler exits with this
_EXIT_PARENT_GONE = 137  # the watchdog saw the parent die
_MAX_REPORTED_BLOCKS = 20

# =================================================================================================
# Child side: runs in the sandbox's own interpreter, before and around the untrusted program.
# =================================================================================================


def _child_main(config_json: str) -> None:
    config = json.loads(config_json)
    workdir = os.path.realpath(config["workdir"])
    status_fd = config["status_fd"]
    disabled = set(config.get("disable", ()))

    dumps, write = json.dumps, os.write  # captured: the program may rebind the modules' attributes

    def report(event: dict) -> None:
        try:
            write(status_fd, (dumps(event) + "\n").encode())
        except (OSError, TypeError, ValueError):
            pass

    layers = ["rlimits"] if _set_rlimits(config) else []
    _install_signal_handlers(report)
    read_dirs, read_files = _read_roots(workdir)
    layers += _apply_kernel_layers(workdir, read_dirs, read_files, disabled)
    if "seccomp" not in layers and os.geteuid() != 0:
        _limit_processes()
    _start_parent_watchdog(config["alive_fd"])
    _stub_posixsubprocess(report)
    if "audit_guard" not in disabled:  # switched off only by the parent's own tests of the kernel layers
        _install_audit_guard(workdir, tuple(read_dirs), tuple(read_files), report)
        layers.append("audit_guard")
    report({"layers": layers})
    sys.exit(_run_program(workdir, config.get("argv", []), report))


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


def _install_signal_handlers(report) -> None:
    import signal

    def on_cpu_limit(signum, frame):  # noqa: ARG001
        report({"cpu": True})
        try:
            sys.stdout.flush()
        except BaseException:  # noqa: BLE001 - the handler may interrupt a write to stdout
            pass
        os._exit(_EXIT_CPU)

    signal.signal(signal.SIGXCPU, on_cpu_limit)
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


def _read_roots(workdir: str) -> tuple[list[str], list[str]]:
    """Directories and files the program may read besides its own directory (real paths)."""
    dirs = {p for p in sys.path if os.path.isdir(p)}
    for prefix in {sys.base_prefix, sys.base_exec_prefix}:
        dirs.add(os.path.join(prefix, "lib"))  # libpython and the libraries extension modules load
    dirs |= {"/usr", "/lib", "/lib64", "/lib32", "/sys/devices/system/cpu", f"/proc/{os.getpid()}"}
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


def _start_parent_watchdog(alive_fd: int) -> None:
    """End the sandbox if the teachgraph process dies (the parent holds the pipe's write end)."""
    import _thread

    def watch() -> None:
        try:
            while os.read(alive_fd, 1):
                pass
        except OSError:
            return  # the program closed our descriptor: nothing left to watch
        os._exit(_EXIT_PARENT_GONE)

    old = _thread.stack_size(1 << 16)
    try:
        _thread.start_new_thread(watch, ())
    finally:
        _thread.stack_size(old)


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
        "os.symlink": ((1, 2, False),), "os.truncate": ((0, None, True),), "os.setxattr": ((0, None, True),),
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

    def resolve(text: str) -> tuple[str, int | None]:
        """The real absolute path (symlinks followed, like realpath) and its file type bits."""
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
        text = as_text(path)
        if text is None:
            refuse(event, "unsupported path object")
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
        text = as_text(path)
        if text is None:
            refuse("open", "unsupported path object")
        resolved, kind = resolve(text)
        if issubclass_(type_(flags), int):
            writing = bool(int_add(0, flags) & write_flags)
        else:
            writing = issubclass_(type_(mode), str_) and any(c in "wax+" for c in "".join((mode,)))
        if inside_workdir(resolved) or resolved.startswith("fd:"):
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
                text = as_text(path)
                if text is None or not readable(resolve(text)[0]):
                    refuse(event, text or "")
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

    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    sys.stderr.reconfigure(encoding="utf-8", errors="backslashreplace")
    sys.stdin.reconfigure(encoding="utf-8", errors="surrogateescape")
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
    _child_main(sys.argv[2])  # raises SystemExit; nothing below runs in the sandbox

# =================================================================================================
# Parent side: the teachgraph process. Thread-safe: no chdir, no signal handlers, no shared state
# but the cached probe.
# =================================================================================================

import selectors  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

STATUSES = ("ok", "error", "timeout", "memory", "output_limit", "blocked")
LAYERS = ("process_group", "netns", "userns", "rlimits", "no_new_privs", "caps", "landlock", "seccomp",
          "audit_guard")
_STATUS_CAP = 64 * 1024
_DRAIN_SECONDS = 1.0


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. cpu_seconds is rounded up to whole seconds (RLIMIT_CPU's unit)."""

    cpu_seconds: float = 5.0
    wall_seconds: float = 10.0
    memory_mb: int = 512  # address space (RLIMIT_AS); the interpreter itself needs ~30 MB
    output_bytes: int = 1_000_000  # stdout and stderr together, as kept by the parent
    file_bytes: int = 10_000_000  # the largest file the program may write (RLIMIT_FSIZE)
    max_open_files: int = 64

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_mb", "output_bytes", "file_bytes", "max_open_files"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")
        if self.memory_mb < 64:
            raise ValueError("SandboxLimits.memory_mb: the interpreter needs at least 64 MB")
        if self.max_open_files < 16:
            raise ValueError("SandboxLimits.max_open_files: the interpreter needs at least 16")


@dataclass
class SandboxResult:
    """What happened. status: "ok" (exit 0), "error" (nonzero exit, exception, crash), "timeout"
    (wall or CPU limit), "memory", "output_limit" (stdout+stderr over the cap; killed), "blocked"
    (failed after the guard refused an operation)."""

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall_seconds: float
    truncated: bool
    isolation: list[str]
    cpu_seconds: float = 0.0
    blocked: list[str] = field(default_factory=list)  # operations the guard refused, first few
    exception: str | None = None  # the type name of an uncaught exception, if any
    files: dict[str, str] = field(default_factory=dict)  # `collect`ed files from the sandbox dir
    pid: int | None = None  # the child's pid, which was also its process group id (all gone now)

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
    probe = _probe()
    disabled = _disabled_layers(probe)
    prefix = [] if "netns" in disabled else probe.unshare_prefix
    return _run(code, stdin, limits, dict(files or {}), list(argv or []), list(collect), prefix,
                probe.namespace_layers if prefix else [], disabled)


def isolation_available() -> dict[str, bool]:
    """Which isolation layers this machine gives a sandboxed program (probed once, then cached;
    TEACHGRAPH_SANDBOX_DISABLE is applied on top)."""
    probe = _probe()
    disabled = _disabled_layers(probe)
    return {layer: layer in probe.layers and layer not in disabled for layer in LAYERS}


# ---- probing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Probe:
    unshare_prefix: list[str]
    namespace_layers: list[str]
    layers: frozenset[str]
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


def _probe() -> _Probe:
    """The strongest configuration under which a small program (a thread, stdin, a file) works;
    falling back layer by layer where one breaks the interpreter on this machine. A timeout says
    nothing about the layers (a loaded machine), so it keeps them."""
    global _probe_result
    with _probe_lock:
        if _probe_result is None:
            prefix, namespace_layers = _probe_unshare()
            attempts = [(prefix, set()), (prefix, {"landlock", "seccomp", "caps"}), ([], {"landlock", "seccomp", "caps"})]
            for attempt_prefix, broken in attempts:
                layers = namespace_layers if attempt_prefix else []
                trial = _run(_PROBE_PROGRAM, "probe", SandboxLimits(), {}, [], [], attempt_prefix, layers, broken)
                if (trial.status == "ok" and trial.stdout == "probe ok\n") or trial.status == "timeout":
                    break
            _probe_result = _Probe(attempt_prefix, layers, frozenset(trial.isolation), frozenset(broken))
        return _probe_result


def _probe_unshare() -> tuple[list[str], list[str]]:
    """The first unshare wrapper that starts an interpreter in a fresh network namespace."""
    unshare = shutil.which("unshare")
    if not unshare or not sys.platform.startswith("linux"):
        return [], []
    candidates = []
    if os.geteuid() == 0:
        candidates.append(([unshare, "--net", "--"], ["netns"]))
    candidates.append(([unshare, "--user", "--map-root-user", "--net", "--"], ["userns", "netns"]))
    for prefix, layers in candidates:
        try:
            done = subprocess.run([*prefix, sys.executable, "-I", "-S", "-c", "pass"], stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=10, env=_child_env(tempfile.gettempdir()))
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix, layers
    return [], []


def _disabled_layers(probe: _Probe) -> set[str]:
    """Layers switched off by the probe or through TEACHGRAPH_SANDBOX_DISABLE (never the guard)."""
    raw = os.environ.get("TEACHGRAPH_SANDBOX_DISABLE", "")
    disabled = ({part.strip() for part in raw.split(",") if part.strip()} | probe.broken) - {"audit_guard"}
    if "netns" in disabled:
        disabled.add("userns")  # the user namespace only comes with the unshare wrapper
    return disabled


# ---- one run ------------------------------------------------------------------------------------


def _child_env(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": workdir}


def _child_command(config: dict) -> list[str]:
    script = os.path.abspath(__file__)
    if os.path.isfile(script):
        return [sys.executable, "-I", "-S", script, _CHILD_FLAG, json.dumps(config)]
    raise RuntimeError(f"sandbox: the runner script {script} is not a readable file")


def _write_files(workdir: str, code: str, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        relative = os.path.normpath(name)
        if os.path.isabs(relative) or relative.split(os.sep)[0] in ("..", ".", "") or relative == _MAIN_NAME:
            raise ValueError(f"sandbox: file name {name!r} must be a relative path inside the sandbox (not {_MAIN_NAME})")
        path = os.path.join(workdir, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
    with open(os.path.join(workdir, _MAIN_NAME), "w", encoding="utf-8") as f:
        f.write(code)


def _run(code: str, stdin: str | bytes, limits: SandboxLimits, files: dict[str, str | bytes], argv: list[str],
         collect: list[str], prefix: list[str], namespace_layers: list[str], disabled: set[str]) -> SandboxResult:
    workdir = os.path.realpath(tempfile.mkdtemp(prefix="teachgraph-sandbox-"))
    fds: list[int] = []
    try:
        _write_files(workdir, code, files)
        status_r, status_w = os.pipe()
        alive_r, alive_w = os.pipe()
        fds += [status_r, status_w, alive_r, alive_w]
        config = {
            "workdir": workdir, "status_fd": status_w, "alive_fd": alive_r, "argv": argv,
            "cpu_seconds": limits.cpu_seconds, "memory_mb": limits.memory_mb, "file_bytes": limits.file_bytes,
            "max_open_files": limits.max_open_files, "disable": sorted(disabled),
        }
        started = time.monotonic()
        proc = subprocess.Popen([*prefix, *_child_command(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=workdir, env=_child_env(workdir), start_new_session=True,
                                pass_fds=(status_w, alive_r), close_fds=True)
        for fd in (status_w, alive_r):  # the child holds its own copies now
            os.close(fd)
            fds.remove(fd)
        try:
            data = stdin if isinstance(stdin, bytes) else stdin.encode("utf-8")
            outcome = _supervise(proc, data, status_r, limits, started)
        finally:
            _kill_group(proc.pid)
            rusage = _reap(proc)
        collected = _collect(workdir, collect, limits.file_bytes)
    finally:
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass
        _remove_tree(workdir)

    events = _parse_events(outcome.status_bytes)
    layers = ["process_group", *namespace_layers, *events.get("layers", [])]
    cpu = rusage.ru_utime + rusage.ru_stime if rusage else 0.0
    status = _classify(outcome, proc.returncode, events, cpu, limits)
    return SandboxResult(
        status=status, returncode=proc.returncode, stdout=outcome.stdout.decode("utf-8", "replace"),
        stderr=outcome.stderr.decode("utf-8", "replace"), wall_seconds=round(outcome.wall_seconds, 4),
        truncated=outcome.output_exceeded, isolation=layers, cpu_seconds=round(cpu, 4), blocked=events.get("blocked", []),
        exception=events.get("exception"), files=collected, pid=proc.pid,
    )


@dataclass
class _Outcome:
    stdout: bytes
    stderr: bytes
    status_bytes: bytes
    wall_seconds: float
    timed_out: bool
    output_exceeded: bool  # the output was cut at the cap and the program killed


def _supervise(proc: subprocess.Popen, stdin: bytes, status_fd: int, limits: SandboxLimits, started: float) -> _Outcome:
    """Pump stdin/stdout/stderr/status until the child exits, the wall clock runs out, or the
    output passes its cap. Returns with the child possibly still running (the caller kills it)."""
    deadline = started + limits.wall_seconds
    buffers = {"stdout": bytearray(), "stderr": bytearray(), "status": bytearray()}
    total_output = 0
    timed_out = output_exceeded = False
    exited_at: float | None = None
    try:
        pidfd: int | None = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None

    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
        selector.register(status_fd, selectors.EVENT_READ, "status")
        if pidfd is not None:
            selector.register(pidfd, selectors.EVENT_READ, "exit")
        readers = 3
        pending_stdin = memoryview(stdin)
        if pending_stdin:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
        else:
            proc.stdin.close()

        def on_exit(now: float) -> None:
            nonlocal exited_at
            exited_at = now
            _kill_group(proc.pid)  # strays die now, so their pipe ends close

        try:
            while True:
                now = time.monotonic()
                if exited_at is not None and (readers == 0 or now >= exited_at + _DRAIN_SECONDS):
                    break
                if exited_at is None and now >= deadline:
                    timed_out = True
                    break
                limit = (exited_at + _DRAIN_SECONDS) if exited_at is not None else deadline
                wait = max(0.0, limit - now)
                if pidfd is None and exited_at is None:
                    wait = min(wait, 0.02)
                for key, _ in selector.select(wait):
                    name = key.data
                    if name == "exit":
                        selector.unregister(pidfd)
                        on_exit(time.monotonic())
                    elif name == "stdin":
                        try:
                            written = os.write(key.fd, pending_stdin[:65536])
                            pending_stdin = pending_stdin[written:]
                        except BlockingIOError:
                            continue
                        except OSError:  # the program closed stdin or exited: the rest is not needed
                            pending_stdin = pending_stdin[:0]
                        if not pending_stdin:
                            selector.unregister(proc.stdin)
                            proc.stdin.close()
                    else:
                        chunk = os.read(key.fd, 65536)
                        if not chunk:
                            selector.unregister(key.fileobj)
                            readers -= 1
                            continue
                        if name == "status":
                            if len(buffers["status"]) < _STATUS_CAP:
                                buffers["status"] += chunk
                            continue
                        room = limits.output_bytes - total_output
                        buffers[name] += chunk[:room]
                        total_output += min(len(chunk), room)
                        if len(chunk) > room:
                            output_exceeded = True
                            break
                if output_exceeded:
                    break
                if pidfd is None and exited_at is None and _has_exited(proc.pid):
                    on_exit(time.monotonic())
        finally:
            if pidfd is not None:
                os.close(pidfd)
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

    end = exited_at if exited_at is not None else time.monotonic()
    return _Outcome(bytes(buffers["stdout"]), bytes(buffers["stderr"]), bytes(buffers["status"]),
                    end - started, timed_out, output_exceeded)


def _has_exited(pid: int) -> bool:
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _kill_group(pgid: int) -> None:
    """SIGKILL the sandbox's process group. Called while its leader is not yet reaped, so the
    group id still belongs to the sandbox."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(proc: subprocess.Popen):
    """Wait for the (killed or exited) leader; return its resource usage."""
    for stream in (proc.stdout, proc.stderr):
        try:
            stream.close()
        except OSError:
            pass
    try:
        _, status, rusage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        proc.wait()
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return rusage


def _collect(workdir: str, names: list[str], cap: int) -> dict[str, str]:
    """Read files the program left, refusing symlinks and anything but regular files."""
    found: dict[str, str] = {}
    if not names:
        return found
    dir_fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            if "/" in name or name in ("", ".", ".."):
                raise ValueError(f"sandbox: collect takes plain file names, got {name!r}")
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
    def make_writable_and_retry(function, failed_path, _exc_info):  # a directory the program chmod-ed
        try:
            os.chmod(os.path.dirname(failed_path), 0o700)
            if os.path.isdir(failed_path) and not os.path.islink(failed_path):
                os.chmod(failed_path, 0o700)
            function(failed_path)
        except OSError:
            pass

    shutil.rmtree(path, onerror=make_writable_and_retry)


def _parse_events(raw: bytes) -> dict:
    events: dict = {"blocked": []}
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if isinstance(event.get("layers"), list):
            events["layers"] = [layer for layer in event["layers"] if layer in LAYERS]
        if isinstance(event.get("blocked"), str):
            events["blocked"].append(event["blocked"])
        if isinstance(event.get("exception"), str):
            events["exception"] = event["exception"]
        if event.get("cpu") is True:
            events["cpu"] = True
    return events


def _classify(outcome: _Outcome, returncode: int | None, events: dict, cpu: float, limits: SandboxLimits) -> str:
    if outcome.output_exceeded:
        return "output_limit"
    if outcome.timed_out:
        return "timeout"
    cpu_limit = max(1, -(-limits.cpu_seconds // 1))
    killed = returncode is not None and returncode < 0
    if (events.get("cpu") and returncode == _EXIT_CPU) or returncode == -signal.SIGXCPU:
        return "timeout"
    if returncode == -signal.SIGKILL and cpu >= cpu_limit - 0.05:
        return "timeout"  # the hard CPU limit
    if events.get("exception") == "MemoryError":
        return "memory"
    if returncode == 0:
        return "ok"
    if events["blocked"]:
        return "blocked"
    if killed and returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS) and (
            b"MemoryError" in outcome.stderr or b"Cannot allocate memory" in outcome.stderr):
        return "memory"
    return "error"


__all__ = ["LAYERS", "STATUSES", "SandboxLimits", "SandboxResult", "isolation_available", "run_python"]
