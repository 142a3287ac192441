"""LiveCodeBench-style test execution for generated Python programs, on top of `teachgraph.domains.sandbox`.

Two kinds of tests, as in LiveCodeBench (LCB):

* "stdin" (AtCoder, Codeforces): the program reads standard input and prints. Outputs are compared
  like LCB: strip both, split into lines, strip each line; the line counts must agree; a line that
  differs is split into whitespace tokens, and tokens that differ must both be numbers that agree:
  integers exactly, anything with a fraction or exponent within 1e-6 (relative or absolute;
  `math.isclose(rel_tol=1e-6, abs_tol=1e-6)`), where LCB compares `Decimal`s exactly.
* "functional" (LeetCode): the program defines `class Solution` with the method `func_name` (LCB's
  metadata field). A test's input holds one JSON value per line, one per positional argument
  ("[2,7,11,15]\\n9"); its output is one JSON value. `Solution().func_name(*args)` is called, its
  result goes through a JSON round trip (tuples become lists, no custom `__eq__` survives), and
  is compared structurally, floats within the same tolerance.

All tests of one program run in ONE sandbox process (an interpreter starts in ~50 ms): a harness
script reads the tests, removes their file, compiles the program once (a SyntaxError makes every
verdict "compile_error") and runs each test in a fresh namespace with LCB's import header, under a
per-test SIGALRM timer. Each test's stdin/stdout/stderr are files on descriptors 0/1/2, so
`input()`, `sys.stdin.buffer`, `open(0)` and `os.write(1, ...)` all work, and the file-size limit
turns a flood of output into "output_limit". Verdicts are appended, one JSON line per test, to a
results file in the sandbox directory (not stdout, which the program writes to); the parent reads
it back. The whole run has a wall limit of timeout_per_test * len(tests) + slack; a test cut off by
it is "timeout" (or the run's memory/output/blocked status), the ones after it "not_run".

Expected outputs are inside the sandbox process while the tests run (the harness compares there,
so it can stop at the first failure); a program that deliberately inspects the harness could find
them. The sandbox protects the machine from a program; it does not make the verdict tamper-proof
against a program written to attack this harness.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, replace

from teachgraph.domains.sandbox import SandboxLimits, run_python

VERDICTS = ("passed", "wrong_answer", "runtime_error", "timeout", "memory", "output_limit", "compile_error",
            "blocked", "not_run")
TOLERANCE = 1e-6

# LiveCodeBench's import header (lcb_runner/evaluation/testing_util.py), run before every program.
IMPORT_HEADER = (
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\n"
    "from typing import *\nimport string\nimport re\nimport datetime\nimport collections\nimport heapq\n"
    "import bisect\nimport copy\nimport math\nimport random\nimport statistics\nimport itertools\n"
    "import functools\nimport operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"
)


@dataclass(frozen=True)
class CodeTest:
    input: str
    output: str
    testtype: str  # "stdin" | "functional"


@dataclass
class RunReport:
    verdicts: list[str]  # one per test, in VERDICTS
    passed: bool  # every test passed, and there was at least one
    seconds: float  # wall time of the whole sandbox run
    detail: str  # the first failure, briefly: expected vs got, or the error line


# ---- extracting a program from a model's answer -------------------------------------------------

_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n", re.MULTILINE)
_CLOSE_FENCE = re.compile(r"^[ \t]*```[ \t]*$", re.MULTILINE)
_PYTHON_FENCES = ("python", "python3", "py", "")


def extract_code(text: str) -> str:
    """The last ```python (or ```py, ```python3, bare ```) fenced block; else the text itself.

    An unterminated last fence (an answer cut off by the token limit) counts up to the end."""
    blocks: list[tuple[str, str]] = []
    position = 0
    while (opening := _OPEN_FENCE.search(text, position)) is not None:
        closing = _CLOSE_FENCE.search(text, opening.end())
        end = closing.start() if closing else len(text)
        blocks.append((opening.group(1).lower(), text[opening.end():end]))
        position = closing.end() if closing else len(text)
    python_blocks = [body for language, body in blocks if language in _PYTHON_FENCES]
    return python_blocks[-1] if python_blocks else text


# ---- output comparison (these functions also run inside the sandbox, see _harness_source) -------


def _number(token):
    """A token as an int or float if it is written as a plain number, else None."""
    if re.fullmatch(r"[+-]?\d+", token):
        return int(token)
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", token):
        return float(token)
    return None


def _numbers_match(a, b):
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _lines_match(got, expected):
    """LiveCodeBench's stdin comparison, with a float tolerance instead of Decimal equality."""
    got_lines = [line.strip() for line in got.strip().split("\n")]
    expected_lines = [line.strip() for line in expected.strip().split("\n")]
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines):
        if got_line == expected_line:
            continue
        got_tokens, expected_tokens = got_line.split(), expected_line.split()
        if len(got_tokens) != len(expected_tokens):
            return False
        for a, b in zip(got_tokens, expected_tokens):
            if a == b:
                continue
            x, y = _number(a), _number(b)
            if x is None or y is None or not _numbers_match(x, y):
                return False
    return True


