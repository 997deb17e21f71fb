"""The behaviour scorer's input: user rows -> one text per user, with the letter positions.

Shared by scorer training (``scorer_prepare``) and scoring (``scoring``), so both see exactly
the same text (docs/formats.md §7): ``SCORER_HEADER`` then, per behaviour,
``<prompt>{query}</prompt><option_A>{a}</option_A><option_B>{b}</option_B><preference> {A|B} </preference>|SEP|``.

Decisions (docs/data.md "Decisions: scorer, scoring, pruning, converters"):
* A/B order is drawn from ``random.Random(f"{seed}:{uid}")``, one draw per behaviour, so a
  user's text is the same whatever the batch, GPU, resume point or process order (the
  authors shuffled with the unseeded global ``random``);
* a missing or ``None`` query renders as ``None`` (as the authors' f-string did);
* letter positions come from the tokenizer's character offsets, and each must be exactly
  one ``' A'`` / ``' B'`` token; anything else is a one-line error naming the user;
* the sequence is cut at ``max_length`` tokens (right side, as the authors' tokenizer call);
  behaviours whose letter falls beyond it are not used (counted).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from ...formats import DataError, validate_user_row
from ...prompts import JUDGE_LETTER_TOKENS, SCORER_HEADER, SCORER_SEGMENT_HEAD, SCORER_SEGMENT_TAIL

LAST_BEHAVIOURS = 100  # the authors scored and trained on each user's last 100 behaviours
SCORING_MAX_LENGTH = 16384
TRAINING_MAX_LENGTH = 8192
SEED = 42


def read_user_row(obj, where: str) -> dict:
    """The scorer's input row: :func:`alignxplore.formats.validate_user_row` with a ``null``
    query kept as None (rendered as ``None``, as the authors' f-string did); an empty
    behaviour list is valid here and skipped, counted, by the consumers."""
    return validate_user_row(obj, where, null_query=None)


def letters_for(uid, n: int, seed: int = SEED) -> list[str]:
    rng = random.Random(f"{seed}:{uid}")
    return ["A" if rng.random() < 0.5 else "B" for _ in range(n)]


def render(behaviors: list[dict], letters: list[str]) -> tuple[str, list[int]]:
    """The user's text and, per behaviour, the character offset of its letter."""
    parts, pos, length = [SCORER_HEADER], [], len(SCORER_HEADER)
    for b, letter in zip(behaviors, letters, strict=True):
        a, o = (b["chosen"], b["rejected"]) if letter == "A" else (b["rejected"], b["chosen"])
        head = SCORER_SEGMENT_HEAD.format(query=b.get("query"), a=a, b=o)
        pos.append(length + len(head))
        seg = head + letter + SCORER_SEGMENT_TAIL
        parts.append(seg)
        length += len(seg)
    return "".join(parts), pos


@dataclass
class EncodedUser:
    uid: str
    behaviors: list[dict]  # the (last-N) behaviours rendered
    letters: list[str]
    input_ids: list[int]  # cut at max_length
    letter_tokens: list[int] = field(default_factory=list)  # token index of each usable letter
    behaviour_index: list[int] = field(default_factory=list)  # which behaviour each letter is
    cut_off: int = 0  # behaviours whose letter lies beyond max_length


def letter_token_ids(tokenizer) -> dict[str, int]:
    out = {}
    for letter, text in JUDGE_LETTER_TOKENS.items():
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise DataError("tokenizer", "letters", f"{text!r} is {len(ids)} tokens; the scorer needs one token per letter")
        out[letter] = ids[0]
    return out


def encode_user(row: dict, tokenizer, *, max_length: int, last: int = LAST_BEHAVIOURS, seed: int = SEED, where: str = "<row>") -> EncodedUser:
    uid = str(row["uid"])
    behaviors = row["behaviors"][-last:] if last else list(row["behaviors"])
    letters = letters_for(uid, len(behaviors), seed)
    text, char_pos = render(behaviors, letters)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    letter_ids = letter_token_ids(tokenizer)
    user = EncodedUser(uid, behaviors, letters, ids[:max_length])
    for k, (c, letter) in enumerate(zip(char_pos, letters)):
        t = enc.char_to_token(c)
        if t is None or ids[t] != letter_ids[letter] or tuple(offsets[t]) != (c - 1, c + 1):
            raise DataError(where, f"behaviors[{k}]", "its preference letter does not tokenise as one ' A'/' B' token (check the option text)")
        if t < max_length:
            user.letter_tokens.append(t)
            user.behaviour_index.append(k)
        else:
            user.cut_off += 1
    return user
