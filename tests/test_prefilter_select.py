"""The C candidate selection (monitor/_prefilter.c) against its plain definition: which rules
a filing picks given an article's words and keys, what it counts, and what it refuses."""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import query as q
from monitor._prefilter import Keys, Table
from monitor.article import Article
from monitor.evaluate import Evaluator
from monitor.prefilter import _COUNT_ALL_UNTIL, _SAMPLE, Index, term_key
from monitor.rules import RuleSet
from tests.test_rules_engine import ruleset

Postings = dict[str, tuple[int, ...]]
Seconds = dict[str, tuple[tuple[str, tuple[int, ...]], ...]]


def plain(
    postings: Postings, seconds: Seconds, always: tuple[int, ...], words: set[str], keys: set[str]
) -> list[int]:
    """The definition: a word key is present when among ``words``, a phrase or prefix key
    (starting with a space) when among ``keys``; a second key when among either."""

    def present(key: str) -> bool:
        return key in keys if key.startswith(" ") else key in words

    picked = set(always)
    for key, rules in postings.items():
        if present(key):
            picked.update(rules)
    for key, pairs in seconds.items():
        if present(key):
            for second, rules in pairs:
                if second in words or second in keys:
                    picked.update(rules)
    return sorted(picked)


# Words and keys of every str kind, short and long (more than 16 bytes are not copied into
# the table's slots), and pairs that differ only late.
VOCAB = [
    "korea",
    "japan",
    "deterrence",
    "séoul",
    "москва",
    "中国",
    "😀emoji",
    "x" * 16,
    "x" * 17,
    "internationalisation",
    "internationalisatiom",
    " south korea ",
    " deter",
    " 中 国 ",
    " москв",
    " a very long phrase key indeed ",
    " a very long phrase key indeeD ",
    " korea",
    "",
]


@st.composite
def filings(draw: st.DrawFn) -> tuple[Postings, Seconds, tuple[int, ...]]:
    rule = st.integers(0, 40)
    rules = st.lists(rule, max_size=4).map(tuple)
    keys = st.sampled_from(VOCAB)
    postings = draw(st.dictionaries(keys, rules, max_size=8))
    pairs = st.lists(st.tuples(keys, rules), max_size=4).map(tuple)
    seconds = draw(st.dictionaries(keys, pairs, max_size=8))
    return postings, seconds, tuple(draw(st.lists(rule, max_size=3)))


@settings(max_examples=400, deadline=None)
@given(filings(), st.sets(st.sampled_from(VOCAB)), st.sets(st.sampled_from(VOCAB)))
def test_select_is_the_plain_definition(
    filing: tuple[Postings, Seconds, tuple[int, ...]], words: set[str], keys: set[str]
) -> None:
    """Any filing picks exactly the rules the plain definition does, whatever the keys'
    kinds and lengths, and whether a key turns up among words or among keys."""
    postings, seconds, always = filing
    ids = Keys(VOCAB)
    table = Table(ids, postings, seconds, always)
    # Fresh str objects: equal keys are told by their characters, not their identity.
    fresh = {"".join(list(w)) for w in words}
    assert table.select(fresh, set(keys), False) == plain(postings, seconds, always, words, keys)
    assert not ids.counted()


def test_counting() -> None:
    """With ``count``, each key among ``keys`` and each word key among ``words`` is counted
    once; a phrase key among words and anything not a key are not."""
    ids = Keys(["korea", " south korea ", "japan"])
    table = Table(ids, {}, {}, ())
    table.select({"korea", " south korea ", "other"}, {" south korea ", "japan", " x "}, True)
    table.select({"korea"}, set(), True)
    table.select({"korea", "japan"}, set(), False)
    assert sorted(ids.counted()) == [(" south korea ", 1), ("japan", 1), ("korea", 2)]
    assert (ids.count("korea"), ids.count("nothing"), len(ids)) == (2, 0, 3)


def test_large_articles_and_many_rules() -> None:
    """Sets too big for the call's stack tables and more rules than its stack buffer take
    the heap paths and give the same answer."""
    words = [f"w{i}" for i in range(5000)]
    rules = tuple(range(3000))
    postings: Postings = {w: rules[i : i + 7] for i, w in enumerate(words[:2000])}
    seconds: Seconds = {w: ((words[-1], rules[-5:]),) for w in words[2000:2100]}
    table = Table(Keys(words), postings, seconds, (2999, 0))
    article = set(words) | {f"other{i}" for i in range(3000)}
    got = table.select(article, {" k "}, True)
    assert got == plain(postings, seconds, (2999, 0), article, {" k "})
    assert got == list(range(2006)) + list(range(2995, 3000))
    assert table.select(article - {words[-1]}, set(), False) == [*range(2006), 2999]


class Word(str):
    """A str subclass: never taken for a key (its equality could be its own)."""

    calls = 0

    def __hash__(self) -> int:
        Word.calls += 1
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        Word.calls += 1
        return str(self) == other


