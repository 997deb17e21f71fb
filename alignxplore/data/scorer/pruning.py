"""Pruning: scored behaviours -> RL rows with a ``mid_position`` (docs/formats.md §7).

    python -m alignxplore.data.scorer.pruning --scores data/scored/movielens.jsonl \\
        --a 0.5 --b 0.3 --c 0.6 --out data/rl/movielens_rl.jsonl
    # or: SCORES='data/scored/movielens.jsonl*' OUT=data/rl/movielens_rl.jsonl A=0.5 B=0.3 C=0.6 bash pruning/prune.sh

Input: the scored user rows written by ``alignxplore.data.scorer.scoring`` (one or more files; with
several GPUs, every ``*.rank*`` shard): behaviours carrying ``logprob1`` (and ``logprob2`` /
``signal``) are the scored ones. Every scored behaviour of every user given in one call enters
ONE global filter (run once per dataset to filter per dataset, as the authors did per file):

1. sort by ``signal`` (descending) and keep the first ``max(1, ⌊N·a⌋)``;
2. keep those with ``log b <= logprob1 <= 0``;
3. sort by ``logprob1`` (descending) and keep positions ``[max(1, ⌊n(c−0.1)⌋), max(1, ⌊n·c⌋))``.

``a``, ``b`` and ``c`` are required: the authors never released their values. Each step prints
how many behaviours (and users) it kept, a histogram of ``P(correct) = exp(logprob1)`` and
quantiles of the signal, so the thresholds can be chosen from the printed distribution.

Per user, the kept behaviours are sorted by signal (descending) and the first pair (i < j in
that order) is taken whose later behaviour, at index ``last``, gives ``history =
behaviours[:last + 1]`` (L = last + 1 behaviours) and whose earlier one, at index ``mid``, has
``mid ∉ {0, L−2}`` (so ``L >= 4`` and ``1 <= mid <= L − 3``). Row: ``uid``, ``history``,
``mid_position``, ``mid_record`` / ``last_record`` (``logprob1``, ``logprob2``, ``signal``),
``signal_gap = signal(last) − signal(mid)``, ``distance_to_end = L − 1 − mid``.

Decisions where the authors' code is silent or fragile (docs/data.md "Decisions: scorer, scoring, pruning, converters"):
* the floors are exact decimal arithmetic on the thresholds as written (``c = 0.3`` with 10
  behaviours gives ⌊10·0.2⌋ = 2); the authors' float ``int(10 * (0.3 - 0.1))`` gives 1;
* ties keep input order (stable sorts), input order = user order, then behaviour order;
* ``mid`` is the earlier behaviour's index itself (the authors looked the item up with
  ``list.index``, which picks an earlier duplicate of the same item);
* without a weak model there is no ``signal``: ``--signal-key logprob1`` ranks by
  ``logprob1`` instead (then steps 1 and 3 sort by the same key);
* ``--null-query`` fills a missing/None query in the output histories (the scorer saw
  ``None``; the authors' rows got a fixed recommendation sentence).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from fractions import Fraction
from pathlib import Path

from ...cli import run_main
from ...formats import SCORE_FIELDS, BadLines, DataError, expand_globs, iter_jsonl, validate_rl_row, write_jsonl
from ...preflight import check_output_file
from .text import read_user_row  # the scored user row: score fields checked (formats.validate_user_row)

log = logging.getLogger("alignxplore.data.scorer.pruning")
BAND_WIDTH = Fraction(1, 10)  # the authors' band is [c - 0.1, c) of the logprob1 ranking




def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def load_scored(paths: list[str], *, skip_bad_rows: bool = False) -> list[dict]:
    """Read every scored-user file (glob patterns allowed); a uid may appear only once. Every
    bad line of every file is reported (capped); then the run stops, or with
    ``skip_bad_rows`` those lines are dropped."""
    files = expand_globs(paths)
    users, first_seen = [], {}
    bad = BadLines(skip=skip_bad_rows)
    for f in files:
        for user in iter_jsonl(f, read_user_row, keep_where=True, on_bad=bad):
            uid = str(user["uid"])
            if uid in first_seen:
                bad(DataError(user["_where"], "uid", f"{uid!r} already read at {first_seen[uid]}"))
                continue
            first_seen[uid] = user["_where"]
            users.append(user)
    bad.finish()
    return users



def flatten(users: list[dict], signal_key: str) -> list[dict]:
    """One record per scored behaviour (one with ``logprob1``): ``user`` (position in
    ``users``), ``index``, ``logprob1``, ``logprob2`` (None without a weak model) and
    ``signal`` (the ranking key)."""
    records = []
    for u, user in enumerate(users):
        for k, b in enumerate(user["behaviors"]):
            if b.get("logprob1") is None:
                continue  # beyond the scorer's max length: never a candidate
            sig = b.get(signal_key)
            if not _number(sig):
                hint = " (no weak model was scored: use --signal-key logprob1)" if signal_key == "signal" else ""
                raise DataError(user["_where"], f"behaviors[{k}].{signal_key}", "missing or not a number" + hint)
            records.append({"user": u, "index": k, "logprob1": float(b["logprob1"]), "logprob2": b.get("logprob2"), "signal": float(sig)})
    return records


def _floor(n: int, frac: Fraction) -> int:
    return math.floor(n * frac)


def _exact(x: float) -> Fraction:
    return Fraction(repr(float(x)))  # the threshold as written in decimal, not its binary float


def select_records(records: list[dict], a: float, b: float, c: float) -> tuple[list[dict], list[tuple[str, list[dict]]]]:
    """The global three-step filter; returns the kept records and each step's survivors."""
    by_signal = sorted(records, key=lambda r: r["signal"], reverse=True)
    top_a = by_signal[: max(1, _floor(len(by_signal), _exact(a)))]
    log_b = math.log(b)
    in_range = [r for r in top_a if log_b <= r["logprob1"] <= 0.0]
    by_logprob = sorted(in_range, key=lambda r: r["logprob1"], reverse=True)
    n = len(by_logprob)
    lo = max(1, _floor(n, _exact(c) - BAND_WIDTH))
    hi = max(1, _floor(n, _exact(c)))
    band = by_logprob[lo:hi]
    stages = [("all scored", records), (f"top a={a} by signal", top_a), (f"log b <= logprob1 <= 0 (b={b})", in_range),
              (f"logprob1 band [{lo}, {hi}) of {n} (c={c})", band)]
    return band, stages


