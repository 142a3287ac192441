r"""Agreement of the MATH answer scorer (`teachgraph.domains.math_answers.is_equiv`) with Hugging Face's
`math-verify` (the checker lm-eval and open-r1 use), before and after a change, on labelled answer pairs.

    python benchmarks/math_scorer_agreement.py [--smoke] [--baseline-ref REF] [--out PATH]

Pairs (each a prediction, a gold answer, a label and a class):

* `tests`: every pair of tests/unit_tests/test_math_answers.py's `test_equivalent` (label True),
  `test_not_equivalent` (False) and the forms of one half, both ways round;
* `issue`: the false positives and negatives that issue 12 names, with more of their kinds;
* `coverage`: notation our own LaTeX converter did not read (inequalities, intervals written as
  inequalities, `\operatorname`, `\gcd`, `\max`, `\mathbb{R}`, calculus) and near misses of it;
* `sample`: built from the gold answers of the shipped MATH sample (teachgraph/domains/data/math/*.jsonl):
  each gold answer against forms of it made by rule. Equivalent forms (label True): presentation
  (`x = `, spaces, `\dfrac`, `\left(`...`\right)`, `bmatrix`, `\text{}`), exact rewrites of its value
  (`n.0`, `\frac{2n}{2}`, `\sqrt{n^2}`, `p/q`, `\frac{2p}{2q}`, exact decimals, a 7-digit rounding of a
  non-terminating fraction, `\pi\cdot k`, `\sqrt{k^2 m}` for `k\sqrt{m}`, units and `^\circ` dropped);
  perturbed forms (label False): `n+1`, `-n`, `n.5`, `\frac{2n+1}{2}`, a 3-digit truncation, `\frac{p+1}{q}`,
  `(k+1)\pi`, `k\sqrt{m+1}`, swapped tuple items, changed interval brackets, a changed matrix entry, a
  conjugate, another weekday or choice; and gold `n\cdot 10^6` against `n\cdot 10^6 + 0.5`.

The label is what the project's semantics say (module docstring of math_answers); math-verify is called
the way lm-eval does (`verify(parse(gold), parse(prediction))`, each answer wrapped in `$...$`). The
baseline is the scorer at `--baseline-ref` (default: the commit before issue 12's MATH fixes), loaded from
git into a temporary file. Reported: accuracy against the labels, agreement with math-verify, every
disagreement by class, and milliseconds per 1,000 comparisons (the sympy worker warm, its caches cold).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import ROOT, Stopwatch, md_table, out_path, parser, write_result  # noqa: E402

NAME = "math_scorer_agreement"
BASELINE_REF = "b8083f6"
Pair = tuple[str, str, bool, str]  # prediction, gold, label, class


# -- pairs ----------------------------------------------------------------------------------------

def test_pairs() -> list[Pair]:
    from tests.unit_tests import test_math_answers as t

    def params(function: Callable) -> list:
        return next(m.args[1] for m in function.pytestmark if m.name == "parametrize")

    pairs: list[Pair] = []
    for label, function in ((True, t.test_equivalent), (False, t.test_not_equivalent)):
        for a, b in params(function):
            pairs += [(a, b, label, "tests"), (b, a, label, "tests")]
    pairs += [(a, b, True, "tests:half") for a in t.HALF for b in t.HALF if a != b]
    return pairs


ISSUE_PAIRS: list[Pair] = [
    ("1000000.5", "1000000", False, "issue:fp large+0.5"),
    ("123456789.5", "123456789", False, "issue:fp large+0.5"),
    ("-2000000.5", "-2000000", False, "issue:fp large+0.5"),
    ("1000000", "1000000.5", False, "issue:fp large+0.5"),
    (r"\frac{2000001}{2}", "1000000", False, "issue:fp near fraction"),
    (r"\frac{3000001}{3}", "1000000", False, "issue:fp near fraction"),
    (r"\sqrt{1000000000001}", "1000000", False, "issue:fp near root"),
    (r"\sqrt{4000000000001}", "2000000", False, "issue:fp near root"),
    (r"\sqrt[1000000]{2}", "1", False, "issue:fp near root"),
    (r"2^{\frac{1}{10000000}}", "1", False, "issue:fp near root"),
    (r"1+\frac{1}{10^{9}}", "1", False, "issue:fp near fraction"),
    (r"\frac{1}{0}", r"\frac{2}{0}", False, "issue:fp division by zero"),
    (r"\frac{1}{0}", "5", False, "issue:fp division by zero"),
    (r"\frac{x}{0}", r"\frac{y}{0}", False, "issue:fp division by zero"),
    (r"\sqrt{x^2}", "x", True, "issue:fn single letter"),
    (r"\sqrt{a^2}", "a", True, "issue:fn single letter"),
    (r"\frac{2x}{2}", "x", True, "issue:fn single letter"),
    (r"\sqrt{-1}", "i", True, "issue:fn single letter"),
    ("i^3", "-i", True, "issue:fn single letter"),
    (r"0.\overline{3}", r"\frac13", True, "issue:fn repeating decimal"),
    (r"0.1\overline{6}", r"\frac16", True, "issue:fn repeating decimal"),
    (r"1.\overline{27}", r"\frac{14}{11}", True, "issue:fn repeating decimal"),
    (r"0.\overline{3}", r"\frac{3}{10}", False, "issue:fn repeating decimal"),
    ("1e3", "1000", True, "issue:fn scientific"),
    ("2.5e-3", r"\frac{1}{400}", True, "issue:fn scientific"),
    ("1E6", "1000000", True, "issue:fn scientific"),
    ("1e3", "1001", False, "issue:fn scientific"),
    ("0.3333333", r"\frac13", True, "issue:approximation kept"),
    ("1.414214", r"\sqrt{2}", True, "issue:approximation kept"),
    ("3.14159", r"\pi", True, "issue:approximation kept"),
    ("3.14", r"\pi", False, "issue:approximation kept"),
    ("0.333", r"\frac13", False, "issue:approximation kept"),
]


COVERAGE_PAIRS: list[Pair] = [  # notation beyond our own LaTeX converter (math-verify's converter reads it)
    (r"x \le 3", r"3 \ge x", True, "coverage:inequality"), ("x > 2", "2 < x", True, "coverage:inequality"),
    (r"x^2 \geq 0", r"0 \le x^2", True, "coverage:inequality"), (r"1 \le x", r"x \ge 1", True, "coverage:inequality"),
    (r"x \le 3", "x < 3", False, "coverage:inequality"), (r"x \le 3", r"x \ge 3", False, "coverage:inequality"),
    ("1 < x", r"x \ge 1", False, "coverage:inequality"),
    (r"2 \le x \le 5", "[2,5]", True, "coverage:inequality vs interval"),
    ("x > 2", r"(2,\infty)", True, "coverage:inequality vs interval"),
    (r"(2,\infty)", "x > 2", True, "coverage:inequality vs interval"),
    ("-2 < x < 3", "(-2,3)", True, "coverage:inequality vs interval"),
    (r"x \in [2,5]", r"2 \le x \le 5", True, "coverage:inequality vs interval"),
    ("|x|<2", "(-2,2)", True, "coverage:inequality vs interval"),
    (r"x \ge 2", r"(2,\infty)", False, "coverage:inequality vs interval"),
    (r"2 \le x \le 5", "[2,6]", False, "coverage:inequality vs interval"),
    (r"\mathbb{R}", r"(-\infty,\infty)", True, "coverage:named set"), (r"\mathbb{R}", r"(0,\infty)", False, "coverage:named set"),
    (r"\operatorname{lcm}(4,6)", "12", True, "coverage:functions"), (r"\gcd(12,18)", "6", True, "coverage:functions"),
    (r"\max(2,3)", "3", True, "coverage:functions"), (r"\operatorname{lcm}(4,6)", "24", False, "coverage:functions"),
    (r"\gcd(12,18)", "3", False, "coverage:functions"), (r"\lvert -3 \rvert", "3", True, "coverage:functions"),
    (r"\tan^{-1} 1", r"\frac{\pi}{4}", True, "coverage:functions"), (r"\arcsin 1", r"\frac{\pi}{2}", True, "coverage:functions"),
    (r"\log_2 8", "3", True, "coverage:functions"), (r"\cot\frac{\pi}{4}", "1", True, "coverage:functions"),
    (r"\csc^2 x - \cot^2 x", "1", True, "coverage:functions"), (r"\lfloor 2.5 \rfloor", "2", True, "coverage:functions"),
    (r"\sqrt[3]{-8}", "-2", True, "coverage:real odd root"), (r"\sqrt[3]{-8}", "2", False, "coverage:real odd root"),
    (r"\pi r^2", r"r^2\pi", True, "coverage:command then letter"), (r"a\cdot b", "ab", True, "coverage:command then letter"),
    (r"\pi r^2", r"\pi r^3", False, "coverage:command then letter"),
    ("e", r"\exp(1)", True, "coverage:constants"), (r"\mathrm{e}", "e", True, "coverage:constants"),
    (r"\frac{1}{2}\%", r"0.5\%", True, "coverage:percent"),
    ("monday", "dynamo", False, "coverage:words"), (r"\text{no solution}", r"\text{solution no}", False, "coverage:words"),
    (r"\frac{d}{dx} x^2", "2x", True, "coverage:calculus"), (r"\int_0^1 x dx", r"\frac12", True, "coverage:calculus"),
    (r"\sum_{k=1}^{3} k", "6", True, "coverage:calculus"),
]


def _gold_answers() -> list[str]:
    from teachgraph.domains.math_answers import extract_answer

    answers: list[str] = []
    for split in ("train", "test"):
        for line in (ROOT / "teachgraph/domains/data/math" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines():
            answer = extract_answer(json.loads(line)["solution"])
            if answer and answer not in answers:
                answers.append(answer)
    return answers


def _terminating_decimal(value: Fraction) -> str | None:
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    if d != 1:
        return None
    k = 0
    while (value * 10**k).denominator != 1:
        k += 1
    text = f"{abs(value) * 10**k // 1}".rjust(k + 1, "0")
    text = text[:-k] + "." + text[-k:] if k else text
    return ("-" if value < 0 else "") + text


INT = re.compile(r"-?\d+")
FRAC = re.compile(r"(-?)\\frac\{(\d+)\}\{(\d+)\}")
PI = re.compile(r"(\d+)\\pi")
ROOT_FORM = re.compile(r"(\d*)\\sqrt\{(\d+)\}")
TUPLE = re.compile(r"(\\left)?\s*([(\[])\s*(.+?)\s*,\s*(.+?)\s*(\\right)?\s*([)\]])")
DEGREES = re.compile(r"(\d+)\^\\circ")
PERCENT = re.compile(r"(\d+)\\%")
MATRIX = re.compile(r"\\begin\{pmatrix\}(.*)\\end\{pmatrix\}")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def forms(gold: str) -> list[tuple[str, bool, str]]:
    """Equivalent (True) and perturbed (False) forms of one gold answer, with the rule's name."""
    out: list[tuple[str, bool, str]] = []
    if m := INT.fullmatch(gold):
        n = int(gold)
        out += [(f"{n}.0", True, "int as n.0"), (f"\\frac{{{2 * n}}}{{2}}", True, "int as 2n/2"),
                (f"x = {n}", True, "assignment"), (f"{n + 1}", False, "int n+1"), (f"{n}.5", False, "int n.5"),
                (f"\\frac{{{2 * n + 1}}}{{2}}", False, "int (2n+1)/2")]
        if n > 0:
            out += [(f"\\sqrt{{{n * n}}}", True, "int as sqrt(n^2)"), (f"{-n}", False, "int -n")]
    elif m := FRAC.fullmatch(gold):
        sign, p, q = m.group(1), int(m.group(2)), int(m.group(3))
        value = Fraction(p, q) * (-1 if sign else 1)
        out += [(f"{sign}{p}/{q}", True, "frac as p/q"), (f"{sign}\\dfrac{{{p}}}{{{q}}}", True, "dfrac"),
                (f"{sign}\\frac{{{2 * p}}}{{{2 * q}}}", True, "frac as 2p/2q"),
                (f"{sign}\\frac{{{p + 1}}}{{{q}}}", False, "frac (p+1)/q")]
        if (decimal := _terminating_decimal(value)) is not None:
            out.append((decimal, True, "frac as exact decimal"))
        else:
            out.append((f"{float(value):.7f}", True, "frac as 7-digit decimal"))
            out.append((f"{float(value):.3f}", False, "frac as 3-digit decimal"))
        if p != q:
            out.append((f"{sign}\\frac{{{q}}}{{{p}}}", False, "frac inverted"))
    elif m := PI.fullmatch(gold):
        k = int(m.group(1))
        out += [(f"\\pi \\cdot {k}", True, "k pi reordered"), (f"{k}\\cdot\\pi", True, "k pi reordered"),
                (f"{k + 1}\\pi", False, "(k+1) pi"), (f"{k}", False, "k pi without pi")]
    elif m := ROOT_FORM.fullmatch(gold):
        k, r = int(m.group(1) or 1), int(m.group(2))
        out += [(f"\\sqrt{{{k * k * r}}}", True, "k sqrt m as sqrt(k^2 m)"),
                (f"{m.group(1)}\\sqrt{{{r + 1}}}", False, "k sqrt(m+1)")]
    elif m := DEGREES.fullmatch(gold):
        out += [(m.group(1), True, "degrees dropped"), (f"{m.group(1)} degrees", True, "degrees as a word"),
                (str(int(m.group(1)) + 1), False, "degrees n+1")]
    elif m := PERCENT.fullmatch(gold):
        out += [(m.group(1), True, "percent dropped"), (f"{m.group(1)} percent", True, "percent as a word"),
                (str(int(m.group(1)) + 5) + "\\%", False, "percent n+5")]
    elif m := TUPLE.fullmatch(gold):
        left, a, b, right = m.group(2), m.group(3), m.group(4), m.group(6)
        out += [(f"\\left{left} {a} , {b} \\right{right}", True, "tuple with \\left \\right"),
                (f"{left}{a},{b}{right}", True, "tuple without spaces")]
        if a != b:
            out.append((f"{left}{b},{a}{right}", False, "tuple swapped"))
        other = {"(": "[", "[": "("}[left]
        out.append((f"{other}{a},{b}{right}", False, "bracket changed"))
    elif m := MATRIX.fullmatch(gold):
        body = m.group(1)
        out += [(f"\\begin{{bmatrix}}{body}\\end{{bmatrix}}", True, "matrix as bmatrix"),
                (gold.replace(" ", ""), True, "matrix without spaces")]
        first = re.search(r"-?\d+", body)
        if first:
            changed = body[:first.start()] + str(int(first.group()) + 1) + body[first.end():]
            out.append((f"\\begin{{pmatrix}}{changed}\\end{{pmatrix}}", False, "matrix entry changed"))
    elif gold == "7 + i":
        out += [("i+7", True, "complex reordered"), ("7-i", False, "complex conjugate")]
    elif gold.startswith("\\$"):
        out += [(gold[2:], True, "dollar sign dropped"), (f"{gold[2:]} dollars", True, "dollars as a word"),
                (str(int(gold[2:]) + 1), False, "dollars n+1")]
    elif gold == r"\text{(B)}":
        out += [("B", True, "choice letter"), ("(B)", True, "choice letter"), ("(C)", False, "other choice")]
    elif m := re.fullmatch(r"\\text\{(\w+)\}", gold):
        word = m.group(1)
        out += [(word, True, "text unwrapped"), (word.lower(), True, "text lower-cased")]
        if word in WEEKDAYS:
            out.append((WEEKDAYS[(WEEKDAYS.index(word) + 1) % 7], False, "other weekday"))
    elif gold == "400_5":
        out += [("400_{5}", True, "base subscript braced"), ("401_5", False, "base digit changed")]
    elif gold == "6.8":
        out += [(r"\frac{34}{5}", True, "decimal as fraction"), ("6.80", True, "decimal trailing zero"),
                ("6.79", False, "decimal changed"), ("68", False, "decimal point lost")]
    else:  # expressions: presentation only, and one digit changed
        out.append((gold.replace("\\frac", "\\dfrac").replace(" ", ""), True, "expression presentation"))
        digit = re.search(r"\d", gold)
        if digit:
            out.append((gold[:digit.start()] + str((int(digit.group()) + 1) % 10) + gold[digit.end():], False,
                        "expression digit changed"))
    return out


