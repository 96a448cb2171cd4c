"""Candidate selection: which rules could fire, from the article's words and one key scan.

Promises:

- Every rule is filed under a set of *keys* at least one of which must be present for the
  rule to hold; terms under NOT never select. A key is a folded word (present when the word
  is), or the key of a phrase or prefix (``" south korea "``, ``" deter"``: see
  :func:`monitor.checks.sequence_key`), present when it is a substring of the article's
  joined folded words. A rule with no such set (only NOT, metadata or regexes) is a
  candidate for every article.
- :class:`Scanner` finds every phrase and prefix key of the rules in one pass (Hyperscan or
  Aho-Corasick) over the joined folded text of a field, so a phrase selects its rules only
  when the whole phrase is there: ``"university hospital"`` is not tried on every article
  with "university". (A field that folds to ASCII has its keys found by the fold itself,
  :class:`monitor._words.Vocabulary`, the same keys a scan finds.)
- For an AND the rule is filed under the child whose keys look rarest. Rarity starts as a
  guess (long words before short ones, phrases before their words, whole words before stems,
  very common English words last) and is then learnt from the articles seen: the share of
  articles each key occurred in. When a key turns out common, the rules filed under it are
  filed again under their rarest alternative. Which rules are candidates may change as the
  index learns; which rules fire never does, since every rule's check runs on every
  article where its keys are present.
- ``candidates`` is one C call (:mod:`monitor._prefilter`) that looks each of the article's
  distinct words and keys up once among the rules' keys, walks the rules filed under the
  keys present (testing each one's second key, if any, in a small table of the keys
  present), and counts the keys for the learning; it never looks at a rule that no key
  selected. Refiling builds new tables and swaps them in whole, so concurrent matching in
  other threads sees either the old index or the new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from operator import itemgetter

import ahocorasick

try:
    import hyperscan
except ImportError:  # no wheel for this platform: the Aho-Corasick automaton does the job
    hyperscan = None  # type: ignore[assignment]

from monitor import query as q
from monitor._prefilter import Keys, Table
from monitor.checks import sequence_key
from monitor.logs import get_logger

# The scan engines this machine has, the fastest last.
ENGINES = ("ahocorasick",) if hyperscan is None else ("ahocorasick", "hyperscan")

Estimate = Callable[[str], float]
KeySets = tuple[set[str], set[str], set[str]]

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
_PRIOR_WEIGHT = 8.0  # how many articles the first guess of a key's rarity counts for
_HOT = 0.02  # a key in more than this share of articles gets its rules refiled…
_HOT_COUNT = 4  # …once it was seen in this many (one sighting in a few articles is noise)
_FIRST_REFILE = 32  # articles counted before the first refiling; then ×4 each time
_LAST_REFILE_STEP = 1 << 15
_COUNT_ALL_UNTIL = 64  # after this many articles, count one in _SAMPLE
_SAMPLE = 8
_MAX_PAIRS = 16  # a rule filed under more (key, second key) pairs than this goes by key alone


@lru_cache(maxsize=200_000)
def guess(key: str) -> float:
    """A first guess of the share of articles ``key`` occurs in."""
    if not key.startswith(" "):
        return 0.3 if key in _COMMON else min(0.2, 0.6 / len(key) ** 2)
    words = key.split()
    if not key.endswith(" "):
        if len(words) == 1:
            return min(0.5, 4 * guess(words[0]))
        words = words[:-1]
    return 0.2 * min(guess(w) for w in words)


def term_key(term: q.Term) -> str:
    """The key whose presence a term needs (its folded word, or its sequence key)."""
    return _term_key(term.words, term.exact, term.prefix)


@lru_cache(maxsize=200_000)
def _term_key(words: tuple[str, ...], exact: bool, prefix: bool) -> str:
    key = sequence_key(q.Term(words, exact, prefix))
    return key.strip() if len(words) == 1 and not prefix else key


def triggers(node: q.Node, rarity: Estimate = guess) -> set[str] | None:
    """Keys one of which must be present for ``node`` to hold; None when there are none."""
    match node:
        case q.Term():
            return {term_key(node)}
        case q.Entity(aliases=kids) | q.Or(children=kids):
            sets = [triggers(k, rarity) for k in kids]
            if any(s is None for s in sets):
                return None
            return {t for s in sets if s is not None for t in s}
        case q.And(children=kids):
            known = [s for s in (triggers(k, rarity) for k in kids) if s is not None]
            return min(known, key=lambda s: sum(map(rarity, s))) if known else None
        case q.Near(left=left, right=right):
            return triggers(q.And((left, right)), rarity)
        case q.Scope(child=child):
            return triggers(child, rarity)
    return None


class Scanner:
    """Finds which of a fixed set of phrase and prefix keys occur in joined folded text.

    With Hyperscan (installed where a wheel exists: Linux on x86_64) the keys are one
    literal database scanned with SIMD: on the corpus feeds, 9 µs an article against the
    Aho-Corasick automaton's 25 at 10k rules, 19 against 42 at 100k. The automaton does the
    same job everywhere else, and wherever Hyperscan refuses the keys (a CPU without SSSE3;
    keys holding a NUL, which its literal compiler would cut short). ``engine`` picks one
    (tests try both).
    """

    def __init__(self, keys: Iterable[str], engine: str | None = None) -> None:
        self.keys = frozenset(keys)
        self.engine = engine or ENGINES[-1]
        if self.engine not in ENGINES:
            raise ValueError(f"no scan engine {self.engine!r} here (there are {ENGINES})")
        self._find: Callable[[str], set[str]] = _nothing
        if not self.keys:
            return
        ordered = tuple(sorted(self.keys))
        if self.engine == "hyperscan" and not any("\x00" in key for key in ordered):
            try:
                self._find = _HyperscanFind(ordered)
                return
            except hyperscan.error as exc:  # it has limits of its own; the automaton has none
                get_logger().warning("hyperscan refused the rule keys", error=str(exc))
        self.engine = "ahocorasick"
        self._find = _AhoCorasickFind(ordered)

    def scan(self, joined: tuple[str, str, str]) -> KeySets:
        """The keys present in the title, the body and either, given ``Evaluator.joined``."""
        title, body = self._find(joined[0]), self._find(joined[1])
        return title, body, title | body

    def find(self, joined: str) -> set[str]:
        """The keys present in one field's joined folded words."""
        return self._find(joined)


