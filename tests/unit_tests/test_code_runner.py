"""domains/code_runner.py: LiveCodeBench-style verdicts for stdin and functional tests, in the sandbox."""

from __future__ import annotations

import sys

import pytest

from teachgraph.domains import code_runner
from teachgraph.domains.code_runner import CodeTest, extract_code, outputs_match, run_tests
from teachgraph.domains.sandbox import SandboxLimits

pytestmark = [pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox targets Linux"),
              pytest.mark.timeout(120)]

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"
ADD_TESTS = [CodeTest("1 2\n", "3\n", "stdin"), CodeTest("5 7\n", "12", "stdin"), CodeTest("-1 1", "0", "stdin")]

TWO_SUM = """
class Solution:
    def twoSum(self, nums: List[int], target: int) -> List[int]:
        seen = {}
        for i, x in enumerate(nums):
            if target - x in seen:
                return [seen[target - x], i]
            seen[x] = i
"""


def functional(inputs: str, output: str) -> CodeTest:
    return CodeTest(inputs, output, "functional")


# ---- stdin tests --------------------------------------------------------------------------------


def test_a_correct_stdin_program_passes():
    report = run_tests(ADD, ADD_TESTS)
    assert report.verdicts == ["passed"] * 3
    assert report.passed and report.detail == ""
    assert 0 < report.seconds < 10


def test_every_way_of_reading_and_writing_works():
    programs = [
        "import sys\na, b = map(int, sys.stdin.readline().split())\nsys.stdout.write(f'{a + b}\\n')",
        "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nsys.stdout.buffer.write(str(a + b).encode())",
        "a, b = map(int, open(0).read().split())\nprint(a + b)",
        "import os\na, b = map(int, os.read(0, 100).split())\nos.write(1, str(a + b).encode())",
        "a, b = map(int, stdin.readline().split())\nprint(a + b)",  # `from sys import *` in LCB's header
        "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n\nif __name__ == '__main__':\n    main()",
        "import threading\nthreading.stack_size(2**26)\n"
        "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n"
        "t = threading.Thread(target=main)\nt.start()\nt.join()",
    ]
    for program in programs:
        report = run_tests(program, ADD_TESTS, stop_at_first_failure=False)
        assert report.verdicts == ["passed"] * 3, (program, report)


def test_a_wrong_answer_stops_at_the_first_failure_or_not():
    program = "a, b = map(int, input().split())\nprint(a * b if a == 5 else a + b)"
    report = run_tests(program, ADD_TESTS)
    assert report.verdicts == ["passed", "wrong_answer", "not_run"]
    assert not report.passed
    assert report.detail == "test 1: wrong_answer: expected '12', got '35'"
    everything = run_tests(program, ADD_TESTS, stop_at_first_failure=False)
    assert everything.verdicts == ["passed", "wrong_answer", "passed"]


def test_a_runtime_error_names_the_exception_and_line():
    report = run_tests("a, b = map(int, input().split())\nprint(a // (b - 2))", ADD_TESTS)
    assert report.verdicts == ["runtime_error", "not_run", "not_run"]
    assert "ZeroDivisionError" in report.detail and "(line 2)" in report.detail
    exits = run_tests("import sys\nprint(3)\nsys.exit(1)", [CodeTest("", "3", "stdin")])
    assert exits.verdicts == ["runtime_error"] and "exit status 1" in exits.detail
    assert run_tests("print(3)\nexit()", [CodeTest("", "3", "stdin")]).passed


def test_an_infinite_loop_on_one_test_is_a_timeout_for_that_test(monkeypatch):
    monkeypatch.setattr(code_runner, "_RUN_SLACK_SECONDS", 1.0)
    program = "a, b = map(int, input().split())\nwhile a == 5:\n    pass\nprint(a + b)"
    report = run_tests(program, ADD_TESTS, timeout_per_test=1.0, stop_at_first_failure=False)
    assert report.verdicts == ["passed", "timeout", "passed"]
    assert report.detail == "test 1: timeout: time limit exceeded"
    assert report.seconds < 8
    swallowing = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    assert run_tests(swallowing, [CodeTest("", "1", "stdin")], timeout_per_test=0.5).verdicts == ["timeout"]


def test_a_loop_that_ignores_every_signal_is_cut_and_later_tests_still_run(monkeypatch):
    monkeypatch.setattr(code_runner, "_RUN_SLACK_SECONDS", 1.0)
    program = "a, b = map(int, input().split())\nif a == 5:\n    sum(range(10**13))  # one C call: no signal gets in\nprint(a + b)"
    report = run_tests(program, ADD_TESTS, timeout_per_test=1.0, stop_at_first_failure=False)
    assert report.verdicts == ["passed", "timeout", "passed"]  # each test is its own process
    assert report.seconds < 10


