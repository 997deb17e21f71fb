"""Response-selection and chat-history sources: AlignX, PersonaMem, HiCUPID (local files only).

AlignX (the authors' ``alignx_dataset_transformer`` and ``unify_selection_task``): a row's
``Pair-wise Comparative Feedback`` (``prompt/chosen/rejected``) is its history. User rows:
rows with at least ``min_history`` (8) items, ``uid`` = running index of the kept rows. The
benchmark: every row with a history, target = the row's own ``prompt/chosen/rejected``,
``ground_truth_persona = profile_full``, ``userid = alignx_{row index}``, no sampling.

PersonaMem (``process_personamem``): history = the row's ``related_conversation_snippet`` (chat
messages; a JSON string of them is accepted), target = ``{user_query, correct_answer, one
random incorrect_answer}`` (``random.Random(seed)``; the authors' draw was unseeded),
``userid`` = row index.

HiCUPID (``process_hicupid``, docs/formats.md §1): QA rows of type ``persona`` (split ``test_2``),
each joined with the dialogues it names (split ``test``: one row per turn with ``user`` /
``assistant`` text, ordered by ``turn_id``, or one row per dialogue with a ``dialogue`` list
of chat messages); history = the chat messages of those dialogues in order; target =
``{question, personalized_answer, general_answer}``; plus ``golden = "The user {relation}
{entity}."``, ``qa_index``, ``dialogue_id``, ``type``. Our decision: ``userid =
hicupid_{qa_index}`` (the authors' rows had none; the evaluation needs one).

``history_format="triples"`` writes PersonaMem/HiCUPID histories already rendered as triples
(``formats.chat_to_triples``) for a loader that only reads triples; the default keeps the
authors' chat messages.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from ...formats import DataError, chat_to_triples, validate_triple
from . import common
from .common import SEED, Skips, records, require

HISTORY_FORMATS = ("messages", "triples")
FEEDBACK = "Pair-wise Comparative Feedback"


def _history_triples(items, where: str) -> list[dict]:
    if not isinstance(items, list):
        raise DataError(where, FEEDBACK, f"expected a list, got {type(items).__name__}")
    out = []
    for i, h in enumerate(items):
        if not isinstance(h, dict):
            raise DataError(where, f"{FEEDBACK}[{i}]", "expected an object")
        require(h, ("prompt", "chosen", "rejected"), f"{where}: {FEEDBACK}[{i}]")
        out.append(validate_triple({"query": h["prompt"], "chosen": h["chosen"], "rejected": h["rejected"]}, where, f"{FEEDBACK}[{i}]."))
    return out


def alignx_users(path: Path, *, min_history: int = 8) -> tuple[list[dict], Skips]:
    skips, users = Skips(), []
    for where, row in records(path):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, (FEEDBACK,), where)
            history = _history_triples(row[FEEDBACK], where)
            if len(history) < min_history:
                skips.add(f"row with fewer than {min_history} feedback items")
                continue
            users.append({"uid": len(users), "behaviors": history})
    return users, skips


def alignx_benchmark(path: Path, name: str = "alignx") -> tuple[list[dict], Skips]:
    skips, rows = Skips(), []
    for idx, (where, row) in enumerate(records(path)):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, (FEEDBACK, "prompt", "chosen", "rejected"), where)
            history = _history_triples(row[FEEDBACK], where)
            if not history:
                skips.add("row without feedback items")
                continue
            out = {"userid": f"{name}_{idx}", "history": history,
                   "target": validate_triple({"query": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}, where, "")}
            if row.get("profile_full") is not None:
                out["ground_truth_persona"] = row["profile_full"]
            else:
                skips.add("row without profile_full (no ground_truth_persona)")
            rows.append(out)
    return rows, skips


def _content(value, where: str, field: str) -> str:
    if isinstance(value, dict):
        value = value.get("content")
    if not isinstance(value, str) or not value.strip():
        raise DataError(where, field, "missing, empty or not text")
    return value


def _messages(value, where: str, field: str, history_format: str):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(where, field, "a string that is not a JSON list of chat messages") from None
    triples = chat_to_triples(value, where, field)  # validates roles and contents
    return value if history_format == "messages" else triples


def personamem_benchmark(path: Path, *, seed: int = SEED, history_format: str = "messages") -> tuple[list[dict], Skips]:
    rng, skips, rows = random.Random(seed), Skips(), []
    for idx, (where, row) in enumerate(records(path)):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, ("user_query", "correct_answer", "incorrect_answers", "related_conversation_snippet"), where)
            history = _messages(row["related_conversation_snippet"], where, "related_conversation_snippet", history_format)
            wrong = row["incorrect_answers"]
            if isinstance(wrong, str):
                wrong = [wrong]
            if not isinstance(wrong, list):
                raise DataError(where, "incorrect_answers", f"expected a list of answers, got {type(wrong).__name__}")
            if not history or not wrong:
                skips.add("row without a conversation snippet" if not history else "row without an incorrect answer")
                continue
            target = {"query": _content(row["user_query"], where, "user_query"), "chosen": _content(row["correct_answer"], where, "correct_answer"),
                      "rejected": _content(rng.choice(list(wrong)), where, "incorrect_answers")}
            rows.append({"userid": str(idx), "history": history, "target": target})
    return rows, skips


def _dialogues(path: Path) -> dict:
    turns: dict = {}
    for where, row in records(path):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, ("dialogue_id",), where)
            did = row["dialogue_id"]
            if "dialogue" in row:
                turns.setdefault(did, []).append((0, _messages(row["dialogue"], where, "dialogue", "messages")))
                continue
            require(row, ("user", "assistant"), where)
            msgs = [{"role": "user", "content": row["user"] or ""}, {"role": "assistant", "content": row["assistant"] or ""}]
            turns.setdefault(did, []).append((row.get("turn_id", 0), msgs))
    return {did: [m for _, msgs in sorted(ts, key=lambda t: t[0]) for m in msgs] for did, ts in turns.items()}


def hicupid_benchmark(qa: Path, dialogues: Path, *, history_format: str = "messages") -> tuple[list[dict], Skips]:
    skips, rows = Skips(), []
    dlg = _dialogues(dialogues)
    persona_rows = []
    for where, row in records(qa):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, ("type", "dialogue_id", "question", "personalized_answer", "general_answer", "metadata"), where)
            if row["type"] == "persona":
                persona_rows.append((where, row))
            else:
                skips.add("qa row not of type persona")
    for qa_index, (where, row) in enumerate(persona_rows):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            dids = row["dialogue_id"] if isinstance(row["dialogue_id"], list) else [row["dialogue_id"]]
            if not all(isinstance(d, (str, int)) for d in dids):
                raise DataError(where, "dialogue_id", "expected an id or a list of ids")
            history = []
            for did in dids:
                if did not in dlg:
                    skips.add("dialogue id missing from the dialogue file")
                    continue
                history += dlg[did]
            if not chat_to_triples(history, where, "dialogues"):
                skips.add("qa row without any dialogue turn")
                continue
            meta = row["metadata"]
            if isinstance(meta, str):
                try:
                    meta = json.loads(meta)
                except json.JSONDecodeError:
                    raise DataError(where, "metadata", "a string that is not JSON") from None
            persona = (meta or {}).get("persona") if isinstance(meta, dict) else None
            if not isinstance(persona, dict) or "relation" not in persona or "entity" not in persona:
                raise DataError(where, "metadata.persona", "missing relation/entity")
            rows.append({
                "userid": f"hicupid_{qa_index}",
                "history": history if history_format == "messages" else chat_to_triples(history, where, "dialogues"),
                "target": {"query": _content(row["question"], where, "question"), "chosen": _content(row["personalized_answer"], where, "personalized_answer"),
                           "rejected": _content(row["general_answer"], where, "general_answer")},
                "golden": f"The user {persona['relation']} {persona['entity']}.",
                "qa_index": qa_index, "dialogue_id": dids, "type": row["type"],
            })
    return rows, skips
