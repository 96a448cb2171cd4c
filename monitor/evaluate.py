"""Where a query holds in one article: the exact, positional evaluator.

Promises:

- An :class:`Evaluator` cuts each field of one article into words once (:mod:`monitor.words`)
  and answers any number of queries against it; term and regex occurrences (and the spans
  made of them, in ``spans``) are computed once per article and shared by every rule that
  asks.
- Only the first :data:`MAX_FIELD_CHARS` characters of each field are looked at, and every
  clause (a term, a regex, an OR, AND, NEAR or entity) keeps only its first
  :data:`MAX_HITS` occurrences per field (:data:`MAX_REGEX_HITS` for a regex), so hostile
  text (huge pages, one word repeated all along, a regex that matches everywhere) costs
  bounded time: no news article has one clause a thousand times in a field, and a page
  made to have it gets the first thousand. NEAR is computed by range look-ups on sorted
  occurrence lists, never by comparing every pair, and once per article for each NEAR of a
  rule however often it is asked for; an OR or entity of many terms finds them all in one
  pass over the field (:func:`monitor.words.locate`), stopping once its first occurrences
  are known. An AND, OR or NEAR takes its kids' sorted lists only as far as its first
  :data:`MAX_HITS` per field need (:func:`union`), so its work is about what it keeps (with
  the repeats of those occurrences in other kids), not what its kids hold. Within the limits
  of :mod:`monitor.query`, the worst cases built so far (``bench/hostile_match.py``) take
  under a second of matching and under 3 s of spans: an OR of ~950 ANDs of 8 letters on a
  page of single letters repeated still keeps 2,000 occurrences for each AND (2.4 s; 9 s
  when each AND sorted its kids' lists in full). A regex is held by
  :data:`monitor.query.MAX_REGEX_WIDTH` to at most 100 classes and characters copied by
  ``{n,m}`` (and overlapping starts of literal runs), which keeps RE2 under about 0.5 s on
  a 200 KB field (``/a.{1000}z/``, 4.7 s, is refused), and a query's regexes to 300
  together.
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
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import lru_cache, partial
from heapq import merge
from itertools import accumulate, chain, compress, groupby, islice, pairwise, repeat
from operator import add, itemgetter, lt, or_, sub
from typing import Any

from monitor import query as q
from monitor._words import Vocabulary
from monitor.article import Article
from monitor.words import Tokens, find, fold, locate

FIELDS = ("title", "body")
BOTH = (0, 1)
MAX_FIELD_CHARS = 200_000
MAX_REGEX_HITS = 1_000
MAX_HITS = 1_000
INDEX_RULES = 10

# An occurrence: (field index, first word, last word, start char, end char).
Occ = tuple[int, int, int, int, int]
Result = list[Occ] | None  # None: the clause does not hold; a list: it holds, at these places
HOLDS: list[Occ] = []  # holds, at no place (NOT, metadata); results are never changed in place


class Evaluator:
    """One article, tokenised once, against which any number of queries are evaluated.

    ``words[s]`` and ``joined[s]`` are the folded word set and joined text of scope ``s``
    (0 title, 1 body, 2 both), and ``pairs(s)`` its set of adjacent folded word pairs, for
    the compiled presence checks of :mod:`monitor.checks`.
    """

    __slots__ = (
        "_cache",
        "_groups",
        "_meta",
        "_pairs",
        "_unions",
        "article",
        "fields",
        "fired",
        "joined",
        "memo",
        "scanned",
        "spans",
        "words",
    )

    def __init__(self, article: Article, known: Vocabulary | None = None) -> None:
        self.article = article
        title = Tokens(article.title[:MAX_FIELD_CHARS], known)
        body = Tokens(article.text[:MAX_FIELD_CHARS], known)
        self.fields: tuple[Tokens, Tokens] = (title, body)
        # Never changed, so the body's own set serves for both fields when it holds the
        # title's words (half the articles), rather than a copy of it.
        both = body.words if title.words <= body.words else title.words | body.words
        self.words = (title.words, body.words, both)
        # "\n" never occurs inside a key, so no phrase can match across the two fields.
        self.joined = (title.joined, body.joined, title.joined + "\n" + body.joined)
        self._cache: dict[tuple[Any, ...], Result] = {}
        # NEAR, OR and entity results by (node identity, scope), with the node kept so the
        # identity holds.
        self._groups: dict[tuple[int, tuple[int, ...]], tuple[q.Node, Result]] = {}
        self._unions: dict[tuple[int, ...], tuple[list[Result], Result]] = {}
        self._pairs: list[set[tuple[str, str]] | None] = [None, None, None]
        self._meta: dict[str, str] = {}
        # Spans made for this article, by occurrence, shared by every rule that shows one.
        self.spans: dict[Occ, Any] = {}
        # Answers of compiled checks worth keeping per article (a regex's, say).
        self.memo: dict[tuple[Any, ...], bool] = {}
        # How many rules fired on this article, set by whoever matched it.
        self.fired = 0
        # (keys looked for, keys found in title, body and both) by whoever scanned the
        # joined words for phrase and prefix keys: spares :meth:`occurs` a search.
        self.scanned: tuple[frozenset[str], tuple[set[str], set[str], set[str]]] | None = None

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
            case q.Entity(aliases=kids) | q.Or(children=kids):
                if len(kids) < _BATCH:
                    return union([self.eval(kid, scope) for kid in kids])
                return self.once(node, scope, lambda: self.any_of(kids, scope))
            case q.And(children=kids):
                return self.all_of(kids, scope)
            case q.Not(child=child):
                return HOLDS if self.eval(child, scope) is None else None
            case q.Scope(field=name, child=child):
                return self.eval(child, (FIELDS.index(name),))
            case q.Near():
                return self.once(node, scope, lambda: self.near(node, scope))
            case q.Meta():
                return HOLDS if meta_holds(node, self.meta(node.field)) else None
        raise TypeError(f"unknown query node {node!r}")  # pragma: no cover

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Result]) -> Result:
        """``compute()``, once per article for each ``key``."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def term(self, term: q.Term, scope: tuple[int, ...]) -> Result:
        """Every occurrence of ``term`` in the fields of ``scope``."""
        out: list[Occ] = []
        words, last = term.words, len(term.words) - 1
        # A field without the (whole) first word, or the phrase's key, has no occurrence.
        first = fold(words[0]) if term.exact else words[0]
        whole, keyed = last > 0 or not term.prefix, last > 0 or term.prefix
        for f in scope:
            toks = self.fields[f]
            if (whole and first not in toks.words) or (keyed and not self.has_key(term, f)):
                continue
            if toks.scans():
                # Found in the folded text by one C pass, without cutting it into words.
                if not term.exact:
                    out += toks.occurrences(_folded_key(term), MAX_HITS, f)
                    continue
                if (held := _written(toks, f, term)) is not None:
                    out += held
                    continue
            found = find(toks, term.words, term.exact, term.prefix, MAX_HITS)
            out += _occurrences(toks, f, found, last)
        return out or None

    def occurs(self, term: q.Term, f: int) -> bool:
        """Whether field ``f`` has the folded word or phrase key of ``term`` (which then
        occurs there, unless it is a ``case:`` term)."""
        words = term.words
        if (len(words) > 1 or not term.prefix) and (
            (fold(words[0]) if term.exact else words[0]) not in self.fields[f].words
        ):
            return False
        return (len(words) == 1 and not term.prefix) or self.has_key(term, f)

    def has_key(self, term: q.Term, f: int) -> bool:
        """Whether the joined words of field ``f`` hold the phrase or prefix key of ``term``
        (of its folded words for a ``case:`` term): a set look-up when the article's scan
        looked for it (see :attr:`scanned`), else one substring search."""
        key = _folded_key(term)
        if self.scanned is not None and key in self.scanned[0]:
            return key in self.scanned[1][f]
        return key in self.fields[f].joined

    def once(self, node: q.Node, scope: tuple[int, ...], compute: Callable[[], Result]) -> Result:
        """``compute()`` for ``node``, once per article: a NEAR chain's compiled check asks
        for each link and the spans for the whole chain again, which recomputed would cost
        the square of its length."""
        key = (id(node), scope)
        held = self._groups.get(key)
        if held is None or held[0] is not node:
            held = self._groups[key] = (node, compute())
        return held[1]

    def any_of(self, kids: Sequence[q.Node], scope: tuple[int, ...]) -> Result:
        """The first occurrences of the kids that hold; many terms among them are found
        together (:meth:`located`) rather than one by one."""
        keys = _group_keys(_Same(kids), exact=True)
        if sum(len(by_key) for _, by_key in keys) < _BATCH:
            return self.union([self.eval(kid, scope) for kid in kids])
        found = [self.eval(kid, scope) for kid in kids if not isinstance(kid, q.Term)]
        return self.union([*found, self.located(keys, scope)])

    def located(self, keys: GroupKeys, scope: tuple[int, ...]) -> Result:
        """The first MAX_HITS occurrences per field of the terms whose scan keys (folded,
        and as written for ``case:`` terms) are ``keys``, by one automaton pass over each
        field (:func:`monitor.words.locate`): a search per term would cost a pass each,
        seconds for an entity of thousands on a page of their words."""
        out: list[Occ] = []
        for f in scope:
            toks, occs = self.fields[f], []
            for exact, (found, by_key) in enumerate(keys):
                if not found:
                    continue
                for key, positions in locate(toks, found, bool(exact), MAX_HITS).items():
                    occs += _occurrences(toks, f, positions, len(by_key[key].words) - 1)
            out += sorted(set(occs))[:MAX_HITS]
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
        """The union of the kids' occurrences when every kid holds; many terms among them
        are checked by look-ups and found together (:meth:`located`)."""
        if len(kids) < _BATCH:
            return self._all_of(kids, scope)
        keys = _group_keys(_Same(kids), exact=False)
        terms = keys[0][1]
        if len(terms) < _BATCH:
            return self._all_of(kids, scope)
        for term in terms.values():
            if not any(self.occurs(term, f) for f in scope):
                return None
        rest = [kid for kid in kids if not (isinstance(kid, q.Term) and not kid.exact)]
        held = self._all_of(rest, scope) if rest else []
        return None if held is None else union([held, self.located(keys, scope)])

    def _all_of(self, kids: Sequence[q.Node], scope: tuple[int, ...]) -> Result:
        found: list[Result] = []
        for kid in kids:
            res = self.eval(kid, scope)
            if res is None:
                return None
            found.append(res)
        return self.union(found)

    def union(self, results: list[Result]) -> Result:
        """:func:`union` of ``results``, once per article for the same long lists: the same
        terms ANDed in many places of a rule make the same lists again and again."""
        if len(results) < 2 or sum(map(len, filter(None, results))) <= _FEW_OCCURRENCES:
            return union(results)  # cheaper than looking it up
        key = tuple(map(id, results))
        held = self._unions.get(key)
        if held is None or any(a is not b for a, b in zip(held[0], results, strict=True)):
            held = self._unions[key] = (results, union(results))
        return held[1]

    def near(self, node: q.Near, scope: tuple[int, ...]) -> Result:
        """The occurrences of both sides that are close enough (see the module docstring)."""
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope) if left else None
        if not left or not right:
            return None
        return near_pairs(left, right, node.n, node.ordered)


