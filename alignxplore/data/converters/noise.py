"""Noisy-history benchmark sets: behaviours from another source or user injected into each history.

    # AlignX users with 75% as many MovieLens behaviours interleaved (the paper's robustness set)
    python -m alignxplore.data.converters.noise --base data/benchmark/alignx_upi.jsonl \\
        --source data/benchmark/movielens_upi.jsonl --mode interleave --ratio 0.75 \\
        --out data/benchmark/alignx_movielens_interleave_75_upi.jsonl
    # HiCUPID users with 50% of the next user's history appended / prepended / interleaved
    python -m alignxplore.data.converters.noise --base data/benchmark/hicupid_upi.jsonl --source next-user-pairs \\
        --mode append --ratio 0.5 --out data/benchmark/hicupid_next_user_append_50_upi.jsonl

Per user: ``k = min(⌊len(history) · ratio⌋, len(noise user's history))`` behaviours are drawn
(``random.Random(seed)``) from the noise user's history, kept in their own order, and
``append``-ed, ``prepend``-ed or ``interleave``-d at random positions (both the user's
behaviours and the noise keep their relative order). The target and every other field stay;
``noise`` records the source, mode, ratio and the history positions that are noise.

Noise users: with ``--source FILE``, user i of the base takes user ``i mod n`` of FILE (the
authors zipped the two files, dropping base users beyond the shorter one); with
``--source next-user``, user i takes user ``i + 1`` of the base itself (the last takes the first);
with ``--source next-user-pairs`` (the authors' HiCUPID sets), users 0, 2, 4, … take users
1, 3, 5, … and the odd users are left out (half the users).

Chat-message histories (HiCUPID, PersonaMem) are handled in turns: a user message with the
messages that follow it up to the next user message is one behaviour, so noise never splits a
question from its answer.

Decision (docs/data.md): the sampled noise keeps its source order; the authors'
``random.sample`` list came out in random order.

No negative samples (the paper's "robust to interaction formats" claim): ``--mode
no-negatives`` (no ``--source`` / ``--ratio``) replaces the rejected item of every history
behaviour with the authors' filler ``No negative sample.`` (their generation-set converter's
string, ``formats.NO_NEGATIVE_SAMPLE``), so the history carries positive feedback only. The
target keeps its two items (the judge still chooses between them), history order and length
are unchanged, ``noise`` records how many rejected items were replaced. Chat-message
histories already render with the filler and are copied unchanged (``replaced: 0``).

    python -m alignxplore.data.converters.noise --base data/benchmark/alignx_upi.jsonl --mode no-negatives \\
        --out data/benchmark/alignx_no_negatives_upi.jsonl
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ...cli import run_main
from ...formats import NO_NEGATIVE_SAMPLE, DataError, derived_userid, read_jsonl, write_jsonl

MODES = ("append", "prepend", "interleave")
NO_NEGATIVES = "no-negatives"
NEXT_USER = "next-user"
NEXT_USER_PAIRS = "next-user-pairs"


def is_chat(history: list) -> bool:
    return bool(history) and all(isinstance(h, dict) and "role" in h and "chosen" not in h for h in history)


def to_units(history: list) -> list[list[dict]]:
    """Behaviours as units: a triple alone, or a chat turn (user message + the replies after it)."""
    if not is_chat(history):
        return [[h] for h in history]
    units: list[list[dict]] = []
    for msg in history:
        if msg.get("role") == "user" or not units:
            units.append([msg])
        else:
            units[-1].append(msg)
    return units


def inject(units: list, noise: list, mode: str, rng: random.Random) -> tuple[list, list[int]]:
    """``(mixed units, positions of the noise units)``; relative orders are kept."""
    if mode == "append":
        return units + noise, list(range(len(units), len(units) + len(noise)))
    if mode == "prepend":
        return noise + units, list(range(len(noise)))
    total = len(units) + len(noise)
    positions = sorted(rng.sample(range(total), len(noise)))
    mixed, a, b = [], iter(units), iter(noise)
    noise_at = set(positions)
    for p in range(total):
        mixed.append(next(b) if p in noise_at else next(a))
    return mixed, positions


def make_noisy(base: list[dict], source: list[dict] | None, *, mode: str, ratio: float, seed: int, source_name: str) -> list[dict]:
    if mode not in MODES:
        raise DataError("noise", "mode", f"{mode!r} not in {MODES}")
    if not ratio > 0:
        raise DataError("noise", "ratio", f"{ratio} must be > 0")
    if source_name == NEXT_USER_PAIRS:
        pairs = list(zip(base[0::2], base[1::2]))
    else:
        donors = source if source is not None else base
        if not donors:
            raise DataError(source_name, None, "no users to take noise from")
        pairs = [(row, donors[(i + 1) % len(donors)] if source is None else donors[i % len(donors)]) for i, row in enumerate(base)]
    rng = random.Random(seed)
    out = []
    for row, donor in pairs:
        units, donor_units = to_units(row["history"]), to_units(donor["history"])
        if units and donor_units and is_chat(row["history"]) != is_chat(donor["history"]):
            raise DataError(row.get("_where", "base"), "history", "base and noise histories differ in shape (chat messages vs triples)")
        k = min(int(len(units) * ratio), len(donor_units))
        picked = [donor_units[j] for j in sorted(rng.sample(range(len(donor_units)), k))]
        mixed, positions = inject(units, picked, mode, rng)
        new = {key: v for key, v in row.items() if key != "_where"}
        new["history"] = [item for unit in mixed for item in unit]
        new["noise"] = {"source": source_name, "from_user": str(donor.get("userid")), "mode": mode, "ratio": ratio, "seed": seed,
                        "inserted": k, "positions": positions, "unit": "chat turn" if is_chat(row["history"]) else "behaviour"}
        out.append(new)
    return out


def drop_negatives(base: list[dict]) -> list[dict]:
    """Every history behaviour's ``rejected`` set to the authors' filler; all else kept."""
    out = []
    for row in base:
        new = {key: v for key, v in row.items() if key != "_where"}
        replaced = 0
        if not is_chat(row["history"]):
            history = []
            for i, item in enumerate(row["history"]):
                if not isinstance(item, dict):
                    raise DataError(row.get("_where", "base"), f"history[{i}]", f"expected a behaviour object, got {type(item).__name__}")
                replaced += item.get("rejected") != NO_NEGATIVE_SAMPLE
                history.append({**item, "rejected": NO_NEGATIVE_SAMPLE})
            new["history"] = history
        new["noise"] = {"source": None, "mode": NO_NEGATIVES, "replaced": replaced, "filler": NO_NEGATIVE_SAMPLE}
        out.append(new)
    return out


def _rows(path: str) -> list[dict]:
    rows = []
    for rec in read_jsonl(path, keep_where=True):
        if not isinstance(rec.get("history"), list):
            raise DataError(rec["_where"], "history", "missing (not a benchmark row)")
        if rec.get("userid") is None:  # as the evaluation loader derives it, so both files share the id
            rec["userid"] = derived_userid(rec)
        rows.append(rec)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.converters.noise", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="benchmark file whose histories get noise")
    ap.add_argument("--source", help=f"benchmark file to take noise from, '{NEXT_USER}' or '{NEXT_USER_PAIRS}' (injection modes)")
    ap.add_argument("--mode", choices=MODES + (NO_NEGATIVES,), required=True)
    ap.add_argument("--ratio", type=float, help="noise behaviours per history behaviour (0.75 = 75%%; injection modes)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True, help="output benchmark file ({name}_upi.jsonl; register it in eval/benchmarks_noisy.yaml)")
    args = ap.parse_args(argv)
    if args.mode == NO_NEGATIVES:
        if args.source is not None or args.ratio is not None:
            ap.error(f"--mode {NO_NEGATIVES} takes no --source / --ratio")
        rows = drop_negatives(_rows(args.base))
        write_jsonl(Path(args.out), rows)
        print(json.dumps({"out": args.out, "users": len(rows), "rejected_replaced": sum(r["noise"]["replaced"] for r in rows)}))
        return 0
    if args.source is None or args.ratio is None:
        ap.error(f"--mode {args.mode} needs --source and --ratio")
    base = _rows(args.base)
    source = None if args.source in (NEXT_USER, NEXT_USER_PAIRS) else _rows(args.source)
    rows = make_noisy(base, source, mode=args.mode, ratio=args.ratio, seed=args.seed, source_name=args.source)
    write_jsonl(Path(args.out), rows)
    print(json.dumps({"out": args.out, "users": len(rows), "noise_behaviours": sum(r["noise"]["inserted"] for r in rows)}))
    return 0


if __name__ == "__main__":
    run_main(main)
