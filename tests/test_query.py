"""The query language parser and the word tokeniser: structure, precedence and errors."""

from __future__ import annotations

import pytest

from monitor import query as q
from monitor.words import fold, split, tokenize

ENTITIES = {"sk": [q.parse_alias("South Korea"), q.parse_alias("case:ROK")]}


def show(node: q.Node) -> str:
    """A compact s-expression of an AST, for table-driven comparisons."""
    match node:
        case q.Term(words=words, exact=exact, prefix=prefix):
            text = " ".join(words) + ("*" if prefix else "")
            text = f'"{text}"' if len(words) > 1 else text
            return f"case:{text}" if exact else text
        case q.Regex(pattern=pattern):
            return f"/{pattern}/"
        case q.And(children=kids):
            return "(AND " + " ".join(show(k) for k in kids) + ")"
        case q.Or(children=kids):
            return "(OR " + " ".join(show(k) for k in kids) + ")"
        case q.Not(child=child):
            return f"(NOT {show(child)})"
        case q.Near(left=left, right=right, n=n, ordered=ordered):
            op = "ONEAR" if ordered else "NEAR"
            return f"({op}/{n} {show(left)} {show(right)})"
        case q.Scope(field=name, child=child):
            return f"{name}:{show(child)}"
        case q.Meta(field=name, value=value):
            return f"{name}={value}"
        case q.Entity(name=name):
            return f"@{name}"
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("korea", "korea"),
        ("Korea", "korea"),
        ("KOREA", "korea"),
        ("São", "sao"),
        ('"operational control"', '"operational control"'),
        ('"S. Korea"', '"s korea"'),
        ("S.Korea", '"s korea"'),
        ("Korea's", '"korea s"'),
        ("deter*", "deter*"),
        ('"nuclear deter*"', '"nuclear deter*"'),
        ("case:ROK", "case:ROK"),
        ('case:"ROK Army"', 'case:"ROK Army"'),
        ("a AND b", "(AND a b)"),
        ("a b", "(AND a b)"),
        ("a b c", "(AND a b c)"),
        ("a OR b", "(OR a b)"),
        ("a OR b OR c", "(OR a b c)"),
        ("NOT a", "(NOT a)"),
        ("a NOT b", "(AND a (NOT b))"),
        ("a AND NOT b", "(AND a (NOT b))"),
        ("NOT NOT a", "(NOT (NOT a))"),
        ("a and b", "(AND a and b)"),
        ("a or b", "(AND a or b)"),
        ("not a", "(AND not a)"),
        ("near", "near"),
        ("a OR b AND c", "(OR a (AND b c))"),
        ("a AND b OR c", "(OR (AND a b) c)"),
        ("a b OR c d", "(OR (AND a b) (AND c d))"),
        ("(a OR b) AND c", "(AND (OR a b) c)"),
        ("(a OR b) c", "(AND (OR a b) c)"),
        ("a NEAR b", "(NEAR/5 a b)"),
        ("a NEAR/3 b", "(NEAR/3 a b)"),
        ("a ONEAR/2 b", "(ONEAR/2 a b)"),
        ("a ONEAR b", "(ONEAR/5 a b)"),
        ("a NEAR/2 b c", "(AND (NEAR/2 a b) c)"),
        ("a OR b NEAR c", "(OR a (NEAR/5 b c))"),
        ("a NEAR b NEAR c", "(NEAR/5 (NEAR/5 a b) c)"),
        ("(a OR b) NEAR/4 c", "(NEAR/4 (OR a b) c)"),
        ('"x y" NEAR/1 z', '(NEAR/1 "x y" z)'),
        ("a NEAR/1000 b", "(NEAR/1000 a b)"),
        ("title:korea", "title:korea"),
        ("body:(a OR b)", "body:(OR a b)"),
        ('title:"S Korea"', 'title:"s korea"'),
        ("title:NOT a", "title:(NOT a)"),
        ("site:Example.com", "site=example.com"),
        ("site:www.example.com", "site=example.com"),
        ("source:Yonhap", "source=yonhap"),
        ("lang:EN", "lang=en"),
        ('source:"Korea Herald"', "source=korea herald"),
        ("@sk", "@sk"),
        ("@sk AND (opcon OR x)", "(AND @sk (OR opcon x))"),
        ("/ab+c/", "/ab+c/"),
        (r"/a\/b/", "/a/b/"),
        (r"/\d+/", r"/\d+/"),
        ("((a))", "a"),
        ("  a   ", "a"),
        ("title:(a b) OR site:x.org", "(OR title:(AND a b) site=x.org)"),
        ("서울", "서울"),
        ("Москва", "москва"),
        ("北京", '"北 京"'),
        ("U.S.", '"u s"'),
        ("AT&T", '"at t"'),
        ("10:30", '"10 30"'),
    ],
)
def test_parse_structure(query: str, expected: str) -> None:
    """The parser builds the AST the precedence rules (NOT > NEAR > AND > OR) call for."""
    assert show(q.parse(query, ENTITIES)) == expected