def test_hostile_elements_are_never_keys() -> None:
    """Elements that are not exact str are never keys, and none of their code runs."""
    ids = Keys(["korea", " south korea "])
    table = Table(ids, {"korea": (1,), " south korea ": (2,)}, {}, ())
    words: set[object] = {Word("korea"), 5, None, b"korea", ("korea",)}
    keys: set[object] = {Word(" south korea ")}
    Word.calls = 0
    assert table.select(words, keys, True) == []  # type: ignore[arg-type]
    assert Word.calls == 0
    assert table.select(frozenset({"korea"}), frozenset(), True) == [1]
    assert ids.counted() == [("korea", 1)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ((["a", "a"],), ValueError),
        ((["a", 1],), TypeError),
        ((["a", Word("b")],), TypeError),
        ((5,), TypeError),
        ((), TypeError),
    ],
)
def test_keys_refuses(args: tuple[object, ...], error: type[Exception]) -> None:
    """Keys are distinct exact str."""
    with pytest.raises(error):
        Keys(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("postings", "seconds", "always", "error"),
    [
        ({"nokey": (1,)}, {}, (), KeyError),
        ({}, {"a": (("nokey", (1,)),)}, (), KeyError),
        ({"a": [1]}, {}, (), TypeError),
        ({"a": (-1,)}, {}, (), ValueError),
        ({"a": (2**32 - 1,)}, {}, (), ValueError),
        ({"a": (2**70,)}, {}, (), OverflowError),
        ({"a": ("1",)}, {}, (), ValueError),
        ({}, {"a": ("b",)}, (), TypeError),
        ({}, {"a": (("b",),)}, (), TypeError),
        ({}, {"a": [("b", (1,))]}, (), TypeError),
        ({}, {}, (-3,), ValueError),
        ({}, {}, [1], TypeError),
        ({1: (1,)}, {}, (), TypeError),
    ],
)
def test_table_refuses(
    postings: object, seconds: object, always: object, error: type[Exception]
) -> None:
    """A filing names only known keys and rules in range, in tuples."""
    with pytest.raises(error):
        Table(Keys(["a", "b"]), postings, seconds, always)  # type: ignore[arg-type]


def test_select_refuses() -> None:
    """select takes two sets and a flag."""
    table = Table(Keys(["a"]), {"a": (0,)}, {}, ())
    with pytest.raises(TypeError):
        table.select(["a"], set(), False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        table.select({"a"}, set())  # type: ignore[call-arg]


def test_select_refuses_set_subclasses() -> None:
    """A set subclass could run Python code mid-call through its __iter__, and yield objects
    the set does not hold, or more than its size: it is refused, never walked."""

    class Wide(set[str]):
        def __iter__(self):  # type: ignore[no-untyped-def]
            return (f"k{i}" for i in range(5000))

    table = Table(Keys(["a"]), {"a": (0,)}, {}, ())
    for words, keys in ((Wide(), set()), (set(), Wide({"a"})), (Wide({"a"}), frozenset())):
        with pytest.raises(TypeError):
            table.select(words, keys, True)
    assert table.select(frozenset({"a"}), set(), True) == [0]


def _reference_counts(index: Index, articles: list[tuple[set[str], set[str]]]) -> Counter[str]:
    """The counts learning keeps, as the Python index did: every article up to
    _COUNT_ALL_UNTIL, then one in _SAMPLE; the word keys among words and every key among
    keys."""
    counts: Counter[str] = Counter()
    every = {term_key(t) for node in index._nodes for t in q.terms(node) if isinstance(t, q.Term)}
    for seen, (words, keys) in enumerate(articles, 1):
        if seen > _COUNT_ALL_UNTIL and seen % _SAMPLE:
            continue
        counts.update(w for w in words if w in every and not w.startswith(" "))
        counts.update(k for k in keys if k in every)
    return counts


def test_learning_counts_and_refiles_as_documented() -> None:
    """The counts are those of the documented sampling, and the candidates after each
    refiling are still the rules whose filed keys are present."""
    rng = random.Random(11)
    vocab = [f"wd{i}" for i in range(30)] + ["common", "often"]
    queries = [
        f"{a} AND {b}" if rng.random() < 0.5 else f'"{a} {b}" AND {c}'
        for a, b, c in (rng.sample(vocab, 3) for _ in range(200))
    ]
    index = Index([q.parse(s) for s in queries])
    first = list(index.filed)
    articles = []
    for _ in range(600):
        words = set(rng.sample(vocab, rng.randint(0, 10))) | {"common"}
        keys = {f" {a} {b} " for a in words for b in words}
        articles.append((words, keys))
        filed = list(index.filed)
        got = index.candidates(words, keys)
        assert got == [
            i
            for i, (first, second) in enumerate(filed)
            if any(k in words or k in keys for k in first)
            and (not second or any(k in words or k in keys for k in second))
        ]
    counts = _reference_counts(index, articles)
    assert dict(index._ids.counted()) == +counts
    assert index.filed != first  # it refiled


def test_matching_in_threads_while_refiling() -> None:
    """Threads matching at once while the index learns and refiles fire the same rules as
    one thread alone."""
    rs = ruleset("(zebra OR yak) AND something", "something OR yak", "yak AND NOT zebra")
    texts = ["something here", "something about a yak", "a zebra and a yak", "nothing"]
    articles = [Article(text=t) for t in texts]
    alone = RuleSet(rs.rules, rs._nodes)
    expected = [[m.rule_id for m in alone.match(a)] for a in articles]
    failures: list[str] = []

    def work() -> None:
        for n in range(300):
            i = n % len(articles)
            got = [m.rule_id for m in rs.match(articles[i])]
            if got != expected[i]:
                failures.append(f"{texts[i]!r}: {got} != {expected[i]}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert rs._index._counted > _COUNT_ALL_UNTIL


def test_evaluator_sets_select_alike() -> None:
    """The words and keys an Evaluator makes (sets of the vocabulary's own str objects, or
    of new ones for text not folding to ASCII) select as the plain definition says."""
    rs = ruleset('"south korea" AND séoul', "москва OR korea", "deter* AND NOT x")
    for text in ["South Korea Séoul", "Москва", "deterrence", "korea x deter"]:
        ev = Evaluator(Article(text=text), rs._known)
        title, body = (rs._scanner.find(t.joined) if t.keys is None else t.keys for t in ev.fields)
        keys = title | body
        table = rs._index._table
        assert table.select(ev.words[2], keys, False) == plain(
            table.postings, table.seconds, tuple(rs._index.always), ev.words[2], keys
        )