def _occurrences(toks: Tokens, f: int, found: list[int], width: int) -> list[Occ]:
    """The occurrences in field ``f`` of a term of ``width`` + 1 words found at ``found``.

    A few are located word by word (:meth:`Tokens.span`); many (a hostile page repeating
    one word) take every word's offsets at once and are built by C loops, not Python ones.
    """
    if len(found) <= _FEW_OCCURRENCES:
        return [(f, p, p + width, *toks.span(p, p + width)) for p in found]
    lasts = list(map(add, found, repeat(width))) if width else found
    starts = map(toks.starts.__getitem__, found)
    ends = map(toks.ends.__getitem__, lasts)
    return list(zip(repeat(f), found, lasts, starts, ends, strict=False))


def _written(toks: Tokens, f: int, term: q.Term) -> list[Occ] | None:
    """The occurrences in field ``f`` of the ``case:`` term ``term``: those of its folded
    words (:meth:`Tokens.occurrences`) whose words as written are the term's (the last
    need only start with the term's last, for a prefix); None when the folded words occur
    so often that :func:`find` costs less."""
    found = toks.occurrences(_folded_key(term), _FEW_OCCURRENCES + 1, f)
    if len(found) > _FEW_OCCURRENCES:
        return None
    *most, end = term.words
    out = []
    for occ in found:
        *before, last = toks.written(occ[3], occ[4])
        if before == most and (last.startswith(end) if term.prefix else last == end):
            out.append(occ)
    return out


