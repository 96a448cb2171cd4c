r"""The rule query language: tokenizer and parser into a small AST.

Grammar (operators are upper-case only; lower-case ``and``/``or``/``not`` are words)::

    query   := or
    or      := and ("OR" and)*
    and     := near (["AND"] near)*              adjacent terms mean AND
    near    := unary (("NEAR" | "ONEAR") ["/" n] unary)*     NEAR alone is NEAR/5
    unary   := "NOT" unary | primary
    primary := "(" or ")" | word | word* | "phrase" | case:word | case:"phrase"
             | /regex/ | @entity | (title|body):primary | (site|source|lang):value

Precedence is therefore NOT > NEAR > AND > OR. Every error is a :class:`QueryError` carrying
the character offset inside the query where the problem is, so rule loading can point
``path:line:col`` at it. Words in terms are cut exactly as article text is
(:mod:`monitor.words`), so an unquoted ``S.Korea`` is the phrase "S Korea". A term that
contains no letter or digit is an error rather than something that silently never matches.

A query is bounded, so that no rule can make loading or matching blow up (every walk over
the AST recurses, and matching costs grow with terms): at most :data:`MAX_QUERY_CHARS`
characters, :data:`MAX_TERMS` terms counting every alias of every entity it names,
:data:`MAX_NEARS` NEARs, :data:`MAX_NEAR_OPERANDS` operands in one ``a NEAR b NEAR c``
chain, and :data:`MAX_DEPTH` levels of nesting whatever nests (groups, NOT, field scopes,
NEAR chains, AND inside OR).
Beyond one of them it is a :class:`QueryLimitError`.

A regex is bounded too, by what makes RE2 slow. RE2 runs in time linear in the text, but
the factor is the pattern's: its DFA keeps one state per set of pattern positions alive,
so ``a.{1000}z`` (a thousand ``.`` copies, any of which may be live) has more states than
its memory budget holds on a text such as random ``a``/``z``/space, and RE2 then falls
back to its NFA, which steps every live copy at every byte. Measured on a 200 KB field
(2-core VM, the evaluator's first 1,000 matches): ``a.{1000}z`` 4.7 s,
``(\w+\s){500}x`` 5.4 s, ``a.{200}z`` 1.0-1.3 s, ``a.{100}z`` and ``a\w{100}z`` 0.2-0.45 s,
``a.{20}z`` 0.1 s, ``a{1000}`` on a page of ``a`` 1.9 s, and ``a`` written out 1,000
times just as long — time follows the number of class positions, copied characters and
overlapping starts of literal runs once RE2 has expanded counted repetitions
(:func:`regex_width`), whatever the unit repeated. Program size does not:
``\pL`` alone is 1,200 instructions, and an alternation of 2,000 words 12,000, matched in
0.04 s at worst because RE2's automaton for words stays small. So a regex may have
at most :data:`MAX_REGEX_WIDTH` (100) such positions, which keeps the worst case measured
under 0.5 s, and the regexes of one query :data:`MAX_QUERY_REGEX_WIDTH` (300) together,
since each runs over every field; dates, tickers, ``\bCVE-\d{4}-\d{4,7}\b`` (11),
``\d{1,3}(,\d{3})*`` (6) and word lists (0) stay far below. Each regex gets
:data:`REGEX_MAX_MEM` (2 MiB, RE2's default is 8) for its program and DFA caches: it
bounds the memory hostile text can make a rule set of many regexes hold, costs realistic
regexes nothing measurable, and a larger budget only makes the hostile case thrash longer
before the fallback (``a.{100}z`` 0.75 s at 32 MiB). A regex whose program does not fit
is a :class:`QueryLimitError` too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import re2

from monitor.errors import ConfigError
from monitor.textnorm import normalize
from monitor.words import fold, split

DEFAULT_NEAR = 5
MAX_NEAR = 1000
MIN_PREFIX = 3
MAX_DEPTH = 100  # levels of the AST, and groups, NOTs and field scopes inside each other
MAX_QUERY_CHARS = 20_000
MAX_TERMS = 10_000  # entities hold the long lists: each alias counts
MAX_NEAR_OPERANDS = 10
MAX_NEARS = 100  # NEAR and ONEAR operators in one query
MAX_REGEX_WIDTH = 100  # see regex_width; ~0.4 s at worst on a 200 KB field
MAX_QUERY_REGEX_WIDTH = 300  # all of a query's regexes together: their times add up
REGEX_MAX_MEM = 2 << 20  # RE2's budget per regex for its program and DFA caches
SCOPES = ("title", "body")
METAS = ("site", "source", "lang")
FIELDS = (*SCOPES, *METAS, "case")
_STOP = frozenset(' \t\r\n()"')
_CHUNK = re.compile(r'[^ \t\r\n()"]*')
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"(O?NEAR)(?:/(.*))?\Z", re.S)
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_TOO_DEEP = f"nested too deeply: more than {MAX_DEPTH} levels of parentheses, NOT and field scopes"


class QueryError(ConfigError):
    """A query that cannot be parsed; ``offset`` is the character index inside the query."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class QueryLimitError(QueryError):
    """A query that parses but exceeds a size limit: a fault of the rule as a whole."""


