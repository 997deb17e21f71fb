"""One synthesis stage over a chunk of users: the four teacher calls, batched across users.

Per user and stage (docs/formats.md §7, prompts in :mod:`alignxplore.prompts`, SFT synthesis
section): (1) one teacher sample per candidate target, the target shown as a guiding triple
(thinking on); (2) the filtering judge keeps a candidate when it picks the user's chosen item
with that candidate's summary; at least ``min_kept`` must survive; (3) the teacher merges the
kept reasoning/summary pairs (thinking off), the answer split on ``|PreferenceSEP|``; (4) the
merged summary is judged again on every kept target and must be right on at least
``min_rejudge`` of them. Each step is ONE backend call for the whole chunk, so the calls of
all its users are in flight together (the vLLM engine batches them; the HTTP backend sends them
concurrently).

Decisions where the authors' code is silent or unusable:

* The filtering judge defaults to the authors' way, ``judge_mode="sampled"``: the judge's
  answer is sampled (thinking off, the teacher's sampling: temperature 0.6, top-k 20, top-p
  0.95) and parsed by :func:`~alignxplore.prompts.parse_selection`; an unparseable answer
  counts as wrong, as theirs did. ``judge_mode="forced"`` (our option) takes the argmax of the
  teacher-forced read-out ``Backend.judge`` (P(A), P(B) after ``{"selection": "Item``): with a
  judge that follows the format the sampled letter is a draw from nearly the same two-letter
  distribution, so the read-out is its deterministic mode, and no item is lost to an
  unparseable answer.
* A teacher answer without ``</think>`` is kept by default (``unclosed_think="keep"``, the
  authors' ``split("</think>")``: reasoning = the text before the first ``</think>`` — all of
  it when there is none — minus a leading ``<think>``; summary = the text after the last one —
  again all of it); counted as ``candidates_teacher_unclosed``. ``"drop"`` (our option) drops it
  before judging. Either way an empty summary is dropped (counted as malformed).
* Query overwrite (``overwrite_query``, off by default): the authors' scorer preprocessing
  replaced every stored behaviour's query with "Please recommend some movies to me." before
  synthesis, whatever the dataset. Our converters already give recommendation behaviours their
  dataset's generic request (news, books, movies), so overwriting would put a movie request on
  news and book behaviours; ``--overwrite-query TEXT`` reproduces it for a one-dataset run.
* A/B coin flips (target in the teacher prompt, judge, re-judge) and the target sample are
  seeded per ``(seed, stage, uid)`` (the authors' were unseeded), so a resumed or repeated run
  renders the same prompts.
* An unparseable merge drops the user (counted).
* ``max_prompt_tokens`` (off by default, as in the authors' runs): a user whose teacher or
  merge prompt is longer is skipped (``prompt_too_long``) instead of failing the engine's
  whole batch (vLLM offline) or every retry (a server's HTTP 400).
* A user any of whose calls failed over HTTP is left out of the chunk's records, so the next
  run of the same command retries it from the start of the stage.
"""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ...backends.base import Backend, SamplingConfig
from ...prompts import (THINK_CLOSE, THINK_OPEN, extract_reasoning, extract_summary, parse_selection, split_merge_output, synth_judge_messages,
                       synth_merge_messages, synth_pair, synth_teacher_messages)
from .users import TargetRule, is_scored, pick_targets, split_thirds

Record = dict[str, Any]
JUDGE_MODES = ("forced", "sampled")
UNCLOSED_THINK = ("keep", "drop")
SKIP_REASONS = ("too_short", "no_scores", "too_few_candidates", "prompt_too_long", "too_few_confirmed", "merge_malformed",
                "rejudge_failed")


@dataclass(frozen=True)
class SynthConfig:
    """Knobs with the authors' defaults (target rule, >= 3 kept, merged summary right on >= 80%)."""

    rule: TargetRule = field(default_factory=TargetRule)
    min_kept: int = 3
    min_rejudge: float = 0.8
    judge_mode: str = "sampled"
    seed: int = 42
    max_prompt_tokens: int | None = None  # skip users whose teacher or merge prompt is longer
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    unclosed_think: str = "keep"
    overwrite_query: str | None = None

    def __post_init__(self):
        if self.judge_mode not in JUDGE_MODES:
            raise ValueError(f"unknown judge mode {self.judge_mode!r}; expected one of {JUDGE_MODES}")
        if self.unclosed_think not in UNCLOSED_THINK:
            raise ValueError(f"unclosed_think must be one of {UNCLOSED_THINK}, got {self.unclosed_think!r}")


def unclosed_teacher_answer(text: str) -> tuple[str, str]:
    """(reasoning, summary) of a teacher answer with no complete think block, as the authors
    read it: reasoning = the text before the first ``</think>`` (all of it if none) without a
    leading ``<think>``; summary = the text after the last ``</think>`` (all of it if none)."""
    head = text.strip().split(THINK_CLOSE)[0].strip()
    if head.startswith(THINK_OPEN):
        head = head[len(THINK_OPEN):].strip()
    return head, extract_summary(text)


