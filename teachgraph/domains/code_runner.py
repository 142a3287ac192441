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

Each test is its own sandboxed process (`run_python_batch`: one box per program, one fork per
test, so a test costs a few ms of process start-up and LiveCodeBench's import header is loaded
once per program; tests run one after another, each judged before the next starts, so a failure
can stop the rest). The verdict is decided here, in the teachgraph process, from what the kernel and
this process saw: the child's raw stdout (read by this process from its own pipe end), its exit
status, and the sandbox's timers and caps. Nothing that decides a verdict is inside the sandbox:
the expected outputs never enter it, there is no harness state or results file to tamper with,
and a test cannot see another test's input or output. A stdin test runs the program on the test's
input; a functional test runs a small harness that reads the JSON arguments from stdin, calls
`Solution().func_name(*args)` with the program's own prints sent to /dev/null, and writes
`json.dumps(result)` to stdout; whatever a program makes appear on stdout is its answer. A
program can only choose how it fails (its exit status picks runtime_error/memory/...).

A test's CPU limit is timeout_per_test (RLIMIT_CPU, whole seconds), its wall limit
timeout_per_test + a second of slack; stdout+stderr are capped at `limits.file_bytes`.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, replace

from teachgraph.domains.sandbox import SandboxLimits, SandboxResult, run_python_batch

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
    seconds: float  # wall time of the whole sandbox run (all tests)
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


# ---- output comparison (in the teachgraph process only) -------------------------------------------


def _number(token):
    """A token as an int or float if it is written as a plain number, else None. An integer past
    int()'s digit limit stays text (sign and digits, no leading zeros) and compares exactly."""
    if re.fullmatch(r"[+-]?\d+", token):
        try:
            return int(token)
        except ValueError:  # more than sys.get_int_max_str_digits() digits
            sign = "-" if token.startswith("-") else ""
            return sign + (token.lstrip("+-").lstrip("0") or "0")
    if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", token):
        return float(token)
    return None


def _numbers_match(a, b):
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if not (math.isfinite(a) and math.isfinite(b)):  # (different tokens that overflow a float)
        return False
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


# ---- what runs inside the sandbox: the program only produces output ------------------------------

EXIT_COMPILE = 103  # the program does not compile (checked before any of its code runs)
EXIT_NOT_JSON = 104  # a functional result that json.dumps refuses
PRELOAD = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
           "itertools", "functools", "operator", "io", "json", "typing")

_COMPILE = r'''
import builtins, json, os, sys


def _compiled():
    with open("solution.py", encoding="utf-8") as f:
        source = f.read()
    try:
        return compile(source, "solution.py", "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        sys.stderr.write(f"{type(exc).__name__}: {message}" + (f" (line {line})" if line else "") + "\n")
        sys.stderr.flush()
        os._exit(%(compile)d)
'''

_STDIN_HARNESS = _COMPILE + r'''

_program = _compiled()
_namespace = {"__name__": "__main__", "__builtins__": builtins}
exec(compile(%(header)r, "<header>", "exec"), _namespace)
del _compiled
exec(_program, _namespace)
'''

_FUNCTIONAL_HARNESS = _COMPILE + r'''

def _main():
    args = [json.loads(line) for line in sys.stdin.read().split("\n")]
    program = _compiled()
    answer = os.dup(1)  # the answer goes to stdout; the program's own prints go nowhere
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)
    namespace = {"__name__": "solution", "__builtins__": builtins}
    exec(compile(%(header)r, "<header>", "exec"), namespace)
    exec(program, namespace)
    solution = namespace.get("Solution")
    if solution is None:
        raise NameError("the program defines no class Solution")
    value = getattr(solution(), %(func_name)r)(*args)
    try:
        text = json.dumps(value).encode()
    except (TypeError, ValueError):
        sys.stderr.write(f"the result is not a JSON value: {type(value).__name__}\n")
        sys.stderr.flush()
        os._exit(%(not_json)d)
    while text:
        text = text[os.write(answer, text):]
    os._exit(0)  # do not wait for threads the program left running


_main()
'''


def _harness(functional: bool, func_name: str | None) -> str:
    template = _FUNCTIONAL_HARNESS if functional else _STDIN_HARNESS
    return template % {"compile": EXIT_COMPILE, "not_json": EXIT_NOT_JSON, "header": IMPORT_HEADER,
                       "func_name": func_name or ""}


# ---- the parent side: judge each test from the raw output and the kernel's facts -----------------

_RUN_SLACK_SECONDS = 1.0  # a test's wall limit past timeout_per_test (fork, the header, a loaded machine)
_STATUS_VERDICT = {"timeout": "timeout", "memory": "memory", "output_limit": "output_limit",
                   "disk_limit": "output_limit", "blocked": "blocked"}
