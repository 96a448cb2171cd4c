"""Compiled checks: each rule's query turned, once at load time, into a closure over an article.

:mod:`monitor.codegen` compiles rules to generated code and calls on these closures for what
it does not inline (``case:`` terms, regexes) and for queries too large to generate code for.

Promises:

- ``compile_check(node)(ev)`` is True exactly when ``ev.eval(node)`` is not None (the query
  holds), for every :class:`~monitor.evaluate.Evaluator` ``ev``; the property tests hold it
  to that.
- Word, phrase and prefix terms are answered from the article's folded word set and joined
  folded text (a set look-up, the article's key scan when it looked for that key, or one C
  substring search), with no word positions. Only NEAR, ``case:`` terms and regexes reach
  the positional evaluator, and only after the cheap necessary conditions held; its
  occurrence lists are shared by every rule of the article.
- AND and OR try their cheapest children first, and plain words among a node's children are
  tested together as one set operation. Checks for the same term or entity in the same scope
  are built once and shared by every rule that uses them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from monitor import query as q
from monitor.evaluate import FIELDS, Evaluator, meta_holds
from monitor.words import fold

Check = Callable[[Evaluator], bool]
SCOPES = ((0,), (1,), (0, 1))  # scope index 0: title, 1: body, 2: both
ALL = 2
_CHEAP, _SEQ, _POSITIONAL, _NEAR = 1, 2, 10, 20


class Compiler:
    """Builds checks, sharing those for identical terms and entities across rules."""

    def __init__(self) -> None:
        self._shared: dict[tuple[Any, ...], tuple[Check, int]] = {}

    def compile(self, node: q.Node) -> Check:
        """The check for a whole query."""
        return self.check(node, ALL)[0]

    def check(self, node: q.Node, s: int) -> tuple[Check, int]:
        """(check, cost) of ``node`` looked for in scope ``s``; the cost orders siblings."""
        match node:
            case q.Term():
                return self.shared(("t", node.key, s), lambda: _term(node, s))
            case q.Entity(aliases=aliases):
                key = ("e", tuple(a.key for a in aliases), s)
                return self.shared(key, lambda: self.any_of(aliases, s))
            case q.Or(children=kids):
                return self.any_of(kids, s)
            case q.And(children=kids):
                return self.all_of(kids, s)
            case q.Not(child=child):
                inner, cost = self.check(child, s)
                return (lambda ev: not inner(ev)), cost
            case q.Scope(field=name, child=child):
                return self.check(child, FIELDS.index(name))
            case q.Near(left=left, right=right):
                return self.near(node, left, right, s)
            case q.Regex():
                return _regex(node, s), _POSITIONAL
            case q.Meta(field=name):
                return (lambda ev: meta_holds(node, ev.meta(name))), _CHEAP
        raise TypeError(f"unknown query node {node!r}")  # pragma: no cover

    def shared(
        self, key: tuple[Any, ...], build: Callable[[], tuple[Check, int]]
    ) -> tuple[Check, int]:
        found = self._shared.get(key)
        if found is None:
            found = self._shared[key] = build()
        return found

    def any_of(self, kids: Sequence[q.Node], s: int) -> tuple[Check, int]:
        words, others = _split_words(kids)
        built = self.built(others, s)
        checks = [check for check, _ in built]
        if words:
            checks.insert(0, _any_word(words, s))
        cost = sum(c for _, c in built) + (_CHEAP if words else 0)
        if len(checks) == 1:
            return checks[0], cost

        def any_holds(ev: Evaluator) -> bool:
            for check in checks:  # noqa: SIM110 - a plain loop is twice as fast as any()
                if check(ev):
                    return True
            return False

        return any_holds, cost

    def all_of(self, kids: Sequence[q.Node], s: int) -> tuple[Check, int]:
        words, others = _split_words(kids)
        built = self.built(others, s)
        checks = [check for check, _ in built]
        if words:
            checks.insert(0, _all_words(words, s))
        cost = max([c for _, c in built] + [_CHEAP])
        if len(checks) == 1:
            return checks[0], cost

        def all_hold(ev: Evaluator) -> bool:
            for check in checks:  # noqa: SIM110 - a plain loop is twice as fast as all()
                if not check(ev):
                    return False
            return True

        return all_hold, cost

    def built(self, kids: Sequence[q.Node], s: int) -> list[tuple[Check, int]]:
        """The kids' (check, cost), cheapest first."""
        return sorted((self.check(k, s) for k in kids), key=lambda c: c[1])

    def near(self, node: q.Near, left: q.Node, right: q.Node, s: int) -> tuple[Check, int]:
        # Both sides holding is necessary; only then are word positions worth computing.
        lcheck, rcheck = self.check(left, s)[0], self.check(right, s)[0]
        exact = _positional(node, s)
        return (lambda ev: lcheck(ev) and rcheck(ev) and exact(ev)), _NEAR