@pytest.mark.parametrize(
    ("query", "offset", "message"),
    [
        ("", 0, "empty query"),
        ("   ", 0, "empty query"),
        ("a AND", 2, "'AND' needs a term on its right"),
        ("AND a", 0, "'AND' needs a term on its left"),
        ("a OR", 2, "'OR' needs a term on its right"),
        ("OR a", 0, "'OR' needs a term on its left"),
        ("a OR OR b", 2, "'OR' needs a term on its right"),
        ("a AND OR b", 2, "'AND' needs a term on its right"),
        ("NOT", 0, "'NOT' needs a term on its right"),
        ("a NOT", 2, "'NOT' needs a term on its right"),
        ("a NEAR", 2, "'NEAR' needs a term on its right"),
        ("NEAR a", 0, "'NEAR' needs a term on its left"),
        ("a NEAR/3", 2, "'NEAR/3' needs a term on its right"),
        ("(a AND)", 3, "'AND' needs a term on its right"),
        ("(AND a)", 1, "'AND' needs a term on its left"),
        ("(a", 0, "unclosed '('"),
        ("a (b OR (c)", 2, "unclosed '('"),
        ("a)", 1, "unmatched ')'"),
        ("(a))", 3, "unmatched ')'"),
        (")", 0, "unmatched ')'"),
        ("()", 0, "empty parentheses"),
        ('"abc', 0, "unclosed quote"),
        ('a "b c', 2, "unclosed quote"),
        ('""', 0, 'no letters or digits in ""'),
        ('" - "', 0, "no letters or digits"),
        ("-", 0, "no letters or digits in -"),
        ("a NEAR/0 b", 7, "NEAR/n needs a whole number n from 1 to 1000"),
        ("a NEAR/x b", 7, "NEAR/n needs a whole number"),
        ("a NEAR/ b", 7, "NEAR/n needs a whole number"),
        ("a NEAR/-1 b", 7, "NEAR/n needs a whole number"),
        ("a NEAR/1001 b", 7, "NEAR/n needs a whole number"),
        ("a ONEAR/0 b", 8, "ONEAR/n needs a whole number"),
        ("a NEAR/2.5 b", 7, "NEAR/n needs a whole number"),
        ("de*", 0, "a prefix needs at least 3 letters before '*'"),
        ("x d*", 2, "a prefix needs at least 3 letters before '*'"),
        ("*", 0, "no letters or digits"),
        ("*abc", 0, "'*' may only end a word"),
        ("de*ter", 0, "'*' may only end a word"),
        ('"deter* nuclear"', 0, "'*' may only end a word"),
        ('"nuclear de*"', 0, "a prefix needs at least 3 letters"),
        ("abc.*", 0, "a prefix needs at least 3 letters"),
        ("foo:bar", 0, "unknown field 'foo:'"),
        ("a url:x", 2, "unknown field 'url:'"),
        ("http://x.org", 0, "unknown field 'http:'"),
        ("title:", 0, "'title:' needs a term on its right"),
        ("title: OR a", 0, "'title:' needs a term on its right"),
        ("site:", 0, "site: needs a value"),
        ('site:"x', 5, "unclosed quote"),
        ("case:", 0, "case: needs a word or a quoted phrase"),
        ("case:(a)", 0, "case: needs a word or a quoted phrase"),
        ("@", 0, "'@' must be followed by an entity name"),
        ("a @nope", 2, "unknown entity '@nope'"),
        ("/(a/", 0, "bad regex: missing )"),
        ("a /[z-a]/", 2, "bad regex"),
        (r"/(a)\1/", 0, "bad regex"),
        ("/(?=x)/", 0, "bad regex"),
        ("//", 0, "empty regex"),
        ("/abc", 0, "unclosed regex"),
        ("/a/b", 3, "unexpected text right after the regex"),
        ("site:x NEAR a", 0, "NEAR needs a word, phrase or group on each side, not 'site:x'"),
        ("a NEAR NOT b", 7, "NEAR needs a word, phrase or group on each side, not 'NOT b'"),
        ("NOT a NEAR b", 0, "NEAR needs a word, phrase or group on each side, not 'NOT a'"),
        ("a ONEAR lang:en", 8, "ONEAR needs a word, phrase or group on each side"),
        ("(" * 101 + "a" + ")" * 101, 100, "nested too deeply"),
        ("NOT " * 101 + "a", 400, "NOT repeated too many times"),
    ],
)
def test_parse_errors(query: str, offset: int, message: str) -> None:
    """Each malformed query is refused with a message and the offset of the culprit."""
    with pytest.raises(q.QueryError) as info:
        q.parse(query, ENTITIES)
    assert info.value.offset == offset
    assert message in info.value.message


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("South Korea", '"south korea"'),
        ("S. Korea", '"s korea"'),
        ("case:ROK", "case:ROK"),
        ('case:"ROK Army"', 'case:"ROK Army"'),
        ("Moon Jae-in", '"moon jae in"'),
        ("Korea*", "korea*"),
        ("São Paulo", '"sao paulo"'),
    ],
)
def test_parse_alias(alias: str, expected: str) -> None:
    """Entity aliases are literal words or phrases, with case: and a final * understood."""
    assert show(q.parse_alias(alias)) == expected


