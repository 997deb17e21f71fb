"""Amazon reviews 5-core (e.g. ``Books_5.json.gz``) + metadata (``meta_Books.json.gz``) -> user rows.

Rules (the authors' ``amazon_dataset_transformer``): items are metadata entries with a
non-empty title, rendered ``Title: {title}\\nDescription: {description}``; interactions
(``reviewerID, asin, unixReviewTime``) with an item outside the metadata are dropped; users
with at least ``min_interactions`` (17) remaining reviews, in time order; negatives are
``random.sample`` of the items the user never reviewed, one per review (the positives are cut
to the pool size if it is smaller); the train/test split is ``train_test_split(test_size=0.2,
random_state=42)`` over the users (reviewerID order); ``uid`` = the user's position in train +
test. Query = None.

Our decisions: a ``description`` given as a list (the 2018 dumps) is joined with a space (the
authors' ``astype(str)`` wrote the list's Python repr); metadata lines in Python-literal form
(the 2014 dumps) are accepted; a later metadata entry for the same asin wins (as a pandas
``to_dict`` does); ties in review time keep file order.
"""
from __future__ import annotations

import random
from pathlib import Path

from ...formats import DataError
from . import common
from .common import SEED, TEST_FRACTION, NegativeSampler, Skips, json_lines, require, split_users

NULL_QUERY = "Please recommend some books to me."  # not in the release; ours


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def convert(reviews: Path, meta: Path, *, min_interactions: int = 17, test_fraction: float = TEST_FRACTION, seed: int = SEED) -> tuple[list[dict], list[dict], Skips]:
    skips = Skips()
    items: dict[str, str] = {}
    for where, row in json_lines(meta, python_literals=True):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, ("asin", "title"), where)
            title = _text(row["title"])
            if not title.strip():
                skips.add("metadata entry without a title")
                continue
            items[row["asin"]] = f"Title: {title}\nDescription: {_text(row.get('description'))}"
    by_user: dict[str, list[tuple[int, str]]] = {}
    for where, row in json_lines(reviews):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            require(row, ("reviewerID", "asin", "unixReviewTime"), where)
            if not isinstance(row["asin"], str):
                raise DataError(where, "asin", f"expected a string, got {type(row['asin']).__name__}")
            if row["asin"] not in items:
                skips.add("review of an item missing from the metadata")
                continue
            try:
                when = int(row["unixReviewTime"])
            except (TypeError, ValueError):
                raise DataError(where, "unixReviewTime", f"{row['unixReviewTime']!r} is not a unix time") from None
            by_user.setdefault(str(row["reviewerID"]), []).append((when, row["asin"]))
    rng = random.Random(seed)
    sampler = NegativeSampler(items, rng)
    histories: dict[str, list[dict]] = {}
    for user in sorted(by_user):
        reviews_ = by_user[user]
        if len(reviews_) < min_interactions:
            skips.add(f"user with fewer than {min_interactions} reviews")
            continue
        positives = [asin for _, asin in sorted(reviews_, key=lambda r: r[0])]
        negatives = sampler.sample(set(positives), len(positives))
        if not negatives:
            skips.add("user who reviewed every item")
            continue
        histories[user] = [{"query": None, "chosen": items[p], "rejected": items[n]} for p, n in zip(positives, negatives)]
    train_ids, test_ids = split_users(list(histories), test_fraction, seed)
    uidx = {u: i for i, u in enumerate(train_ids + test_ids)}
    rows = lambda ids: [{"uid": uidx[u], "behaviors": histories[u]} for u in ids]  # noqa: E731
    return rows(train_ids), rows(test_ids), skips