def sample_pairs() -> list[Pair]:
    pairs: list[Pair] = []
    for gold in _gold_answers():
        pairs += [(form, gold, label, f"sample:{rule}") for form, label, rule in forms(gold)]
        if INT.fullmatch(gold) and int(gold) > 0:
            big = int(gold) * 10**6
            pairs.append((f"{big}.5", str(big), False, "sample:int*10^6 + 0.5"))
    return pairs


# -- the scorers ----------------------------------------------------------------------------------

def load_baseline(ref: str) -> Any:
    source = subprocess.run(["git", "show", f"{ref}:teachgraph/domains/math_answers.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    folder = Path(tempfile.mkdtemp(prefix="math_answers_baseline_"))
    path = folder / "math_answers_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("math_answers_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def math_verify_equiv() -> Callable[[str, str], bool]:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)

    def equiv(prediction: str, gold: str) -> bool:
        return bool(verify(parse(f"${gold}$", parsing_timeout=None), parse(f"${prediction}$", parsing_timeout=None),
                           timeout_seconds=None))

    return equiv


def verdicts(equiv: Callable[[str, str], bool], pairs: list[Pair]) -> tuple[list[bool], float]:
    """The verdicts, and milliseconds per 1,000 comparisons: one pass (a second would mostly time
    sympy's caches)."""
    equiv(r"2\sqrt{3}", r"\sqrt{12}")  # warm (the sympy worker starts here)
    start = time.perf_counter()
    out = [bool(equiv(p, g)) for p, g, _, _ in pairs]
    return out, (time.perf_counter() - start) * 1000 / len(pairs) * 1000


def main() -> None:
    p = parser(NAME, __doc__)
    p.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the 'before' scorer")
    args = p.parse_args()
    clock = Stopwatch()
    from teachgraph.domains import math_answers

    groups = {"tests": test_pairs(), "issue": ISSUE_PAIRS, "coverage": COVERAGE_PAIRS, "sample": sample_pairs()}
    if args.smoke:
        groups = {k: v[:10] for k, v in groups.items()}
    scorers = {"before": load_baseline(args.baseline_ref).is_equiv, "after": math_answers.is_equiv,
               "math_verify": math_verify_equiv()}
    results: dict[str, Any] = {"pairs": {k: len(v) for k, v in groups.items()}, "groups": {}}
    rows, speed_rows, disagreement_md = [], [], []
    for group, pairs in groups.items():
        got = {name: verdicts(f, pairs) for name, f in scorers.items()}
        labels = [label for _, _, label, _ in pairs]
        summary: dict[str, Any] = {"n": len(pairs), "true_labels": sum(labels)}
        for name, (v, ms) in got.items():
            summary[f"{name}_correct"] = sum(a == b for a, b in zip(v, labels))
            summary[f"{name}_ms_per_1000"] = round(ms, 1)
        mv = got["math_verify"][0]
        for name in ("before", "after"):
            v = got[name][0]
            summary[f"{name}_agree_math_verify"] = sum(a == b for a, b in zip(v, mv))
            classes: dict[str, list] = defaultdict(list)
            for (pred, gold, label, cls), ours, theirs in zip(pairs, v, mv):
                if ours != theirs:
                    classes[cls].append({"prediction": pred, "gold": gold, "label": label, "ours": ours,
                                         "math_verify": theirs})
            summary[f"{name}_disagreements"] = dict(sorted(classes.items()))
        results["groups"][group] = summary
        n = len(pairs)
        rows.append((group, n, f"{summary['before_correct']}/{n}", f"{summary['after_correct']}/{n}",
                     f"{summary['math_verify_correct']}/{n}", f"{summary['before_agree_math_verify']}/{n}",
                     f"{summary['after_agree_math_verify']}/{n}"))
        speed_rows.append((group, summary["before_ms_per_1000"], summary["after_ms_per_1000"],
                           summary["math_verify_ms_per_1000"]))
        for name in ("before", "after"):
            for cls, items in summary[f"{name}_disagreements"].items():
                example = items[0]
                right = Counter("ours" if d["ours"] == d["label"] else "math-verify" for d in items)
                disagreement_md.append((group, name, cls, len(items), dict(right),
                                        f"`{example['prediction']}` vs `{example['gold']}` (label {example['label']})"))
    markdown = "\n\n".join([
        "Correct = verdict equals the label; agree = verdict equals math-verify's.",
        md_table(["pairs", "n", "before correct", "after correct", "math-verify correct", "before agrees with mv",
                  "after agrees with mv"], rows),
        "Milliseconds per 1,000 comparisons (sympy worker warm):",
        md_table(["pairs", "before", "after", "math-verify"], speed_rows),
        "Disagreements with math-verify, by class (who matches the label):",
        md_table(["pairs", "scorer", "class", "n", "right", "example"], disagreement_md),
    ])
    result = {"benchmark": NAME, "smoke": args.smoke, "what": "MATH answer scorer vs math-verify on labelled pairs",
              "config": {"baseline_ref": args.baseline_ref}, "results": results, "seconds": clock.seconds()}
    write_result(out_path(NAME, args), result, markdown)


if __name__ == "__main__":
    main()
