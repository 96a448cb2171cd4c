"""Where a query holds in one article: the exact, positional evaluator.

Promises:

- An :class:`Evaluator` cuts each field of one article into words once (:mod:`monitor.words`)
  and answers any number of queries against it; term and regex occurrences (and the spans
  made of them, in ``spans``) are computed once per article and shared by every rule that
  asks.
- Only the first :data:`MAX_FIELD_CHARS` characters of each field are looked at, and a regex
  contributes at most its first :data:`MAX_REGEX_HITS` matches per field, so hostile text (huge
  pages, a regex that matches everywhere) costs bounded time. NEAR is computed by range
  look-ups on sorted occurrence lists, never by comparing every pair.
- Word distance, for ``a NEAR/n b`` and ``a ONEAR/n b``: words are numbered 0, 1, 2… in each
  field, and the distance from an occurrence of one operand to a *later* occurrence of the
  other is (first word of the later one) − (last word of the earlier one). Adjacent words are
  at distance 1, so ``NEAR/1`` means side by side and ``NEAR/n`` allows up to n − 1 words in
  between. Occurrences that overlap never count, and both must be in the same field.
  ``ONEAR`` further requires the left operand's occurrence to end before the right one's
  starts. A group operand stands at the positions of whichever of its terms matched; a
  regex match stands at the words it touches.
- ``lang:en`` matches a language of ``en`` or ``en-…``/``en_…`` (case-insensitive);
  ``site:example.com`` matches that host and its subdomains; ``source:`` compares the feed
  name case-insensitively. Nested field scopes: the innermost wins.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from monitor import query as q
from monitor.article import Article
from monitor.words import Tokens, find, fold

FIELDS = ("title", "body")
BOTH = (0, 1)
MAX_FIELD_CHARS = 200_000
MAX_REGEX_HITS = 1_000
INDEX_RULES = 10

# An occurrence: (field index, first word, last word, start char, end char).
Occ = tuple[int, int, int, int, int]
Result = list[Occ] | None  # None: the clause does not hold; a list: it holds, at these places


class Evaluator:
    """One article, tokenised once, against which any number of queries are evaluated.

    ``words[s]`` and ``joined[s]`` are the folded word set and joined text of scope ``s``
    (0 title, 1 body, 2 both), and ``pairs(s)`` its set of adjacent folded word pairs, for
    the compiled presence checks of :mod:`monitor.checks`.
    """

    __slots__ = (
        "_cache",
        "_meta",
        "_pairs",
        "article",
        "fields",
        "fired",
        "joined",
        "memo",
        "spans",
        "words",
    )

    def __init__(self, article: Article) -> None:
        self.article = article
        title = Tokens(article.title[:MAX_FIELD_CHARS])
        body = Tokens(article.text[:MAX_FIELD_CHARS])
        self.fields: tuple[Tokens, Tokens] = (title, body)
        self.words = (title.words, body.words, title.words | body.words)
        # "\n" never occurs inside a key, so no phrase can match across the two fields.
        self.joined = (title.joined, body.joined, title.joined + "\n" + body.joined)
        self._cache: dict[tuple[Any, ...], Result] = {}
        self._pairs: list[set[tuple[str, str]] | None] = [None, None, None]
        self._meta: dict[str, str] = {}
        # Spans made for this article, by occurrence, shared by every rule that shows one.
        self.spans: dict[Occ, Any] = {}
        # Answers of compiled checks worth keeping per article (a regex's, say).
        self.memo: dict[tuple[Any, ...], bool] = {}
        # How many rules fired on this article, set by whoever matched it.
        self.fired = 0

    def pairs(self, s: int) -> set[tuple[str, str]]:
        """The adjacent folded word pairs of scope ``s`` (computed on first use)."""
        found = self._pairs[s]
        if found is None:
            if s == 2:
                found = self.pairs(0) | self.pairs(1)
            else:
                found = set(pairwise(self.fields[s].folded))
            self._pairs[s] = found
        return found

    def for_spans(self) -> None:
        """Get ready to evaluate the queries of the rules that fired for their spans: when
        many fired, each field's word positions are indexed at once, rather than scanned
        for word after word (an index costs about as much as INDEX_RULES rules' scans)."""
        if self.fired >= INDEX_RULES:
            for toks in self.fields:
                toks.use_index()

    def meta(self, name: str) -> str:
        """The article's ``site``, ``source`` or ``lang``, worked out once per article."""
        value = self._meta.get(name)
        if value is None:
            value = self._meta[name] = meta_value(name, self.article)
        return value

    def eval(self, node: q.Node, scope: tuple[int, ...] = BOTH) -> Result:
        """Where ``node`` holds in the fields ``scope`` (None when it does not hold)."""
        match node:
            case q.Term():
                return self.cached(("t", node.key, scope), lambda: self.term(node, scope))
            case q.Regex():
                return self.cached(("r", node.pattern, scope), lambda: self.regex(node, scope))
            case q.Entity(aliases=aliases) | q.Or(children=aliases):
                return union([self.eval(kid, scope) for kid in aliases])
            case q.And(children=kids):
                return self.all_of(kids, scope)
            case q.Not(child=child):
                return [] if self.eval(child, scope) is None else None
            case q.Scope(field=name, child=child):
                return self.eval(child, (FIELDS.index(name),))
            case q.Near():
                return self.near(node, scope)
            case q.Meta():
                return [] if meta_holds(node, self.meta(node.field)) else None
        raise TypeError(f"unknown query node {node!r}")  # pragma: no cover

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Result]) -> Result:
        """``compute()``, once per article for each ``key``."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def term(self, term: q.Term, scope: tuple[int, ...]) -> Result:
        """Every occurrence of ``term`` in the fields of ``scope``."""
        out: list[Occ] = []
        last = len(term.words) - 1
        # A field without the (whole) first word has no occurrence: skip the search there.
        first = fold(term.words[0]) if term.exact else term.words[0]
        whole = last > 0 or not term.prefix
        for f in scope:
            toks = self.fields[f]
            if whole and first not in toks.words:
                continue
            found = find(toks, term.words, term.exact, term.prefix)
            out.extend((f, p, p + last, *toks.span(p, p + last)) for p in found)
        return out or None

    def regex(self, node: q.Regex, scope: tuple[int, ...]) -> Result:
        """The first MAX_REGEX_HITS non-empty matches of ``node`` in each field of ``scope``."""
        out: list[Occ] = []
        for f in scope:
            toks = self.fields[f]
            count = 0
            for m in node.regex.finditer(toks.text):
                start, end = m.span()
                if end > start:
                    first = bisect_right(toks.ends, start)
                    last = max(first, bisect_left(toks.starts, end) - 1)
                    out.append((f, first, last, start, end))
                    count += 1
                    if count >= MAX_REGEX_HITS:
                        break
        return out or None

    def all_of(self, kids: Sequence[q.Node], scope: tuple[int, ...]) -> Result:
        """The union of the kids' occurrences when every kid holds."""
        found: list[Result] = []
        for kid in kids:
            res = self.eval(kid, scope)
            if res is None:
                return None
            found.append(res)
        return union(found)

    def near(self, node: q.Near, scope: tuple[int, ...]) -> Result:
        """The occurrences of both sides that are close enough (see the module docstring)."""
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope) if left else None
        if not left or not right:
            return None
        return near_pairs(left, right, node.n, node.ordered)


