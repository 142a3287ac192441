"""Procedural scenes for visual question answering: a structured description, its picture, and questions
whose answers are computed from the description itself.

A scene is JSON: {"canvas": 48, "objects": [{"shape": "circle", "color": "red", "size": "large",
"x": 8, "y": 24}, ...]} (x, y: the object's centre in pixels). Objects sit in the cells of a 3 x 3 grid,
so they never overlap. `render` draws it with Pillow, pixel for pixel the same for the same scene.

Questions follow a small grammar of noun phrases ([size] [color] shape|one):
  exists   "is there a red circle?"                    -> yes / no
  count    "how many red shapes?"                      -> a number
  color    "what color is the small square?"           -> a colour
  shape    "what shape is the blue one?"               -> a shape
  spatial  "is the red circle left of the blue one?"   -> yes / no  (left of, right of, above, below)
`answer_question(scene, question)` parses a question and answers it from the scene; it raises
`Unanswerable` when the question is outside the grammar or refers to no single object. That is the
verifier of every generated example, whoever wrote it.
"""

from __future__ import annotations

import random
import re
from typing import Any

from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}
SIZES = {"small": 4, "large": 6}  # half-width in pixels
RELATIONS = ("left of", "right of", "above", "below")
CANVAS = 48
GRID = 3
BACKGROUND = (235, 235, 235)
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "one": "shapes"}


class Unanswerable(ValueError):
    """A question the scene does not answer (outside the grammar, or an ambiguous reference)."""


