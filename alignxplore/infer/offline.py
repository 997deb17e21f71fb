"""Preference summaries for your own users, from the command line.

    # summaries (one pass per user); any backend: hf (CPU/GPU), vllm, openai (a server)
    python -m alignxplore.infer --input users.jsonl --out summaries.jsonl \\
        --backend vllm --model VanillaH1/AlignXplore-Plus
    # streaming: replay each history 4 behaviours at a time, keeping every summary
    python -m alignxplore.infer --input users.jsonl --out stream.jsonl --stream-chunk 4 ...
    # continue from earlier summaries (new behaviours only in users.jsonl)
    python -m alignxplore.infer --input new.jsonl --past summaries.jsonl --out next.jsonl ...
    # personalize: summaries + queries -> responses of any chat model
    python -m alignxplore.infer --personalize --input queries.jsonl --summaries summaries.jsonl \\
        --out answers.jsonl --backend openai --model Qwen/Qwen3-8B --base-url URL

(also ``alignxplore infer ...``). Input rows: ``{"userid", "history": [triples]}`` or
``{"userid", "messages": [chat messages]}``, optional ``"past"`` (the user row of
:func:`alignxplore.formats.validate_user_row`: ``uid`` / ``behaviors`` are read too). Output rows: ``userid``,
``summary``, ``response`` (raw), ``n_behaviours`` (shown), ``n_dropped`` (cut by the token
budget), ``steps`` (streaming: every chunk's summary), ``error`` (nothing fit the budget).
Personalize rows: ``{"userid", "query"}`` (optional ``"id"``, ``"summary"``) -> plus
``response`` and ``answer`` (text after ``</think>``).

Resumable like evaluation's generation: results are appended and fsynced per chunk of
users; rerunning the same command skips finished users. Users the HTTP backend could not
serve are left out and reported (exit code 3); rerun to retry them.
"""
from __future__ import annotations

import argparse
import logging

from tqdm.auto import tqdm

from ..cli import add_backend_args, add_sampling_args, backend_from_args, run_main, sampling_from_args
from ..formats import DataError, Record, ResumableJsonl, iter_jsonl, read_jsonl, validate_user_row
from ..history import MAX_PROMPT_TOKENS
from ..preflight import check_distinct, check_output_file
from ..prompts import extract_summary
from .api import WORDINGS, PreferenceInferer, User, personalize

log = logging.getLogger("alignxplore.infer")


def read_user_row(obj, where: str) -> Record:
    """An input row: the user row of :func:`alignxplore.formats.validate_user_row` (``userid``
    required, a chat history accepted, at least one behaviour, optional ``past``)."""
    return validate_user_row(obj, where, allow_chat=True, min_behaviours=1)


def _summaries_by_user(path: str, field: str = "summary") -> dict[str, str]:
    """userid -> summary from an earlier output of this command. Users that failed are absent;
    a ``null`` summary (nothing fit the budget, no past) counts as no summary."""
    def check(obj, where):
        if not isinstance(obj, dict) or "userid" not in obj:
            raise DataError(where, "userid", "missing")
        if field not in obj or not (obj[field] is None or isinstance(obj[field], str)):
            raise DataError(where, field, "missing or not a string")
        return obj

    return {str(r["userid"]): r[field] for r in iter_jsonl(path, check) if r[field] is not None}


def _unique(rows: list[Record], key, field: str) -> None:
    seen: dict[str, str] = {}
    for r in rows:
        k = key(r)
        if k in seen:
            raise DataError(r["_where"], field, f"duplicate {k!r} (also at {seen[k]})")
        seen[k] = r["_where"]


def _read_rows(args, validate) -> list[Record]:
    """Every input line checked; bad ones reported (capped), then stop unless --skip-bad-rows."""
    return read_jsonl(args.input, validate, keep_where=True, on_bad="skip" if args.skip_bad_rows else "stop")


def load_users(args) -> list[Record]:
    rows = _read_rows(args, read_user_row)
    _unique(rows, lambda r: r["uid"], "userid")
    earlier = _summaries_by_user(args.past) if args.past else {}
    for r in rows:  # an inline "past" wins over the file
        if r.get("past") is None:
            r["past"] = earlier.get(r["uid"])
    return rows


def _run_chunks(args, rows: list[Record], *, desc: str, row_key, out_key: str, process) -> int:
    """The resumable loop both modes share: skip the rows whose key is already in ``--out``,
    then per chunk of ``--chunk-size`` rows ``process(chunk) -> (output rows, n failed)``,
    appended and fsynced before the next chunk starts. Returns the exit code (3: some failed)."""
    sink = ResumableJsonl(args.out, key=lambda r: str(r[out_key]))
    todo = [r for r in rows if row_key(r) not in sink]
    failed = 0
    bar = tqdm(total=len(rows), initial=len(rows) - len(todo), desc=desc)
    for start in range(0, len(todo), args.chunk_size):
        chunk = todo[start : start + args.chunk_size]
        keep, n_failed = process(chunk)
        failed += n_failed
        sink.append(keep)
        bar.update(len(chunk))
    bar.close()
    return _report(failed)