def _record_info(rec: dict) -> dict:
    return {"logprob1": rec["logprob1"], "logprob2": rec["logprob2"], "signal": rec["signal"]}


def pick_row(user: dict, kept: list[dict], null_query: str | None = None) -> dict | None:
    """The first pair of kept behaviours in signal order that gives a valid mid position."""
    ordered = sorted(kept, key=lambda r: r["signal"], reverse=True)
    for i in range(len(ordered)):
        for j in range(i + 1, len(ordered)):
            early, late = sorted((ordered[i], ordered[j]), key=lambda r: r["index"])
            length, mid = late["index"] + 1, early["index"]
            if mid in (0, length - 2):
                continue
            history = [_fill_query(t, null_query) for t in user["behaviors"][:length]]
            mid_info, last_info = _record_info(early), _record_info(late)
            return {
                "uid": str(user["uid"]),
                "history": history,
                "mid_position": mid,
                "mid_record": mid_info,
                "last_record": last_info,
                "signal_gap": last_info["signal"] - mid_info["signal"],
                "distance_to_end": length - 1 - mid,
            }
    return None


def _fill_query(behaviour: dict, null_query: str | None) -> dict:
    """The behaviour as a plain triple (score fields dropped), a missing query filled if asked."""
    triple = {k: v for k, v in behaviour.items() if k not in SCORE_FIELDS}
    if null_query is not None and not triple.get("query"):
        triple["query"] = null_query
    return triple


def prune(users: list[dict], a: float, b: float, c: float, *, signal_key: str = "signal", null_query: str | None = None) -> tuple[list[dict], dict]:
    """RL rows (in user order) and a summary of every step."""
    check_thresholds(a, b, c)
    records = flatten(users, signal_key)
    if not records:
        raise DataError("scores", None, "no scored behaviours in the input")
    kept, stages = select_records(records, a, b, c)
    kept_by_user: dict[int, list[dict]] = {}
    for r in kept:
        kept_by_user.setdefault(r["user"], []).append(r)
    rows, no_pair = [], 0
    for u in sorted(kept_by_user):
        row = pick_row(users[u], kept_by_user[u], null_query)
        if row is None:
            no_pair += 1
            continue
        validate_rl_row(row, users[u]["_where"])
        rows.append(row)
    summary = {
        "thresholds": {"a": a, "b": b, "c": c, "signal_key": signal_key},
        "stages": [stage_summary(name, recs) for name, recs in stages],
        "users_in": len(users),
        "users_with_kept_behaviours": len(kept_by_user),
        "users_without_valid_pair": no_pair,
        "rows": len(rows),
        "mean_history_length": sum(len(r["history"]) for r in rows) / len(rows) if rows else 0.0,
        "distance_to_end": quantiles([r["distance_to_end"] for r in rows]),
        "signal_gap": quantiles([r["signal_gap"] for r in rows]),
    }
    return rows, summary