# ---------------------------------------------------------------------------------------- AST


@dataclass(frozen=True, slots=True)
class Term:
    """Consecutive words; ``exact`` compares as written, ``prefix`` lets the last word grow."""

    words: tuple[str, ...]
    exact: bool = False
    prefix: bool = False
    src: str = ""
    start: int = 0

    @property
    def key(self) -> tuple[tuple[str, ...], bool, bool]:
        """What makes two terms find the same words (shared by every rule using it)."""
        return self.words, self.exact, self.prefix


@dataclass(frozen=True, slots=True)
class Regex:
    """An RE2 expression run over each field's text."""

    pattern: str
    regex: Any = field(compare=False, hash=False, repr=False)
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class And:
    """Every child holds."""

    children: tuple[Node, ...]
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child holds."""

    children: tuple[Node, ...]
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not hold."""

    child: Node
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Near:
    """``left`` and ``right`` within ``n`` words; ``ordered`` (ONEAR) puts left first."""

    left: Node
    right: Node
    n: int = DEFAULT_NEAR
    ordered: bool = False
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Scope:
    """The child, looked for only in one field (``title`` or ``body``)."""

    field: str
    child: Node
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Meta:
    """A test on the article's metadata: ``site``, ``source`` or ``lang``."""

    field: str
    value: str
    src: str = ""
    start: int = 0


@dataclass(frozen=True, slots=True)
class Entity:
    """``@name``: any of the entity's aliases."""

    name: str
    aliases: tuple[Term, ...]
    src: str = ""
    start: int = 0


Node = Term | Regex | And | Or | Not | Near | Scope | Meta | Entity


def terms(node: Node) -> list[Term | Regex]:
    """Every word term and regex in ``node``, NOT-ed ones included, left to right."""
    match node:
        case Term() | Regex():
            return [node]
        case Entity(aliases=aliases):
            return list(aliases)
        case And(children=kids) | Or(children=kids):
            return [t for kid in kids for t in terms(kid)]
        case Not(child=child) | Scope(child=child):
            return terms(child)
        case Near(left=left, right=right):
            return terms(left) + terms(right)
    return []


def positional(node: Node) -> bool:
    """True when ``node`` can hold with word positions (so it can be a NEAR operand)."""
    match node:
        case Term() | Regex() | Entity() | Near():
            return True
        case And(children=kids) | Or(children=kids):
            return any(positional(k) for k in kids)
        case Scope(child=child):
            return positional(child)
    return False


# ---------------------------------------------------------------------------------- tokenizer


@dataclass(slots=True)
class Token:
    """One lexical unit; ``value`` holds words, a pattern, a name or a field as fits ``kind``."""

    kind: str  # ( ) AND OR NOT NEAR TERM PHRASE REGEX ENTITY SCOPE CASE META
    start: int
    end: int
    value: Any = None
    n: int = 0


OPERAND_KINDS = frozenset(
    {"(", "NOT", "TERM", "PHRASE", "REGEX", "ENTITY", "SCOPE", "CASE", "META"}
)