_FEW_OCCURRENCES = 64
_FEW_LISTS = 8
_SORT_OCCURRENCES = 4 * MAX_HITS  # fewer left after the cut are sorted, not merged
_BATCH = 16  # an OR or entity with this many terms finds them together


# For each of folded (0) and ``case:`` (1) terms: their scan keys, and the term of each key.
GroupKeys = tuple[tuple[frozenset[str], dict[str, q.Term]], ...]


class _Same:
    """A group's kids as a cache key by identity: hashing thousands of terms would cost
    more than the cache saves."""

    __slots__ = ("obj",)

    def __init__(self, obj: Sequence[q.Node]) -> None:
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj


@lru_cache(maxsize=256)
def _group_keys(kids: _Same, *, exact: bool) -> GroupKeys:
    """The scan keys of the terms among ``kids`` (``case:`` ones too when ``exact``),
    worked out once per group (the cache holds the group, so its identity stays its own),
    and so the same set every time: the automaton built for it is kept (see
    :func:`monitor.words.locate`)."""
    groups: tuple[dict[str, q.Term], dict[str, q.Term]] = ({}, {})
    for kid in kids.obj:
        if isinstance(kid, q.Term) and (exact or not kid.exact):
            groups[kid.exact][_scan_key(kid)] = kid
    return tuple((frozenset(by_key), by_key) for by_key in groups)


