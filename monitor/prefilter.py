"""Candidate selection: which rules could fire, from one pass over an article's words.

Promises:

- Every rule is filed under a set of *triggers* (folded words, or prefix stems) at least one
  of which must be in the article for the rule to hold; terms under NOT never select. A rule
  with no such set (only NOT, metadata or regexes) is a candidate for every article.
- For an AND, the rule is filed under the child whose triggers look rarest (a phrase's
  longest word, long words before short ones, whole words before stems, a short list of very
  common English words last): ``"the summit" AND pyongyang`` is tried only on articles with
  "pyongyang", not on every article with "the".
- ``candidates`` costs one set intersection of the article's distinct words with the
  trigger words, plus one dictionary look-up per distinct word for prefix stems (bucketed by
  their first three letters); it never looks at a rule that no trigger selected.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from monitor import query as q
from monitor.query import MIN_PREFIX
from monitor.words import fold

Trigger = tuple[str, bool]  # (folded word or stem, is a prefix stem)

# Words so frequent in news text that indexing a rule under them selects it almost always.
_COMMON = frozenset(
    """the of and to a in is for on that with as by at from it was said be are has have this
    an will not but or his her they he she we its their after new more were who been year
    one two also all about up out than over can into when would which there other us what
    because many being since before first last could should these those some such only
    just like most made make time people years state states government president north
    south east west american national international world city country public information
    general high best between during under while where through however news report
    company group million billion percent week month today day monday tuesday wednesday
    thursday friday saturday sunday january february march april may june july august
    september october november december""".split()  # noqa: SIM905 - a word list reads best as text
)


def triggers(node: q.Node) -> set[Trigger] | None:
    """Triggers one of which must be present for ``node`` to hold; None when there are none."""
    match node:
        case q.Term():
            return {_term_trigger(node)}
        case q.Entity(aliases=kids) | q.Or(children=kids):
            sets = [triggers(k) for k in kids]
            if any(s is None for s in sets):
                return None
            return {t for s in sets if s is not None for t in s}
        case q.And(children=kids):
            known = [s for s in (triggers(k) for k in kids) if s is not None]
            return min(known, key=_cost) if known else None
        case q.Near(left=left, right=right):
            return triggers(q.And((left, right)))
        case q.Scope(child=child):
            return triggers(child)
    return None


def _term_trigger(term: q.Term) -> Trigger:
    """The rarest-looking word of a term: any of its whole words must be present."""
    words = [fold(w) for w in term.words] if term.exact else list(term.words)
    whole = words[:-1] if term.prefix else words
    if whole:
        return max(whole, key=_rarity), False
    return words[-1], True


def _rarity(word: str) -> int:
    return -1 if word in _COMMON else len(word)


def _cost(found: set[Trigger]) -> float:
    """How often a trigger set may fire, roughly: lower is rarer."""
    return sum(
        (50.0 if word in _COMMON else 1.0 / len(word)) * (4.0 if stem else 1.0)
        for word, stem in found
    )


class Index:
    """Rules filed under their triggers; ``candidates`` picks the ones worth checking."""

    def __init__(self, nodes: Sequence[q.Node]) -> None:
        self.words: dict[str, list[int]] = {}
        self.stems: dict[str, list[tuple[str, list[int]]]] = {}
        self.always: list[int] = []
        stems: dict[str, list[int]] = {}
        for i, node in enumerate(nodes):
            found = triggers(node)
            if found is None:
                self.always.append(i)
                continue
            for word, is_stem in found:
                if is_stem and len(word) < MIN_PREFIX:
                    self.always.append(i)  # folding shortened the stem below the bucket key
                else:
                    (stems if is_stem else self.words).setdefault(word, []).append(i)
        for stem, rules in stems.items():
            self.stems.setdefault(stem[:MIN_PREFIX], []).append((stem, rules))
        # With few stems, one C substring search each beats a look-up per article word.
        self.few_stems = [(" " + st, r) for st, r in stems.items()] if len(stems) <= 16 else None
        self.keys = frozenset(self.words)

    def candidates(self, words: set[str], joined: str) -> list[int]:
        """Indices of the rules worth checking on an article, in rule order, given its
        folded words and joined folded text (see :class:`monitor.words.Tokens`)."""
        picked = set(chain.from_iterable(map(self.words.__getitem__, words & self.keys)))
        picked.update(self.always)
        if self.few_stems is not None:
            for stem, rules in self.few_stems:
                if stem in joined:
                    picked.update(rules)
        elif self.stems:
            self.add_stems(words, picked)
        return sorted(picked)

    def add_stems(self, present: set[str], picked: set[int]) -> None:
        stems = self.stems
        for word in present:
            bucket = stems.get(word[:MIN_PREFIX])
            if bucket is not None:
                for stem, rules in bucket:
                    if word.startswith(stem):
                        picked.update(rules)
