"""Matching cost of hostile pages against queries at the limits ``check`` accepts.

Each case pairs a page built to be slow (fields of MAX_FIELD_CHARS: one word repeated, a few
words in every order, every phrase of an entity) with a query as big as the limits of
:mod:`monitor.query` allow (20,000 characters, 10,000 terms counting entity aliases, 100
NEARs, NEAR chains of 10, 100 levels of nesting). It prints the time of ``RuleSet.match``
and of the spans of what fired, and the worst total. No assertions: the figures are for
people (tests check the limits and the results, never the time).

    .venv/bin/python bench/hostile_match.py
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Iterator

import yaml

from monitor import query as q
from monitor.article import Article
from monitor.evaluate import MAX_FIELD_CHARS
from monitor.rules import RuleSet

Case = tuple[str, str, str, dict[str, list[str]]]  # name, query, page, entities


def fit(parts: list[str], sep: str) -> str:
    """As many of ``parts`` joined by ``sep`` as fit in a query."""
    return sep.join(parts)[: q.MAX_QUERY_CHARS].rsplit(sep, 1)[0]


def cases() -> Iterator[Case]:
    rng = random.Random(1)
    ones = ("a " * MAX_FIELD_CHARS)[:MAX_FIELD_CHARS]
    ten = "abcdefghij"
    mixed = " ".join(rng.choice(ten) for _ in range(MAX_FIELD_CHARS // 2))
    words = [f"w{i}" for i in range(100)]
    cycle = " ".join(words * 1000)[:MAX_FIELD_CHARS]
    chain = " NEAR ".join(["a"] * q.MAX_NEAR_OPERANDS)
    yield "NEAR chain of 10, one word repeated", chain, ones, {}
    nears = [f"(a NEAR/{k} a)" for k in range(1, q.MAX_NEARS + 1)]
    yield "100 NEARs, one word repeated", " OR ".join(nears), ones, {}
    pairs = [
        f"({x} NEAR/{i % 50 + 1} {y})" for i, (x, y) in enumerate(itertools.combinations(words, 2))
    ]
    yield "100 NEARs of word pairs, 100 words", " OR ".join(pairs[: q.MAX_NEARS]), cycle, {}
    grams = [" ".join(t) for t in itertools.product(ten, repeat=4)][: q.MAX_TERMS]
    yield "entity of 10,000 4-word phrases, 10 words", "@e", mixed, {"e": grams}
    dense = [" ".join((words * 3)[i : i + n]) for i in range(100) for n in range(2, 102)]
    yield "entity of 10,000 overlapping phrases", "@e", cycle, {"e": dense[: q.MAX_TERMS]}
    yield "AND of 4-word phrases", fit([f'"{g}"' for g in grams], " "), mixed, {}
    groups = [f"({x} {y})" for x, y in itertools.combinations(words, 2)]
    yield "OR of (word word) groups", fit(groups, " OR "), cycle, {}
    letters = "abcdefghijklmnopqrstuvwxyz"
    alphabet = (" ".join(letters) + " ") * (MAX_FIELD_CHARS // (2 * len(letters)) + 1)
    ands = ["(" + " ".join(rng.sample(letters, 8)) + ")" for _ in range(q.MAX_QUERY_CHARS)]
    yield "OR of ANDs of 8 letters, letters", fit(ands, " OR "), alphabet[:MAX_FIELD_CHARS], {}
    regexes, width = [], 0
    for i in range(3000):  # as many as the query's regex width allows
        regex = f"/[ab] [ab]{{{i % 20}}} z{i}/"
        width += q.regex_width(regex[1:-1])
        if width > q.MAX_QUERY_REGEX_WIDTH:
            break
        regexes.append(regex)
    yield (
        "OR of regexes that never match",
        fit(regexes, " OR "),
        "a b " * (MAX_FIELD_CHARS // 4),
        {},
    )
    slow = [f"/{c}.{{{q.MAX_REGEX_WIDTH - 1}}}z/" for c in "abc"]  # each at the limit
    yield (
        "OR of 3 regexes at the limit, letters",
        " OR ".join(slow),
        "".join(rng.choice("abcz ") for _ in range(MAX_FIELD_CHARS)),
        {},
    )
    entities = {f"e{i}": rng.sample(words, 50) for i in range(100)}
    near_entities = [f"(@e{i} NEAR/{i % 50 + 1} @e{i + 1})" for i in range(99)]
    yield "99 NEARs of 50-alias entities", " OR ".join(near_entities), cycle, entities


def run(name: str, query: str, page: str, entities: dict[str, list[str]]) -> float:
    doc: dict[str, object] = {"rules": [{"id": "r", "query": query}]}
    if entities:
        doc["entities"] = entities
    rules = RuleSet.from_source(yaml.safe_dump(doc, width=10**9))
    article = Article(title=page, text=page)
    start = time.perf_counter()
    matches = rules.match(article)
    matched = time.perf_counter()
    for m in matches:
        m.spans  # noqa: B018 - worked out on first access
    done = time.perf_counter()
    print(
        f"  {name:42s} match {matched - start:6.3f} s  spans {done - matched:6.3f} s"
        f"  ({len(matches)} fired)"
    )
    return done - start


def main() -> int:
    print(f"fields of {MAX_FIELD_CHARS:,} characters (title and body), one rule each:")
    worst = max(run(*case) for case in cases())
    print(f"worst: {worst:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
