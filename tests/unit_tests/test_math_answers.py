"""domains/math_answers.py: extraction, normalisation, equivalence, scoring and the sympy timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from teachgraph.domains import math_answers
from teachgraph.domains.math_answers import (extract_answer, is_equiv, normalize_answer, score_prediction, solution_consistent,
                                  timeout_count)

ROOT = Path(__file__).resolve().parents[2]
PATHOLOGICAL = r"9^{9^{9^{9}}}"  # sympy evaluates the power tower eagerly: it never finishes


def _process_gone(pid: int, wait_s: float = 3.0) -> bool:
    """Whether a pid has disappeared (a zombie keeps its /proc entry until it is reaped)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    return False


def _warm_worker() -> None:
    assert is_equiv(r"2\sqrt{3}", r"\sqrt{12}")  # needs sympy: starts the worker outside any timed section


# -- extraction ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    (r"so the answer is $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
    (r"first \boxed{1}, finally \boxed{2}", "2"),
    (r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
    (r"The answer is $\boxed 5$.", "5"),
    (r"in a box: \fbox{7}", "7"),
    ("Final Answer: The final answer is $5$. I hope it is correct.", "5"),
    ("The final answer is 3.5.", "3.5"),
    (r"The final answer is $\frac{1}{2}$", r"\frac{1}{2}"),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text", ["", "no answer here", r"truncated \boxed{5", r"\boxed{}"])
def test_extract_answer_none(text):
    assert extract_answer(text) is None


def test_boxed_wins_over_the_final_answer_phrase():
    assert extract_answer(r"The final answer is 3. Wait: \boxed{4}") == "4"


# -- normalisation ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    (r"\dfrac12", r"\frac{1}{2}"),
    ("1/2", r"\frac{1}{2}"),
    (r"\frac\pi2", r"\frac{\pi}{2}"),
    (r"\sqrt2", r"\sqrt{2}"),
    (r"5 \text{ cm}", "5"),
    (r"5\text{ cm}^2", "5"),
    ("12 square units", "12"),
    (r"50\%", "50"),
    (r"\$1,000.00", "1000"),
    (r"10,\!000", "10000"),
    (r"30^\circ", "30"),
    (r"\left( -\infty, 2 \right]", r"(-\infty,2]"),
    ("x = 5", "5"),
    ("x=1, x=2", "1,2"),
    ("(x, y) = (1, 2)", "(1,2)"),
    (r"x \in [1, 3)", "[1,3)"),
    ("1011_{2}", "1011_2"),
    (".5", "0.5"),
    ("2.50", "2.5"),
    ("3.0", "3"),
    (r"\text{(B)}", "b"),
    (r"\text{Monday}", "monday"),
    (r"5^{\text{th}}", "5"),
])
def test_normalize_answer(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("raw", ["(1,2)", "1,2", "(1,000, 2)"])
def test_normalize_keeps_tuples_and_lists(raw):
    assert "," in normalize_answer(raw)


def test_units_need_a_number_and_single_letters_stay():
    assert normalize_answer("2 m") != "2"  # a plain one-letter word is not taken for a unit
    assert normalize_answer(r"\text{feet}") == "feet"


# -- equivalence --------------------------------------------------------------------------------

HALF = [r"\frac{1}{2}", "1/2", "0.5", r"\dfrac12", r"\tfrac{1}{2}", r"\frac12", ".5", r"\frac{2}{4}"]


@pytest.mark.parametrize("a", HALF)
@pytest.mark.parametrize("b", HALF)
def test_forms_of_one_half_are_equivalent(a, b):
    assert is_equiv(a, b)


@pytest.mark.parametrize("a, b", [
    (r"5 \text{ cm}", "5"),
    (r"10\text{ inches}", "10"),
    (r"50\%", "50"),
    (r"\$5", "5"),
    (r"5 \text{ dollars}", r"\$5.00"),
    (r"30^\circ", "30"),
    (r"30^{\circ}", r"30 \text{ degrees}"),
    ("[1,3)", "[1, 3)"),
    (r"(-\infty, 2]\cup(3,\infty)", r"\left(-\infty,2\right] \cup \left(3, \infty\right)"),
    (r"(-\infty, 2]\cup(3,\infty)", r"(3,\infty)\cup(-\infty,2]"),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix}1&2\\3&4\end{bmatrix}"),
    (r"\begin{pmatrix} \frac12 \\ -1 \end{pmatrix}", r"\begin{pmatrix} 0.5 \\ -1 \end{pmatrix}"),
    ("(1,2)", "(1, 2)"),
    (r"2\sqrt{3}", r"\sqrt{12}"),
    (r"\pi/2", r"\frac{\pi}{2}"),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}"),
    (r"\sqrt[3]{8}", "2"),
    (r"\text{(B)}", "B"),
    (r"\textbf{(C)}", "(C)"),
    (r"\text{Monday}", "monday"),
    ("1,000", "1000"),
    ("0.3333333", r"\frac13"),  # within the relative tolerance of 1e-6
    ("1, 2", "2, 1"),  # solution lists are unordered
    ("x=1, x=-2", "-2, 1"),
    (r"\{1, 2\}", r"\{2, 1\}"),
    (r"1\pm\sqrt{2}", r"1-\sqrt{2}, 1+\sqrt{2}"),
    ("y=2x+3", "y=3+2x"),
    ("x+y=5", "2x+2y=10"),
    ("3+4i", "4i+3"),
    (r"2\frac{1}{2}", r"\frac52"),  # a mixed number
    (r"\frac{x^2-1}{x-1}", "x+1"),
    (r"\sin^2 x+\cos^2 x", "1"),
    (r"\binom{5}{2}", "10"),
    ("5!", "120"),
    (r"e^{i\pi}", "-1"),
    ("2^{100}", "1267650600228229401496703205376"),
    (r"\infty", r"\infty"),
    (r"\boxed{7}", "7"),
])
def test_equivalent(a, b):
    assert is_equiv(a, b)
    assert is_equiv(b, a)


