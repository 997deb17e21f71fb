"""The record schemas: benchmark row, summaries row, user row (plain and scored), SFT row,
RL row (docs/formats.md §1). One validator per shape.

Records stay plain dicts (they round-trip to JSONL unchanged, extra keys included); each
``validate_*`` function checks the fields this project reads and raises :class:`DataError`
naming file, line and field, so bad input never surfaces as a traceback from deep inside.
"""
from __future__ import annotations

import json
from typing import Any

from .errors import DataError, Record, require_object, require_str, validate_finite, validate_logprob


def validate_triple(obj: Any, where: str, prefix: str = "", *, allow_empty_items: bool = False) -> Record:
    """A behaviour ``{query, chosen, rejected}``. ``query`` may be empty (recommendation data
    converters fill it); ``chosen`` and ``rejected`` must be strings, non-empty unless
    ``allow_empty_items`` (benchmark rows: see :func:`validate_benchmark_row`)."""
    if not isinstance(obj, dict):
        raise DataError(where, prefix.rstrip(".") or None, f"expected an object, got {type(obj).__name__}")
    query = obj.get("query")
    if query is None:
        query = ""
    elif not isinstance(query, str):
        raise DataError(where, f"{prefix}query", f"expected a string, got {type(query).__name__}")
    out = dict(obj)
    out["query"] = query
    out["chosen"] = require_str(obj, "chosen", where, prefix, allow_empty=allow_empty_items)
    out["rejected"] = require_str(obj, "rejected", where, prefix, allow_empty=allow_empty_items)
    return out


# Generation-style sources have no rejected item; the authors' converters filled the slot
# with this text (docs/formats.md §7).
NO_NEGATIVE_SAMPLE = "No negative sample."


def chat_to_triples(messages: Any, where: str, field: str = "history") -> list[Record]:
    """Render a chat-message history (HiCUPID, PersonaMem) as behaviour triples.

    Our rule (the authors did not release theirs): each user turn and the assistant reply that
    follows it become one triple ``{query: user text, chosen: assistant text, rejected:
    "No negative sample."}``. Consecutive messages of the same role are joined with a newline;
    system messages are ignored; a reply with no user turn before it gets an empty query; a
    final user turn with no reply is dropped (the user chose nothing yet).
    """
    if not isinstance(messages, list):
        raise DataError(where, field, f"expected a list of chat messages, got {type(messages).__name__}")
    triples: list[Record] = []
    query: list[str] = []
    reply: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise DataError(where, f"{field}[{i}]", f"expected a chat message object, got {type(msg).__name__}")
        role = msg.get("role")
        content = require_str(msg, "content", where, f"{field}[{i}].", allow_empty=True)
        if role == "system":
            continue
        if role not in ("user", "assistant"):
            raise DataError(where, f"{field}[{i}].role", f"expected 'user', 'assistant' or 'system', got {role!r}")
        if role == "user" and reply:
            triples.append({"query": "\n".join(query), "chosen": "\n".join(reply), "rejected": NO_NEGATIVE_SAMPLE})
            query, reply = [], []
        (query if role == "user" else reply).append(content)
    if reply:
        triples.append({"query": "\n".join(query), "chosen": "\n".join(reply), "rejected": NO_NEGATIVE_SAMPLE})
    return triples


def _validate_history(obj: dict, where: str, *, min_len: int = 1, allow_empty_items: bool = False) -> list[Record]:
    history = obj.get("history")
    if history is None:
        raise DataError(where, "history", "missing")
    if not isinstance(history, list):
        raise DataError(where, "history", f"expected a list, got {type(history).__name__}")
    if len(history) < min_len:
        raise DataError(where, "history", f"needs at least {min_len} behaviour(s), got {len(history)}")
    return [validate_triple(t, where, f"history[{i}].", allow_empty_items=allow_empty_items) for i, t in enumerate(history)]


def is_chat_history(history: Any) -> bool:
    """A HiCUPID-shaped history: a non-empty list of ``{role, content}`` chat messages."""
    return isinstance(history, list) and bool(history) and all(isinstance(m, dict) and "role" in m for m in history)


# A benchmark row without ``userid`` gets this prefix + a content hash (derived_userid).
DERIVED_USERID_PREFIX = "anon-"