def _nothing(text: str) -> set[str]:
    return set()


class _AhoCorasickFind:
    """The keys occurring in a text, by one pass of an Aho-Corasick automaton."""

    def __init__(self, keys: Sequence[str]) -> None:
        automaton = ahocorasick.Automaton()
        for key in keys:
            automaton.add_word(key, key)
        automaton.make_automaton()
        self._automaton = automaton

    def __call__(self, text: str) -> set[str]:
        return set(map(itemgetter(1), self._automaton.iter(text)))


class _HyperscanFind:
    """The keys occurring in a text, by one Hyperscan scan of its UTF-8 bytes (a key is a
    substring of a text exactly when its UTF-8 is one of the text's UTF-8)."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = keys
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[key.encode("utf-8", "surrogatepass") for key in keys],
            ids=list(range(len(keys))),
            elements=len(keys),
            flags=hyperscan.HS_FLAG_SINGLEMATCH,  # one report per key and scan
            literal=True,
        )
        self._scratch = hyperscan.Scratch(self._db)
        self._lock = threading.Lock()
        self._local = threading.local()  # a scratch space is for one scan at a time

    def __call__(self, text: str) -> set[str]:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            with self._lock:
                scratch = self._local.scratch = self._scratch.clone()
        found: list[int] = []
        self._db.scan(
            text.encode("utf-8", "surrogatepass"),
            match_event_handler=lambda key, *_: found.append(key),
            scratch=scratch,
        )
        return set(map(self._keys.__getitem__, found))


Filing = tuple[tuple[str, ...], tuple[str, ...]]  # (keys, second keys), see ``filing``


def filing(node: q.Node, rarity: Estimate = guess) -> Filing:
    """Where a rule goes: the keys of its rarest necessary clause (one of which must be
    present, as :func:`triggers` says) and, when the query is an AND of two or more such
    clauses, the keys of the next rarest one (one of which must be present too); ``((), ())``
    for a rule to try on every article."""
    found = sorted(_clauses(node, rarity), key=lambda c: sum(map(rarity, c)))
    if not found:
        return (), ()
    first = tuple(found[0])
    if len(found) > 1 and len(first) * len(found[1]) <= _MAX_PAIRS:
        return first, tuple(found[1])
    return first, ()


def _clauses(node: q.Node, rarity: Estimate) -> list[set[str]]:
    """Key sets that must each have a key present for ``node`` to hold."""
    match node:
        case q.And(children=kids):
            return [s for s in (triggers(k, rarity) for k in kids) if s is not None]
        case q.Near(left=left, right=right):
            return _clauses(q.And((left, right)), rarity)
        case q.Scope(child=child):
            return _clauses(child, rarity)
    found = triggers(node, rarity)
    return [] if found is None else [found]


Postings = dict[str, tuple[int, ...]]
Seconds = dict[str, tuple[tuple[str, tuple[int, ...]], ...]]


class _Table:
    """Rules by key, never changed once built (refiling makes anew): ``postings[key]`` are
    the rules filed under ``key`` alone, and ``seconds[key]`` holds ``(second, rules)``
    for the rules filed under ``key`` that also need ``second``. ``select`` is the same
    filing as flat arrays by key id (:class:`monitor._prefilter.Table`): picking an
    article's candidates is one C call, looking each of its words and keys up once."""

    __slots__ = ("postings", "seconds", "select")

    def __init__(
        self, postings: Postings, seconds: Seconds, ids: Keys, always: Sequence[int]
    ) -> None:
        # Tuples of ints and strings are left alone by the cycle collector, which would
        # otherwise walk every posting of 100k rules on each full collection.
        self.postings = postings
        self.seconds = seconds
        self.select = Table(ids, postings, seconds, tuple(always)).select

    @classmethod
    def build(
        cls,
        postings: Mapping[str, Sequence[int]],
        pairs: Mapping[str, Mapping[str, Sequence[int]]],
        ids: Keys,
        always: Sequence[int],
    ) -> _Table:
        return cls(
            {k: tuple(v) for k, v in postings.items()},
            {k: _items(v) for k, v in pairs.items()},
            ids,
            always,
        )

    def changed(
        self,
        postings: Mapping[str, Sequence[int]],
        pairs: Mapping[str, Mapping[str, Sequence[int]]],
        ids: Keys,
        always: Sequence[int],
    ) -> _Table:
        """A new table with the entries of the keys given replaced (an empty one removes
        its key). The dicts are copied whole (a C-speed copy), only the changed entries are
        rebuilt in Python, and the arrays are made anew in C."""
        new_postings, new_seconds = dict(self.postings), dict(self.seconds)
        for key, rules in postings.items():
            if rules:
                new_postings[key] = tuple(rules)
            else:
                new_postings.pop(key, None)
        for key, inner in pairs.items():
            items = _items(inner)
            if items:
                new_seconds[key] = items
            else:
                new_seconds.pop(key, None)
        return _Table(new_postings, new_seconds, ids, always)