def tokenize(query: str) -> list[Token]:
    """Cut ``query`` into tokens; raises QueryError at the first lexical problem."""
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        c = query[i]
        if c in " \t\r\n":
            i += 1
        elif c in "()":
            tokens.append(Token(c, i, i + 1))
            i += 1
        else:
            lexer = _LEXERS.get(c, _lex_chunk)
            i = lexer(query, i, tokens)
    return tokens


def _lex_phrase(query: str, i: int, tokens: list[Token]) -> int:
    end = query.find('"', i + 1)
    if end < 0:
        raise QueryError("unclosed quote", i)
    body = query[i + 1 : end].rstrip()
    prefix = body.endswith("*")
    tokens.append(Token("PHRASE", i, end + 1, _words(body.removesuffix("*"), i, prefix, '""')))
    return end + 1


def _lex_regex(query: str, i: int, tokens: list[Token]) -> int:
    out: list[str] = []
    j = i + 1
    while j < len(query) and query[j] != "/":
        if query[j] == "\\" and j + 1 < len(query):
            out.append("/" if query[j + 1] == "/" else query[j : j + 2])
            j += 2
        else:
            out.append(query[j])
            j += 1
    if j >= len(query):
        raise QueryError("unclosed regex: end it with '/' (write '\\/' for a slash inside)", i)
    if j + 1 < len(query) and query[j + 1] not in _STOP:
        raise QueryError("unexpected text right after the regex's closing '/'", j + 1)
    pattern = "".join(out)
    tokens.append(Token("REGEX", i, j + 1, (pattern, _compile_regex(pattern, i))))
    return j + 1


def _compile_regex(pattern: str, offset: int) -> Any:
    if not pattern:
        raise QueryError("empty regex", offset)
    options = re2.Options()
    options.log_errors = False
    options.max_mem = REGEX_MAX_MEM
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else "invalid"
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        if "pattern too large" in detail:
            raise QueryLimitError(
                f"regex is too large: its RE2 program does not fit in {REGEX_MAX_MEM >> 20} MiB",
                offset,
            ) from None
        raise QueryError(f"bad regex: {detail}", offset) from None
    width = regex_width(pattern)
    if width > MAX_REGEX_WIDTH:
        raise QueryLimitError(
            f"regex is too slow to match: {width:,} classes and repeated characters, counting "
            f"each copy a {{n,m}} makes; the limit is {MAX_REGEX_WIDTH} "
            "(for words within a distance use NEAR; else + or * rather than a large {n,m})",
            offset,
        )
    return compiled


# One RE2 syntax element per match: \Q…\E, an escape, a class, flags, a group's opening, a
# counted repetition (its numbers in groups 1-3), or any other single character. The class
# loop is possessive, so no pattern makes this scan backtrack.
_RX_TOKEN = re.compile(
    r"\\Q.*?(?:\\E|\Z)|\\[pPx]\{[^}]*\}|\\[pP].|\\.|"
    r"\[\^?\]?(?:\[:[^\]]*:\]|\\[pPx]\{[^}]*\}|\\.|[^\]])*+\]|"
    r"\(\?[a-zA-Z-]*\)|\((?:\?(?:P?<[^>]*>|[a-zA-Z-]*:))?|\{(\d+)(?:(,)(\d*))?\}|.",
    re.S,
)
_CLASS_ESCAPES = frozenset("pPdDsSwWC")
_ZERO_WIDTH = frozenset({"^", "$", r"\b", r"\B", r"\A", r"\z"})


