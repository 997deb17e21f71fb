"""A synthetic preference world for the CPU demo and tests.

Every user has one latent favourite genre. Each behaviour is a (query, chosen, rejected)
triple: the chosen item is of the favourite genre, the rejected one of another genre; with
probability ``noise`` the user "misclicks" and the chosen item is of a random other genre.
Items are short phrases ("A jazz podcast") whose genre words are single Qwen3 tokens, so a
tiny policy trained from scratch can learn to name the genre within minutes, and a sentence
encoder (``backends.embedding``) can judge summaries against them.

The world is written in the project's real formats, so every stage reads it unchanged:

* ``sft.jsonl``: two rows per SFT user (first third, no past; second third, past = the
  first summary), completions ``<think>\\n…\\n</think>\\n\\nThe user prefers {genre}.``, a share
  ``sft_label_noise`` of them naming a wrong genre (an imperfect teacher, see ``sft_rows``);
* ``rl.jsonl``: ``uid``, ``history``, ``mid_position`` (RL users);
* ``benchmarks/synth_rec_upi.jsonl`` (recommendation split) and
  ``benchmarks/synth_sel_upi.jsonl`` (response-selection split) for held-out users, plus the
  registry ``benchmarks/benchmarks.yaml``;
* ``summaries/{teacher,other_user,empty}/full/NAME.jsonl``: reference summary files in the
  generator's output format (the teacher's true preference, another user's, an empty one),
  which the evaluation scores like any summarizer's output — the demo's sanity rows.

    python -m alignxplore.demo.world --out runs/demo/world --sft-users 256 --rl-users 64 --test-users 64
"""
from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from ..formats import write_jsonl
from ..prompts import NO_PAST_SUMMARY_QUOTED, rl_messages, sft_completion, streaming_messages

GENRES = ("jazz", "horror", "comedy", "sports", "science", "cooking", "travel", "history")
NOUNS = ("story", "film", "podcast", "article", "book", "show", "album", "guide")
REC_QUERY = "Please recommend something to me."
SEL_QUERIES = ("What should I try tonight?", "Suggest something new for me.", "Any idea for my weekend?")

# name, registry split rule, task
BENCHMARKS = (("synth_rec", "recommendation", "recommendation"), ("synth_sel", "half", "response_selection"))
REFERENCE_SUMMARIZERS = ("teacher", "other_user", "empty")


@dataclass(frozen=True)
class WorldConfig:
    sft_users: int = 256
    rl_users: int = 64
    test_users: int = 64
    history_len: int = 9
    noise: float = 0.1
    seed: int = 0
    sel_share: float = 0.5  # SFT and RL users in the selection style (the benchmarks are one of each)
    rl_wording: float = 0.0  # SFT rows rendered in the RL wording
    varied_share: float = 0.5  # SFT users whose rows have the later stages' varied shapes (the rest: thirds)
    sft_label_noise: float = 0.3  # SFT rows whose (imperfect) teacher names a wrong genre (docs/demo.md)


def reference_summary(genre: str) -> str:
    """What a perfect teacher writes: the latent preference, stated plainly."""
    return f"The user prefers {genre}."


def reference_reasoning(history: list[dict], genre: str) -> str:
    return f"Most chosen items are {genre}."


def item_text(style: str, genre: str, noun: str) -> str:
    return f"A {genre} {noun}" if style == "rec" else f"Here is a {genre} {noun} for you."


def behaviour(rng: random.Random, genre: str, style: str, noise: float) -> dict:
    others = [g for g in GENRES if g != genre]
    rejected_genre = rng.choice(others)
    chosen_genre = genre if rng.random() >= noise else rng.choice([g for g in others if g != rejected_genre])
    query = REC_QUERY if style == "rec" else rng.choice(SEL_QUERIES)
    return {
        "query": query,
        "chosen": item_text(style, chosen_genre, rng.choice(NOUNS)),
        "rejected": item_text(style, rejected_genre, rng.choice(NOUNS)),
    }


def _user(rng: random.Random, uid: str, style: str, cfg: WorldConfig) -> dict:
    genre = rng.choice(GENRES)
    history = [behaviour(rng, genre, style, cfg.noise) for _ in range(cfg.history_len)]
    target = behaviour(rng, genre, style, 0.0)  # held-out targets follow the true preference
    return {"userid": uid, "genre": genre, "history": history, "target": target}


