"""The paper's visual QA benchmarks: GQA (as DataEnvGym reads it) and NaturalBench.

GQA: DataEnvGym reads two Hugging Face datasets with splits `val` and `testdev`: `codezakh/dataenvgym-gqa`
(task instances: task_name, instance_id, instruction, ground_truth_label, image) and
`codezakh/dataenvgym-gqa-raw` (GQA records: question_id, image_name, question, question_type, answer),
joined on instance_id = question_id; the question type is the gold skill (and GQA's `types.semantic`
the subskill where a record has it). A local folder in the same layout holds `dataenvgym-gqa/{split}.jsonl`,
`dataenvgym-gqa-raw/{split}.jsonl` and the images the rows name (a path relative to the folder, or an
{"bytes", "path"} object as `datasets` writes an Image column). Scoring: exact match after VQA answer
normalisation (case, punctuation, articles, number words).

NaturalBench (`BaiqiL/NaturalBench`, split `train`): each row is a group of two questions x two images
(Index, Image_0, Image_1, Question_0, Question_1, Image_0_Question_0, Image_1_Question_0, Image_0_Question_1,
Image_1_Question_1, "Question Type" (yes_no | multiple_choice), Source), unrolled into four examples with the
reference suffix ("Please answer Yes or No." ...). A prediction is read as its reference code reads it
(whichever of yes/no, or A/B, comes first as a word); metrics are the reference ones (question, image,
binary and group score; group: all four right), the group score the headline (`headline_score`).
A local folder holds `naturalbench.jsonl` (or .parquet) in the same row format, images as for GQA.

Both: validation and test are a seeded split of the rows by image (GQA) or by group (NaturalBench), so no
image or group is in both. Hub images are written once to the cache (TEACHGRAPH_CACHE/images). Rows without
an answer and images that are missing, empty, corrupt or not a picture are skipped and counted (`report`);
a hub id that cannot be reached is a clear error before any work (`DatasetUnavailable`). Neither has a pool
of training examples: generation needs an LLM teacher (question, answer, scene: the renderer draws it).
"""

from __future__ import annotations

import base64
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from teachgraph.domains.base import Example, HeldOutDataset, normalize_text, stable_hash
from teachgraph.domains.images import BadImage, open_image_file, save_png_atomic
from teachgraph.domains.loaders import (DATA_DIR, DatasetUnavailable, LoadReport, hub_dataset_rows, is_local,
                                        read_rows, validate_rows)
from teachgraph.domains.vqa import VQAItem

# -- answers -----------------------------------------------------------------------------------
NUMBER_WORDS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_answer(answer: str) -> str:
    """VQA answer normalisation: lower case, punctuation and articles removed, number words as digits."""
    words = PUNCTUATION.sub(" ", str(answer).lower()).split()
    return " ".join(NUMBER_WORDS.get(w, w) for w in words if w not in ARTICLES)


def choice_of(output: str, question_type: str) -> int:
    """NaturalBench's reading of an answer (its reference `extract_answer`): 1 for yes (A), 0 for no (B),
    whichever comes first as a word, case ignored; -1: neither."""
    first, second = ("yes", "no") if question_type == "yes_no" else ("A", "B")

    def position(word: str) -> int:
        match = re.search(r"\b" + re.escape(word) + r"\b", output, re.IGNORECASE)
        return match.start() if match else -1

    a, b = position(first), position(second)
    if a == -1 and b == -1:
        return -1
    if a != -1 and b != -1:
        return 1 if a < b else 0
    return 1 if a != -1 else 0


# -- images ------------------------------------------------------------------------------------
def image_cache() -> Path:
    from teachgraph.students.pretrain import cache_root

    return cache_root() / "images"


def image_path(value: Any, folder: Path | None, dataset: str, name: str) -> str:
    """A checked local path for a row's image: a path (relative to the dataset folder), an {"bytes", "path"}
    object, or a PIL image (hub rows); bytes and images are written to the cache. Raises BadImage."""
    from PIL import Image

    if isinstance(value, Image.Image) or (isinstance(value, dict) and value.get("bytes")):
        target = image_cache() / stable_hash(dataset, 12) / f"{stable_hash(name)}.png"
        if not target.exists():
            if isinstance(value, dict):
                raw = value["bytes"]
                raw = base64.b64decode(raw) if isinstance(raw, str) else raw
                import io

                try:
                    with Image.open(io.BytesIO(raw)) as image:
                        image.load()
                        value = image.copy()
                except Exception as error:  # noqa: BLE001
                    raise BadImage(f"image bytes of {name} cannot be read ({type(error).__name__})") from None
            if value.mode not in {"RGB", "RGBA", "L", "LA", "P", "PA", "CMYK", "YCbCr"}:
                raise BadImage(f"image of {name} has mode {value.mode!r}, not a picture's")
            save_png_atomic(value.convert("RGB"), target)
        return str(target)
    if isinstance(value, dict):
        value = value.get("path")
    if not isinstance(value, str) or not value:
        raise BadImage(f"{name}: no image")
    path = Path(value)
    if not path.is_absolute() and folder is not None:
        path = folder / path
    open_image_file(path)  # checked now, so a bad file is skipped and counted before any work
    return str(path)