# -- scenes ------------------------------------------------------------------------------------
def random_scene(rng: random.Random, n_objects: int, canvas: int = CANVAS) -> dict[str, Any]:
    cell = canvas // GRID
    cells = rng.sample([(r, c) for r in range(GRID) for c in range(GRID)], n_objects)
    objects = []
    for row, col in sorted(cells):
        size = rng.choice(tuple(SIZES))
        slack = cell // 2 - SIZES[size] - 1  # jitter that keeps the object inside its cell
        objects.append({"shape": rng.choice(SHAPES), "color": rng.choice(tuple(COLORS)), "size": size,
                        "x": col * cell + cell // 2 + rng.randint(-slack, slack),
                        "y": row * cell + cell // 2 + rng.randint(-slack, slack)})
    return {"canvas": canvas, "objects": objects}


def check_scene(scene: Any) -> str | None:
    """None for a well-formed scene, else what is wrong with it."""
    if not isinstance(scene, dict) or not isinstance(scene.get("objects"), list):
        return "scene is not an object with a list of objects"
    canvas = scene.get("canvas", CANVAS)
    if not isinstance(canvas, int) or not 8 <= canvas <= 1024:
        return f"canvas {canvas!r} is not a size in pixels (8-1024)"
    for i, obj in enumerate(scene["objects"]):
        if not isinstance(obj, dict):
            return f"object {i} is not an object"
        if obj.get("shape") not in SHAPES or obj.get("color") not in COLORS or obj.get("size") not in SIZES:
            return f"object {i} has an unknown shape, colour or size ({obj})"
        if not all(isinstance(obj.get(k), int) and 0 <= obj[k] < canvas for k in ("x", "y")):
            return f"object {i} is not placed on the canvas"
    return None


def render(scene: dict[str, Any]) -> Image.Image:
    """The scene as an RGB image (no anti-aliasing: the same pixels on every machine)."""
    canvas = scene.get("canvas", CANVAS)
    scale = canvas / CANVAS
    image = Image.new("RGB", (canvas, canvas), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in scene["objects"]:
        x, y, r = obj["x"], obj["y"], max(1, round(SIZES[obj["size"]] * scale))
        fill = COLORS[obj["color"]]
        if obj["shape"] == "circle":
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)
        elif obj["shape"] == "square":
            draw.rectangle((x - r, y - r, x + r, y + r), fill=fill)
        else:
            draw.polygon(((x, y - r), (x - r, y + r), (x + r, y + r)), fill=fill)
    return image


def describe_scene(scene: dict[str, Any]) -> str:
    """A one-line description of the scene (what a text-to-image model would be prompted with)."""
    parts = []
    for obj in scene["objects"]:
        cell = scene.get("canvas", CANVAS) / GRID
        row, col = ("top", "middle", "bottom")[int(obj["y"] // cell)], ("left", "centre", "right")[int(obj["x"] // cell)]
        parts.append(f"a {obj['size']} {obj['color']} {obj['shape']} at the {row} {col}")
    return ("; ".join(parts) or "nothing") + ", on a plain light grey background"


# -- noun phrases ------------------------------------------------------------------------------
def phrase(obj: dict[str, Any], attributes: tuple[str, ...], noun: str | None = None) -> str:
    words = [obj[a] for a in ("size", "color") if a in attributes]
    return " ".join(words + [noun or (obj["shape"] if "shape" in attributes else "one")])


def matches(obj: dict[str, Any], np_words: dict[str, str | None]) -> bool:
    return all(value is None or obj[key] == value for key, value in np_words.items())


NP = (r"(?:(?P<{p}size>small|large) )?(?:(?P<{p}color>" + "|".join(COLORS) + r") )?"
      r"(?P<{p}noun>circle|square|triangle|one)")
NP_PLURAL = (r"(?:(?P<size>small|large) )?(?:(?P<color>" + "|".join(COLORS) + r") )?"
             r"(?P<noun>circles|squares|triangles|shapes)")
PATTERNS = {
    "exists": re.compile(rf"^is there an? {NP.format(p='')}\?$"),
    "count": re.compile(rf"^how many {NP_PLURAL}\?$"),
    "color": re.compile(rf"^what color is the {NP.format(p='')}\?$"),
    "shape": re.compile(rf"^what shape is the {NP.format(p='')}\?$"),
    "spatial": re.compile(rf"^is the {NP.format(p='a')} (?P<relation>left of|right of|above|below) the {NP.format(p='b')}\?$"),
}


def _np(groups: dict[str, str | None], prefix: str = "") -> dict[str, str | None]:
    noun = groups[f"{prefix}noun"]
    shape = None if noun in ("one", "shapes") else noun.rstrip("s") if noun.endswith("s") and noun[:-1] in SHAPES else noun
    return {"size": groups[f"{prefix}size"], "color": groups[f"{prefix}color"], "shape": shape}


def _the(scene: dict[str, Any], words: dict[str, str | None]) -> dict[str, Any]:
    found = [o for o in scene["objects"] if matches(o, words)]
    if len(found) != 1:
        raise Unanswerable(f"'the {' '.join(v for v in words.values() if v) or 'one'}' refers to {len(found)} objects")
    return found[0]


def question_skill(question: str) -> str | None:
    text = " ".join(question.lower().split())
    return next((skill for skill, pattern in PATTERNS.items() if pattern.match(text)), None)


def answer_question(scene: dict[str, Any], question: str) -> str:
    """The answer the scene gives to the question (raises Unanswerable)."""
    text = " ".join(question.lower().split())
    for skill, pattern in PATTERNS.items():
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        if skill == "exists":
            return "yes" if any(matches(o, _np(groups)) for o in scene["objects"]) else "no"
        if skill == "count":
            return str(sum(matches(o, _np(groups)) for o in scene["objects"]))
        if skill == "color":
            return _the(scene, _np(groups))["color"]
        if skill == "shape":
            if groups["noun"] != "one":
                raise Unanswerable("a shape question must not name the shape")
            return _the(scene, _np(groups))["shape"]
        a, b = _the(scene, _np(groups, "a")), _the(scene, _np(groups, "b"))
        if a is b:
            raise Unanswerable("a spatial question compares an object with itself")
        axis = "x" if groups["relation"] in ("left of", "right of") else "y"
        if abs(a[axis] - b[axis]) < SIZES["large"]:
            raise Unanswerable("the two objects are level: the relation is not clear from the picture")
        before = a[axis] < b[axis]
        return "yes" if before == (groups["relation"] in ("left of", "above")) else "no"
    raise Unanswerable("the question is outside the grammar of this domain")


# -- questions ---------------------------------------------------------------------------------
def unique_phrase(scene: dict[str, Any], obj: dict[str, Any], rng: random.Random, without: str | None = None) -> str | None:
    """The shortest noun phrase that picks out `obj` alone (never naming `without`), or None."""
    options = [("shape",), ("color", "shape"), ("size", "color", "shape"), ("color",), ("size", "color"),
               ("size", "shape")]
    for attributes in options:
        if without and without in attributes:
            continue
        words = {k: (obj[k] if k in attributes else None) for k in ("size", "color", "shape")}
        if sum(matches(o, words) for o in scene["objects"]) == 1:
            return phrase(obj, attributes)
    return None


def make_question(skill: str, scene: dict[str, Any], rng: random.Random) -> str | None:
    """A question of the skill about the scene (None when this scene has none, e.g. no unique object)."""
    objects = scene["objects"]
    if skill == "exists":
        probe = {"shape": rng.choice(SHAPES), "color": rng.choice(tuple(COLORS)), "size": rng.choice(tuple(SIZES))}
        if objects and rng.random() < 0.5:  # half about an object that is there
            probe = dict(rng.choice(objects))
        attributes = rng.choice((("shape",), ("color", "shape"), ("size", "color", "shape")))
        text = phrase(probe, attributes)
        return f"is there a {text}?"
    if skill == "count":
        probe = rng.choice(objects) if objects else {"shape": "circle", "color": "red", "size": "small"}
        kind = rng.choice(("shape", "color", "all"))
        if kind == "shape":
            return f"how many {PLURAL[probe['shape']]}?"
        if kind == "color":
            return f"how many {probe['color']} shapes?"
        return "how many shapes?"
    candidates = list(objects)
    rng.shuffle(candidates)
    if skill in ("color", "shape"):
        for obj in candidates:
            text = unique_phrase(scene, obj, rng, without=skill)
            if text is not None:
                return f"what {skill} is the {text}?"
        return None
    if skill == "spatial":
        relation = rng.choice(RELATIONS)
        axis = "x" if relation in ("left of", "right of") else "y"
        pairs = [(a, b) for a in candidates for b in candidates
                 if a is not b and abs(a[axis] - b[axis]) >= SIZES["large"]]
        for a, b in pairs:
            ta, tb = unique_phrase(scene, a, rng), unique_phrase(scene, b, rng)
            if ta and tb:
                return f"is the {ta} {relation} the {tb}?"
        return None
    raise ValueError(f"unknown skill {skill!r}")
