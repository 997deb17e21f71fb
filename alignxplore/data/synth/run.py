"""SFT data synthesis: teacher summaries, judge filtering, merging, re-verification (issue 10).

    # stage 1: history = first third, targets = second third (teacher = judge = merger)
    python -m alignxplore.data.synth stage1 --users data/scored/users_scored.jsonl --work-dir data/synth \\
        --backend vllm --model Qwen/Qwen3-32B --tensor-parallel-size 8
    # stage 2: history = second third, targets = last third, past = stage-1 merged summary
    python -m alignxplore.data.synth stage2 --work-dir data/synth --backend vllm --model Qwen/Qwen3-32B --tensor-parallel-size 8
    # two SFT rows per kept user -> data/synth/sft.jsonl (input of sft/prepare.sh)
    python -m alignxplore.data.synth postprocess --work-dir data/synth
    # any OpenAI-compatible server instead of the offline engine:
    #   --backend openai --base-url http://host:8000/v1 --model Qwen/Qwen3-32B --concurrency 128

Files in ``--work-dir``: ``stage1.jsonl`` / ``stage2.jsonl`` (one record per finished user:
``status`` kept|skipped, ``reason``, the thirds, every candidate with its teacher answer and
verdicts, the merge output; kept users carry ``thinking_N`` / ``preference_N``), the matching
``*.summary.json`` (users in, skipped and why, kept, pending retries, calls), and ``sft.jsonl``.
Users go through in chunks (``--chunk-size``); each finished chunk is appended and fsynced, so
a killed run restarted with the same command continues without duplicates or loss. Users whose
calls failed over HTTP are not written (exit code 3): rerun the same command to retry them.
Inputs and rules: :mod:`.synth_users`; the four calls and the decisions: :mod:`.synth_stage`.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections import Counter
from pathlib import Path

from tqdm.auto import tqdm

from ...backends.base import Backend
from ...cli import add_backend_args, add_sampling_args, backend_from_args, run_main, sampling_from_args
from ...formats import DataError, ResumableJsonl, read_jsonl
from .postprocess import postprocess
from .stage import JUDGE_MODES, SKIP_REASONS, UNCLOSED_THINK, StageRunner, SynthConfig
from .users import THIRDS_FROM, TargetRule, read_users

log = logging.getLogger("alignxplore.synth")
EXIT_PENDING = 3


def stage_paths(work_dir: str | Path, stage: int) -> tuple[Path, Path]:
    work = Path(work_dir)
    return work / f"stage{stage}.jsonl", work / f"stage{stage}.summary.json"


def load_stage_input(stage: int, users: str | None, work_dir: str | Path) -> tuple[list[dict], str]:
    """Stage 1: the scored user rows; stage 2: the users stage 1 kept, in input order."""
    if stage == 1:
        if not users:
            raise DataError("stage1", "--users", "required: the scored user rows (JSONL)")
        return list(read_users(users)), str(users)
    path, _ = stage_paths(work_dir, 1)
    kept = [r for r in read_jsonl(path) if r.get("status") == "kept"]
    for r in kept:
        if not isinstance(r.get("thirds"), list) or not isinstance(r.get("preference_1"), str):
            raise DataError(str(path), "thirds/preference_1", f"user {r.get('uid')!r}: not a stage-1 record of this tool")
    return sorted(kept, key=lambda r: r["index"]), str(path)


def run_stage(stage: int, users: list[dict], backend: Backend, config: SynthConfig, work_dir: str | Path,
              chunk_size: int = 1000, source: str = "") -> dict:
    """Run (or resume) one stage over ``users``; returns the summary (also written to disk)."""
    out_path, summary_path = stage_paths(work_dir, stage)
    sink = ResumableJsonl(out_path, key=lambda r: r["uid"])
    todo = [u for u in users if u["uid"] not in sink]
    done_before = len(users) - len(todo)
    if done_before:
        log.info("stage %d: %d of %d users already done, resuming", stage, done_before, len(users))
    runner = StageRunner(backend, config, stage)
    counts: Counter = Counter()
    failed: list[tuple[str, str]] = []
    bar = tqdm(total=len(users), initial=done_before, desc=f"synth stage {stage}", unit="user")
    for start in range(0, len(todo), chunk_size):
        chunk = todo[start:start + chunk_size]
        result = runner.run_chunk(chunk)
        sink.append(result.records)
        counts.update(result.counts)
        failed += result.failed
        bar.update(len(chunk))
        bar.set_postfix(kept=sum(r["status"] == "kept" for r in sink.done.values()), retry=len(failed))
    bar.close()
    for uid, err in failed[:20]:
        log.warning("stage %d: user %s failed over HTTP (retried by the next run): %s", stage, uid, err)
    summary = _summary(stage, users, sink, config, counts, failed, done_before, source, out_path)
    _write_json(summary_path, summary)
    log.info("stage %d: %d in, %d kept, skipped %s, %d pending retry -> %s", stage, summary["users_in"], summary["kept"],
             summary["skipped"], summary["pending_retry"], out_path)
    return summary


def _summary(stage, users, sink, config, counts, failed, done_before, source, out_path) -> dict:
    wanted = {u["uid"] for u in users}
    records = [r for uid, r in sink.done.items() if uid in wanted]
    skipped = Counter(r["reason"] for r in records if r["status"] == "skipped")
    cands = [c for r in records for c in r.get(f"candidates_{stage}", [])]
    return {
        "stage": stage,
        "input": source,
        "output": str(out_path),
        "users_in": len(users),
        "kept": sum(r["status"] == "kept" for r in records),
        "skipped": {reason: skipped[reason] for reason in SKIP_REASONS if skipped[reason]},
        "pending_retry": len(failed),
        "candidates": {
            "targets_sampled": len(cands),
            "teacher_malformed": sum(1 for c in cands if c.get("teacher_ok") is False),
            "judge_confirmed": sum(1 for c in cands if (c.get("judge") or {}).get("correct")),
        },
        "this_run": {"done_before": done_before, "processed": len(users) - done_before - len(failed),
                     "failed_users": [[uid, err] for uid, err in failed[:100]], **dict(sorted(counts.items()))},
        "config": {"min_target_prob": config.rule.min_target_prob, "max_targets": config.rule.max_targets,
                   "min_candidates": config.rule.min_candidates, "max_behaviors": config.rule.max_behaviors,
                   "min_third": config.rule.min_third, "unscored_as_candidates": config.rule.unscored_as_candidates,
                   "min_kept": config.min_kept, "min_rejudge": config.min_rejudge, "judge_mode": config.judge_mode,
                   "max_prompt_tokens": config.max_prompt_tokens, "thirds_from": config.rule.thirds_from,
                   "unclosed_think": config.unclosed_think, "overwrite_query": config.overwrite_query,
                   "seed": config.seed, "sampling": config.sampling.as_dict()},
    }


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m alignxplore.data.synth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for stage in (1, 2):
        p = sub.add_parser(f"stage{stage}", help=f"synthesis stage {stage}", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--work-dir", required=True, help="stage outputs and summaries go here")
        if stage == 1:
            p.add_argument("--users", required=True, help="scored user rows (JSONL): uid + behaviors with logprob1")
        p.add_argument("--chunk-size", type=int, default=1000, help="users per batch of calls (the authors: 1000); the unit of resumption")
        r, t = TargetRule(), SynthConfig()
        k = p.add_argument_group("filters (the authors' defaults)")
        k.add_argument("--min-target-prob", type=float, default=r.min_target_prob, help="candidate if exp(logprob1) > this")
        k.add_argument("--max-targets", type=int, default=r.max_targets, help="targets sampled per user and stage")
        k.add_argument("--min-candidates", type=int, default=r.min_candidates, help="skip users with fewer candidates")
        k.add_argument("--max-behaviors", type=int, default=r.max_behaviors, help="use each user's last N behaviours")
        k.add_argument("--min-third", type=int, default=r.min_third, help="skip users whose third is shorter")
        k.add_argument("--unscored-as-candidates", action="store_true", help="users without any logprob1: every behaviour is a candidate")
        k.add_argument("--min-kept", type=int, default=t.min_kept, help="candidates the judge must confirm")
        k.add_argument("--min-rejudge", type=float, default=t.min_rejudge, help="share of kept targets the merged summary must get right")
        k.add_argument("--max-prompt-tokens", type=int, default=None,
                       help="skip users whose teacher or merge prompt is longer (default: no limit, as the authors)")
        k.add_argument("--judge-mode", choices=JUDGE_MODES, default=t.judge_mode,
                       help="sampled (the authors'): the sampled JSON answer; forced (ours): argmax of the teacher-forced P(A)/P(B)")
        k.add_argument("--thirds-from", choices=THIRDS_FROM, default=r.thirds_from,
                       help="scored (the authors'): split only the behaviours with a logprob1; all (ours): every one of the last N")
        k.add_argument("--unclosed-think", choices=UNCLOSED_THINK, default=t.unclosed_think,
                       help="a teacher answer without </think>: keep (the authors': used whole) or drop (ours)")
        k.add_argument("--overwrite-query", default=None,
                       help="replace every behaviour's query before synthesis (the authors' preprocessing used "
                            "'Please recommend some movies to me.'; off by default: our converters write per-dataset requests)")
        add_sampling_args(p, title="teacher sampling (the authors' values)", seed_help="engine seed and the seed of targets and A/B flips")
        add_backend_args(p, what="teacher (also judge and merger)")
    p = sub.add_parser("postprocess", help="two SFT rows per user kept by both stages")
    p.add_argument("--work-dir", required=True)
    p.add_argument("--out", default=None, help="default: WORK_DIR/sft.jsonl")
    return ap


def config_from_args(args) -> SynthConfig:
    rule = TargetRule(args.max_behaviors, args.min_third, args.min_target_prob, args.max_targets, args.min_candidates,
                      args.unscored_as_candidates, args.thirds_from)
    return SynthConfig(rule, args.min_kept, args.min_rejudge, args.judge_mode, args.seed, args.max_prompt_tokens, sampling_from_args(args),
                       args.unclosed_think, args.overwrite_query)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "postprocess":
        postprocess(args.work_dir, args.out)
        return 0
    stage = int(args.command[-1])
    config = config_from_args(args)
    # Validate the input before loading a model: a typo should cost seconds, not a model load.
    users, source = load_stage_input(stage, getattr(args, "users", None), args.work_dir)
    backend = backend_from_args(args)
    try:
        summary = run_stage(stage, users, backend, config, args.work_dir, args.chunk_size, source)
    finally:
        backend.close()
    if summary["pending_retry"]:
        log.error("%d user(s) failed over HTTP; rerun the same command to retry them", summary["pending_retry"])
        return EXIT_PENDING
    return 0


if __name__ == "__main__":
    run_main(main)