def test_a_syntax_error_is_a_compile_error_for_every_test():
    report = run_tests("def f(:\n    pass", ADD_TESTS)
    assert report.verdicts == ["compile_error"] * 3
    assert "SyntaxError" in report.detail and "line 1" in report.detail


def test_numbers_compare_with_a_float_tolerance_and_integers_exactly():
    assert outputs_match("0.3333333333\n", "0.333333333")
    assert outputs_match("1.0 2", "1 2.000000")
    assert outputs_match("1e-3", "0.001")
    assert not outputs_match("0.334", "0.333")
    assert not outputs_match("1000000000000000001", "1000000000000000000")
    assert not outputs_match("YES", "yes")
    report = run_tests("print(1 / 3)\nprint(2 ** 0.5)", [CodeTest("", "0.33333333\n1.41421356", "stdin")])
    assert report.passed
    wrong = run_tests("print(0.34)", [CodeTest("", "0.33", "stdin")])
    assert wrong.verdicts == ["wrong_answer"]


def test_whitespace_is_ignored_around_lines_but_not_the_line_count():
    assert outputs_match("1 2   \n3\t\n\n\n", "1 2\n3")
    assert outputs_match("1 2\r\n3\r\n", "1 2\n3\n")
    assert outputs_match("  1   2  ", "1 2")
    assert not outputs_match("1 2\n3\n4", "1 2\n3")
    assert not outputs_match("1 2 3", "1 2")
    assert run_tests("print('1 2   ')\nprint('3 ')\nprint()", [CodeTest("", "1 2\n3\n", "stdin")]).passed


def test_a_flood_of_output_is_an_output_limit():
    limits = SandboxLimits(file_bytes=2_000_000)
    report = run_tests("while True:\n    print('x' * 10**6)", [CodeTest("", "x", "stdin")], limits=limits)
    assert report.verdicts == ["output_limit"]
    stderr_flood = run_tests("import sys\nwhile True:\n    sys.stderr.write('e' * 10**6)", [CodeTest("", "x", "stdin")],
                             limits=limits)
    assert stderr_flood.verdicts == ["output_limit"]


def test_memory_and_blocked_operations_have_their_own_verdicts(tmp_path):
    limits = SandboxLimits(memory_mb=256)
    assert run_tests("x = [0] * (10**10)", [CodeTest("", "0", "stdin")], limits=limits).verdicts == ["memory"]
    target = tmp_path / "escape.txt"
    blocked = run_tests(f"open({str(target)!r}, 'w').write('x')\nprint(1)", [CodeTest("", "1", "stdin")])
    assert blocked.verdicts == ["blocked"] and "sandbox" in blocked.detail
    assert not target.exists()
    forks = run_tests("import os\nos.fork()\nprint(1)", [CodeTest("", "1", "stdin")])
    assert forks.verdicts == ["blocked"]


def test_a_crash_fails_its_own_test_only():
    program = "import os, signal\na, b = map(int, input().split())\nif a == 5:\n    os.kill(os.getpid(), signal.SIGKILL)\nprint(a + b)"
    report = run_tests(program, ADD_TESTS, stop_at_first_failure=False)
    assert report.verdicts == ["passed", "runtime_error", "passed"]
    assert "crashed" in report.detail


def test_tests_do_not_share_state_and_cannot_read_expected_outputs():
    program = "import os\nprint(os.path.exists('tests.json'), 'counter' in globals())\ncounter = 1"
    tests = [CodeTest("", "False False", "stdin")] * 2
    assert run_tests(program, tests, stop_at_first_failure=False).verdicts == ["passed", "passed"]


# ---- functional tests ---------------------------------------------------------------------------


def test_functional_tests_with_list_arguments_and_a_mix_of_results():
    tests = [functional("[2,7,11,15]\n9", "[0, 1]"), functional("[3,3]\n6", "[0, 2]"), functional("[3,2,4]\n6", "[1,2]")]
    report = run_tests(TWO_SUM, tests, func_name="twoSum")
    assert report.verdicts == ["passed", "wrong_answer", "not_run"]
    assert report.detail == "test 1: wrong_answer: expected [0, 2], got [0, 1]"
    everything = run_tests(TWO_SUM, tests, func_name="twoSum", stop_at_first_failure=False)
    assert everything.verdicts == ["passed", "wrong_answer", "passed"]
    assert not everything.passed