def _values_match(got, expected):
    """Structural equality of JSON values; numbers through _numbers_match (bool stays bool-like)."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        return _numbers_match(got, expected)
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(_values_match(a, b) for a, b in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(_values_match(got[k], expected[k]) for k in got)
    return got == expected


def outputs_match(got: str, expected: str, testtype: str = "stdin") -> bool:
    """Whether a program's output passes: stdin text, or a functional result as JSON text."""
    if testtype == "stdin":
        return _lines_match(got, expected)
    return _values_match(json.loads(got), _json_or_text(expected))


def _json_or_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---- the harness that runs inside the sandbox ---------------------------------------------------

_HARNESS_MAIN = r'''
import builtins, io, json, os, signal, sys, time


class _TestTimeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _TestTimeout()


def _short(value, limit=120):
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 15] + "...(truncated)"


def _error_line(exc):
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "solution.py":
            line = tb.tb_lineno
        tb = tb.tb_next
    return "" if line is None else f" (line {line})"


def _failure(exc):
    """(verdict, detail) for an exception that ended a test."""
    if isinstance(exc, _TestTimeout):
        return "timeout", "time limit exceeded"
    if isinstance(exc, MemoryError):
        return "memory", "MemoryError"
    if isinstance(exc, OSError) and exc.errno == 27:  # EFBIG: the output file reached its limit
        return "output_limit", "output limit exceeded"
    try:
        message = f"{type(exc).__name__}: {exc}"
    except BaseException:
        message = type(exc).__name__
    if isinstance(exc, PermissionError) and "sandbox:" in message:
        return "blocked", _short(message, 200)
    return "runtime_error", _short(message, 200) + _error_line(exc)


def _redirect(stdin_path):
    for fd, path, flags in ((0, stdin_path, os.O_RDONLY), (1, "stdout.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                            (2, "stderr.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        new = os.open(path, flags, 0o600)
        if new != fd:  # the program may have closed fd (open(0) closes it when collected)
            os.dup2(new, fd)
            os.close(new)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
                                 errors="surrogateescape")
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
                                  errors="backslashreplace")
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                                  errors="backslashreplace", line_buffering=True)


def _run_test(program, header, test, config):
    """Run one test; return (verdict, detail)."""
    functional = test["testtype"] == "functional"
    _redirect("/dev/null" if functional else test["input_file"])
    namespace = {"__name__": "solution" if functional else "__main__", "__builtins__": builtins}
    result = None
    failure = None
    try:
        try:
            signal.signal(signal.SIGALRM, _on_alarm)  # again: the previous test may have replaced it
            signal.setitimer(signal.ITIMER_REAL, config["timeout"], 0.05)  # repeats if swallowed
            exec(header, namespace)
            exec(program, namespace)
            if functional:
                args = [json.loads(line) for line in test["input"].split("\n")]
                solution = namespace.get("Solution")
                if solution is None:
                    raise NameError("the program defines no class Solution")
                value = getattr(solution(), config["func_name"])(*args)
                try:
                    result = json.loads(json.dumps(value))
                except (TypeError, ValueError):
                    failure = ("wrong_answer", f"the result is not a JSON value: {_short(type(value).__name__)}")
            sys.stdout.flush()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0, 0)
    except SystemExit as exc:
        if exc.code not in (None, 0):
            failure = ("runtime_error", f"exit status {_short(exc.code)}")
    except BaseException as exc:
        failure = _failure(exc)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError as exc:
            failure = failure or _failure(exc)
        except BaseException:
            pass
    if failure is not None:
        if failure[0] == "runtime_error":
            with open("stderr.txt", "rb") as f:
                tail = f.read()[-300:].decode("utf-8", "replace").strip()
            if tail and tail.splitlines()[-1] not in failure[1]:
                failure = (failure[0], failure[1] + " | stderr: " + _short(tail.splitlines()[-1], 150))
        return failure
    expected = test["output"]
    if functional:
        expected_value = _json_or_text(expected)
        if _values_match(result, expected_value):
            return "passed", ""
        return "wrong_answer", f"expected {_short(json.dumps(expected_value))}, got {_short(json.dumps(result))}"
    with open("stdout.txt", encoding="utf-8", errors="replace") as f:
        output = f.read()
    if _lines_match(output, expected):
        return "passed", ""
    return "wrong_answer", f"expected {_short(expected.strip())!r}, got {_short(output.strip())!r}"


def _main():
    with open("tests.json", encoding="utf-8") as f:
        config = json.load(f)
    os.remove("tests.json")  # the expected outputs stay in this process only
    results = open(config["results"], "a", encoding="utf-8")

    def emit(record):
        results.write(json.dumps(record) + "\n")
        results.flush()

    with open("solution.py", encoding="utf-8") as f:
        source = f.read()
    try:
        program = compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        emit({"compile_error": f"{type(exc).__name__}: {exc.msg if isinstance(exc, SyntaxError) else exc}"
              + (f" (line {line})" if line else "")})
        os._exit(0)
    header = compile(config["header"], "<header>", "exec")
    real_stderr = os.dup(2)
    try:
        for i, test in enumerate(config["tests"]):
            started = time.perf_counter()
            try:
                verdict, detail = _run_test(program, header, test, config)
            except _TestTimeout:  # the timer fired in the harness itself, just after the program
                verdict, detail = "timeout", "time limit exceeded"
            emit({"i": i, "verdict": verdict, "detail": detail, "seconds": round(time.perf_counter() - started, 4)})
            if verdict != "passed" and config["stop_at_first_failure"]:
                break
    except BaseException:  # a harness failure: show it on the run's real stderr
        os.dup2(real_stderr, 2)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="replace")
        raise
    emit({"done": True})
    os._exit(0)  # do not wait for threads the program left running


_main()
'''