def regex_width(pattern: str) -> int:
    r"""The cost measure :data:`MAX_REGEX_WIDTH` bounds: the character positions of an RE2
    ``pattern`` that can match at many places of a text at once. A class (``.``, ``\w``,
    ``[a-z]``, ``\pL``) counts one, and anything inside a counted repetition counts once per
    copy RE2 makes of it (``x{n,m}`` makes m copies, ``x{n,}`` n; nested ones multiply).
    A run of literal characters counts the copies of itself it can hold overlapping, less
    one (:func:`_overlaps`): ``aaaa`` 3, ``abab`` 1, a word 0 — ``a`` written 1,000 times
    is as slow as ``a{1000}``, while an alternation of a thousand words keeps RE2's
    automaton small and counts nothing."""
    stack = [_Width()]  # one per group open at this point of the pattern
    for tok in _RX_TOKEN.finditer(pattern):
        text = tok.group()
        width = stack[-1]
        if tok.group(1) is not None:
            low, comma, high = tok.group(1, 2, 3)
            width.repeat(int(high) if high else max(int(low), 1) if comma else int(low))
        elif text.startswith("(") and not text.endswith(")"):
            width.flush()
            stack.append(_Width())
        elif text == ")" and len(stack) > 1:
            width.flush()
            stack.pop()
            stack[-1].add(width.classes, width.literals)
        elif text == "|":
            width.flush()
            width.last = None
        elif text.startswith(r"\Q"):  # each character an atom: {n} repeats the last one
            for char in text[2:].removesuffix(r"\E"):
                width.literal(char)
        elif text not in "*+?" and not text.startswith("(?"):  # quantifiers and (?i) add nothing
            classes, literals = _atom_width(text)
            if literals:
                width.literal(text[-1] if text[0] == "\\" and len(text) == 2 else text)
            else:
                width.flush()
                width.add(classes, 0)
    for width in reversed(stack):
        width.flush()
    return stack[0].classes


@dataclass(slots=True)
class _Width:
    """Classes and literals (outside counted repetitions) read so far in one group, those
    of its last element (the one a quantifier applies to), and the run of literal
    characters that element ends, if it is one."""

    classes: int = 0
    literals: int = 0
    last: tuple[int, int] | None = None
    run: list[str] = field(default_factory=list)

    def add(self, classes: int, literals: int) -> None:
        self.classes += classes
        self.literals += literals
        self.last = classes, literals

    def literal(self, char: str) -> None:
        self.add(0, 1)
        self.run.append(char.casefold())  # (?i) may make "aA" a run of one letter

    def flush(self) -> None:
        """Count the literal run just read, and start a new one."""
        if self.run:
            self.classes += _overlaps(self.run)
            self.run = []

    def repeat(self, copies: int) -> None:
        if self.last is not None:
            if self.last == (0, 1) and self.run:  # the repeated literal leaves the run
                self.run.pop()
            self.flush()
            classes, literals = self.last
            self.classes -= classes
            self.literals -= literals
            self.add((classes + literals) * copies, 0)


def _overlaps(run: list[str]) -> int:
    """How many more copies of a prefix of ``run`` can be under way at one place of a text
    than one: the longest chain of prefixes each ending its successor (KMP's failure
    links), less one. ``aaaa`` gives 3 (on ``aaaa…`` four starts are live at once)."""
    fail = [0] * len(run)
    depth = [1] * len(run)
    k = 0
    for i in range(1, len(run)):
        while k and run[i] != run[k]:
            k = fail[k - 1]
        if run[i] == run[k]:
            k += 1
        fail[i] = k
        depth[i] = depth[k - 1] + 1 if k else 1
    return max(depth) - 1


def _atom_width(text: str) -> tuple[int, int]:
    """(classes, literals) of one element that is not a group, quantifier or alternation."""
    if text in _ZERO_WIDTH:
        return 0, 0
    if text == "." or (text[0] == "[" and len(text) > 1):
        return 1, 0
    if text[0] == "\\" and len(text) > 1 and text[1] in _CLASS_ESCAPES:
        return 1, 0
    return 0, 1


def _lex_entity(query: str, i: int, tokens: list[Token]) -> int:
    end = _chunk_end(query, i + 1)
    name = query[i + 1 : end]
    if not name:
        raise QueryError("'@' must be followed by an entity name", i)
    tokens.append(Token("ENTITY", i, end, name))
    return end


