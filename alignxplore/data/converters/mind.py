"""MIND (news.tsv + behaviors.tsv, one or more folders such as MIND_train and MIND_dev) -> user rows.

Rules (the authors' ``mind_dataset_transformer``): an item is ``Title: {title}\\nAbstract:
{abstract}``; per user, the longest ``History`` of their impressions gives one pair per clicked
news (negative: a random news item the history did not click), and every impression with both
clicks (``-1``) and non-clicks (``-0``) gives one pair per click (negative: a random non-click
of the same impression); users with at least ``min_pairs`` (9) pairs; users shuffled with
``random.Random(seed)`` and the first 80% are train. Query = None.

Our decisions: impressions are taken in ``Time`` order (the files are in impression-id order)
after the history pairs; a pair whose news id is not in any news.tsv is skipped and counted
(the authors' lookup gave an empty item); a token without ``-0``/``-1`` is skipped, counted.
"""
from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from ...formats import DataError
from . import common
from .common import SEED, NegativeSampler, Skips, delimited

NULL_QUERY = "Please recommend some news to me."
NEWS_COLUMNS = ("NewsID", "Category", "SubCategory", "Title", "Abstract", "URL", "TitleEntities", "AbstractEntities")
BEHAVIOR_COLUMNS = ("ImpressionID", "UserID", "Time", "History", "Impressions")
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def convert(folders: list[Path], *, min_pairs: int = 9, train_fraction: float = 0.8, seed: int = SEED) -> tuple[list[dict], list[dict], Skips]:
    skips = Skips()
    news: dict[str, str] = {}
    for d in folders:
        for _, row in delimited(Path(d) / "news.tsv", NEWS_COLUMNS, delimiter="\t", header=False):
            news.setdefault(row["NewsID"], f"Title: {row['Title']}\nAbstract: {row['Abstract']}")
    users: dict[str, dict] = {}
    for d in folders:
        for where, row in delimited(Path(d) / "behaviors.tsv", BEHAVIOR_COLUMNS, delimiter="\t", header=False):
            with common.bad_rows.catch():  # a bad row is reported; the others still checked
                try:
                    when = datetime.strptime(row["Time"], TIME_FORMAT)
                except ValueError:
                    raise DataError(where, "Time", f"{row['Time']!r} is not like 11/15/2019 8:55:22 AM") from None
                u = users.setdefault(row["UserID"], {"history": "", "impressions": []})
                if len(row["History"]) > len(u["history"]):
                    u["history"] = row["History"]
                u["impressions"].append((when, row["Impressions"]))
    rng = random.Random(seed)
    sampler = NegativeSampler(news, rng)
    kept: list[dict] = []
    for uid in sorted(users):
        pairs = user_pairs(users[uid], news, sampler, rng, skips)
        if len(pairs) < min_pairs:
            skips.add(f"user with fewer than {min_pairs} pairs")
            continue
        kept.append({"uid": uid, "behaviors": [{"query": None, "chosen": news[p], "rejected": news[n]} for p, n in pairs]})
    order = list(range(len(kept)))
    random.Random(seed).shuffle(order)
    cut = int(len(order) * train_fraction)
    return [kept[i] for i in order[:cut]], [kept[i] for i in order[cut:]], skips


def user_pairs(user: dict, news: dict, sampler: NegativeSampler, rng: random.Random, skips: Skips) -> list[tuple[str, str]]:
    pairs = []
    clicked = user["history"].split()
    clicked_set = set(clicked)
    for pos in clicked:
        neg = sampler.choice(clicked_set)
        if pos not in news or neg is None:
            skips.add("history click with a news id missing from news.tsv" if pos not in news else "history click without a negative")
            continue
        pairs.append((pos, neg))
    for _, impression in sorted(user["impressions"], key=lambda x: x[0]):
        tokens = impression.split()
        bad = [t for t in tokens if not t.endswith(("-0", "-1"))]
        skips.add("impression token without a -0/-1 label", len(bad))
        positives = [t[:-2] for t in tokens if t.endswith("-1")]
        negatives = [t[:-2] for t in tokens if t.endswith("-0")]
        if not (positives and negatives):
            continue
        for pos in positives:
            neg = rng.choice(negatives)
            if pos not in news or neg not in news:
                skips.add("impression pair with a news id missing from news.tsv")
                continue
            pairs.append((pos, neg))
    return pairs