def _items(inner: Mapping[str, Sequence[int]]) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((s, tuple(r)) for s, r in inner.items() if r)


def _file(
    i: int, where: Filing, postings: dict[str, list[int]], pairs: dict[str, dict[str, list[int]]]
) -> None:
    keys, seconds = where
    for key in keys:
        if seconds:
            inner = pairs.setdefault(key, {})
            for second in seconds:
                inner.setdefault(second, []).append(i)
        else:
            postings.setdefault(key, []).append(i)


class Index:
    """Rules filed under their keys; ``candidates`` picks the ones worth checking."""

    def __init__(self, nodes: Sequence[q.Node]) -> None:
        self._nodes = nodes
        self.always: list[int] = []
        self.filed: list[Filing] = []
        postings: dict[str, list[int]] = {}
        pairs: dict[str, dict[str, list[int]]] = {}
        for i, node in enumerate(nodes):
            where = filing(node)
            self.filed.append(where)
            if where[0]:
                _file(i, where, postings, pairs)
            else:
                self.always.append(i)
        # Every key a rule could be filed under, numbered, with the counts that refiling
        # compares.
        every = {term_key(t) for node in nodes for t in q.terms(node) if isinstance(t, q.Term)}
        self.keys = frozenset(k for k in every if k.startswith(" "))
        # Every folded word of every term: the word terms' keys and the words of the others'.
        self.words = frozenset(w for k in every for w in k.split())
        self._ids = Keys(sorted(every))
        self._table = _Table.build(postings, pairs, self._ids, self.always)
        self._counted = 0
        self._seen = 0
        self._next_refile = _FIRST_REFILE
        self._settled: set[str] = set()
        self._lock = threading.Lock()

    def candidates(self, words: set[str], keys: set[str]) -> list[int]:
        """Indices of the rules worth checking on an article, in rule order, given its folded
        words and the keys :class:`Scanner` found in it (title and body together); the
        keys present are counted on the way, as :meth:`learn` does."""
        self._seen += 1
        count = self._seen <= _COUNT_ALL_UNTIL or not self._seen % _SAMPLE
        picked = self._table.select(words, keys, count)
        if count:
            self._counted_one()
        return picked

    def learn(self, words: set[str], keys: set[str]) -> None:
        """Count the keys present in one article (given its words and present phrase and
        prefix keys), or only one article in ``_SAMPLE`` after the first ones; refile rules
        when it is time."""
        self._seen += 1
        if self._seen > _COUNT_ALL_UNTIL and self._seen % _SAMPLE:
            return
        self._table.select(words, keys, True)
        self._counted_one()

    def _counted_one(self) -> None:
        self._counted += 1
        if self._counted >= self._next_refile and self._lock.acquire(blocking=False):
            try:
                self._next_refile = min(self._counted * 4, self._counted + _LAST_REFILE_STEP)
                self.refile()
            finally:
                self._lock.release()

    def rarity(self, key: str) -> float:
        """The share of articles ``key`` occurs in, learnt from those seen so far."""
        prior = guess(key) * _PRIOR_WEIGHT
        return (self._ids.count(key) + prior) / (self._counted + _PRIOR_WEIGHT)

    def refile(self) -> None:
        """File again the rules under keys that turned out common, under their rarest keys."""
        table = self._table
        limit = max(_HOT * self._counted, _HOT_COUNT - 1)
        # A snapshot: other threads keep counting while this one refiles.
        counts = self._ids.counted()
        hot = [k for k, n in counts if n > limit and k not in self._settled]
        self._settled.update(hot)
        rules = {i for key in hot for i in table.postings.get(key, ())}
        rules.update(i for key in hot for _, rs in table.seconds.get(key, ()) for i in rs)
        moved: dict[int, Filing] = {}
        for i in sorted(rules):
            where = filing(self._nodes[i], self.rarity)
            if where != self.filed[i]:
                moved[i] = self.filed[i]
                self.filed[i] = where
        if moved:
            self._table = self._rebuilt(table, moved)

    def _rebuilt(self, table: _Table, moved: dict[int, Filing]) -> _Table:
        """``table`` with the ``moved`` rules (given with where they were) filed where
        ``self.filed`` now says; only the entries that change are copied."""
        old_keys = {k for keys, _ in moved.values() for k in keys}
        new_keys = {k for i in moved for k in self.filed[i][0]}
        touched = old_keys | new_keys
        plain = {k: [i for i in table.postings.get(k, ()) if i not in moved] for k in touched}
        paired = {
            k: {s: [i for i in rs if i not in moved] for s, rs in table.seconds.get(k, ())}
            for k in touched
        }
        for i in moved:
            _file(i, self.filed[i], plain, paired)
        return table.changed(plain, paired, self._ids, self.always)