def _lex_chunk(query: str, i: int, tokens: list[Token]) -> int:
    end = _chunk_end(query, i)
    chunk = query[i:end]
    if chunk in _OPERATORS:
        tokens.append(Token(chunk, i, end))
        return end
    near = _NEAR_RE.match(chunk)
    if near:
        n = _near_n(near.group(1), near.group(2), i + near.end(1) + 1)
        tokens.append(Token("NEAR", i, end, near.group(1), n))
        return end
    scope = _FIELD_RE.match(chunk)
    if scope:
        return _lex_field(query, i, scope.group(1), tokens)
    prefix = chunk.endswith("*")
    tokens.append(Token("TERM", i, end, _words(chunk.removesuffix("*"), i, prefix, "")))
    return end


def _near_n(op: str, text: str | None, offset: int) -> int:
    if text is None:
        return DEFAULT_NEAR
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_NEAR:
        raise QueryError(f"{op}/n needs a whole number n from 1 to {MAX_NEAR}", offset)
    return int(text)


def _lex_field(query: str, i: int, name: str, tokens: list[Token]) -> int:
    after = i + len(name) + 1
    if name not in FIELDS:
        known = ", ".join(f"{f}:" for f in FIELDS)
        raise QueryError(
            f"unknown field '{name}:' (known: {known}; quote the text to search for it)", i
        )
    if name in SCOPES:
        tokens.append(Token("SCOPE", i, after, name))
        return after
    if name == "case":
        tokens.append(Token("CASE", i, after))
        return after
    return _lex_meta(query, i, name, after, tokens)


def _lex_meta(query: str, i: int, name: str, after: int, tokens: list[Token]) -> int:
    if query.startswith('"', after):
        close = query.find('"', after + 1)
        if close < 0:
            raise QueryError("unclosed quote", after)
        value, end = query[after + 1 : close].strip(), close + 1
    else:
        end = _chunk_end(query, after)
        value = query[after:end]
    if not value:
        raise QueryError(f"{name}: needs a value", i)
    tokens.append(Token("META", i, end, (name, value)))
    return end


def _chunk_end(query: str, i: int) -> int:
    found = _CHUNK.match(query, i)
    return found.end() if found else i


def _words(text: str, offset: int, prefix: bool, quotes: str) -> tuple[tuple[str, ...], bool]:
    """Words of a term's text (as written) and whether the last one is a prefix."""
    shown = f"{quotes[:1]}{text}{'*' if prefix else ''}{quotes[1:]}"
    if "*" in text:
        raise QueryError(f"'*' may only end a word: {shown}", offset)
    words = _term_words(text)
    if not words:
        raise QueryError(f"no letters or digits in {shown}", offset)
    if prefix and (len(words[-1]) < MIN_PREFIX or not text.endswith(words[-1])):
        raise QueryError(
            f"a prefix needs at least {MIN_PREFIX} letters before '*': {shown}", offset
        )
    return words, prefix


@lru_cache(maxsize=100_000)
def _term_words(text: str) -> tuple[str, ...]:
    """The words of a term's text, cached: rules repeat the same words over and over."""
    return tuple(split(normalize(text)))


_LEXERS: dict[str, Callable[[str, int, list[Token]], int]] = {
    '"': _lex_phrase,
    "/": _lex_regex,
    "@": _lex_entity,
}


# ------------------------------------------------------------------------------------- parser


def parse(query: str, entities: Mapping[str, Sequence[Term]] | None = None) -> Node:
    """The AST of ``query``; ``entities`` resolves ``@name``. Raises QueryError."""
    if not query.strip():
        raise QueryError("empty query", 0)
    if len(query) > MAX_QUERY_CHARS:
        raise QueryLimitError(
            f"query is {len(query):,} characters long; the limit is {MAX_QUERY_CHARS:,} "
            "(put long lists of names in an entity)",
            0,
        )
    tokens = tokenize(query)
    _check_regex_widths(tokens)
    node = _Parser(query, tokens, entities or {}).parse()
    if len(tokens) >= MAX_DEPTH:  # fewer tokens cannot nest that deep
        _check_depth(node)
    return node