def _folded_key(term: q.Term) -> str:
    """The key of ``term`` in :attr:`Tokens.joined` (for a ``case:`` term, of its folded
    words): as :func:`monitor.checks.sequence_key`."""
    words = map(fold, term.words) if term.exact else term.words
    return " " + " ".join(words) + ("" if term.prefix else " ")


def _scan_key(term: q.Term) -> str:
    """What :meth:`monitor.words.Tokens.scan` looks for to find ``term``."""
    return " " + " ".join(term.words) + ("" if term.prefix else " ")


def union(results: Sequence[Result]) -> Result:
    """The first MAX_HITS occurrences per field of every result that holds, sorted; None
    when none holds.

    Results are often the very same list (one term's cached occurrences, ANDed or ORed
    again and again), so each distinct list is merged once. Few occurrences in all are
    sorted together; more are taken field by field, as far as the first MAX_HITS need
    (:func:`_first_distinct`), so an OR of hundreds of ANDs on a page of their words costs
    about what it keeps, not what its kids hold.
    """
    held = [r for r in results if r is not None]
    if len(held) > _FEW_LISTS:
        held = list({id(r): r for r in held}.values())
    if len(held) < 2:
        return held[0] if held else None
    total = sum(map(len, held))
    if total <= _FEW_OCCURRENCES:
        return sorted(set().union(*held))
    if total <= MAX_HITS:
        # Sorting the sum of sorted lists merges them; a repeat is next to its twin.
        return list(dict.fromkeys(sorted(chain.from_iterable(held))))
    cuts = [bisect_left(r, (1,)) for r in held]
    title = [r[:cut] for r, cut in zip(held, cuts, strict=True) if cut]
    body = [r[cut:] for r, cut in zip(held, cuts, strict=True) if cut < len(r)]
    return _first_distinct(title) + _first_distinct(body)


def _first_distinct(parts: list[list[Occ]]) -> list[Occ]:
    """The first MAX_HITS distinct occurrences of the sorted lists ``parts`` (one field's).

    Each list's first few are sampled, twice as many each time until the sample holds
    MAX_HITS distinct (or all there is): the answer ends where they do at the latest, so
    every list is cut there. What is left is sorted when it is little; otherwise (lists
    crowding different stretches of the field) merged, stopping at MAX_HITS distinct. So
    the work is about what the answer needs, with the repeats of its occurrences in other
    lists, however long the lists are.
    """
    if sum(map(len, parts)) <= _SORT_OCCURRENCES:
        return _sorted_distinct(parts)[:MAX_HITS]
    size, longest = MAX_HITS // len(parts) + 1, max(map(len, parts))
    while True:
        sample = _sorted_distinct([part[:size] for part in parts])
        if len(sample) >= MAX_HITS or size >= longest:
            break
        size *= 2
    if size >= longest:
        return sample[:MAX_HITS]
    last = sample[MAX_HITS - 1]
    parts = [part[: bisect_right(part, last)] for part in parts]
    if sum(map(len, parts)) <= _SORT_OCCURRENCES:
        return _sorted_distinct(parts)[:MAX_HITS]
    seen = set().union(*parts)
    if len(seen) <= _SORT_OCCURRENCES:
        return sorted(seen)[:MAX_HITS]
    return _distinct(merge(*parts), MAX_HITS)