def _split_words(kids: Sequence[q.Node]) -> tuple[frozenset[str], list[q.Node]]:
    """Plain folded single-word terms among ``kids``, and the rest."""
    words = [k.words[0] for k in kids if isinstance(k, q.Term) and _plain_word(k)]
    return frozenset(words), [k for k in kids if not _plain_word(k)]


def _plain_word(node: q.Node) -> bool:
    return isinstance(node, q.Term) and len(node.words) == 1 and not (node.exact or node.prefix)


def _term(term: q.Term, s: int) -> tuple[Check, int]:
    if _plain_word(term):
        word = term.words[0]
        return (lambda ev: word in ev.words[s]), _CHEAP
    key = sequence_key(term)
    # Whole words and adjacent pairs present (set operations) are necessary, and far
    # cheaper to refute than a substring search; for a two-word phrase they are the answer.
    whole = key.split()[:-1] if term.prefix else key.split()
    words, pairs = frozenset(whole), frozenset(pairwise(whole))
    if term.exact:
        exact = _positional(term, s)
        return (lambda ev: words <= ev.words[s] and has_key(ev, key, s) and exact(ev)), _POSITIONAL
    if len(term.words) == 2 and not term.prefix:
        return (lambda ev: words <= ev.words[s] and pairs <= ev.pairs(s)), _SEQ
    return (lambda ev: words <= ev.words[s] and pairs <= ev.pairs(s) and has_key(ev, key, s)), _SEQ


def has_key(ev: Evaluator, key: str, s: int) -> bool:
    """Whether scope ``s`` of ``ev`` holds ``key``: what the article's key scan found, when
    it looked for this key, else one substring search."""
    scanned = ev.scanned
    if scanned is not None and key in scanned[0]:
        return key in scanned[1][s]
    return key in ev.joined[s]


def sequence_key(term: q.Term) -> str:
    """``" a b "`` (``" a b"`` for a prefix): a substring of ``Tokens.joined`` exactly where
    the folded term occurs. ``case:`` terms get the key of their folded words, which is
    necessary (not sufficient) for them to occur."""
    words = [fold(w) for w in term.words] if term.exact else list(term.words)
    return " " + " ".join(words) + ("" if term.prefix else " ")


def _any_word(words: frozenset[str], s: int) -> Check:
    if len(words) == 1:
        (word,) = words
        return lambda ev: word in ev.words[s]
    return lambda ev: not words.isdisjoint(ev.words[s])


def _all_words(words: frozenset[str], s: int) -> Check:
    if len(words) == 1:
        (word,) = words
        return lambda ev: word in ev.words[s]
    return lambda ev: words <= ev.words[s]


def _regex(node: q.Regex, s: int) -> Check:
    """One ``search`` per field answers, unless the first match found is empty (then the
    evaluator, which skips empty matches, decides); the answer is kept for the article, as
    rules often share a pattern."""
    scope, full = SCOPES[s], _positional(node, s)
    key = ("regex", node.pattern, s)

    def check(ev: Evaluator) -> bool:
        found = ev.memo.get(key)
        if found is None:
            found = ev.memo[key] = search(ev)
        return found

    def search(ev: Evaluator) -> bool:
        for f in scope:
            m = node.regex.search(ev.fields[f].text)
            if m is not None:
                return True if m.end() > m.start() else full(ev)
        return False

    return check


def _positional(node: q.Node, s: int) -> Check:
    scope = SCOPES[s]
    return lambda ev: ev.eval(node, scope) is not None