@dataclass
class _Work:
    """One user's progress through the stage."""

    base: Record
    history: list[Record]
    past: str | None
    candidates: list[Record]
    reason: str | None = None  # why the user was dropped (a SKIP_REASONS entry)
    error: str | None = None  # an HTTP failure: retry the user next run
    merge: Record = field(default_factory=dict)

    @property
    def live(self) -> bool:
        return self.reason is None and self.error is None


@dataclass
class ChunkResult:
    records: list[Record]  # finished users (kept or skipped), in input order
    failed: list[tuple[str, str]]  # (uid, error) of users to retry
    counts: Counter


class StageRunner:
    """Runs stage 1 (history = first third, targets from the second, no past) or stage 2
    (history = second third, targets from the last, past = the stage-1 merged summary)."""

    def __init__(self, backend: Backend, config: SynthConfig, stage: int):
        if stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {stage}")
        self.backend, self.cfg, self.stage = backend, config, stage

    # -- set-up: thirds and targets (no model calls) -----------------------------------------
    def _setup(self, user: Record) -> _Work:
        s = self.stage
        if s == 1:
            base = {"uid": user["uid"], "index": user["index"], "where": user["where"]}
            behaviours = user["behaviors"]
            if self.cfg.overwrite_query is not None:
                behaviours = [{**b, "query": self.cfg.overwrite_query} for b in behaviours]
            thirds = split_thirds(behaviours, self.cfg.rule)
            scored = is_scored(user["behaviors"][-self.cfg.rule.max_behaviors:])
            past = None
        else:
            base = {k: v for k, v in user.items() if k not in ("status", "reason", "stage")}
            thirds, scored, past = user["thirds"], is_scored(sum(user["thirds"], [])), user["preference_1"]
        base["thirds"] = thirds
        work = _Work(base, [], past, [])
        if thirds is None:
            work.reason = "too_short"
            return work
        if not scored and not self.cfg.rule.unscored_as_candidates:
            work.reason = "no_scores"
            return work
        rng = random.Random(f"{self.cfg.seed}:stage{s}:{user['uid']}")
        positions = pick_targets(thirds[s], self.cfg.rule, rng, user_scored=scored)
        if not positions:
            work.reason = "too_few_candidates"
            return work
        work.history = thirds[s - 1]
        for pos in positions:
            target = thirds[s][pos]
            # three independent coin flips per target: teacher prompt, judge, re-judge
            flips = [rng.random() < 0.5 for _ in range(3)]
            work.candidates.append({"position": pos, "target": {k: target[k] for k in ("query", "chosen", "rejected")},
                                    "teacher_a_is_chosen": flips[0], "_judge_flip": flips[1], "_rejudge_flip": flips[2]})
        return work

    def _too_long(self, conv: list[dict], enable_thinking: bool) -> bool:
        budget = self.cfg.max_prompt_tokens
        return budget is not None and self.backend.count_prompt_tokens(conv, enable_thinking=enable_thinking) > budget

    # -- the four calls ----------------------------------------------------------------------
    def _teacher(self, works: list[_Work], counts: Counter) -> None:
        for w in works:
            if w.live:
                for c in w.candidates:
                    t = c["target"]
                    a, b = (t["chosen"], t["rejected"]) if c["teacher_a_is_chosen"] else (t["rejected"], t["chosen"])
                    c["_conv"] = synth_teacher_messages(w.history, t["query"], a, b, past=w.past)
                if any(self._too_long(c["_conv"], True) for c in w.candidates):
                    w.reason = "prompt_too_long"
        jobs = [(w, c) for w in works if w.live for c in w.candidates]
        convs = [c["_conv"] for _, c in jobs]
        outs = self.backend.generate(convs, self.cfg.sampling, enable_thinking=True) if convs else []
        counts["calls_teacher"] += len(convs)
        for (w, c), out in zip(jobs, outs):
            if not out.ok:
                w.error = w.error or f"teacher: {out.error}"
                continue
            reasoning = extract_reasoning(out.text)
            summary = extract_summary(out.text) if reasoning is not None else ""
            if reasoning is None and self.cfg.unclosed_think == "keep":
                reasoning, summary = unclosed_teacher_answer(out.text)
                counts["candidates_teacher_unclosed"] += 1
            c.update(response=out.text, reasoning=reasoning, preference=summary, teacher_ok=bool(summary))
            counts["candidates"] += 1
            counts["candidates_teacher_malformed"] += not summary

    def _judge(self, jobs: list[tuple[_Work, Record, str, bool]], phase: str, counts: Counter) -> list[Record | None]:
        """Judge (work, target, summary, a_is_chosen) items; a verdict per item, None = HTTP failure."""
        convs = []
        for _, t, summary, a_chosen in jobs:
            a, b = (t["chosen"], t["rejected"]) if a_chosen else (t["rejected"], t["chosen"])
            convs.append(synth_judge_messages(t["query"], summary, a, b))
        counts[f"calls_{phase}"] += len(convs)
        if not convs:
            return []
        verdicts: list[Record | None] = []
        if self.cfg.judge_mode == "forced":
            for (w, _, _, a_chosen), score in zip(jobs, self.backend.judge(convs)):
                if not score.ok:
                    w.error = w.error or f"{phase}: {score.error}"
                    verdicts.append(None)
                    continue
                p_chosen, p_other = (score.p_a, score.p_b) if a_chosen else (score.p_b, score.p_a)
                verdicts.append({"a_is_chosen": a_chosen, "p_a": score.p_a, "p_b": score.p_b, "correct": p_chosen > p_other})
        else:
            for (w, _, _, a_chosen), out in zip(jobs, self.backend.generate(convs, self.cfg.sampling, enable_thinking=False)):
                if not out.ok:
                    w.error = w.error or f"{phase}: {out.error}"
                    verdicts.append(None)
                    continue
                letter = parse_selection(out.text)
                counts[f"{phase}_unparsed"] += letter is None
                verdicts.append({"a_is_chosen": a_chosen, "answer": out.text, "letter": letter,
                                 "correct": letter == ("A" if a_chosen else "B")})
        return verdicts

    def _filter(self, works: list[_Work], counts: Counter) -> None:
        jobs = [(w, c) for w in works if w.live for c in w.candidates if c.get("teacher_ok")]
        verdicts = self._judge([(w, c["target"], c["preference"], c["_judge_flip"]) for w, c in jobs], "judge", counts)
        for (w, c), v in zip(jobs, verdicts):
            c["judge"] = v
        for w in works:
            if w.live:
                kept = sum(1 for c in w.candidates if c.get("judge") and c["judge"]["correct"])
                counts["candidates_confirmed"] += kept
                if kept < self.cfg.min_kept:
                    w.reason = "too_few_confirmed"

    def _merge(self, works: list[_Work], counts: Counter) -> None:
        for w in works:
            if w.live:
                w.merge["conv"] = synth_merge_messages([synth_pair(c["reasoning"], c["preference"]) for c in _kept(w)])
                if self._too_long(w.merge["conv"], False):
                    w.reason = "prompt_too_long"
        live = [w for w in works if w.live]
        convs = [w.merge.pop("conv") for w in live]
        outs = self.backend.generate(convs, self.cfg.sampling, enable_thinking=False) if convs else []
        counts["calls_merge"] += len(convs)
        for w, out in zip(live, outs):
            if not out.ok:
                w.error = f"merge: {out.error}"
                continue
            parsed = split_merge_output(out.text)
            w.merge = {"output": out.text, "reasoning": parsed[0] if parsed else None, "summary": parsed[1] if parsed else None}
            if parsed is None:
                w.reason = "merge_malformed"

    def _rejudge(self, works: list[_Work], counts: Counter) -> None:
        jobs = [(w, c) for w in works if w.live for c in _kept(w)]
        verdicts = self._judge([(w, c["target"], w.merge["summary"], c["_rejudge_flip"]) for w, c in jobs], "rejudge", counts)
        for (w, c), v in zip(jobs, verdicts):
            c["rejudge"] = v
        for w in works:
            if w.live:
                kept = _kept(w)
                right = sum(1 for c in kept if c["rejudge"]["correct"])
                w.merge["rejudge_correct"], w.merge["rejudge_total"] = right, len(kept)
                if right < self.cfg.min_rejudge * len(kept):
                    w.reason = "rejudge_failed"

    # -- the chunk ---------------------------------------------------------------------------
    def run_chunk(self, users: list[Record]) -> ChunkResult:
        counts: Counter = Counter()
        works = [self._setup(u) for u in users]
        for step in (self._teacher, self._filter, self._merge, self._rejudge):
            if any(w.live for w in works):
                step(works, counts)
        records, failed = [], []
        for w in works:
            if w.error is not None:
                failed.append((w.base["uid"], w.error))
                continue
            records.append(self._record(w))
        return ChunkResult(records, failed, counts)

    def _record(self, w: _Work) -> Record:
        s = self.stage
        rec = dict(w.base)
        rec.update(stage=s, status="skipped" if w.reason else "kept", reason=w.reason)
        rec[f"candidates_{s}"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in w.candidates]
        if "output" in w.merge:
            rec[f"merge_output_{s}"] = w.merge["output"]
            rec[f"rejudge_{s}"] = [w.merge.get("rejudge_correct"), w.merge.get("rejudge_total")]
        if w.reason is None:
            rec[f"thinking_{s}"], rec[f"preference_{s}"] = w.merge["reasoning"], w.merge["summary"]
        return rec


def _kept(w: _Work) -> list[Record]:
    return [c for c in w.candidates if c.get("judge") and c["judge"]["correct"]]