@pytest.mark.parametrize("alias", ["", "---", "ab*", "case:"])
def test_parse_alias_errors(alias: str) -> None:
    """An alias with no word in it, or a too-short prefix, is refused."""
    with pytest.raises(q.QueryError):
        q.parse_alias(alias)


def test_parse_keeps_source_text() -> None:
    """Every clause remembers its own text, which explain() prints."""
    node = q.parse('@sk AND ("operational control" OR OPCON)', ENTITIES)
    assert isinstance(node, q.And)
    assert [k.src for k in node.children] == ["@sk", '"operational control" OR OPCON']
    assert [k.start for k in node.children] == [0, 9]


def test_terms_lists_every_term() -> None:
    """terms() walks the whole tree, NOT-ed terms and entity aliases included."""
    node = q.parse("@sk a NEAR b NOT c /x/", ENTITIES)
    shown = [t.pattern if isinstance(t, q.Regex) else " ".join(t.words) for t in q.terms(node)]
    assert shown == ["south korea", "ROK", "a", "b", "c", "x"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Korea's", ["Korea", "s"]),
        ("S.Korea", ["S", "Korea"]),
        ("S. Korea", ["S", "Korea"]),
        ("war-time", ["war", "time"]),
        ("under_score", ["under", "score"]),
        ("São Paulo", ["São", "Paulo"]),
        ("서울 특별시", ["서울", "특별시"]),
        ("Москва, Россия", ["Москва", "Россия"]),
        ("القاهرة، مصر", ["القاهرة", "مصر"]),
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),
        ("北京市", ["北", "京", "市"]),
        ("東京タワー", ["東", "京", "タ", "ワ", "ー"]),
        ("F-35A 2024", ["F", "35A", "2024"]),
        ("", []),
        ("...", []),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    """Words are runs of letters, digits and marks; CJK characters are words of their own."""
    assert split(text) == words


@pytest.mark.parametrize(
    ("word", "folded"),
    [
        ("Korea", "korea"),
        ("São", "sao"),
        ("SÃO", "sao"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("ΣΊΣΥΦΟΣ", "σισυφοσ"),
        ("서울", "서울"),
        ("Ḱ", "k"),
        ("Ärzte", "arzte"),
    ],
)
def test_fold(word: str, folded: str) -> None:
    """Folding removes case and accents but keeps Hangul syllables whole."""
    assert fold(word) == folded


def test_tokenize_offsets_and_index() -> None:
    """Tokens keep each word's offsets into the text and an index by folded word."""
    toks = tokenize("São Paulo, são PAULO!")
    assert toks.raw == ["São", "Paulo", "são", "PAULO"]
    assert [toks.text[s:e] for s, e in zip(toks.starts, toks.ends, strict=True)] == toks.raw
    assert toks.index == {"sao": [0, 2], "paulo": [1, 3]}