def test_functional_results_compare_as_json_values():
    program = """
class Solution:
    def f(self, x: float, pair: bool) -> Any:
        if pair:
            return (x, [x * 2])
        return x / 3
"""
    tests = [functional("1.0\ntrue", "[1, [2.0]]"), functional("1\nfalse", "0.33333333")]
    assert run_tests(program, tests, func_name="f", stop_at_first_failure=False).verdicts == ["passed", "passed"]
    wrong = [functional("1\nfalse", "0.34")]
    assert run_tests(program, wrong, func_name="f").verdicts == ["wrong_answer"]


def test_functional_results_that_fake_equality_do_not_pass():
    program = """
class Liar:
    def __eq__(self, other):
        return True

class Solution:
    def f(self, n: int) -> int:
        return Liar()
"""
    report = run_tests(program, [functional("1", "2")], func_name="f")
    assert report.verdicts == ["wrong_answer"] and "not a JSON value" in report.detail


def test_functional_errors_and_missing_pieces():
    assert run_tests("class Solution:\n    def f(self, n):\n        return 1 // 0", [functional("1", "1")],
                     func_name="f").verdicts == ["runtime_error"]
    missing = run_tests("def f(n):\n    return n", [functional("1", "1")], func_name="f")
    assert missing.verdicts == ["runtime_error"] and "Solution" in missing.detail
    with pytest.raises(ValueError, match="func_name"):
        run_tests(TWO_SUM, [functional("[1]\n2", "[0, 1]")])
    with pytest.raises(ValueError, match="not JSON"):
        run_tests(TWO_SUM, [functional("[1,\n2", "[0, 1]")], func_name="twoSum")
    with pytest.raises(ValueError, match="testtype"):
        run_tests(ADD, [CodeTest("1 2", "3", "interactive")])
    empty = run_tests(ADD, [])
    assert empty.verdicts == [] and not empty.passed


def test_the_lcb_import_header_is_available():
    program = """
class Solution:
    def f(self, nums: List[int]) -> int:
        counts = Counter(nums)
        heap = list(counts.values())
        heapify(heap)
        return heappop(heap) + int(sqrt(bisect_left(sorted(nums), 3)))
"""
    assert run_tests(program, [functional("[1,1,2,3,3,3]", "2")], func_name="f").passed


# ---- extract_code -------------------------------------------------------------------------------


def test_extract_code_takes_the_last_python_block():
    text = "First try:\n```python\nprint(1)\n```\nBetter:\n```python\nprint(2)\n```\nDone."
    assert extract_code(text) == "print(2)\n"
    assert extract_code("```py\nx = 1\n```") == "x = 1\n"
    assert extract_code("```Python3\nx = 3\n```") == "x = 3\n"
    assert extract_code("Here:\n```\nprint('bare')\n```\n") == "print('bare')\n"


def test_extract_code_skips_other_languages_and_falls_back_to_the_text():
    text = "```python\nprint('code')\n```\nExample input:\n```json\n{\"a\": 1}\n```\n"
    assert extract_code(text) == "print('code')\n"
    assert extract_code("print('no fences')\n") == "print('no fences')\n"
    assert extract_code("```cpp\nint main() {}\n```") == "```cpp\nint main() {}\n```"
    assert extract_code("```python\nprint('cut off by the token limit')") == "print('cut off by the token limit')"
    nested = "```python\ns = '''\n  ``` not a fence end\n'''\nprint(s)\n```"
    assert extract_code(nested) == "s = '''\n  ``` not a fence end\n'''\nprint(s)\n"



# ---- verdicts a program cannot forge (issue 12); `mode` (full layers, guard-only) is in conftest.py -----