def _check_regex_widths(tokens: list[Token]) -> None:
    """Raise QueryLimitError at the regex that takes the query's regexes past
    MAX_QUERY_REGEX_WIDTH together: each runs over each field, so their times add up."""
    total = 0
    for tok in tokens:
        if tok.kind == "REGEX":
            total += regex_width(tok.value[0])
            if total > MAX_QUERY_REGEX_WIDTH:
                raise QueryLimitError(
                    f"the query's regexes are too slow to match together: over "
                    f"{MAX_QUERY_REGEX_WIDTH} classes and repeated characters in all "
                    f"(each regex may have {MAX_REGEX_WIDTH})",
                    tok.start,
                )


def _check_depth(root: Node) -> None:
    """Raise QueryLimitError when ``root`` has more than MAX_DEPTH levels of operators
    (found without recursing: that is what the limit protects)."""
    stack: list[tuple[Node, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise QueryLimitError(
                f"query nested too deeply: more than {MAX_DEPTH} levels of operators inside "
                "each other (NEAR chains, AND and OR in groups, NOT, field scopes)",
                node.start,
            )
        stack.extend((kid, depth + 1) for kid in _children(node))


def _children(node: Node) -> tuple[Node, ...]:
    match node:
        case And(children=kids) | Or(children=kids):
            return kids
        case Not(child=child) | Scope(child=child):
            return (child,)
        case Near(left=left, right=right):
            return left, right
        case Entity(aliases=aliases):
            return aliases
    return ()


def parse_alias(alias: str) -> Term:
    """An entity alias: a literal word or phrase, ``case:`` for exact case, ``*`` to end."""
    exact = alias.startswith("case:")
    body = alias.removeprefix("case:").strip().strip('"').strip()
    prefix = body.endswith("*")
    words, prefix = _words(body.removesuffix("*"), 0, prefix, "")
    return _term(words, exact, prefix, alias, 0)


def _term(words: tuple[str, ...], exact: bool, prefix: bool, src: str, start: int) -> Term:
    if not exact:
        words = tuple(fold(w) for w in words)
    return Term(words, exact, prefix, src, start)


class _Parser:
    """Recursive descent over the token list; one instance per query."""

    def __init__(self, query: str, tokens: list[Token], entities: Mapping[str, Sequence[Term]]):
        self.query = query
        self.tokens = tokens
        self.entities = entities
        self.pos = 0
        self.depth = 0
        self.terms = 0
        self.nears = 0

    def parse(self) -> Node:
        node = self.parse_or()
        tok = self.peek()
        if tok is not None:
            if tok.kind == ")":
                raise QueryError("unmatched ')'", tok.start)
            raise QueryError(f"unexpected {self.show(tok)}", tok.start)
        return node

    # helpers -----------------------------------------------------------------------------

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def show(self, tok: Token) -> str:
        return f"'{self.query[tok.start : tok.end]}'"

    def src(self, start: int) -> str:
        return self.query[start : self.tokens[self.pos - 1].end].strip()

    def need_operand(self, op: Token) -> None:
        tok = self.peek()
        if tok is None or tok.kind not in OPERAND_KINDS:
            raise QueryError(f"{self.show(op)} needs a term on its right", op.start)

    # grammar -----------------------------------------------------------------------------

    def parse_or(self) -> Node:
        start = self.tokens[self.pos].start if self.peek() else len(self.query)
        items = [self.parse_and()]
        while (tok := self.peek()) is not None and tok.kind == "OR":
            self.take()
            self.need_operand(tok)
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else Or(tuple(items), self.src(start), start)

    def parse_and(self) -> Node:
        start = self.tokens[self.pos].start if self.peek() else len(self.query)
        items = [self.parse_near()]
        while (tok := self.peek()) is not None and tok.kind in OPERAND_KINDS | {"AND"}:
            if tok.kind == "AND":
                self.take()
                self.need_operand(tok)
            items.append(self.parse_near())
        return items[0] if len(items) == 1 else And(tuple(items), self.src(start), start)

    def parse_near(self) -> Node:
        start = self.tokens[self.pos].start if self.peek() else len(self.query)
        left = self.parse_unary()
        operands = 1
        while (tok := self.peek()) is not None and tok.kind == "NEAR":
            operands += 1
            self.nears += 1
            if operands > MAX_NEAR_OPERANDS:
                raise QueryLimitError(
                    f"a NEAR chain may join at most {MAX_NEAR_OPERANDS} operands", tok.start
                )
            if self.nears > MAX_NEARS:
                raise QueryLimitError(
                    f"query has more than {MAX_NEARS} NEAR and ONEAR operators", tok.start
                )
            self.take()
            self.need_operand(tok)
            right = self.parse_unary()
            for side in (left, right):
                if not positional(side):
                    raise QueryError(
                        f"{tok.value} needs a word, phrase or group on each side, not '{side.src}'",
                        side.start,
                    )
            ordered = tok.value == "ONEAR"
            left = Near(left, right, tok.n, ordered, self.src(start), start)
        return left

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "NOT":
            self.take()
            self.need_operand(tok)
            self.enter(tok, "NOT repeated too many times")  # NOT NOT ... nests like groups
            child = self.parse_unary()
            self.depth -= 1
            return Not(child, self.src(tok.start), tok.start)
        return self.parse_primary()

    def enter(self, tok: Token, message: str) -> None:
        """One level deeper into the grammar's recursion, which MAX_DEPTH bounds."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QueryLimitError(message, tok.start)

    def count(self, tok: Token, terms: int = 1) -> None:
        """Count ``terms`` more terms against MAX_TERMS."""
        self.terms += terms
        if self.terms > MAX_TERMS:
            raise QueryLimitError(
                f"query has more than {MAX_TERMS:,} terms, counting each alias of the "
                "entities it names",
                tok.start,
            )

    def parse_primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QueryError("a term is missing at the end", len(self.query))
        if tok.kind in ("AND", "OR", "NEAR"):
            raise QueryError(f"{self.show(tok)} needs a term on its left", tok.start)
        if tok.kind == ")":
            raise QueryError("unmatched ')'", tok.start)
        self.take()
        return _PRIMARY[tok.kind](self, tok)

    def group(self, tok: Token) -> Node:
        if self.peek() is not None and self.tokens[self.pos].kind == ")":
            raise QueryError("empty parentheses", tok.start)
        self.enter(tok, _TOO_DEEP)
        node = self.parse_or()
        self.depth -= 1
        close = self.peek()
        if close is None or close.kind != ")":
            raise QueryError("unclosed '('", tok.start)
        self.take()
        return node

    def term(self, tok: Token) -> Node:
        self.count(tok)
        words, prefix = tok.value
        return _term(words, False, prefix, self.src(tok.start), tok.start)

    def regex(self, tok: Token) -> Node:
        self.count(tok)
        pattern, compiled = tok.value
        return Regex(pattern, compiled, self.src(tok.start), tok.start)

    def entity(self, tok: Token) -> Node:
        aliases = self.entities.get(tok.value)
        if aliases is None:
            raise QueryError(f"unknown entity '@{tok.value}'", tok.start)
        self.count(tok, len(aliases))
        return Entity(tok.value, tuple(aliases), self.src(tok.start), tok.start)

    def scope(self, tok: Token) -> Node:
        self.need_operand(tok)
        self.enter(tok, _TOO_DEEP)
        child = self.parse_unary()
        self.depth -= 1
        return Scope(tok.value, child, self.src(tok.start), tok.start)

    def case(self, tok: Token) -> Node:
        nxt = self.peek()
        if nxt is None or nxt.kind not in ("TERM", "PHRASE"):
            raise QueryError("case: needs a word or a quoted phrase right after it", tok.start)
        self.take()
        self.count(tok)
        words, prefix = nxt.value
        return _term(words, True, prefix, self.src(tok.start), tok.start)

    def meta(self, tok: Token) -> Node:
        name, value = tok.value
        value = value.casefold()
        if name == "site":
            value = value.removeprefix("www.").rstrip(".")
        return Meta(name, value, self.src(tok.start), tok.start)


_PRIMARY: dict[str, Callable[[_Parser, Token], Node]] = {
    "(": _Parser.group,
    "TERM": _Parser.term,
    "PHRASE": _Parser.term,
    "REGEX": _Parser.regex,
    "ENTITY": _Parser.entity,
    "SCOPE": _Parser.scope,
    "CASE": _Parser.case,
    "META": _Parser.meta,
}
