"""The Qwen3 tokenizer restricted to the tokens a synthetic world uses.

The demo's tiny policy spent ~98% of its parameters and of every step's time on the 151,669-
token output layer, while the synthetic world (``alignxplore.demo.world``) and the chat
template use a few hundred distinct tokens. ``restrict_tokenizer(full, texts)`` keeps:

* the 256 byte-level base tokens (any text still encodes, byte by byte at worst);
* every added/special token (chat template, ``<think>``, ...);
* every token the FULL tokenizer produces on ``texts``, and every token that BPE built on the
  way to it (its merge ancestors, traced by replaying BPE on the token's bytes);
* every merge whose two parts and result are kept, in the original rank order;

then renumbers the ids compactly (regular tokens in their original order, then the added ones).

Why the restricted tokenizer splits every text of ``texts`` into exactly the same token strings:
BPE only merges, inside one pre-token, always the lowest-ranked applicable merge. Every merge
the full tokenizer applies on such a text builds an ancestor of one of its final tokens, so it
is kept; the kept merges are a subset of the full ones in the same relative order, so at each
step the lowest-ranked applicable kept merge is the full tokenizer's choice. The normaliser,
pre-tokeniser, decoder and chat template are unchanged. ``tests/test_world_tokenizer.py``
checks the equality on every file of a world.

    python -m alignxplore.demo.world_tokenizer --world runs/demo/world --out DIR
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from ..formats import iter_jsonl


# Row fields that record where a row came from (the cross-task join writes the source files'
# paths) and are never rendered into a prompt: tokenising them made the vocabulary, and so the
# policy's random init, depend on the folder the demo runs in.
PROVENANCE_KEYS = frozenset({"cross_task"})


def world_texts(world: str | Path, tokenizer) -> Iterator[str]:
    """Every text a stage derives from a world folder: each string of each row of each JSONL
    file, each chat-templated prompt the stages render from it (full-history, streaming and RL
    wordings; thinking on and off), each SFT row templated as ``sft.prepare`` renders it, and
    the world's item inventory (every genre x noun x style), so that the tokenizer does not
    depend on which items the random users happened to draw."""
    from .. import prompts
    from . import world as synthetic

    def templated(messages):
        for thinking in (True, False):
            yield tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=thinking)
            yield tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, enable_thinking=thinking)

    def strings(obj):
        if isinstance(obj, str):
            yield obj
        elif isinstance(obj, dict):
            for k, v in obj.items():
                if k not in PROVENANCE_KEYS:
                    yield from strings(v)
        elif isinstance(obj, list):
            for v in obj:
                yield from strings(v)

    inventory = [synthetic.reference_summary(g) for g in synthetic.GENRES]
    inventory += [synthetic.reference_reasoning([], g) for g in synthetic.GENRES]
    inventory += [synthetic.item_text(s, g, n) for s in ("rec", "sel") for g in synthetic.GENRES for n in synthetic.NOUNS]
    inventory += [synthetic.REC_QUERY, *synthetic.SEL_QUERIES, prompts.NO_PAST_SUMMARY, prompts.NO_PAST_SUMMARY_QUOTED]
    yield from inventory
    for g in synthetic.GENRES:  # the SFT answer as the assistant turn (what the policy must generate)
        answer = prompts.sft_completion(synthetic.reference_reasoning([], g), synthetic.reference_summary(g))
        yield from templated([{"role": "user", "content": ""}, {"role": "assistant", "content": answer}])
    for path in sorted(Path(world).rglob("*.jsonl")):
        for row in iter_jsonl(path):
            yield from strings(row)
            if "prompt" in row and "completion" in row:  # an SFT row
                yield from templated(row["prompt"])
                yield from templated(row["prompt"] + row["completion"])
            history = row.get("history")
            if isinstance(history, list) and history:
                past_options = (None, "", synthetic.reference_summary(row.get("genre", synthetic.GENRES[0])))
                for past in past_options:
                    yield from templated(prompts.streaming_messages(history, past))
                    yield from templated(prompts.rl_messages(history, past))
                yield from templated(prompts.full_history_messages(history))


def _bpe_trace(word: list[str], ranks: dict[tuple[str, str], int]) -> tuple[list[str], set[str]]:
    """Replay BPE on one pre-token (a list of byte-level symbols): the final pieces and every
    token built on the way."""
    built = set()
    while len(word) > 1:
        best = min(range(len(word) - 1), key=lambda i: ranks.get((word[i], word[i + 1]), float("inf")))
        if (word[best], word[best + 1]) not in ranks:
            break
        merged = word[best] + word[best + 1]
        built.add(merged)
        word = word[:best] + [merged] + word[best + 2:]
    return word, built


def restricted_tokenizer_json(full_json: dict, used_tokens: Iterable[str]) -> tuple[dict, dict[int, int]]:
    """The tokenizer.json of the restricted tokenizer and the map old id -> new id."""
    model = full_json["model"]
    vocab: dict[str, int] = model["vocab"]
    ranks = _ranks(full_json)
    merges = sorted(ranks, key=ranks.__getitem__)
    from tokenizers.pre_tokenizers import ByteLevel

    base = set(ByteLevel.alphabet())
    kept = set(base)
    for token in set(used_tokens):
        if token not in vocab:
            continue  # an added/special token: kept below
        pieces, built = _bpe_trace(list(token), ranks)
        if pieces != [token]:
            raise ValueError(f"BPE replay of {token!r} gives {pieces}: the merges are not the tokenizer's")
        kept |= built | {token}
    kept_merges = [m for m in merges if m[0] in kept and m[1] in kept and m[0] + m[1] in kept]
    new_vocab = {tok: i for i, tok in enumerate(sorted(kept, key=vocab.__getitem__))}
    id_map = {vocab[tok]: i for tok, i in new_vocab.items()}
    out = copy.deepcopy(full_json)
    for added in out["added_tokens"]:
        new_id = len(new_vocab) + len([a for a in id_map if a >= len(vocab)])
        id_map[added["id"]] = new_id
        added["id"] = new_id
    out["model"]["vocab"] = new_vocab
    out["model"]["merges"] = [list(m) for m in kept_merges]
    return out, id_map


def used_tokens(full, texts: Iterable[str]) -> set[str]:
    """The regular tokens ``full`` produces on ``texts``, computed per distinct pre-token (BPE
    never crosses a pre-token, so the set of distinct pre-tokens decides it; the world's texts
    have a few hundred, which keeps this fast for thousands of long prompts)."""
    backend = full.backend_tokenizer
    ranks = _ranks(json.loads(backend.to_str()))
    specials = sorted(full.get_added_vocab(), key=len, reverse=True)
    splitter = re.compile("|".join(map(re.escape, specials)))
    segments = {seg for text in texts for seg in splitter.split(text) if seg}
    pieces = {piece for seg in segments for piece, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(seg))}
    return {tok for piece in pieces for tok in _bpe_trace(list(piece), ranks)[0]}


def _ranks(tokenizer_json: dict) -> dict[tuple[str, str], int]:
    merges = tokenizer_json["model"]["merges"]
    return {(tuple(m) if isinstance(m, list) else tuple(m.split(" ", 1))): i for i, m in enumerate(merges)}


def restrict_tokenizer(full, texts: Iterable[str]):
    """A ``PreTrainedTokenizerFast`` that tokenizes ``texts`` exactly as ``full`` does, with
    only the tokens they need (see the module docstring)."""
    from transformers import AutoTokenizer

    used = used_tokens(full, texts)
    with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as dst:
        full.save_pretrained(src)
        tok_json, id_map = restricted_tokenizer_json(json.loads((Path(src) / "tokenizer.json").read_text()), used)
        config = json.loads((Path(src) / "tokenizer_config.json").read_text())
        if "added_tokens_decoder" in config:
            config["added_tokens_decoder"] = {str(id_map[int(k)]): v for k, v in config["added_tokens_decoder"].items()}
        (Path(dst) / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False))
        (Path(dst) / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False))
        for extra in ("chat_template.jinja", "special_tokens_map.json"):
            if (Path(src) / extra).is_file():
                (Path(dst) / extra).write_text((Path(src) / extra).read_text())
        return AutoTokenizer.from_pretrained(dst)


def world_tokenizer(world: str | Path):
    """The Qwen3 tokenizer restricted to ``world``'s texts."""
    from .tiny import load_qwen3_tokenizer

    full = load_qwen3_tokenizer()
    return restrict_tokenizer(full, world_texts(world, full))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--world", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    tok = world_tokenizer(a.world)
    tok.save_pretrained(a.out)
    print(f"{len(tok)} tokens -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