def union(results: Sequence[Result]) -> Result:
    """The occurrences of every result that holds, sorted; None when none holds."""
    held = [r for r in results if r is not None]
    if not held:
        return None
    if len(held) == 1:
        return held[0]
    return sorted({occ for r in held for occ in r})


def near_pairs(left: list[Occ], right: list[Occ], n: int, ordered: bool) -> Result:
    """The occurrences of ``left`` and ``right`` that are within ``n`` words of each other.

    Each occurrence is kept when a partner exists on the allowed side, which one bisection
    in the other side's sorted first (or last) words tells, so the work is O((L + R) log R)
    however many pairs there are.
    """
    r_first, r_last = _keys(right, 1), _keys(right, 2)
    l_first, l_last = _keys(left, 1), _keys(left, 2)
    used = [
        a
        for a in left
        if _any(r_first, a[0], a[2] + 1, a[2] + n)
        or (not ordered and _any(r_last, a[0], a[1] - n, a[1] - 1))
    ]
    if not used:
        return None
    used += [
        b
        for b in right
        if _any(l_last, b[0], b[1] - n, b[1] - 1)
        or (not ordered and _any(l_first, b[0], b[2] + 1, b[2] + n))
    ]
    return sorted(set(used))


def _keys(occs: list[Occ], at: int) -> list[tuple[int, int]]:
    """(field, word) for each occurrence's first (``at`` 1) or last (``at`` 2) word, sorted."""
    return sorted((o[0], o[at]) for o in occs)


def _any(keys: list[tuple[int, int]], f: int, lo: int, hi: int) -> bool:
    """Whether some key of field ``f`` has its word in ``lo..hi``."""
    return bisect_left(keys, (f, lo)) < bisect_right(keys, (f, hi))


def meta_holds(node: q.Meta, value: str) -> bool:
    """Whether the article's ``value`` for ``node.field`` is what ``node`` asks for."""
    if node.field == "site":
        return value == node.value or value.endswith("." + node.value)
    if node.field == "source":
        return value.casefold() == node.value
    lang = value.casefold()
    return lang == node.value or lang.startswith((node.value + "-", node.value + "_"))


def meta_value(name: str, article: Article) -> str:
    """The article's value for the metadata field ``name`` (``site``, ``source``, ``lang``)."""
    if name == "site":
        return article.site
    if name == "source":
        return article.source
    return article.language or ""