def _mirrored_test_users(rng: random.Random, prefix: str, style: str, n: int, cfg: WorldConfig) -> list[dict]:
    """Held-out users in mirrored pairs: user 2i likes genre g and is tested on (g item vs
    h item); user 2i+1 likes h and is tested on the same two items with the roles swapped.

    A judge that ignores the summary (an empty one, say) then picks the same item for both
    and scores exactly 50% under argmax: the empty-summary sanity row measures the judge, not
    the luck of which genres its bias happens to favour in a few hundred users.
    """
    users = []
    while len(users) < n:
        g, h = rng.sample(GENRES, 2)
        query = REC_QUERY if style == "rec" else rng.choice(SEL_QUERIES)
        item_g, item_h = item_text(style, g, rng.choice(NOUNS)), item_text(style, h, rng.choice(NOUNS))
        for genre, chosen, rejected in ((g, item_g, item_h), (h, item_h, item_g)):
            if len(users) < n:
                uid = f"{prefix}_{len(users)}"
                history = [behaviour(rng, genre, style, cfg.noise) for _ in range(cfg.history_len)]
                users.append({"userid": uid, "genre": genre, "history": history,
                              "target": {"query": query, "chosen": chosen, "rejected": rejected}})
    return users


def sft_rows(users: list[dict], rng: random.Random, rl_wording: float = 0.0, varied_share: float = 0.5,
             label_noise: float = 0.0) -> list[dict]:
    """Two SFT rows per user, in the SFT stage's input format (docs/formats.md §1).

    A share ``varied_share`` of the users get rows shaped like the prompts the later stages
    render from an L-behaviour history:

    1. no past summary, a prefix of ``n`` behaviours, ``n`` uniform in [L/3, L] (RL stage 1 sees
       L/3..L-2, streaming pass 1 L/3 or L/2, full history L); the empty past slot rendered
       as streaming/RL do (``Not Provided.``) or as full-history evaluation does (quoted), one
       or the other at random;
    2. past summary = the user's preference, the behaviours after a cut ``m`` uniform in
       [L/3, L-2] (RL stage 2 sees 2..2L/3, streaming pass 2 L/3 or L/2).

    The other users get the real synthesis' thirds (first third without past, second third
    after its summary). Why both, measured on the 18-behaviour demo world: with thirds only
    (then recommendation-style users only) SFT learned the genre within 150 steps, but RL's
    stage 1 (6..16 behaviours, temperature 1) failed the format gate on every rollout; with
    varied shapes only, the format held on every RL-style prompt but the loss stayed on its
    genre-at-chance plateau (0.27) through 270 steps. A fraction ``rl_wording`` of the rows is rendered in the RL
    wording (``prompts.rl_messages``), the rest in the evaluation/SFT one (measured: not needed
    for the format, default 0).

    ``label_noise``: the share of rows on which the synthesizing teacher is wrong — its
    reasoning and summary name another genre, drawn uniformly (a teacher LLM's mistakes, which
    the paper's filtering only reduces). SFT imitates the teacher, mistakes included; RL's
    reward is the judge's verdict, which only the true preference earns. The past summary of a
    second row stays the user's true preference.
    """
    rows = []
    for u in users:
        h = u["history"]
        lo = max(1, len(h) // 3)
        summary = reference_summary(u["genre"])
        n, m = rng.randint(lo, len(h)), rng.randint(lo, max(lo, len(h) - 2))
        empty = NO_PAST_SUMMARY_QUOTED if rng.random() < 0.5 else None
        shapes = ((h[:n], empty), (h[m:], summary))
        if rng.random() >= varied_share:  # the real synthesis' thirds: first third, then second third after its summary
            shapes = ((h[:lo], None), (h[lo : 2 * lo], summary))
        for part, past in shapes:
            render = rl_messages if rng.random() < rl_wording else streaming_messages
            said = u["genre"] if rng.random() >= label_noise else rng.choice([g for g in GENRES if g != u["genre"]])
            completion = sft_completion(reference_reasoning(part, said), reference_summary(said))
            rows.append({"prompt": render(part, past), "completion": [{"role": "assistant", "content": completion}]})
    return rows


def rl_rows(users: list[dict], rng: random.Random) -> list[dict]:
    """RL rows: the history plus its target as the last behaviour, ``mid_position`` in [1, L-3]."""
    rows = []
    for u in users:
        history = u["history"] + [u["target"]]
        mid = rng.randint(max(1, len(history) // 3), len(history) - 3)
        rows.append({"uid": u["userid"], "history": history, "mid_position": mid})
    return rows


def summary_rows(users: list[dict], summarizer: str) -> list[dict]:
    """Reference summary files in the generator's output format (full-history mode)."""
    rows = []
    for i, u in enumerate(users):
        if summarizer == "teacher":
            profile = reference_summary(u["genre"])
        elif summarizer == "other_user":
            # a user of another mirrored pair with a different genre: a fluent summary of the
            # wrong person (not the pair partner, whose genre is exactly the rejected item's)
            start = i - i % 2 + 2
            other = next(v for v in users[start:] + users[:start] if v["genre"] != u["genre"])
            profile = reference_summary(other["genre"])
        elif summarizer == "empty":
            profile = ""
        else:
            raise ValueError(f"unknown reference summarizer {summarizer!r}; expected one of {REFERENCE_SUMMARIZERS}")
        rows.append({**u, "raw_prompt": "", "first_response": profile, "profile": profile})
    return rows


def registry_yaml() -> str:
    lines = ["# The synthetic world's benchmarks (alignxplore/demo/world.py).", "benchmarks:"]
    for name, split, task in BENCHMARKS:
        lines.append(f"  - {{name: {name}, file: {name}_upi.jsonl, task: {task}, split: {split}, column: {name}, auc: {str(split == 'recommendation').lower()}}}")
    return "\n".join(lines) + "\n"


def write_world(out: str | Path, cfg: WorldConfig = WorldConfig()) -> dict:
    """Write every file of the world under ``out``; returns a summary (also ``world.json``)."""
    out = Path(out)
    rng = random.Random(cfg.seed)
    def style(i: int, n: int) -> str:  # the first sel_share of each group in the selection style
        return "sel" if i < round(cfg.sel_share * n) else "rec"

    sft_users = [_user(rng, f"sft_{i}", style(i, cfg.sft_users), cfg) for i in range(cfg.sft_users)]
    rl_users = [_user(rng, f"rl_{i}", style(i, cfg.rl_users), cfg) for i in range(cfg.rl_users)]
    # the SFT rows' cuts and the held-out users draw from their own streams: changing how SFT rows
    # are cut, or how many training users there are, leaves the benchmarks unchanged
    write_jsonl(out / "sft.jsonl", sft_rows(sft_users, random.Random(f"sft-rows-{cfg.seed}"), cfg.rl_wording, cfg.varied_share,
                                            cfg.sft_label_noise))
    write_jsonl(out / "rl.jsonl", rl_rows(rl_users, rng))
    rng = random.Random(f"benchmarks-{cfg.seed}")
    tests = {}
    for name, _, _ in BENCHMARKS:
        style = "rec" if name == "synth_rec" else "sel"
        users = _mirrored_test_users(rng, name, style, cfg.test_users, cfg)
        tests[name] = users
        write_jsonl(out / "benchmarks" / f"{name}_upi.jsonl", users)
        for summarizer in REFERENCE_SUMMARIZERS:
            write_jsonl(out / "summaries" / summarizer / "full" / f"{name}.jsonl", summary_rows(users, summarizer))
    (out / "benchmarks" / "benchmarks.yaml").write_text(registry_yaml())
    info = {"config": asdict(cfg), "genres": list(GENRES), "files": sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())}
    (out / "world.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    for f in ("sft_users", "rl_users", "test_users", "history_len", "seed"):
        p.add_argument("--" + f.replace("_", "-"), type=int, default=getattr(WorldConfig, f))
    p.add_argument("--noise", type=float, default=WorldConfig.noise, help="probability that a behaviour's chosen item is off-preference")
    p.add_argument("--sel-share", type=float, default=WorldConfig.sel_share, help="share of SFT and RL users in the selection style")
    p.add_argument("--rl-wording", type=float, default=WorldConfig.rl_wording, help="share of SFT rows rendered in the RL wording")
    p.add_argument("--varied-share", type=float, default=WorldConfig.varied_share, help="share of SFT users with the varied row shapes (the rest: thirds)")
    p.add_argument("--sft-label-noise", type=float, default=WorldConfig.sft_label_noise,
                   help="share of SFT rows on which the teacher names a wrong genre")
    a = p.parse_args(argv)
    cfg = WorldConfig(a.sft_users, a.rl_users, a.test_users, a.history_len, a.noise, a.seed, a.sel_share, a.rl_wording,
                      a.varied_share, a.sft_label_noise)
    info = write_world(a.out, cfg)
    print(f"wrote {len(info['files'])} files to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
