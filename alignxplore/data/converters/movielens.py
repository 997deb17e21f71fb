"""MovieLens (e.g. ml-32m: ``ratings.csv`` + ``movies.csv``) -> user rows.

Rules (the authors' ``ml_dataset_transformer``): every rating is a positive, in time order;
users with at least ``min_interactions`` (17) ratings; per user, ``random.sample`` of as many
never-rated movies (from the movies that appear in ratings.csv) as positives, and each
positive is paired with a ``random.choice`` of those; an item is ``Title: {title}, Genres:
{genres}``; a pair whose movie is not in movies.csv is skipped (counted); the split is
``train_test_split(test_size=0.2, random_state=42)`` over user ids; ``uid`` = userId. Query = None.

Our decision: ties in timestamp keep file order.
"""
from __future__ import annotations

import random
from pathlib import Path

from ...formats import DataError
from . import common
from .common import SEED, TEST_FRACTION, NegativeSampler, Skips, delimited, split_users

NULL_QUERY = "Please recommend some movies to me."  # the sentence in the authors' scoring script


def convert(ratings: Path, movies: Path, *, min_interactions: int = 17, test_fraction: float = TEST_FRACTION, seed: int = SEED) -> tuple[list[dict], list[dict], Skips]:
    skips = Skips()
    titles = {row["movieId"]: f"Title: {row['title']}, Genres: {row['genres']}" for _, row in delimited(movies, ("movieId", "title", "genres"), delimiter=",", header=True)}
    by_user: dict[int, list[tuple[int, str]]] = {}
    for where, row in delimited(ratings, ("userId", "movieId", "timestamp"), delimiter=",", header=True):
        with common.bad_rows.catch():  # a bad row is reported; the others still checked
            try:
                user, when = int(row["userId"]), int(row["timestamp"])
            except ValueError:
                raise DataError(where, "userId/timestamp", f"not integers: {row['userId']!r}, {row['timestamp']!r}") from None
            by_user.setdefault(user, []).append((when, row["movieId"]))
    rng = random.Random(seed)
    sampler = NegativeSampler({m for rs in by_user.values() for _, m in rs}, rng)
    eligible, negatives = [], {}
    for user in sorted(by_user):
        if len(by_user[user]) < min_interactions:
            skips.add(f"user with fewer than {min_interactions} ratings")
            continue
        positives = [m for _, m in sorted(by_user[user], key=lambda r: r[0])]
        by_user[user] = positives
        negatives[user] = sampler.sample(set(positives), len(positives))
        eligible.append(user)
    train_ids, test_ids = split_users(eligible, test_fraction, seed)

    def rows(ids):
        out = []
        for user in ids:
            behaviors = []
            for m in by_user[user]:
                if m not in titles:
                    skips.add("rating of a movie missing from movies.csv")
                    continue
                if not negatives[user]:
                    break
                neg = rng.choice(negatives[user])
                if neg not in titles:
                    skips.add("negative movie missing from movies.csv")
                    continue
                behaviors.append({"query": None, "chosen": titles[m], "rejected": titles[neg]})
            if behaviors:
                out.append({"uid": user, "behaviors": behaviors})
            else:
                skips.add("user with no usable pair")
        return out

    return rows(train_ids), rows(test_ids), skips