def derived_userid(obj: dict) -> str:
    """A stable id for a benchmark record without ``userid`` (the authors' HiCUPID converter
    wrote none): ``anon-`` + the first 16 hex digits of the SHA-256 of the record's ``history``
    and ``target`` as canonical JSON (sorted keys). It depends on the content only, not on the
    file name or line, so the same user keeps the same id in the benchmark file, its summaries,
    a ``--limit`` subset or a noisy/no-negatives copy; two identical records are told apart by
    :func:`alignxplore.eval.registry.load_benchmark_rows` (``#2``, ``#3`` in file order)."""
    import hashlib

    payload = json.dumps({"history": obj.get("history"), "target": obj.get("target")}, sort_keys=True, ensure_ascii=False)
    return DERIVED_USERID_PREFIX + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def validate_benchmark_row(obj: Any, where: str) -> Record:
    """Benchmark row: ``userid``, ``history``, ``target: triple``.

    A missing ``userid`` is derived from the content (:func:`derived_userid`; the row gets
    ``userid_derived: true``). Empty ``chosen`` / ``rejected`` strings (the authors' MIND
    converter could write them) are kept and rendered as is, as the authors' prompt code
    would; only a missing or non-string item is refused.

    ``history`` is a list of triples, or (HiCUPID, docs/formats.md §1) a list of chat messages,
    which is rendered into triples by :func:`chat_to_triples` (the original messages are kept
    under ``history_messages``). An empty history is valid: the authors kept such users (full
    mode renders zero triples; streaming and the recommendation evaluator skip them)."""
    obj = require_object(obj, where)
    out = dict(obj)
    if obj.get("userid") is None:
        out["userid"], out["userid_derived"] = derived_userid(obj), True
    else:
        out["userid"] = str(obj["userid"])
    if is_chat_history(obj.get("history")):
        out["history_messages"] = obj["history"]
        out["history"] = chat_to_triples(obj["history"], where)
    else:
        out["history"] = _validate_history(obj, where, min_len=0, allow_empty_items=True)
    if "target" not in obj:
        raise DataError(where, "target", "missing")
    out["target"] = validate_triple(obj["target"], where, "target.", allow_empty_items=True)
    return out


def validate_summary_row(obj: Any, where: str) -> Record:
    """Summaries row (``alignxplore.eval.generate``'s output, the evaluation's input): a
    benchmark row (its ``history`` = the behaviours the generator showed) plus ``raw_prompt``,
    ``first_response`` (the raw answer) and ``profile`` (the summary the judge sees), strings."""
    out = validate_benchmark_row(obj, where)
    for key in ("first_response", "profile"):
        if not isinstance(obj.get(key), str):
            raise DataError(where, key, "missing or not a string")
    return out


def _validate_messages(msgs: Any, where: str, field: str, roles: tuple[str, ...]) -> list[Record]:
    if not isinstance(msgs, list) or len(msgs) != len(roles):
        raise DataError(where, field, f"expected {len(roles)} chat message(s) with roles {list(roles)}")
    for i, (m, role) in enumerate(zip(msgs, roles)):
        if not isinstance(m, dict) or m.get("role") != role:
            raise DataError(where, f"{field}[{i}].role", f"expected {role!r}")
        require_str(m, "content", where, f"{field}[{i}].")
    return msgs


def validate_sft_row(obj: Any, where: str) -> Record:
    """SFT row: ``prompt: [system, user]`` and ``completion: [assistant]`` chat messages, each
    ``{role, content}`` with non-empty string content."""
    obj = require_object(obj, where)
    if "prompt" not in obj:
        raise DataError(where, "prompt", "missing")
    if "completion" not in obj:
        raise DataError(where, "completion", "missing")
    _validate_messages(obj["prompt"], where, "prompt", ("system", "user"))
    _validate_messages(obj["completion"], where, "completion", ("assistant",))
    return obj


def validate_rl_row(obj: Any, where: str) -> Record:
    """RL row: ``uid``, ``history`` (at least 4 triples) and ``mid_position`` in ``[1, L-3]``
    (docs/formats.md §3), so that stage 1 sees at least one behaviour and stage 2 at least two
    before its target. The pruning adds bookkeeping keys (kept, unread)."""
    obj = require_object(obj, where)
    if "uid" not in obj:
        raise DataError(where, "uid", "missing")
    history = _validate_history(obj, where, min_len=4)
    mid = obj.get("mid_position")
    if not isinstance(mid, int) or isinstance(mid, bool):
        raise DataError(where, "mid_position", "missing or not an integer")
    if not 1 <= mid <= len(history) - 3:
        raise DataError(where, "mid_position", f"{mid} outside [1, {len(history) - 3}] for a history of {len(history)}")
    out = dict(obj)
    out["history"] = history
    return out


# -- the user row: the converters' output, the scorer's input and output, the SFT synthesis and
# `alignxplore infer` input. One schema; what a consumer needs beyond it is a parameter.

# Added to a behaviour by the scorer (alignxplore.data.scorer.scoring); never part of a triple.
SCORE_FIELDS = ("answer", "logprob1", "logprob2", "signal")
USER_ID_KEYS = ("uid", "userid")  # the first present is the id; ``userid``: the authors' files, `infer` rows
BEHAVIOUR_KEYS = ("behaviors", "history", "messages")  # exactly one; ``messages`` only with allow_chat


