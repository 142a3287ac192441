r"""Answer extraction, normalisation and equivalence for MATH (Hendrycks et al., 2021).

Pipeline
--------
1. ``extract_answer``: the content of the last ``\boxed{...}`` / ``\fbox{...}`` (balanced braces;
   ``\boxed 5`` too), else Minerva's "The final answer is X. I hope it is correct.", else None.
2. ``normalize_answer``: Hendrycks' ``strip_string`` merged with Minerva's
   ``normalize_final_answer`` (the rewrites are listed in its docstring).
3. ``is_equiv``: equal normalised strings are equivalent. Otherwise both strings are split into
   structure (``\cup`` unions, matrices, sets, tuples/intervals, comma lists) and the leaves are
   compared: cheap in-process checks first (plain numbers and numeric fractions exactly with
   ``fractions.Fraction``, text answers as strings); only when a leaf needs algebra does the pair go
   to a sympy worker process, through a small LaTeX -> sympy converter of our own. A leaf that our
   converter cannot read (inequalities, ``\operatorname{lcm}``, ``\gcd``, ``\max``, ``\mathbb{R}``,
   sums...) goes, in the same worker, to Hugging Face's ``math-verify`` (``parse`` + ``verify``, the
   checker of lm-eval and open-r1), whose LaTeX converter (``latex2sympy2-extended``) reads far more.

Why not math-verify for everything: on the labelled pairs of ``benchmarks/math_scorer_agreement.py``
(this module's tests, issue 12's cases, and ~500 pairs built from the shipped MATH sample) our
pipeline is right where math-verify is wrong in the classes listed below, and it is about 7x
(the tests' pairs) to 40x (the sample's) faster: most comparisons never leave the process, and
math-verify's parser is slow. Where our converter gives up, math-verify decides.

Semantics chosen (each difference from math-verify is deliberate)
---------------------------------------------------------------
* Comma lists ``1, 2`` are multisets: order is ignored (MATH asks for "all the solutions, separated
  by commas"; Hendrycks compares strings, which wrongly fails ``2, 1`` against ``1, 2``).
  *math-verify* reads a list as a set, so ``1, 2`` matches ``1, 2, 2``; here it does not.
  Tuples, points and intervals ``(1,2)``/``[1,3)`` are ordered and their brackets must match.
  *math-verify* lets an open interval ``(1,2)`` match the list ``1, 2``; here it does not.
  Sets ``\{1,2\}`` and the pieces of a ``\cup`` union are unordered. ``a \pm b`` is the list
  ``a+b, a-b``.
* Numbers compare exactly: ``1000000.5`` is not ``1000000``, ``\frac{2000001}{2}`` is not
  ``1000000``, ``\sqrt[1000000]{2}`` is not ``1`` (constants are equal when they agree to
  ``EXACT_DIGITS`` = 30 significant digits). The one exception: a decimal literal of
  ``APPROX_MIN_DIGITS`` = 6 significant digits or more (``0.3333333``, ``3.14159``, ``1.414214``)
  matches an exact value that it rounds or truncates to (closer than one unit in its last place).
  So ``0.333`` is not ``\frac13`` (MATH gold answers are exact) while ``0.3333333`` is. Two decimals
  compare exactly, and a decimal inside an expression is exact (``0.5x`` is ``\frac{x}{2}``).
  *math-verify* rounds both sides to 6 decimal places when one is a float: it agrees on all of the
  above except that it misses ``3.14159`` against ``\pi`` and takes tiny unequal decimals
  (``0.0000001`` and ``0.0000002``) as equal.
* ``\frac{1}{0}`` (anything undefined) matches nothing, not even ``\frac{2}{0}`` (but identical
  strings are equal before any evaluation).
* In expressions ``i`` is the imaginary unit and ``e`` Euler's number (``e^{i\pi}`` is ``-1``,
  ``\sqrt{-1}`` is ``i``; *math-verify* reads a lone ``i`` as a variable); an integer followed by a
  numeric fraction (``2\frac{1}{2}``) is a mixed number; ``\sqrt[n]{a}`` of a negative number with an
  odd ``n`` is the real root (``\sqrt[3]{-8}`` is ``-2``; *math-verify*: the principal complex
  root); ``\tan^{-1}`` is ``\arctan``.
* Repeating decimals are exact (``0.\overline{3}`` is ``\frac13``, ``0.1\overline{6}`` is
  ``\frac16``) and scientific notation is a number (``1e3`` is ``1000``, ``2.5e-3`` is ``0.0025``);
  *math-verify* reads ``0.\overline{3}`` as 0 and ``1e3`` as ``3e`` (it takes ``1E6``).
* A leading single-variable assignment (``x = 5``, ``k=3``, ``y = 2x+3``, ``x \in [1,3)``) is
  dropped, as Hendrycks does; other equations (``x+y=5``) are equivalent when they agree up to a
  nonzero constant factor. A chain ``x = y = 3`` is not ``3`` (*math-verify* takes its last side).
* Expressions with free symbols are equal when their difference expands to 0, or when they agree at
  a few seeded random points in (0.2, 2) (this catches identities ``simplify`` misses, and treats
  symbols as positive reals: ``\sqrt{x^2}`` matches ``x``; *math-verify* treats them as complex).
  Single letters are variables; words of three letters or more (``monday``) and pairs of purely
  alphabetic answers (``b`` for a choice) compare as strings and never reach math-verify (which
  reads them as products of letters: ``monday`` = ``dynamo``).
* An inequality or a named set against an interval or union (``2 \le x \le 5`` and ``[2,5]``,
  ``x > 2`` and ``(2,\infty)``) is compared as sets, either way round (math-verify with
  ``allow_set_relation_comp``; by default it accepts only a set prediction against a relation gold).
* Normalisation (Hendrycks/Minerva) drops units, ``\$``, ``\%`` and ``^\circ``: ``18 \text{ dollars}``
  is ``\$18``, ``\frac{1}{2}\%`` is ``0.5\%`` (*math-verify* misses both).
* Anything that neither converter reads falls back to the normalised string comparison (False
  unless equal). Known gap: calculus notation (``\frac{d}{dx} x^2``, ``\int_0^1 x\,dx``,
  ``\sum_{k=1}^3 k``) is read by our converter as products and words, so it never reaches
  math-verify, which would evaluate it; MATH answers do not use it.

Timeouts
--------
sympy can hang (``9^{9^{9^{9}}}``, huge factorials), and LangGraph calls scorers from worker
threads, where ``signal.alarm`` is unavailable. So the sympy part runs in one long-lived worker
subprocess (``python -P <this file> --worker``) that reads JSON requests on stdin and answers on
stdout. The caller waits for the answer with ``select`` for at most ``timeout_s``; on expiry it kills
the worker (restarted lazily by the next call), counts a timeout (``timeout_count()``) and returns
False. A lock serialises access, so any thread may call. The worker is closed at interpreter exit and
always reaped with ``wait()``; it exits by itself when its stdin closes, and it arms its own
SIGALRM (default action: terminate) around each request, so it cannot outlive a vanished caller by
more than a few seconds even inside a C-level bignum computation.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import random
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

__all__ = ["extract_answer", "normalize_answer", "is_equiv", "score_prediction", "solution_consistent",
           "timeout_count"]

logger = logging.getLogger(__name__)

APPROX_MIN_DIGITS = 6  # a decimal literal of this many significant digits or more may approximate an exact value
EXACT_DIGITS = 30  # two constants that agree to this many significant digits are equal
SHORT_LINE_CHARS = 64  # an output without a boxed answer counts as the answer only up to this length


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

_BOX = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_FINAL_ANSWER = re.compile(r"final answer is[:\s]*(.*)", re.IGNORECASE)
_HOPE = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)


def _read_group(s: str, i: int) -> tuple[str, int] | None:
    r"""The content of the brace group opening at s[i] and the index after it; None if unbalanced.
    Escaped braces (``\{``, ``\}``) do not count."""
    depth, j = 0, i
    while j < len(s):
        c = s[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1:j], j + 1
        j += 1
    return None


def _boxed_content(text: str, i: int) -> str | None:
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        group = _read_group(text, i)
        return None if group is None else group[0].strip()
    # "\boxed 5": up to the closing math delimiter or the end of the line.
    rest = re.split(r"[$\n]", text[i:], maxsplit=1)[0].strip()
    return rest[:-1].strip() if rest.endswith(".") else rest


def _strip_math_delimiters(s: str) -> str:
    s = s.strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left):len(s) - len(right)].strip()
    return s


def extract_answer(text: str) -> str | None:
    r"""The final answer of a solution: the content of the last ``\boxed{}``/``\fbox{}``, else the X of
    "The final answer is X", else None (also for an empty or unbalanced last box)."""
    if not text:
        return None
    boxes = list(_BOX.finditer(text))
    if boxes:
        content = _boxed_content(text, boxes[-1].end())
        if content:
            return content
    phrases = list(_FINAL_ANSWER.finditer(text))
    if not phrases:
        return None
    answer = _HOPE.sub("", phrases[-1].group(1)).strip()
    answer = answer[:-1] if answer.endswith(".") else answer
    answer = _strip_math_delimiters(answer)
    answer = answer[:-1].strip() if answer.endswith(".") else answer
    return answer or None


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------

_UNICODE = {"\u2212": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u03c0": "\\pi ", "\u221e": "\\infty ",
            "\u221a": "\\sqrt", "\u2264": "\\le ", "\u2265": "\\ge ", "\u00b0": "", "\\lvert": "|", "\\rvert": "|"}
# A matrix row break (two backslashes) is matched first so that it is kept, not read as "\ ".
_SPACING = re.compile(r"\\\\|\\[,;:! ]|\\q?quad(?![A-Za-z])|\\(?:enspace|thinspace)(?![A-Za-z])"
                      r"|\\hspace\*?\{[^{}]*\}|~")
_SIZING = re.compile(r"\\(?:left|right)\.|\\(?:left|right|[bB]igg?[lr]?|displaystyle|limits)(?![A-Za-z])")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|\\degree(?![A-Za-z])")
_AND_OR = re.compile(r"\\(?:text|mbox)\s*\{\s*(?:and|or)\s*\}|\s+(?:and|or)\s+")
_WRAPPERS = re.compile(r"\\(?:text|textbf|textrm|textit|textnormal|textsf|mbox|hbox|mathrm|mathbf|mathit|mathsf"
                       r"|mathnormal|boldsymbol|emph)\s*(?=\{)")
_ORDINAL = re.compile(r"(?<=\d)\s*(?:\^\s*\{\s*)?\\(?:text|mathrm|textrm|mbox)\s*\{\s*(?:st|nd|rd|th)\s*\}\s*\}?")

# Units are removed only when they trail a number (or a closing brace/parenthesis, or pi).
_UNIT_WORDS = (r"(?:(?:square|sq\.?|cubic|cu\.?)\s*)?(?:units?|cm|centimet(?:er|re)s?|mm|millimet(?:er|re)s?"
               r"|met(?:er|re)s?|km|kilomet(?:er|re)s?|inch(?:es)?|in\.?|feet|foot|ft\.?|yards?|yd|miles?|mi|mph"
               r"|kph|grams?|gm|kg|kilograms?|pounds?|lbs?\.?|ounces?|oz|lit(?:er|re)s?|ml|gallons?|cups?"
               r"|seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|degrees?|deg|dollars?"
               r"|cents?|percent|ways|integers|digits|points|people|students|edges|vertices|sides|diagonals"
               r"|times|handshakes|games|squares|triangles|numbers|m|g|s)")
_AFTER_NUMBER = r"(?:(?<=\d)|(?<=\})|(?<=\))|(?<=\\pi))"
_UNIT_POWER = r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?"
_TEXT_WORD = r"\\(?:text|mbox|textrm|mathrm|textnormal|textit)\s*\{"
_UNIT_PATTERNS = (
    # "5\text{ cm}^2", "5\mbox{inches}"
    re.compile(_AFTER_NUMBER + r"\s*" + _TEXT_WORD + r"\s*" + _UNIT_WORDS + r"\s*\}" + _UNIT_POWER + r"\s*$"),
    # "5\text{ apples}": any words after a space inside the wrapper (Hendrycks drops all after "\text{ ")
    re.compile(_AFTER_NUMBER + r"\s*" + _TEXT_WORD + r"\s+[A-Za-z][A-Za-z .]*\}" + _UNIT_POWER + r"\s*$"),
    # "12 square units", "5 cm": a plain word of two letters or more, after a space
    re.compile(_AFTER_NUMBER + r"\s+(?=[A-Za-z]{2})" + _UNIT_WORDS + _UNIT_POWER + r"\s*$"),
)

_ASSIGNED = r"\s*(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?\s*"
_ASSIGNMENT = re.compile(rf"^(?:{_ASSIGNED}|\s*\({_ASSIGNED}(?:,{_ASSIGNED})+\)\s*)(?P<op>=(?!=)|\\in(?![A-Za-z]))")
_SHORTHAND = re.compile(r"\\(frac|binom|sqrt)(?![A-Za-z])")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SLASH_FRACTION = re.compile(r"(-?)(\d+)/(\d+)")
_LEADING_ZERO = re.compile(r"(?<![\d.])\.(?=\d)")
_TRAILING_ZEROS = re.compile(r"(?<![\d.])(\d+)\.(\d*?)0+(?![\d.])")
_CHOICE = re.compile(r"\(([A-Ea-e])\)")
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)\\overline(?:\{(\d+)\}|(\d))")
_SCIENTIFIC = re.compile(r"(?<![\w.\\])(\d+(?:\.\d+)?|\.\d+)[eE]([-+]?\d+)(?![\w.])")
_COMMAND_SPACE = re.compile(r"(\\[A-Za-z]+) +(?=[A-Za-z])")  # "\pi r": the space ends the command name


def _repeating_decimal(m: re.Match) -> str:
    r"""``0.1\overline{6}`` -> ``\frac{1}{6}``: the exact value of a repeating decimal."""
    whole, fixed, period = m.group(1) or "0", m.group(2), m.group(3) or m.group(4)
    value = Fraction(int(whole + fixed + period) - int(whole + fixed), 10 ** len(fixed) * (10 ** len(period) - 1))
    return str(value.numerator) if value.denominator == 1 else f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _scientific(m: re.Match) -> str:
    """``2.5e-3`` -> ``0.0025``, ``1e3`` -> ``1000``: the exact value of a number in scientific notation."""
    if len(m.group(2)) > 3 or abs(int(m.group(2))) > 400:
        return m.group()
    value = Fraction(m.group(1)) * Fraction(10) ** int(m.group(2))
    if value.denominator == 1:
        return str(value.numerator)
    digits = 0
    while (value * 10**digits).denominator != 1:
        digits += 1
    text = str(int(value * 10**digits)).rjust(digits + 1, "0")
    return text[:-digits] + "." + text[-digits:]


def _unwrap_text(s: str) -> str:
    r"""``\text{abc}`` -> ``abc`` for every text-like wrapper, innermost content kept."""
    while (m := _WRAPPERS.search(s)) is not None:
        group = _read_group(s, m.end())
        if group is None:
            return s[:m.start()] + s[m.end():]
        s = s[:m.start()] + group[0] + s[group[1]:]
    return s


def _fix_shorthand(s: str) -> str:
    r"""Brace the arguments of ``\frac12``, ``\frac1{2}``, ``\sqrt2``, ``\frac\pi2`` and ``\binom52``."""
    out, i = [], 0
    while (m := _SHORTHAND.search(s, i)) is not None:
        out.append(s[i:m.end()])
        j = m.end()
        nargs = 1 if m.group(1) == "sqrt" else 2
        if m.group(1) == "sqrt":
            while j < len(s) and s[j] == " ":
                j += 1
            if j < len(s) and s[j] == "[":
                close = s.find("]", j)
                if close < 0:
                    break
                out.append(s[j:close + 1])
                j = close + 1
        for _ in range(nargs):
            while j < len(s) and s[j] == " ":
                j += 1
            if j >= len(s):
                break
            if s[j] == "{":
                group = _read_group(s, j)
                if group is None:
                    break
                out.append("{" + _fix_shorthand(group[0]) + "}")
                j = group[1]
            elif s[j] == "\\":
                command = re.match(r"\\[A-Za-z]+|\\.", s[j:])
                token = command.group() if command else "\\"
                out.append("{" + token + "}")
                j += len(token)
            else:
                out.append("{" + s[j] + "}")
                j += 1
        i = j
    out.append(s[i:])
    return "".join(out)


def _strip_assignment(s: str) -> str:
    """Drop a leading ``x =``, ``(x, y) =`` or ``x \\in`` when it is the only relation in the answer."""
    m = _ASSIGNMENT.match(s)
    if m and s.count("=") == (1 if m.group("op") == "=" else 0):
        return s[m.end():]
    return s


def normalize_answer(answer: str) -> str:
    r"""A canonical string for an extracted answer (Hendrycks ``strip_string`` + Minerva).

    Removes ``$`` and ``\$``, a surrounding ``\boxed{}``, ``\left``/``\right`` and sizing commands,
    spacing commands (``\!``, ``\,``, ``\quad``, ``~``), degrees (``^\circ``), percent signs,
    ordinal suffixes, units trailing a number, text wrappers (keeping their content), a leading
    single-variable assignment or membership (``x =``, ``x \in``; per list element), braces around a
    one-character subscript, thousands separators (``1,000``, ``1{,}000``,
    ``1,\!000``; tuples and lists are left alone) and all spaces but one that ends a command name
    before a letter (``\pi r``). Rewrites ``\dfrac``/``\tfrac`` -> ``\frac``, ``\frac12`` ->
    ``\frac{1}{2}``, ``\sqrt2`` -> ``\sqrt{2}``, ``a/b`` -> ``\frac{a}{b}`` for integers, ``.5`` ->
    ``0.5``, ``2.50`` -> ``2.5``, ``3.0`` -> ``3``, repeating decimals to fractions (``0.\overline{3}`` ->
    ``\frac{1}{3}``), scientific notation to numbers (``1e3`` -> ``1000``), ``\lvert``/``\rvert`` ->
    ``|``, ``\text{(B)}`` -> ``b`` and lower-cases purely alphabetic (text) answers.
    """
    s = str(answer).strip().replace("\0", "")
    if _BOX.search(s):
        s = extract_answer(s) or s
    for char, replacement in _UNICODE.items():
        s = s.replace(char, replacement)
    s = s.replace("\n", " ").replace("\\$", "").replace("$", "")
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace(",\\!", "").replace("{,}", "")  # LaTeX thousands separators: 10,\!000 and 10{,}000
    s = _SPACING.sub(lambda m: m.group() if m.group() == "\\\\" else " ", s)
    s = _SIZING.sub("", s)
    for short, full in (("dfrac", "frac"), ("tfrac", "frac"), ("cfrac", "frac"), ("dbinom", "binom"),
                        ("tbinom", "binom")):
        s = s.replace(short, full)
    s = re.sub(r"\\(le|ge)q(?:slant)?(?![A-Za-z])", r"\\\1", s)
    s = re.sub(r"\\neq(?![A-Za-z])", r"\\ne", s)
    s = _DEGREES.sub("", s)
    s = _ORDINAL.sub("", s).strip()
    s = s[:-1].rstrip() if s.endswith(".") else s
    for _ in range(2):  # "5 \text{ cm}^2" and the like
        for pattern in _UNIT_PATTERNS:
            s = pattern.sub("", s).strip()
    s = _AND_OR.sub(",", s)
    s = _unwrap_text(s).strip()
    s = ",".join(_strip_assignment(part) for part in _split_top(s, ","))
    s = _fix_shorthand(s)
    s = _COMMAND_SPACE.sub(lambda m: m.group(1) + "\0", s)
    s = s.replace(" ", "").replace("\0", " ")
    s = _REPEATING.sub(_repeating_decimal, s)
    s = _SCIENTIFIC.sub(_scientific, s)
    s = re.sub(r"_\{(\w)\}", r"_\1", s)  # 1011_{2} -> 1011_2
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if m := _SLASH_FRACTION.fullmatch(s):
        s = f"{m.group(1)}\\frac{{{m.group(2)}}}{{{m.group(3)}}}"
    s = _LEADING_ZERO.sub("0.", s)
    s = _TRAILING_ZEROS.sub(lambda m: f"{m.group(1)}.{m.group(2)}" if m.group(2) else m.group(1), s)
    s = s[:-1] if s.endswith(".") and not s.endswith("\\.") else s
    if m := _CHOICE.fullmatch(s):
        s = m.group(1)
    if s.isascii() and s.isalpha():
        s = s.lower()
    return s


# ---------------------------------------------------------------------------------------------
# Structure: unions, matrices, sets, tuples/intervals, lists
# ---------------------------------------------------------------------------------------------

_OPEN, _CLOSE = "([{", ")]}"


def _split_top(s: str, sep: str) -> list[str]:
    """Split at ``sep`` outside any brackets (bracket kinds may mismatch, as in ``[1,3)``)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            following = s[i + len(sep):i + len(sep) + 1]
            if not (sep[-1].isalpha() and following.isalpha()):  # "\cup" must not split "\cupcake"
                parts.append(s[start:i])
                i += len(sep)
                start = i
                continue
        i += 1
    parts.append(s[start:])
    return parts