@functools.cache
def _harness_source() -> str:
    helpers = [_number, _numbers_match, _lines_match, _values_match, _json_or_text]
    parts = ["import json, math, re\n", f"TOLERANCE = {TOLERANCE!r}\n"]
    parts += [inspect.getsource(function) for function in helpers]
    return "\n\n".join(parts) + _HARNESS_MAIN


# ---- the parent side ----------------------------------------------------------------------------

_RUN_SLACK_SECONDS = 3.0  # interpreter start-up, imports, reading the tests


def run_tests(program: str, tests: list[CodeTest], func_name: str | None = None, timeout_per_test: float = 6.0,
              limits: SandboxLimits | None = None, stop_at_first_failure: bool = True) -> RunReport:
    """Run `program` against `tests` in one sandbox process and return a verdict per test.

    limits: memory/output/file limits for the run (default SandboxLimits()); its CPU and wall
    limits are replaced by timeout_per_test * len(tests) + slack."""
    if not tests:
        return RunReport([], False, 0.0, "no tests")
    for i, test in enumerate(tests):
        if test.testtype not in ("stdin", "functional"):
            raise ValueError(f"code_runner: test {i} has testtype {test.testtype!r}; allowed: stdin, functional")
        if test.testtype == "functional":
            if not func_name:
                raise ValueError("code_runner: functional tests need func_name (LiveCodeBench metadata)")
            for line in test.input.split("\n"):
                try:
                    json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"code_runner: test {i}: input line {line[:80]!r} is not JSON") from exc

    overall = timeout_per_test * len(tests) + _RUN_SLACK_SECONDS
    run_limits = replace(limits or SandboxLimits(), cpu_seconds=overall, wall_seconds=overall)
    results_name = f"results-{secrets.token_hex(8)}.jsonl"
    files: dict[str, str] = {"solution.py": program}
    specs = []
    for i, test in enumerate(tests):
        spec = {"testtype": test.testtype, "output": test.output}
        if test.testtype == "stdin":
            spec["input_file"] = f"inputs/{i}.txt"
            files[spec["input_file"]] = test.input
        else:
            spec["input"] = test.input
        specs.append(spec)
    files["tests.json"] = json.dumps({
        "tests": specs, "func_name": func_name, "timeout": timeout_per_test, "header": IMPORT_HEADER,
        "results": results_name, "stop_at_first_failure": stop_at_first_failure,
    })

    started = time.monotonic()
    run = run_python(_harness_source(), limits=run_limits, files=files, collect=[results_name])
    seconds = round(time.monotonic() - started, 4)
    return _report(run, run.files.get(results_name, ""), len(tests), seconds)


_RUN_STATUS_VERDICT = {"timeout": "timeout", "memory": "memory", "output_limit": "output_limit", "blocked": "blocked"}


def _report(run, results_text: str, count: int, seconds: float) -> RunReport:
    verdicts = ["not_run"] * count
    details: dict[int, str] = {}
    done = False
    for line in results_text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if "compile_error" in record:
            return RunReport(["compile_error"] * count, False, seconds, str(record["compile_error"])[:300])
        if record.get("done") is True:
            done = True
        index, verdict = record.get("i"), record.get("verdict")
        if isinstance(index, int) and 0 <= index < count and verdict in VERDICTS:
            verdicts[index] = verdict
            details[index] = str(record.get("detail", ""))[:300]
    if not done:  # the run ended inside a test: that test takes the run's status
        cut = next((i for i, v in enumerate(verdicts) if v == "not_run"), None)
        if cut is not None:
            verdicts[cut] = _RUN_STATUS_VERDICT.get(run.status, "runtime_error")
            details[cut] = _run_failure(run)
    failed = next((i for i, v in enumerate(verdicts) if v != "passed"), None)
    detail = "" if failed is None else f"test {failed}: {verdicts[failed]}" + (
        f": {details[failed]}" if details.get(failed) else "")
    return RunReport(verdicts, failed is None, seconds, detail)


def _run_failure(run) -> str:
    if run.status == "timeout":
        return f"the run was stopped after {run.wall_seconds:.1f} s"
    if run.status == "output_limit":
        return "the program wrote too much to stderr/stdout"
    last = run.stderr.strip().splitlines()[-1:] or [f"exit status {run.returncode}"]
    return ("the program crashed: " + last[0])[:300]


__all__ = ["IMPORT_HEADER", "TOLERANCE", "VERDICTS", "CodeTest", "RunReport", "extract_code", "outputs_match",
           "run_tests"]