_SOLUTION_LINE = re.compile(r'File "solution\.py", line (\d+)')


def _short(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[: limit - 15] + "...(truncated)"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def _judge(result: SandboxResult, test: CodeTest) -> tuple[str, str]:
    """(verdict, detail) of one test. Only an exit status of 0 within the limits can pass, and only
    with the right output."""
    functional = test.testtype == "functional"
    if result.status in _STATUS_VERDICT:
        verdict = _STATUS_VERDICT[result.status]
        if verdict == "timeout":
            return verdict, "time limit exceeded"
        if result.status == "disk_limit":
            return verdict, "the program's files passed the disk limit"
        if verdict == "output_limit":
            return verdict, "output limit exceeded"
        if verdict == "blocked":
            return verdict, _short(_last_line(result.stderr) or "; ".join(result.blocked), 200)
        return verdict, "MemoryError"
    if result.status != "ok":
        if result.returncode == EXIT_COMPILE:
            return "compile_error", _short(_last_line(result.stderr), 300)
        if functional and result.returncode == EXIT_NOT_JSON:
            return "wrong_answer", _short(_last_line(result.stderr), 200)
        return "runtime_error", _error_detail(result)
    if functional:
        expected = _json_or_text(test.output)
        try:  # a program's output, parsed and compared here: nesting deep enough to recurse out is wrong
            got = json.loads(result.stdout_bytes.decode("utf-8"))
            if _values_match(got, expected):
                return "passed", ""
            shown = _short(json.dumps(got))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return "wrong_answer", f"the result is not one JSON value: {_short(result.stdout.strip())!r}"
        return "wrong_answer", f"expected {_short(json.dumps(expected))}, got {shown}"
    if _lines_match(result.stdout, test.output):
        return "passed", ""
    return "wrong_answer", f"expected {_short(test.output.strip())!r}, got {_short(result.stdout.strip())!r}"


def _error_detail(result: SandboxResult) -> str:
    code = result.returncode
    if code is not None and code < 0:
        return f"the program crashed (signal {-code})"
    last = _last_line(result.stderr)
    if not last or "Traceback" in last:
        return f"exit status {code}"
    lines = _SOLUTION_LINE.findall(result.stderr)
    return _short(last, 200) + (f" (line {lines[-1]})" if lines else "")


def run_tests(program: str, tests: list[CodeTest], func_name: str | None = None, timeout_per_test: float = 6.0,
              limits: SandboxLimits | None = None, stop_at_first_failure: bool = True) -> RunReport:
    """Run `program` against `tests`, each test in its own sandboxed process, and judge each here.

    limits: memory/file/disk limits (default SandboxLimits()); its CPU and wall limits are replaced
    by timeout_per_test (+ slack for the wall), its output cap by file_bytes."""
    if not tests:
        return RunReport([], False, 0.0, "no tests")
    kinds = {test.testtype for test in tests}
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
    if len(kinds) > 1:
        raise ValueError("code_runner: a program's tests must all be stdin or all functional")

    base = limits or SandboxLimits()
    run_limits = replace(base, cpu_seconds=timeout_per_test, wall_seconds=timeout_per_test + _RUN_SLACK_SECONDS,
                         output_bytes=base.file_bytes)
    functional = kinds == {"functional"}
    verdicts = ["not_run"] * len(tests)
    details: dict[int, str] = {}

    def judge(i: int, result: SandboxResult) -> bool:
        verdicts[i], details[i] = _judge(result, tests[i])
        return verdicts[i] == "compile_error" or (stop_at_first_failure and verdicts[i] != "passed")

    started = time.monotonic()
    results = run_python_batch(_harness(functional, func_name), [test.input for test in tests], limits=run_limits,
                               files={"solution.py": program}, preload=PRELOAD, stop=judge)
    seconds = round(time.monotonic() - started, 4)
    if results and verdicts[len(results) - 1] == "compile_error":
        return RunReport(["compile_error"] * len(tests), False, seconds, details[len(results) - 1])
    failed = next((i for i, v in enumerate(verdicts) if v != "passed"), None)
    detail = "" if failed is None else f"test {failed}: {verdicts[failed]}" + (
        f": {details[failed]}" if details.get(failed) else "")
    return RunReport(verdicts, failed is None, seconds, detail)


__all__ = ["EXIT_COMPILE", "EXIT_NOT_JSON", "IMPORT_HEADER", "TOLERANCE", "VERDICTS", "CodeTest", "RunReport",
           "extract_code", "outputs_match", "run_tests"]