def _closes_at_end(s: str, start: int) -> bool:
    """Whether the bracket opening at s[start] is closed by the last character."""
    depth = 0
    for i in range(start, len(s)):
        if s[i] in _OPEN:
            depth += 1
        elif s[i] in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def _bracketed(s: str) -> tuple[str, list[str], str] | None:
    """``(a,b)`` / ``[a,b)`` / ... -> (opening bracket, items, closing bracket); needs two items or more."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]" or not _closes_at_end(s, 0):
        return None
    items = _split_top(s[1:-1], ",")
    return (s[0], items, s[-1]) if len(items) >= 2 else None


def _set_items(s: str) -> list[str] | None:
    if s.startswith("\\{") and s.endswith("\\}") and _closes_at_end(s, 1):
        return _split_top(s[2:-2], ",")
    return None


_MATRIX = re.compile(r"\\begin\{(pmatrix|bmatrix|Bmatrix|matrix|smallmatrix|array)\}(?:\{[^{}]*\})?(.*)"
                     r"\\end\{\1\}", re.DOTALL)


def _matrix(s: str) -> list[list[str]] | None:
    m = _MATRIX.fullmatch(s)
    if m is None:
        return None
    rows = [row for row in _split_top(m.group(2), "\\\\")]
    if rows and not rows[-1]:
        rows.pop()
    return [_split_top(row, "&") for row in rows]


def _expand_pm(s: str) -> str:
    r"""``a \pm b`` -> the list ``a+b,a-b`` (only for a single ``\pm``/``\mp`` outside a list)."""
    signs = re.findall(r"\\(pm|mp)(?![A-Za-z])", s)
    if len(signs) != 1 or len(_split_top(s, ",")) > 1:
        return s
    first, second = ("+", "-") if signs[0] == "pm" else ("-", "+")
    pattern = re.compile(r"\\(?:pm|mp)(?![A-Za-z])")
    return pattern.sub(first, s) + "," + pattern.sub(second, s)


Leaf = Callable[[str, str], bool]


def _match_unordered(xs: list[str], ys: list[str], leaf: Leaf) -> bool:
    if len(xs) != len(ys):
        return False
    unused = list(range(len(ys)))
    for x in xs:
        for k, j in enumerate(unused):
            if _equiv(x, ys[j], leaf):
                del unused[k]
                break
        else:
            return False
    return True


_RELATION = re.compile(r"[<>]|\\[lg]e(?![A-Za-z])|\\mathbb")


def _relation_leaf(s: str) -> bool:
    """An inequality or a named set (``\mathbb{R}``) outside any list or union."""
    return bool(_RELATION.search(s)) and len(_split_top(s, ",")) == 1 and len(_split_top(s, "\\cup")) == 1


def _equiv(a: str, b: str, leaf: Leaf) -> bool:
    """Structural comparison of two normalised answers; ``leaf`` compares single expressions."""
    if a == b:
        return True
    a, b = _expand_pm(a), _expand_pm(b)
    if _relation_leaf(a) != _relation_leaf(b):
        return leaf(a, b)  # "2\le x\le 5" against "[2,5]", "x>0" against "(0,\infty)": math-verify's sets
    unions_a, unions_b = _split_top(a, "\\cup"), _split_top(b, "\\cup")
    if len(unions_a) > 1 or len(unions_b) > 1:
        return _match_unordered(unions_a, unions_b, leaf)
    matrix_a, matrix_b = _matrix(a), _matrix(b)
    if matrix_a is not None or matrix_b is not None:
        if matrix_a is None or matrix_b is None or [len(r) for r in matrix_a] != [len(r) for r in matrix_b]:
            return False
        return all(_equiv(x, y, leaf) for ra, rb in zip(matrix_a, matrix_b) for x, y in zip(ra, rb))
    set_a, set_b = _set_items(a), _set_items(b)
    if set_a is not None or set_b is not None:
        return set_a is not None and set_b is not None and _match_unordered(set_a, set_b, leaf)
    tuple_a, tuple_b = _bracketed(a), _bracketed(b)
    if tuple_a is not None or tuple_b is not None:
        if tuple_a is None or tuple_b is None:
            return False
        (open_a, items_a, close_a), (open_b, items_b, close_b) = tuple_a, tuple_b
        return (open_a == open_b and close_a == close_b and len(items_a) == len(items_b)
                and all(_equiv(x, y, leaf) for x, y in zip(items_a, items_b)))
    list_a, list_b = _split_top(a, ","), _split_top(b, ",")
    if len(list_a) > 1 or len(list_b) > 1:
        return _match_unordered(list_a, list_b, leaf)
    return leaf(a, b)


# ---------------------------------------------------------------------------------------------
# Cheap leaf comparison (in process): plain numbers and text
# ---------------------------------------------------------------------------------------------

class _Undecided(Exception):
    """The cheap comparison cannot decide: the pair needs sympy."""


_DECIMAL = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"[-+]?\d+")
_LATEX_FRACTION = re.compile(r"([-+]?)\\frac\{([-+]?\d+)\}\{([-+]?\d+)\}")


def _approximation_ulp(s: str) -> Fraction | None:
    """For a decimal literal of ``APPROX_MIN_DIGITS`` significant digits or more (``0.3333333``,
    ``3.14159``): one unit in its last place; else None (the literal is taken as exact)."""
    if "." not in s or not _DECIMAL.fullmatch(s):
        return None
    digits = s.lstrip("+-").replace(".", "").lstrip("0")
    if len(digits) < APPROX_MIN_DIGITS:
        return None
    return Fraction(1, 10 ** len(s.split(".", 1)[1]))


def _simple_number(s: str) -> tuple[Fraction, Fraction | None] | None:
    """A plain decimal, integer fraction or ``a/b`` as (exact value, ulp if it is a long decimal
    that may approximate an exact value); None for anything else, ``\frac{1}{0}`` included."""
    if len(s) > 200:
        return None
    try:
        if _DECIMAL.fullmatch(s):
            return Fraction(s), _approximation_ulp(s)
        if m := _LATEX_FRACTION.fullmatch(s):
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return (-value if m.group(1) == "-" else value), None
        if m := _SLASH_FRACTION.fullmatch(s):
            value = Fraction(int(m.group(2)), int(m.group(3)))
            return (-value if m.group(1) else value), None
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _approximates(decimal: Fraction, ulp: Fraction, exact: Any) -> bool:
    """Whether a long decimal is ``exact`` rounded or truncated: closer than one unit in its last place."""
    return abs(exact - decimal) < ulp


def _numbers_equal(x: tuple[Fraction, Fraction | None], y: tuple[Fraction, Fraction | None]) -> bool:
    r"""Exact equality, except that a long decimal matches the exact value (non-decimal) it rounds to."""
    if x[0] == y[0]:
        return True
    if x[1] is not None and y[1] is None:
        return _approximates(x[0], x[1], y[0])
    if y[1] is not None and x[1] is None:
        return _approximates(y[0], y[1], x[0])
    return False


_BASE_NUMBER = re.compile(r"\d[0-9A-Za-z]*_\{?\d+\}?")


def _is_word(s: str) -> bool:
    """A text answer ("monday"): three letters or more (fewer may be variables: ``x``, ``i``, ``ab``)."""
    return s.isascii() and s.isalpha() and len(s) >= 3


def _quick_leaf(a: str, b: str) -> bool:
    if a == b:
        return True
    x, y = _simple_number(a), _simple_number(b)
    if x is not None and y is not None:
        return _numbers_equal(x, y)
    if _is_word(a) or _is_word(b) or (a.isascii() and a.isalpha() and b.isascii() and b.isalpha()):
        return False  # text answers ("monday", "b" for a choice) compare as strings
    if _BASE_NUMBER.fullmatch(a) or _BASE_NUMBER.fullmatch(b):
        return False  # a numeral in a base (400_5) is its digits: math-verify would drop the subscript
    raise _Undecided


# ---------------------------------------------------------------------------------------------
# LaTeX -> sympy (runs in the worker; sympy is imported lazily)
# ---------------------------------------------------------------------------------------------

class _ParseError(Exception):
    """Our converter does not know a construct (math-verify's converter gets the pair instead)."""


class _TextAnswer(_ParseError):
    """A word, not a product of variables: compared as a string."""


_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|\\[A-Za-z]+|\\.|\S")
_GREEK = frozenset("alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi "
                   "rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Phi Psi "
                   "Omega".split())
_FUNCTIONS = frozenset("sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh ln log exp".split())
_ATOM_COMMANDS = _GREEK | _FUNCTIONS | {"frac", "sqrt", "binom", "pi", "infty", "lfloor", "lceil"}


class _LatexParser:
    """Recursive descent over LaTeX math: + - (binary and unary), * \\cdot \\times / \\div, implicit
    multiplication, ^, !, \\frac, \\sqrt[n]{}, \\binom, |x|, floor/ceil, common functions, greek
    letters, subscripts, \\pi, \\infty, i, e."""

    def __init__(self, text: str) -> None:
        import sympy

        self.sp = sympy
        self.tokens: list[str] = _TOKEN.findall(text)
        self.pos = 0
        self.abs_depth = 0

    def parse(self) -> Any:
        if not self.tokens:
            raise _ParseError("empty")
        value = self.expr()
        if self.pos != len(self.tokens):
            raise _ParseError(f"unexpected {self.peek()!r}")
        return value

    def peek(self, offset: int = 0) -> str | None:
        k = self.pos + offset
        return self.tokens[k] if k < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise _ParseError("unexpected end")
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        if self.take() != token:
            raise _ParseError(f"expected {token!r}")

    def expr(self) -> Any:
        value = self.unary()
        while self.peek() in ("+", "-"):
            sign = self.take()
            term = self.term()
            value = value + term if sign == "+" else value - term
        return value

    def unary(self) -> Any:
        if self.peek() == "-":
            self.take()
            return -self.unary()
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.term()

    def term(self) -> Any:
        value = self.power()
        while True:
            token = self.peek()
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value = value * self.signed_power()
            elif token in ("/", "\\div"):
                self.take()
                value = value / self.signed_power()
            elif self.starts_atom(token):
                value = value * self.power()
            else:
                return value

    def signed_power(self) -> Any:
        if self.peek() == "-":
            self.take()
            return -self.signed_power()
        return self.power()

    def starts_atom(self, token: str | None) -> bool:
        if token is None:
            return False
        if token[0].isdigit() or token[0] == "." or token in ("(", "{"):
            return True
        if len(token) == 1 and token.isalpha():
            return True
        if token == "|":
            return self.abs_depth == 0
        return token.startswith("\\") and token[1:] in _ATOM_COMMANDS

    def power(self) -> Any:
        base = self.atom()
        while self.peek() == "!":
            self.take()
            base = self.sp.factorial(base)
        if self.peek() == "^":
            self.take()
            return self.sp.Pow(base, self.exponent())
        return base

    def exponent(self) -> Any:
        if self.peek() in ("-", "+"):
            sign = self.take()
            value = self.exponent()
            return -value if sign == "-" else value
        return self.argument()

    def argument(self) -> Any:
        """A command argument: a brace group or one token (``\\frac12``: the digits one at a time)."""
        token = self.peek()
        if token is None:
            raise _ParseError("missing argument")
        if token[0].isdigit():
            if len(token) > 1:
                self.tokens[self.pos] = token[1:]
            else:
                self.pos += 1
            return self.sp.Integer(token[0])
        if token == "{" or len(token) == 1 and token.isalpha() or token.startswith("\\"):
            return self.atom()
        raise _ParseError(f"bad argument {token!r}")

    def number(self, token: str) -> Any:
        if len(token) > 400:
            raise _ParseError("number too long")
        if "." not in token:
            return self.sp.Integer(int(token))
        return self.sp.Rational(token)

    def mixed_fraction(self) -> Any | None:
        """``2\\frac{1}{2}``: the fraction part of a mixed number, consumed; else None."""
        pattern = ["\\frac", "{", None, "}", "{", None, "}"]
        for k, expected in enumerate(pattern):
            token = self.peek(k)
            if token is None or (expected is None and not token.isdigit()) or (expected and token != expected):
                return None
        numerator, denominator = int(self.peek(2)), int(self.peek(5))
        if denominator == 0:
            return None
        self.pos += len(pattern)
        return self.sp.Rational(numerator, denominator)

    def subscript(self) -> str:
        if self.peek() != "_":
            return ""
        self.take()
        if self.peek() != "{":
            return "_" + self.take()
        self.take()
        parts, depth = [], 1
        while True:
            token = self.take()
            depth += token == "{"
            depth -= token == "}"
            if depth == 0:
                return "_" + "".join(parts)
            parts.append(token)

    def atom(self) -> Any:
        sp = self.sp
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            value = self.number(token)
            if token.isdigit() and (fraction := self.mixed_fraction()) is not None:
                return value + fraction
            return value
        if len(token) == 1 and token.isalpha():
            name = token + self.subscript()
            if name == "i":
                return sp.I
            if name == "e":
                return sp.E
            return sp.Symbol(name)
        if token in ("(", "{"):
            value = self.expr()
            self.expect(")" if token == "(" else "}")
            return value
        if token == "|" and self.abs_depth == 0:
            self.abs_depth += 1
            value = self.expr()
            self.expect("|")
            self.abs_depth -= 1
            return sp.Abs(value)
        if not token.startswith("\\"):
            raise _ParseError(f"unexpected {token!r}")
        name = token[1:]
        if name == "frac":
            numerator = self.argument()
            return numerator / self.argument()
        if name == "binom":
            n = self.argument()
            return sp.binomial(n, self.argument())
        if name == "sqrt":
            if self.peek() == "[":
                self.take()
                index = self.expr()
                self.expect("]")
                radicand = self.argument()
                if index.is_Integer and index % 2 == 1 and radicand.is_number and radicand.is_negative:
                    return sp.real_root(radicand, index)  # \sqrt[3]{-8} = -2, as MATH means it
                return sp.root(radicand, index)
            return sp.sqrt(self.argument())
        if name == "pi":
            return sp.pi
        if name == "infty":
            return sp.oo
        if name in _GREEK:
            return sp.Symbol(name + self.subscript())
        if name in ("lfloor", "lceil"):
            value = self.expr()
            self.expect("\\rfloor" if name == "lfloor" else "\\rceil")
            return sp.floor(value) if name == "lfloor" else sp.ceiling(value)
        if name in _FUNCTIONS:
            return self.function(name)
        raise _ParseError(f"unsupported command {token}")

    def function(self, name: str) -> Any:
        sp = self.sp
        power = None
        if self.peek() == "^":
            self.take()
            power = self.exponent()
        base = None
        if name == "log" and self.peek() == "_":
            self.take()
            base = self.argument()
        argument = self.atom() if self.peek() == "(" else self.power()
        functions = {"sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "cot": sp.cot, "sec": sp.sec, "csc": sp.csc,
                     "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan, "sinh": sp.sinh, "cosh": sp.cosh,
                     "tanh": sp.tanh, "ln": sp.log, "log": sp.log, "exp": sp.exp}
        inverses = {"sin": sp.asin, "cos": sp.acos, "tan": sp.atan}
        if power == -1 and name in inverses:  # \tan^{-1} x is arctan x
            return inverses[name](argument)
        value = sp.log(argument, base) if base is not None else functions[name](argument)
        return value if power is None else value ** power


def _to_sympy(s: str) -> Any:
    # Three letters in a row outside a command are a word, not a product of variables.
    if re.search(r"[A-Za-z]{3,}", re.sub(r"\\operatorname\{[A-Za-z]+\}|\\[A-Za-z]+", " ", s)):
        raise _TextAnswer("text")
    return _LatexParser(s).parse()


def _numerically_close(x: Any, y: Any, digits: int) -> bool:
    """Whether two constant sympy expressions agree to ``digits`` significant digits (sympy Floats:
    no overflow to inf); TypeError when either is not a finite number."""
    import sympy as sp

    vx, vy = sp.N(x, digits + 10), sp.N(y, digits + 10)
    if not (vx.is_number and vy.is_number) or vx.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or vy.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        raise TypeError("not a finite number")
    scale = sp.N(sp.Max(abs(vx), abs(vy)), digits + 10)
    return bool(sp.N(abs(vx - vy), digits + 10) <= sp.Float(10, digits + 10) ** -digits * scale)


def _undefined(e: Any) -> bool:
    import sympy as sp

    return bool(e.has(sp.zoo, sp.nan))


def _constants_equal(x: Any, y: Any) -> bool:
    """Exact equality of two constants: equal to ``EXACT_DIGITS`` significant digits (a simplification
    when they cannot be evaluated, or are too close to 0 for a relative comparison)."""
    import sympy as sp

    if x.is_Rational and y.is_Rational:
        return False  # sympy's rationals are canonical: unequal objects are unequal numbers
    try:
        cx, cy = complex(sp.N(x, 15)), complex(sp.N(y, 15))  # cheap first: most unequal pairs end here
        scale = max(abs(cx), abs(cy))
        if abs(cx - cy) > 1e-9 * scale:
            return False
        if scale > 1e-20 and _numerically_close(x, y, EXACT_DIGITS):
            return True
        if scale > 1e-20:
            return False
    except (TypeError, ValueError, OverflowError):
        try:
            if _numerically_close(x, y, EXACT_DIGITS):
                return True
        except (TypeError, ValueError, OverflowError):
            pass
    return sp.simplify(x - y) == 0


def _exprs_equal(x: Any, y: Any) -> bool:
    import sympy as sp

    if _undefined(x) or _undefined(y):
        return False  # \frac{1}{0} is no answer: it matches nothing, not even \frac{2}{0}
    if x == y:
        return True
    if any(e.has(sp.oo, -sp.oo) for e in (x, y)):
        return False  # infinities only match structurally
    symbols = x.free_symbols | y.free_symbols
    if not symbols:
        return _constants_equal(x, y)
    if sp.expand(x - y) == 0:
        return True
    rng, agreeing = random.Random(0), 0
    for _ in range(4):
        point = {symbol: sp.Float(rng.uniform(0.2, 2.0), 30) for symbol in symbols}
        try:
            close = _numerically_close(x.subs(point), y.subs(point), 20)
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if not close:
            return False
        agreeing += 1
    return agreeing >= 2 or sp.simplify(x - y) == 0


def _equations_equal(a: list[str], b: list[str]) -> bool:
    import sympy as sp

    x = _to_sympy(a[0]) - _to_sympy(a[1])
    y = _to_sympy(b[0]) - _to_sympy(b[1])
    if _exprs_equal(x, y) or _exprs_equal(x, -y):
        return True
    if x == 0 or y == 0:
        return False
    ratio = sp.simplify(x / y)
    return not ratio.free_symbols and ratio.is_nonzero is True and ratio.is_finite is True


def _approximate_leaf(a: str, b: str) -> bool | None:
    """A long decimal literal against a constant: whether it is that constant rounded or truncated
    (``1.414214`` and ``\sqrt{2}``); None when neither side is such a decimal."""
    import sympy as sp

    for decimal, other in ((a, b), (b, a)):
        ulp = _approximation_ulp(decimal)
        if ulp is None or _approximation_ulp(other) is not None:
            continue
        value = _to_sympy(other)
        if value.free_symbols or _undefined(value) or value.has(sp.oo, -sp.oo):
            return False
        exact = sp.N(value, len(decimal) + 20)
        if not exact.is_real:
            return False
        return bool(abs(exact - sp.Rational(decimal)) < sp.Rational(ulp.numerator, ulp.denominator))
    return None


def _our_leaf(a: str, b: str) -> bool:
    """Our converter and comparison; raises _ParseError for constructs it does not know."""
    equation_a, equation_b = _split_top(a, "="), _split_top(b, "=")
    if len(equation_a) != len(equation_b) or len(equation_a) > 2:
        return False
    if len(equation_a) == 2:
        return _equations_equal(equation_a, equation_b)
    approximate = _approximate_leaf(a, b)
    if approximate is not None:
        return approximate
    return _exprs_equal(_to_sympy(a), _to_sympy(b))


_math_verify: tuple[Any, Any] | None = None


def _math_verify_leaf(prediction: str, gold: str) -> bool:
    """math-verify's verdict on a pair our converter cannot read (its timeouts are off: they use
    ``signal.alarm``, and the worker's own alarm bounds every request)."""
    global _math_verify
    if _math_verify is None:
        try:
            from math_verify import parse, verify
        except ImportError:
            return False
        logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled": on purpose
        _math_verify = (parse, verify)
    parse, verify = _math_verify
    parsed_gold, parsed_prediction = parse(f"${gold}$", parsing_timeout=None), parse(f"${prediction}$", parsing_timeout=None)
    if not parsed_gold or not parsed_prediction:
        return False
    return bool(verify(parsed_gold, parsed_prediction, timeout_seconds=None, allow_set_relation_comp=True))


def _sympy_leaf(a: str, b: str) -> bool:
    """One pair of leaves in the worker: the cheap checks, then our converter, then math-verify for
    what our converter cannot read (words are never handed on: it reads them as products of letters)."""
    try:
        return _quick_leaf(a, b)
    except _Undecided:
        pass
    try:
        return _our_leaf(a, b)
    except _TextAnswer:
        return False
    except _ParseError:
        pass
    except Exception:  # whatever sympy raises: not equivalent
        return False
    try:
        return _math_verify_leaf(a, b)
    except Exception:
        return False


# ---------------------------------------------------------------------------------------------
# The sympy worker process
# ---------------------------------------------------------------------------------------------

_WORKER_FLAG = "--worker"
_STARTUP_TIMEOUT_S = 60.0
_MAX_START_FAILURES = 3
_WORKER_GRACE_S = 5.0  # the worker's own alarm fires this long after the caller's timeout


class _Worker:
    """One sympy worker subprocess speaking JSON lines: ``[id, a, b, timeout]`` -> ``[id, verdict]``."""

    def __init__(self) -> None:
        # -P: the script's folder (teachgraph/domains/, which holds math.py) must not shadow the stdlib `math`.
        self.proc = subprocess.Popen([sys.executable, "-P", os.path.abspath(__file__), _WORKER_FLAG],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
        self.buffer = b""
        self.next_id = 0
        try:
            if self._read_line(time.monotonic() + _STARTUP_TIMEOUT_S) != b"ready":
                raise RuntimeError("the sympy worker did not start")
        except BaseException:
            self.kill()
            raise

    def _read_line(self, deadline: float) -> bytes:
        """The next line from the worker; TimeoutError past the deadline, EOFError if it died."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError("the sympy worker exited")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.strip()

    def request(self, a: str, b: str, timeout_s: float) -> bool:
        assert self.proc.stdin is not None
        self.next_id += 1
        try:
            self.proc.stdin.write((json.dumps([self.next_id, a, b, timeout_s]) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise EOFError("the sympy worker exited") from error
        deadline = time.monotonic() + timeout_s
        while True:
            reply_id, verdict = json.loads(self._read_line(deadline))
            if reply_id == self.next_id:
                return bool(verdict)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close_pipes()

    def close(self) -> None:
        """Ask the worker to exit (stdin EOF); kill it if it does not within a second."""
        self._close_pipes()
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


_lock = threading.Lock()
_worker: _Worker | None = None
_timeouts = 0
_start_failures = 0


def timeout_count() -> int:
    """How many sympy comparisons have timed out in this process (each one counted as not equivalent)."""
    return _timeouts


def _symbolic_equiv(a: str, b: str, timeout_s: float) -> bool:
    global _worker, _timeouts, _start_failures
    with _lock:
        if _start_failures >= _MAX_START_FAILURES or timeout_s <= 0:
            return False
        if _worker is None or _worker.proc.poll() is not None:
            if _worker is not None:
                _worker.kill()
            try:
                _worker = _Worker()
                _start_failures = 0
            except Exception as error:
                _worker = None
                _start_failures += 1
                logger.warning("math_answers: sympy worker failed to start (%s); string comparison only", error)
                return False
        try:
            return _worker.request(a, b, timeout_s)
        except TimeoutError:
            _timeouts += 1
            logger.debug("math_answers: sympy timed out after %.1fs on %r vs %r", timeout_s, a, b)
        except (EOFError, OSError, ValueError) as error:
            logger.warning("math_answers: sympy worker failed on %r vs %r (%s)", a, b, error)
        _worker.kill()
        _worker = None
        return False


@atexit.register
def _shutdown_worker() -> None:
    global _worker
    worker, _worker = _worker, None
    if worker is not None:
        worker.close()


def _forget_worker_after_fork() -> None:
    """A forked child must not share (or kill) its parent's worker: drop its copies of the pipes."""
    global _worker, _lock
    _lock = threading.Lock()
    worker, _worker = _worker, None
    if worker is not None:
        worker._close_pipes()
        worker.proc.returncode = 0  # not our child: never wait for it


os.register_at_fork(after_in_child=_forget_worker_after_fork)


def _worker_main() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the caller's business
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the per-request alarm terminates the process
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = 2 * 1024**3
        if hard == resource.RLIM_INFINITY or hard > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the protocol
    _sympy_leaf("2\\sqrt{3}", "\\sqrt{12}")  # imports sympy and warms its caches
    _sympy_leaf("x\\le3", "3\\ge x")  # and math-verify
    replies.write("ready\n")
    replies.flush()
    for line in sys.stdin:
        try:
            request_id, a, b, timeout_s = json.loads(line)
        except (ValueError, TypeError):
            continue
        signal.setitimer(signal.ITIMER_REAL, float(timeout_s) + _WORKER_GRACE_S)
        try:
            verdict = _equiv(a, b, _sympy_leaf)
        except Exception:
            verdict = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        replies.write(json.dumps([request_id, bool(verdict)]) + "\n")
        replies.flush()


# ---------------------------------------------------------------------------------------------
# Public scoring API
# ---------------------------------------------------------------------------------------------

def is_equiv(prediction: str, gold: str, timeout_s: float = 2.0) -> bool:
    """Whether two extracted answers are equivalent (see the module docstring for the semantics).
    The sympy part is bounded by ``timeout_s``; a timeout counts as not equivalent."""
    if prediction is None or gold is None:
        return False
    a, b = normalize_answer(prediction), normalize_answer(gold)
    if not a or not b:
        return False
    if a == b:
        return True
    try:
        return _equiv(a, b, _quick_leaf)
    except _Undecided:
        return _symbolic_equiv(a, b, timeout_s)


def score_prediction(prediction_text: str, gold_answer: str, timeout_s: float = 2.0) -> bool:
    """What a student's whole output earns: its extracted final answer (or, without one, the output
    itself when it is a single short line) compared with the gold answer."""
    if not prediction_text or gold_answer is None:
        return False
    answer = extract_answer(prediction_text)
    if answer is None:
        text = prediction_text.strip()
        if not text or "\n" in text or len(text) > SHORT_LINE_CHARS:
            return False
        answer = text
    return is_equiv(answer, gold_answer, timeout_s)


def solution_consistent(solution: str, stated_answer: str) -> str | None:
    """For the verifier of generated examples: None when the solution's final answer matches the stated
    one, else "no_final_answer" or "answer_mismatch"."""
    if not stated_answer or not stated_answer.strip():
        return "no_final_answer"
    answer = extract_answer(solution or "")
    if answer is None:
        return "no_final_answer"
    return None if is_equiv(answer, stated_answer) else "answer_mismatch"


if __name__ == "__main__" and sys.argv[1:] == [_WORKER_FLAG]:
    _worker_main()