class _VisualBenchmark(HeldOutDataset):
    modality = "image"
    default_max_new_tokens = 16
    generation_schema = VQAItem
    drop_solved_default = True

    def _split_groups(self, rows: list[Example], val_fraction: float) -> None:
        """Seeded validation/test split by group key (an image, a NaturalBench group): never overlapping."""
        groups: dict[str, list[Example]] = defaultdict(list)
        for e in rows:
            groups[e["group"]].append(e)
        keys = sorted(groups)
        random.Random(f"{self.name}-split-{self.seed}").shuffle(keys)
        cut = max(1, min(len(keys) - 1, round(len(keys) * val_fraction))) if len(keys) > 1 else len(keys)
        self._val = [e for k in sorted(keys[:cut]) for e in groups[k]]
        self._test = [e for k in sorted(keys[cut:]) for e in groups[k]]
        self._pool = []
        self._index()

    def skill_catalog(self) -> dict[str, list[str]]:
        catalog: dict[str, set[str]] = defaultdict(set)
        for e in self._val + self._test:
            catalog[e["skill"]].add(e["subskill"])
        return {skill: sorted(subs) for skill, subs in sorted(catalog.items())}

    def describe_skill(self, skill: str) -> str:
        return f"{self.name} questions of type {skill}"

    def verify(self, example: Example) -> str | None:
        """A generated example: a question about a scene the renderer draws, its answer checked against it."""
        from teachgraph.domains.vqa import VQADomain

        return VQADomain().verify(example) if example.get("scene") is not None else (
            None if example.get("image") and str(example.get("answer", "")).strip() else "no_image_or_answer")

    def from_generated(self, item: VQAItem, skill: str | None, subskill: str | None) -> Example:
        from teachgraph.domains.vqa import VQADomain

        return VQADomain().from_generated(item, skill, subskill)


class GQADomain(_VisualBenchmark):
    name = "gqa"
    teacher_brief = ("Task domain gqa (GQA): compositional questions about real photographs (objects, attributes, "
                     "relations); short answers, checked by exact match after normalisation.")

    def __init__(self, seed: int = 0, dataset: str = "local", splits: tuple[str, ...] = ("val", "testdev"),
                 val_fraction: float = 0.5):
        if not 0 < val_fraction < 1:
            raise ValueError("domain_options.val_fraction: must be between 0 and 1")
        self.seed, self.dataset = seed, dataset
        self.report = LoadReport(source=f"gqa:{dataset}")
        rows = [e for split in splits for e in self._read(split)]
        if len(rows) < 2:
            raise DatasetUnavailable(f"gqa dataset {dataset!r} has too few usable rows ({self.report.summary()})")
        self._split_groups(rows, val_fraction)

    def _read(self, split: str) -> list[Example]:
        if is_local(self.dataset):
            folder = DATA_DIR / "gqa" if self.dataset == "local" else Path(self.dataset).expanduser()
            instances = read_rows(folder / "dataenvgym-gqa" / f"{split}.jsonl", self.report)
            raw_path = folder / "dataenvgym-gqa-raw" / f"{split}.jsonl"
            raw = read_rows(raw_path, self.report) if raw_path.exists() else []
        else:
            folder = None
            instances = hub_dataset_rows(self.dataset, None, split)
            raw = hub_dataset_rows(self.dataset + "-raw", None, split) if self.dataset.endswith("dataenvgym-gqa") else []
        records = {str(r.get("question_id")): r for r in raw}

        def check(row: dict[str, Any]) -> Example | str:
            question, answer = row.get("instruction"), row.get("ground_truth_label")
            if isinstance(answer, list):
                answer = answer[0] if answer else None
            if not isinstance(question, str) or not question.strip():
                return "no question ('instruction')"
            if not isinstance(answer, str) or not answer.strip():
                return "no answer ('ground_truth_label')"
            qid = str(row.get("instance_id", ""))
            record = records.get(qid, {})
            try:
                path = image_path(row.get("image"), folder, self.dataset, f"{split}-{qid}")
            except BadImage as error:
                return str(error)
            qtype = str(record.get("question_type") or "unknown")
            semantic = (record.get("types") or {}).get("semantic") if isinstance(record.get("types"), dict) else None
            prompt = question.strip()
            return {"id": stable_hash({"q": qid, "prompt": prompt}), "prompt": prompt, "answer": answer.strip(),
                    "skill": qtype, "subskill": str(semantic or qtype), "image": path,
                    "group": str(record.get("image_name") or path), "source_id": qid}

        return validate_rows(instances, check, self.report, f"{self.dataset} {split}")

    def score(self, prediction: str, example: Example) -> bool:
        return normalize_answer(prediction) == normalize_answer(example["answer"])

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        known = next((e for e in self._val + self._test if normalize_text(e["prompt"]) == normalize_text(prompt)), None)
        return (known["skill"], known["subskill"]) if known else None


SUFFIX_FOR_VQA = {"yes_no": "Please answer Yes or No.",
                  "multiple_choice": "Please output the letter corresponding to the correct option."}
