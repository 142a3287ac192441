"""Generate the shipped GQA/NaturalBench-format samples; images drawn by our own renderer."""
import json, random, sys
from pathlib import Path
sys.path.insert(0, ".")
from teachgraph.domains.scenes import random_scene, render, make_question, answer_question, Unanswerable
from teachgraph.domains.images import save_png_atomic
root = Path("teachgraph/domains/data")
rng = random.Random(2026)
# GQA (DataEnvGym layout)
gqa = root / "gqa"
qtypes = {"exists": ("existAttr", "obj"), "color": ("queryAttr", "attr"), "shape": ("queryObject", "cat"), "spatial": ("relVerify", "rel")}
for split, n_images in (("val", 6), ("testdev", 6)):
    inst, raw = [], []
    for k in range(n_images):
        scene = random_scene(rng, rng.randint(2, 5))
        name = f"{split}{k:03d}"
        save_png_atomic(render(scene).resize((96, 96), 0), gqa / "images" / f"{name}.png")
        for skill, (qtype, semantic) in qtypes.items():
            q = make_question(skill, scene, rng)
            if not q: continue
            try: a = answer_question(scene, q)
            except Unanswerable: continue
            qid = f"{split}-{k:03d}-{skill}"
            inst.append({"task_name": "gqa", "instance_id": qid, "instruction": q.capitalize(), "ground_truth_label": a,
                         "image": f"images/{name}.png", "vqa_task_type": "open_ended"})
            raw.append({"question_id": qid, "image_name": name, "question": q.capitalize(), "question_type": qtype, "answer": a})
    for sub, rows in (("dataenvgym-gqa", inst), ("dataenvgym-gqa-raw", raw)):
        (gqa / sub).mkdir(parents=True, exist_ok=True)
        (gqa / sub / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
# NaturalBench: groups of 2 questions x 2 images, answers by design (q0: yes on image 0, no on image 1; q1 the reverse)
nb = root / "naturalbench"
rows = []
index = 0
while len(rows) < 8:
    s0, s1 = random_scene(rng, rng.randint(1, 3)), random_scene(rng, rng.randint(1, 3))
    qs = [make_question("exists", s0, rng) for _ in range(6)] + [make_question("exists", s1, rng) for _ in range(6)]
    q0 = next((q for q in qs if answer_question(s0, q) == "yes" and answer_question(s1, q) == "no"), None)
    q1 = next((q for q in qs if answer_question(s0, q) == "no" and answer_question(s1, q) == "yes"), None)
    if not (q0 and q1): continue
    for j, s in enumerate((s0, s1)):
        save_png_atomic(render(s).resize((96, 96), 0), nb / "images" / f"{index}_{j}.png")
    rows.append({"Index": index, "Image_0": f"images/{index}_0.png", "Image_1": f"images/{index}_1.png",
                 "Question_0": q0.capitalize(), "Question_1": q1.capitalize(),
                 "Image_0_Question_0": "Yes", "Image_1_Question_0": "No", "Image_0_Question_1": "No", "Image_1_Question_1": "Yes",
                 "Question Type": "yes_no", "Source": "rendered"})
    index += 1
nb.mkdir(parents=True, exist_ok=True)
(nb / "naturalbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
print("ok", len(rows))