def _behaviour(obj: Any, where: str, prefix: str, null_query: str | None) -> Record:
    """One behaviour: a triple, or the authors' scored wrapper ``{"item": triple, "logprob1": ...}``
    (unwrapped; the outer score fields win). Score fields are checked, a ``null`` one dropped."""
    if isinstance(obj, dict) and isinstance(obj.get("item"), dict):
        source = obj["item"]
        out = validate_triple(source, where, f"{prefix}item.")
        out.pop("item", None)
        out.update({k: obj[k] for k in SCORE_FIELDS if k in obj})
    else:
        source = obj
        out = validate_triple(obj, where, prefix)
    if source.get("query") is None:
        out["query"] = null_query
    for key in SCORE_FIELDS:
        if out.get(key) is None:
            out.pop(key, None)
    for key in ("logprob1", "logprob2"):  # log-probabilities: finite and <= 0
        if key in out:
            out[key] = validate_logprob(out[key], where, f"{prefix}{key}")
    if "signal" in out:  # logprob1 - logprob2: any finite number
        out["signal"] = validate_finite(out["signal"], where, f"{prefix}signal")
    if "answer" in out and out["answer"] not in ("A", "B"):
        raise DataError(where, f"{prefix}answer", f"expected 'A' or 'B', got {out['answer']!r}")
    return out


def validate_behaviours(behaviours: Any, where: str, field: str = "behaviors", *, allow_chat: bool = False,
                        min_behaviours: int = 0, null_query: str | None = "") -> list[Record]:
    """A user's behaviours (time order) as validated behaviour dicts (see :func:`validate_user_row`)."""
    if not isinstance(behaviours, list):
        what = "triples or chat messages" if allow_chat else "triples"
        raise DataError(where, field, f"expected a list of {what}, got {type(behaviours).__name__}")
    if allow_chat and is_chat_history(behaviours):
        out = chat_to_triples(behaviours, where, field)
        if len(out) < min_behaviours:
            raise DataError(where, field, "the chat history has no assistant reply, so no behaviour to learn from")
        return out
    if len(behaviours) < min_behaviours:
        raise DataError(where, field, "empty: at least one behaviour is needed" if not behaviours
                        else f"needs at least {min_behaviours} behaviour(s), got {len(behaviours)}")
    return [_behaviour(b, where, f"{field}[{i}].", null_query) for i, b in enumerate(behaviours)]


def validate_user_row(obj: Any, where: str, *, require_id: bool = True, allow_chat: bool = False, min_behaviours: int = 0,
                      null_query: str | None = "") -> Record:
    """User row (docs/formats.md §1), in time order::

        {"uid": "mind_U1", "behaviors": [{"query", "chosen", "rejected"}, ...], "past": "..."}

    * ``uid``: a string or an integer (stored as a string); ``userid`` is read when ``uid`` is
      absent (the authors' files, ``alignxplore infer`` rows). Required unless ``require_id``
      is false (a service request); then ``uid`` is None when absent.
    * ``behaviors``: a list of triples; ``history`` is read instead (exactly one of the keys).
      ``chosen`` / ``rejected`` are non-empty strings; a ``null`` or missing ``query`` becomes
      ``null_query`` (``""``, the project's rendering rule; the scorer passes ``None`` and
      renders it as ``None``, as the authors' f-string did). A behaviour may be the authors'
      wrapper ``{"item": triple, "logprob1": ...}``.
    * The scored user row (the scorer's output: the SFT synthesis and pruning input) is the same
      row whose scored behaviours carry ``answer`` (``A``/``B``), ``logprob1`` and, with a weak
      model, ``logprob2`` (log-probabilities: finite, <= 0) and ``signal`` (finite); the row
      may carry ``cut_off``. Score fields are checked wherever they appear; ``null`` = absent.
    * ``past``: optional string, an earlier summary (``alignxplore infer``).
    * ``allow_chat``: a list of chat messages (also under ``messages``) is read as triples
      (:func:`chat_to_triples`); ``min_behaviours``: fewer is an error (``infer``: 1; the scorer
      and the synthesis count and skip empty users themselves).

    Returns a copy with ``uid`` and ``behaviors`` under those names (the alias keys removed);
    other keys are kept.
    """
    obj = require_object(obj, where)
    id_key = next((k for k in USER_ID_KEYS if k in obj and obj[k] is not None), None)
    if id_key is None and require_id:
        raise DataError(where, "uid", "missing (also looked for 'userid')")
    uid = obj[id_key] if id_key else None
    if uid is not None and (isinstance(uid, bool) or not isinstance(uid, (str, int))):
        raise DataError(where, id_key, f"expected a string or an integer, got {type(uid).__name__}")
    keys = [k for k in BEHAVIOUR_KEYS if k in obj and (allow_chat or k != "messages")]
    if len(keys) != 1:
        named = "'history' or 'behaviors' (triples) or 'messages' (chat)" if allow_chat else "'behaviors' or 'history'"
        raise DataError(where, "history" if allow_chat else "behaviors",
                        f"give exactly one of {named}; got {' and '.join(keys)}" if keys else f"missing (give exactly one of {named})")
    past = obj.get("past")
    if past is not None and not isinstance(past, str):
        raise DataError(where, "past", f"expected a string, got {type(past).__name__}")
    out = {k: v for k, v in obj.items() if k not in USER_ID_KEYS and k not in BEHAVIOUR_KEYS}
    out["uid"] = None if uid is None else str(uid)
    out["behaviors"] = validate_behaviours(obj[keys[0]], where, keys[0], allow_chat=allow_chat, min_behaviours=min_behaviours,
                                           null_query=null_query)
    return out