def run_infer(args, backend, rows: list[Record]) -> int:
    inferer = PreferenceInferer(backend, sampling_from_args(args), wording=args.wording, prompt_budget=args.prompt_budget)

    def process(chunk: list[Record]) -> tuple[list[dict], int]:
        keep, failed = [], 0
        for res in inferer.infer_many([User(r["behaviors"], r["past"], r["uid"]) for r in chunk], chunk=args.stream_chunk):
            if res.error and res.error.startswith("generation failed"):
                failed += 1
                log.warning("user %s: %s", res.userid, res.error)
                continue
            if res.error:
                log.warning("user %s: %s (recorded)", res.userid, res.error)
            keep.append(res.to_dict())
        return keep, failed

    return _run_chunks(args, rows, desc="infer", row_key=lambda r: r["uid"], out_key="userid", process=process)


def validate_query_row(obj, where: str) -> Record:
    if not isinstance(obj, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(obj).__name__}")
    for key in ("userid", "query"):
        if key not in obj:
            raise DataError(where, key, "missing")
    if not isinstance(obj["query"], str) or not obj["query"].strip():
        raise DataError(where, "query", "expected a non-empty string")
    if obj.get("summary") is not None and not isinstance(obj["summary"], str):
        raise DataError(where, "summary", "expected a string")
    out = dict(obj)
    out["userid"] = str(obj["userid"])
    return out


def load_queries(args) -> list[Record]:
    rows = _read_rows(args, validate_query_row)
    summaries = _summaries_by_user(args.summaries) if args.summaries else {}
    for r in rows:
        if r.get("summary") is None:
            if r["userid"] not in summaries:
                raise DataError(r["_where"], "summary", f"none inline and none for user {r['userid']!r} in --summaries")
            r["summary"] = summaries[r["userid"]]
        r["_key"] = str(r["id"]) if "id" in r else f"{r['userid']}@{r['_where'].rsplit(':', 1)[1]}"
    _unique(rows, lambda r: r["_key"], "id")
    return rows


def run_personalize(args, backend, rows: list[Record]) -> int:
    def process(chunk: list[Record]) -> tuple[list[dict], int]:
        gens = personalize(backend, [(r["summary"], r["query"]) for r in chunk], sampling_from_args(args), enable_thinking=args.thinking)
        keep, failed = [], 0
        for r, g in zip(chunk, gens):
            if not g.ok:
                failed += 1
                log.warning("%s: generation failed: %s", r["_where"], g.error)
                continue
            public = {k: v for k, v in r.items() if not k.startswith("_")}
            keep.append({"key": r["_key"]} | public | {"response": g.text, "answer": extract_summary(g.text)})
        return keep, failed

    return _run_chunks(args, rows, desc="personalize", row_key=lambda r: r["_key"], out_key="key", process=process)


def _report(failed: int) -> int:
    if failed:
        log.error("%d item(s) failed to generate; rerun the same command to retry them", failed)
        return 3
    return 0


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=prog or "python -m alignxplore.infer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="users JSONL (or queries JSONL with --personalize)")
    ap.add_argument("--out", required=True, help="output JSONL, appended and resumed")
    ap.add_argument("--stream-chunk", type=int, default=None, metavar="K", help="replay each history K behaviours at a time")
    ap.add_argument("--past", default=None, metavar="FILE", help="earlier output of this command: continue from its summaries")
    ap.add_argument("--wording", choices=sorted(WORDINGS), default="eval", help="prompt wording: eval (evaluation/SFT, default) or rl")
    ap.add_argument("--prompt-budget", type=int, default=MAX_PROMPT_TOKENS, help="prompt tokens; prompts with a past summary get budget/1.2")
    ap.add_argument("--chunk-size", type=int, default=256, help="users per engine call; the unit of resumption")
    ap.add_argument("--personalize", action="store_true", help="answer queries with each user's summary in the system prompt")
    ap.add_argument("--summaries", default=None, metavar="FILE", help="--personalize: summaries JSONL (this command's output)")
    ap.add_argument("--thinking", action="store_true", help="--personalize: let the chat model think (off by default)")
    ap.add_argument("--skip-bad-rows", action="store_true", help="report, count and drop bad input lines instead of stopping (every bad line is reported either way)")
    add_sampling_args(ap)
    add_backend_args(ap, what="summary (or, with --personalize, chat) model")
    return ap


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog).parse_args(argv)
    if args.stream_chunk is not None and args.stream_chunk < 1:
        raise DataError("--stream-chunk", None, f"must be >= 1, got {args.stream_chunk}")
    # Validate every input (and the output path) before loading a model: a typo should cost
    # seconds, not a model load. The output must not be an input: resuming from the input
    # would treat every row as finished and silently do nothing.
    check_output_file(args.out, "--out")
    check_distinct(args.out, ("--input", args.input), ("--past", args.past), ("--summaries", args.summaries))
    rows = load_queries(args) if args.personalize else load_users(args)
    backend = backend_from_args(args, judge=False)
    try:
        return run_personalize(args, backend, rows) if args.personalize else run_infer(args, backend, rows)
    finally:
        backend.close()


if __name__ == "__main__":
    run_main(main)