def check_thresholds(a: float, b: float, c: float) -> None:
    for name, v in (("a", a), ("b", b), ("c", c)):
        if not (math.isfinite(v) and 0.0 < v <= 1.0):
            raise DataError("thresholds", name, f"{v} is not in (0, 1]")


def quantiles(values: list[float], qs=(0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)) -> dict:
    if not values:
        return {}
    s = sorted(values)
    return {f"p{int(q * 100)}": s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))] for q in qs}


def probability_histogram(records: list[dict], bins: int = 10) -> list[int]:
    """Counts of exp(logprob1) in ``bins`` equal bins over [0, 1]."""
    counts = [0] * bins
    for r in records:
        counts[min(bins - 1, max(0, int(math.exp(min(r["logprob1"], 0.0)) * bins)))] += 1
    return counts


def stage_summary(name: str, recs: list[dict]) -> dict:
    return {
        "step": name,
        "behaviours": len(recs),
        "users": len({r["user"] for r in recs}),
        "p_correct_histogram": probability_histogram(recs),
        "signal": quantiles([r["signal"] for r in recs]),
        "logprob1": quantiles([r["logprob1"] for r in recs]),
    }


def format_summary(summary: dict) -> str:
    lines = []
    for st in summary["stages"]:
        lines.append(f"== {st['step']}: {st['behaviours']} behaviours, {st['users']} users")
        hist = st["p_correct_histogram"]
        width = max(hist) or 1
        for k, n in enumerate(hist):
            lines.append(f"   P(correct) [{k / 10:.1f}, {(k + 1) / 10:.1f}{']' if k == 9 else ')'} {n:>9} {'#' * round(40 * n / width)}")
        if st["signal"]:
            lines.append("   signal   " + "  ".join(f"{k}={v:.4g}" for k, v in st["signal"].items()))
            lines.append("   logprob1 " + "  ".join(f"{k}={v:.4g}" for k, v in st["logprob1"].items()))
    lines.append(f"== users: {summary['users_in']} in, {summary['users_with_kept_behaviours']} with kept behaviours, "
                 f"{summary['users_without_valid_pair']} without a valid pair, {summary['rows']} RL rows "
                 f"(mean history length {summary['mean_history_length']:.2f})")
    if summary["rows"]:
        lines.append("   distance_to_end " + "  ".join(f"{k}={v}" for k, v in summary["distance_to_end"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.scorer.pruning", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scores", nargs="+", required=True, help="scored-user JSONL file(s) or glob(s) from alignxplore.data.scorer.scoring")
    ap.add_argument("--out", required=True, help="RL rows (JSONL); a .summary.json is written beside it")
    ap.add_argument("--a", type=float, required=True, help="keep the top fraction a of all behaviours by signal (not released)")
    ap.add_argument("--b", type=float, required=True, help="then keep log(b) <= logprob1 <= 0 (not released)")
    ap.add_argument("--c", type=float, required=True, help="then the band [c-0.1, c) of the logprob1 ranking (not released)")
    ap.add_argument("--signal-key", default="signal", choices=("signal", "logprob1"), help="ranking key (logprob1 when no weak model was scored)")
    ap.add_argument("--null-query", default=None, help="text for a missing query in the output histories (default: keep as is)")
    ap.add_argument("--skip-bad-rows", action="store_true", help="report, count and drop bad lines instead of stopping (every bad line is reported either way)")
    args = ap.parse_args(argv)
    check_thresholds(args.a, args.b, args.c)
    check_output_file(args.out, "--out")
    users = load_scored(args.scores, skip_bad_rows=args.skip_bad_rows)
    rows, summary = prune(users, args.a, args.b, args.c, signal_key=args.signal_key, null_query=args.null_query)
    print(format_summary(summary))
    out = Path(args.out)
    write_jsonl(out, rows)
    out.with_name(out.name + ".summary.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {len(rows)} RL rows to {out}")
    return 0


if __name__ == "__main__":
    run_main(main)
