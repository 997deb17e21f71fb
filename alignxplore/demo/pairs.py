"""A paired synthetic user set for cross-task transfer, so the mode runs end to end on CPU.

Each user has one latent favourite genre (as in :mod:`alignxplore.demo.world`) and behaviours
in BOTH tasks: a response-selection file (``pairs_rs_upi.jsonl``: chat-style queries, answers
of a genre) and a recommendation file (``pairs_rec_upi.jsonl``: the generic request, items of
a genre), sharing userids. One extra user is only in the selection file and one only in the
recommendation file, so the join's "missing on one side" counts are exercised (1 and 1).
The world then holds the two joined files (``rs_to_rec_upi.jsonl``, ``rec_to_rs_upi.jsonl``
with their ``.join.json`` reports), a registry ``benchmarks.yaml`` naming them as
``eval/benchmarks_cross_task.yaml`` does, and reference summaries in the generator's output
format (``summaries/{teacher,empty}/full/NAME.jsonl``; teacher = the user's true genre).

    python -m alignxplore.demo.pairs --out runs/demo/world/cross_task --users 32
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ..eval.cross_task import join_files
from ..formats import read_jsonl, write_jsonl
from .world import GENRES, behaviour, reference_summary

PAIR_FILES = {"rs": "pairs_rs_upi.jsonl", "rec": "pairs_rec_upi.jsonl"}
# joined benchmark name -> (history side, target side); names and columns as eval/benchmarks_cross_task.yaml
JOINS = {"rs_to_rec": ("rs", "rec"), "rec_to_rs": ("rec", "rs")}
REGISTRY = """# Cross-task pairs of the synthetic world (alignxplore/demo/pairs.py)
benchmarks:
  - {name: rs_to_rec, file: rs_to_rec_upi.jsonl, task: recommendation,     split: half, column: "R.S. → Rec.", auc: true}
  - {name: rec_to_rs, file: rec_to_rs_upi.jsonl, task: response_selection, split: half, column: "Rec. → R.S.", auc: false}
"""


def paired_users(n_users: int, *, history_len: int = 6, noise: float = 0.1, seed: int = 0) -> dict[str, list[dict]]:
    """``{"rs": rows, "rec": rows}``: ``n_users`` shared users plus one only on each side."""
    rng = random.Random(seed)
    out: dict[str, list[dict]] = {"rs": [], "rec": []}
    people = [(f"pair_{i}", ("rs", "rec")) for i in range(n_users)] + [("only_rs_0", ("rs",)), ("only_rec_0", ("rec",))]
    for uid, sides in people:
        genre = rng.choice(GENRES)
        for side in sides:
            history = [behaviour(rng, genre, side, noise) for _ in range(history_len)]
            out[side].append({"userid": uid, "genre": genre, "history": history, "target": behaviour(rng, genre, side, 0.0)})
    return out


def write_paired_world(out: str | Path, n_users: int = 32, *, seed: int = 0) -> dict:
    """Write the pair files, both joins, the registry and reference summaries; returns the join reports."""
    out = Path(out)
    users = paired_users(n_users, seed=seed)
    for side, name in PAIR_FILES.items():
        write_jsonl(out / name, users[side])
    reports = {}
    genre = {r["userid"]: r["genre"] for rows in users.values() for r in rows}
    for name, (h_side, t_side) in JOINS.items():
        reports[name] = join_files(out / PAIR_FILES[h_side], out / PAIR_FILES[t_side], out / f"{name}_upi.jsonl")
        joined = read_jsonl(out / f"{name}_upi.jsonl")
        for summarizer in ("teacher", "empty"):
            profile = (lambda u: reference_summary(genre[u])) if summarizer == "teacher" else (lambda u: "")
            write_jsonl(out / "summaries" / summarizer / "full" / f"{name}.jsonl",
                        [{**r, "raw_prompt": "", "first_response": profile(r["userid"]), "profile": profile(r["userid"])} for r in joined])
    (out / "benchmarks.yaml").write_text(REGISTRY)
    return reports


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--users", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    reports = write_paired_world(args.out, args.users, seed=args.seed)
    print(json.dumps({k: {x: v for x, v in r.items() if not x.endswith("_ids") and not x.endswith("_from")} for k, r in reports.items()}))
    return 0


if __name__ == "__main__":
    main()