SLOTS = (("q0_i0", "Question_0", "Image_0", "Image_0_Question_0"), ("q0_i1", "Question_0", "Image_1", "Image_1_Question_0"),
         ("q1_i0", "Question_1", "Image_0", "Image_0_Question_1"), ("q1_i1", "Question_1", "Image_1", "Image_1_Question_1"))


class NaturalBenchDomain(_VisualBenchmark):
    name = "naturalbench"
    teacher_brief = ("Task domain naturalbench (NaturalBench): pairs of questions about pairs of natural images, "
                     "yes/no or multiple choice (A/B); a group counts only when all four answers are right.")

    def __init__(self, seed: int = 0, dataset: str = "local", val_fraction: float = 0.5):
        if not 0 < val_fraction < 1:
            raise ValueError("domain_options.val_fraction: must be between 0 and 1")
        self.seed, self.dataset = seed, dataset
        self.report = LoadReport(source=f"naturalbench:{dataset}")
        if is_local(dataset):
            folder = DATA_DIR / "naturalbench" if dataset == "local" else Path(dataset).expanduser()
            path = next((folder / f"naturalbench.{ext}" for ext in ("jsonl", "parquet")
                         if (folder / f"naturalbench.{ext}").exists()), folder / "naturalbench.jsonl")
            rows, self._folder = read_rows(path, self.report), folder
        else:
            rows, self._folder = hub_dataset_rows(dataset, None, "train"), None
        groups = validate_rows(rows, self._group, self.report, f"{dataset}")
        examples = [e for group in groups for e in group["examples"]]
        if not examples:
            raise DatasetUnavailable(f"naturalbench dataset {dataset!r} has no usable rows ({self.report.summary()})")
        self._split_groups(examples, val_fraction)

    def _group(self, row: dict[str, Any]) -> dict[str, Any] | str:
        qtype = row.get("Question Type", row.get("Question_Type"))
        if qtype not in SUFFIX_FOR_VQA:
            return f"question type {qtype!r} is not yes_no or multiple_choice"
        index = str(row.get("Index", ""))
        images = {}
        for key in ("Image_0", "Image_1"):
            try:
                images[key] = image_path(row.get(key), self._folder, self.dataset, f"{index}-{key}")
            except BadImage as error:
                return str(error)
        examples = []
        for slot, question_key, image_key, answer_key in SLOTS:
            question, answer = row.get(question_key), row.get(answer_key)
            if not isinstance(question, str) or not question.strip():
                return f"no {question_key}"
            if not isinstance(answer, str) or not answer.strip():
                return f"no answer ({answer_key})"
            prompt = f"{question.strip()} {SUFFIX_FOR_VQA[qtype]}"
            examples.append({"id": stable_hash({"index": index, "slot": slot}), "prompt": prompt,
                             "answer": answer.strip(), "skill": qtype, "subskill": str(row.get("Source") or qtype),
                             "image": images[image_key], "group": index, "slot": slot, "question_type": qtype})
        return {"examples": examples}

    def score(self, prediction: str, example: Example) -> bool:
        qtype = example.get("question_type", "yes_no")
        gold = choice_of(example["answer"], qtype)
        return gold != -1 and choice_of(prediction, qtype) == gold

    def infer_skill(self, prompt: str) -> tuple[str, str] | None:
        return ("yes_no", "yes_no") if SUFFIX_FOR_VQA["yes_no"] in prompt else (
            ("multiple_choice", "multiple_choice") if SUFFIX_FOR_VQA["multiple_choice"] in prompt else None)

    def metrics(self, results: list[dict[str, Any]]) -> dict[str, float]:
        return naturalbench_scores(results)

    def headline_score(self, results: list[dict[str, Any]]) -> float:
        return naturalbench_scores(results)["group_score"]


def naturalbench_scores(results: list[dict[str, Any]]) -> dict[str, float]:
    """NaturalBench's metrics from per-example verdicts ({"group", "slot", "correct"}), as its reference code
    defines them: question score (a question right on both images), image score (an image right on both
    questions), binary score (each answer), group score (all four). Groups missing a slot are left out."""
    groups: dict[str, dict[str, bool]] = defaultdict(dict)
    for r in results:
        if r.get("group") is not None and r.get("slot"):
            groups[str(r["group"])][r["slot"]] = bool(r["correct"])
    complete = [g for g in groups.values() if len(g) == 4]
    if not complete:
        return {"question_score": 0.0, "image_score": 0.0, "binary_score": 0.0, "group_score": 0.0, "groups": 0}
    n = len(complete)
    question = sum((g["q0_i0"] and g["q0_i1"]) + (g["q1_i0"] and g["q1_i1"]) for g in complete)
    image = sum((g["q0_i0"] and g["q1_i0"]) + (g["q0_i1"] and g["q1_i1"]) for g in complete)
    binary = sum(sum(g.values()) for g in complete)
    group = sum(all(g.values()) for g in complete)
    return {"question_score": question / (2 * n), "image_score": image / (2 * n), "binary_score": binary / (4 * n),
            "group_score": group / n, "groups": n}