# Each tries to pass tests it does not solve (it prints a wrong answer or nothing) by reaching
# whatever decides the verdict: the harness's frames, its module globals, its results file, the
# expected outputs, the comparison functions, the status channel.
FORGERIES = {
    "harness_frames": """
import sys
frame = sys._getframe()
found = None
while frame is not None:
    for value in list(frame.f_locals.values()):
        if isinstance(value, dict) and "output" in value:
            found = value["output"]
    frame = frame.f_back
print(found if found is not None else "wrong")
""",
    "harness_globals": """
import sys
for module in list(sys.modules.values()):
    for name in ("_lines_match", "_values_match", "outputs_match", "_judge"):
        if hasattr(module, name):
            setattr(module, name, lambda *args, **kwargs: True)
print("wrong")
""",
    "results_file": """
import json, os
for name in os.listdir("."):
    if name.endswith(".jsonl") or name.startswith("results"):
        with open(name, "a") as f:
            for i in range(50):
                f.write(json.dumps({"i": i, "verdict": "passed", "detail": "", "seconds": 0}) + "\\n")
            f.write(json.dumps({"done": True}) + "\\n")
os._exit(0)
""",
    "expected_outputs_on_disk": """
import os
for root, dirs, files in os.walk("."):
    for name in files:
        text = open(os.path.join(root, name), errors="replace").read()
        if '"output"' in text:
            import json
            print(json.loads(text)["tests"][0]["output"])
            raise SystemExit
print("wrong")
""",
    "status_channel": """
import os
for fd in range(3, 1024):
    try:
        os.write(fd, b'{"i": 0, "verdict": "passed"}\\n{"done": true}\\n{"layers": []}\\n')
    except OSError:
        pass
print("wrong")
""",
    "builtins_and_json": """
import builtins, json
json.loads = lambda *a, **k: 3
builtins.__dict__["print"] = builtins.print
print("wrong")
""",
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_program_cannot_make_itself_pass_stdin_tests(case, mode):
    report = run_tests(FORGERIES[case], ADD_TESTS, stop_at_first_failure=False)
    assert "passed" not in report.verdicts and not report.passed, report


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_a_program_cannot_make_itself_pass_functional_tests(case, mode):
    body = "\n".join("        " + line for line in FORGERIES[case].strip().splitlines())
    program = f"class Solution:\n    def twoSum(self, nums, target):\n{body}\n        return [9, 9]\n"
    tests = [functional("[2,7,11,15]\n9", "[0, 1]"), functional("[3,2,4]\n6", "[1, 2]")]
    report = run_tests(program, tests, func_name="twoSum", stop_at_first_failure=False)
    assert "passed" not in report.verdicts and not report.passed, report


def test_an_answer_is_only_what_reaches_stdout_and_an_exit_status_of_zero(mode):
    printed_then_crashed = "print(3)\nimport os\nos._exit(1)"
    assert run_tests(printed_then_crashed, [CodeTest("", "3", "stdin")]).verdicts == ["runtime_error"]
    answer_then_more = """
import os
class Solution:
    def f(self, n):
        for fd in range(1, 64):  # print() goes nowhere; this finds the answer's descriptor too
            try:
                os.write(fd, b"[1]")
            except OSError:
                pass
        return 1  # "[1]1" on stdout: not one JSON value
"""
    assert run_tests(answer_then_more, [functional("1", "1")], func_name="f").verdicts == ["wrong_answer"]
    prints_are_not_answers = "class Solution:\n    def f(self, n):\n        print(1)\n        return 2\n"
    assert run_tests(prints_are_not_answers, [functional("1", "1")], func_name="f").verdicts == ["wrong_answer"]
    assert run_tests(prints_are_not_answers, [functional("1", "2")], func_name="f").passed


def test_tests_cannot_see_each_other(mode):
    """A test's files and the other tests' inputs are gone: each test is a fresh process and folder."""
    program = """
import os
seen = sorted(os.listdir("."))
data = input()
open("note.txt", "a").write(data)
print(len(seen), open("note.txt").read())
"""
    tests = [CodeTest("a\n", "2 a", "stdin"), CodeTest("b\n", "2 b", "stdin"), CodeTest("c\n", "2 c", "stdin")]
    assert run_tests(program, tests, stop_at_first_failure=False).verdicts == ["passed"] * 3
    # Modules and builtins a test patches are its own (the old harness shared one interpreter).
    patching = """
import builtins, math
print("polluted" if hasattr(builtins, "seen") or math.sqrt(4) != 2 else input())
builtins.seen = True
math.sqrt = lambda x: 0
"""
    assert run_tests(patching, [CodeTest("x", "x", "stdin")] * 3, stop_at_first_failure=False).passed


def test_an_answer_built_to_crash_the_judge_is_a_wrong_answer():
    """The parent parses and compares what a program printed: nesting past its recursion limit is
    a wrong answer, not an exception in teachgraph."""
    nested = "import os\nos.write(1, b'[' * 100000 + b']' * 100000)"
    assert run_tests(nested, [CodeTest("", "[[1]]", "stdin")]).verdicts == ["wrong_answer"]
    deep = "class Solution:\n    def f(self, n):\n        x = []\n        for _ in range(5000):\n            x = [x]\n        return x\n"
    assert run_tests(deep, [functional("1", "[[1]]")], func_name="f").verdicts == ["wrong_answer"]


def test_numbers_past_the_int_digit_limit_compare_exactly_without_an_error():
    big = "9" * 5000
    assert outputs_match(big, big) and outputs_match("0" + big, "+" + big)
    assert not outputs_match(big + "8", big + "7")
    assert not outputs_match("1" * 400 + ".5", "2" * 400 + ".5")  # both overflow a float
    assert run_tests(f"print('{big}8')", [CodeTest("", big + "7", "stdin")]).verdicts == ["wrong_answer"]
    assert run_tests(f"print('0{big}')", [CodeTest("", big, "stdin")]).passed