def _sorted_distinct(lists: list[list[Occ]]) -> list[Occ]:
    """The distinct occurrences of the sorted ``lists``, sorted: few lists are sorted
    together (which merges them), many are put in a set first (short lists of the same
    occurrences, which sorting together would compare again and again)."""
    if len(lists) <= _FEW_LISTS:
        return _distinct(sorted(chain.from_iterable(lists)))
    return sorted(set().union(*lists))


def _distinct(occs: Iterable[Occ], limit: int | None = None) -> list[Occ]:
    """The first ``limit`` distinct of the sorted ``occs`` (a repeat is next to its twin)."""
    return list(islice(map(itemgetter(0), groupby(occs)), limit))


def near_pairs(left: list[Occ], right: list[Occ], n: int, ordered: bool) -> Result:
    """The occurrences of ``left`` and ``right`` that are within ``n`` words of each other.

    Each occurrence is kept when a partner exists on the allowed side, which the other
    side's sorted first (or last) words tell (see :func:`_within`), so the work is about
    linear in L + R however many pairs there are; the loops run in C (``map``), not Python.
    """
    kept = _partnered(left, right, n, ordered, left_side=True)
    if not kept:
        return None
    # A term NEAR itself (or overlapping operands) yields some occurrences on both sides.
    return union([kept, _partnered(right, left, n, ordered, left_side=False)])


def _partnered(
    mine: list[Occ], theirs: list[Occ], n: int, ordered: bool, *, left_side: bool
) -> list[Occ]:
    """The occurrences of ``mine`` with a partner in ``theirs``, field by field: a later
    one starting within ``n`` words of its end, or (unless ``ordered`` forbids it for this
    side) an earlier one ending within ``n`` words of its start."""
    out: list[Occ] = []
    for f in (0, 1):
        own, other = _in_field(mine, f), _in_field(theirs, f)
        if not own or not other:
            continue
        later = partial(_within, own, 2, _words(other, 1), 1, n)
        earlier = partial(_within, own, 1, _words(other, 2), -n, -1)
        if not ordered:
            out += compress(own, map(or_, later(), earlier()))
        else:
            out += compress(own, later() if left_side else earlier())
    return out


def _in_field(occs: list[Occ], f: int) -> list[Occ]:
    """The occurrences of field ``f`` (0 or 1) in the sorted ``occs``."""
    cut = bisect_left(occs, (1,))
    return occs[:cut] if f == 0 else occs[cut:]


def _words(occs: list[Occ], at: int) -> list[int]:
    """Each occurrence's first (``at`` 1) or last (``at`` 2) word, sorted."""
    return sorted(map(itemgetter(at), occs))


def _within(occs: list[Occ], at: int, words: list[int], lo: int, hi: int) -> Iterator[bool]:
    """For each occurrence: whether some word of the sorted ``words`` lies in
    ``occ[at] + lo .. occ[at] + hi``.

    Few words are bisected for; many (a hostile page repeating a word) are counted in a
    table of running counts over the words they span, so each look-up is an index, not a
    bisection (a fifth of the time at 100k occurrences).
    """
    mine = list(map(itemgetter(at), occs))  # sorted by first word, so not by last
    base = min(min(mine) + lo, words[0])
    size = max(max(mine) + hi, words[-1]) - base + 2
    if len(mine) < _DENSE or size > 8 * (len(mine) + len(words)):
        first = map(bisect_left, repeat(words), map(add, mine, repeat(lo)))
        past = map(bisect_right, repeat(words), map(add, mine, repeat(hi)))
        return map(lt, first, past)
    marks = bytearray(size)
    deque(map(marks.__setitem__, map(sub, words, repeat(base)), repeat(1)), maxlen=0)
    below = list(accumulate(marks, initial=0))  # below[k]: words before base + k
    first = map(below.__getitem__, map(add, mine, repeat(lo - base)))
    past = map(below.__getitem__, map(add, mine, repeat(hi + 1 - base)))
    return map(lt, first, past)


_DENSE = 512


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