@pytest.mark.parametrize("a, b", [
    ("[1,3)", "(1,3)"),
    (r"(-\infty, 2]\cup(3,\infty)", r"(-\infty, 2)\cup(3,\infty)"),
    (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{bmatrix}1&2\\3&5\end{bmatrix}"),
    (r"\begin{pmatrix} 1 & 2 \end{pmatrix}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"),
    ("(1,2)", "(2,1)"),
    ("(1,2)", "1, 2"),
    ("1, 2", "1, 2, 2"),
    (r"\{1, 2\}", r"\{1, 3\}"),
    ("-3", "3"),
    ("0.333", r"\frac13"),  # MATH gold answers are exact: a 3-digit decimal is not a third
    ("0.5", r"\frac13"),
    (r"2\sqrt{3}", r"\sqrt{13}"),
    (r"\pi/2", r"\frac{\pi}{3}"),
    (r"\text{Monday}", "Tuesday"),
    (r"\text{(B)}", "C"),
    ("monday", "dynamo"),  # words are not products of variables
    ("y=2x+3", "y=2x-3"),
    ("x+y=5", "x-y=5"),
    ("x+y=5", "x+y"),
    ("x = y = 3", "3"),  # only a lone assignment is dropped
    ("2^{100}", "1267650600228229401496703205377"),  # integers compare exactly
    (r"10^{400}", r"10^{400}+1"),
    (r"-\infty", r"\infty"),
    ("3+4i", "3-4i"),
    ("1000", "100"),
    ("", ""),
])
def test_not_equivalent(a, b):
    assert not is_equiv(a, b)
    assert not is_equiv(b, a)


def test_unparseable_answers_fall_back_to_the_string_match():
    assert is_equiv(r"\unknowncommand{1}", r"\unknowncommand{1}")
    assert not is_equiv(r"\unknowncommand{1}", r"\unknowncommand{2}")
    assert not is_equiv(r"x \le 3", r"x < 3")


def test_simple_answers_are_fast():
    _warm_worker()
    start = time.perf_counter()
    for k in range(300):
        assert is_equiv(str(k), f"{k}.0")
        assert not is_equiv(f"\\frac{{{k}}}{{7}}", f"{k + 1}/7")
    assert time.perf_counter() - start < 2.0


# -- whole outputs ------------------------------------------------------------------------------

@pytest.mark.parametrize("output, gold, expected", [
    (r"We have $x = 2$, so the answer is $\boxed{2}$.", "2", True),
    (r"Half of it: $\boxed{\dfrac{1}{2}}$", "0.5", True),
    (r"$\boxed{3}$ hmm, no: $\boxed{4}$", "3", False),
    ("Final Answer: The final answer is $10\\%$. I hope it is correct.", "10", True),
    ("2", "2", True),  # a single short line without a box is taken as the answer
    (r"$\frac{1}{2}$", "0.5", True),
    ("I think\n2", "2", False),  # several lines and no extractable answer
    ("the answer might be two but I am not sure at all, let me think more about it", "2", False),
    ("", "2", False),
])
def test_score_prediction(output, gold, expected):
    assert score_prediction(output, gold) is expected


def test_solution_consistent():
    assert solution_consistent(r"So $x = \boxed{\frac12}$.", "0.5") is None
    assert solution_consistent(r"So $x = \boxed{\frac12}$.", "x = 1/2") is None
    assert solution_consistent(r"So $x = \boxed{3}$.", "0.5") == "answer_mismatch"
    assert solution_consistent("A solution that never states its answer.", "3") == "no_final_answer"
    assert solution_consistent(r"\boxed{3}", "  ") == "no_final_answer"


# -- the sympy worker: threads and timeouts -----------------------------------------------------

def test_is_equiv_works_from_threads():
    pairs = [(r"2\sqrt{3}", r"\sqrt{12}", True), (r"\pi/2", r"\frac{\pi}{2}", True),
             (r"\sqrt{2}", r"\sqrt{3}", False), ("0.5", r"\frac{1}{2}", True)] * 3
    results: dict[int, bool] = {}

    def work(k: int) -> None:
        a, b, _ = pairs[k]
        results[k] = is_equiv(a, b)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == {k: expected for k, (_, _, expected) in enumerate(pairs)}


def test_timeout_returns_quickly_counts_and_recovers():
    _warm_worker()
    worker = math_answers._worker
    assert worker is not None
    old_pid, before = worker.proc.pid, timeout_count()

    start = time.monotonic()
    assert is_equiv(PATHOLOGICAL, "1", timeout_s=1.0) is False
    assert time.monotonic() - start < 1.0 + 1.0
    assert timeout_count() == before + 1
    if Path("/proc").is_dir():
        assert _process_gone(old_pid), "the timed-out worker was not killed and reaped"

    # the next call starts a fresh worker and still works
    assert is_equiv(r"2\sqrt{3}", r"\sqrt{12}")
    assert math_answers._worker is not None and math_answers._worker.proc.pid != old_pid
    assert timeout_count() == before + 1


def test_timeout_from_a_worker_thread():
    _warm_worker()
    before, result = timeout_count(), []
    thread = threading.Thread(target=lambda: result.append(is_equiv(PATHOLOGICAL, "2", timeout_s=0.5)))
    start = time.monotonic()
    thread.start()
    thread.join(timeout=10)
    assert result == [False]
    assert time.monotonic() - start < 0.5 + 1.0
    assert timeout_count() == before + 1
    assert is_equiv(r"\pi/2", r"\frac{\pi}{2}")


def test_a_dead_worker_is_restarted():
    _warm_worker()
    worker = math_answers._worker
    assert worker is not None
    worker.proc.kill()
    worker.proc.wait()
    assert is_equiv(r"2\sqrt{3}", r"\sqrt{12}")
    assert not is_equiv(r"2\sqrt{3}", r"\sqrt{11}")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to look for the worker process")
def test_the_worker_does_not_outlive_the_interpreter():
    script = textwrap.dedent(r"""
        from teachgraph.domains import math_answers
        assert math_answers.is_equiv(r"2\sqrt{3}", r"\sqrt{12}")
        print(math_answers._worker.proc.pid, flush=True)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert _process_gone(int(done.stdout.strip()))
