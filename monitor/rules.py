"""Alert rules: loading rule files, and matching articles against them.

Promises:

- Loading validates everything and reports *every* problem across all files at once, as a
  :class:`~monitor.errors.ConfigErrors` whose items each carry ``path:line:col`` (the column
  points inside the query string for query errors). Nothing half-loaded is ever returned.
- Matching is pure (no I/O): each article field is cut into words once
  (:mod:`monitor.words`), a word index picks the rules that could fire, and only those are
  evaluated. A rule fires at most once per article; its :class:`Match` carries a
  :class:`Span` for the positive terms that matched (never for terms under NOT), at most
  three per distinct matched text and 25 in all, title first, in text order.
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

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor import query as q
from monitor.article import Article
from monitor.errors import ConfigError, ConfigErrors
from monitor.words import Tokens, find, fold, tokenize
from monitor.yamlsrc import KeyPath, Source, load

FIELDS = ("title", "body")
BOTH = (0, 1)
SNIPPET_CONTEXT = 60
MAX_SPANS_PER_TEXT = 3
MAX_SPANS = 25
RULE_KEYS = ("id", "name", "query", "notify", "channels", "throttle")
FILE_KEYS = ("entities", "rules")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*\Z")
_ENTITY_RE = re.compile(r"[^\s()\"@]+\Z")
_SPACE = re.compile(r"\s")

# An occurrence: (field index, first word, last word, start char, end char).
Occ = tuple[int, int, int, int, int]
Result = list[Occ] | None  # None: the clause does not hold; a list: it holds, at these places


# ------------------------------------------------------------------------------ public values


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule as written in its file."""

    id: str
    name: str
    query: str
    notify: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    path: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Span:
    """Where a term matched: ``text[start:end]`` of ``field``, and a snippet around it."""

    field: str
    text: str
    start: int
    end: int
    snippet: str
    highlight: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Match:
    """A rule that fired on an article, with the spans that made it fire."""

    rule_id: str
    rule_name: str
    rule: Rule
    spans: list[Span] = field(default_factory=list)

    @property
    def snippets(self) -> list[str]:
        """The distinct snippets of the spans, in span order."""
        return list(dict.fromkeys(s.snippet for s in self.spans))


# ---------------------------------------------------------------------------------- rule set


class RuleSet:
    """Loaded, validated rules, ready to match articles."""

    def __init__(self, rules: Sequence[Rule], nodes: Sequence[q.Node]) -> None:
        self.rules = list(rules)
        self._nodes = list(nodes)
        self._by_id = {r.id: i for i, r in enumerate(self.rules)}
        self._index = _Index(self._nodes)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path]) -> RuleSet:
        """Rules from files and folders (each ``*.yml``/``*.yaml`` in a folder, sorted)."""
        loader = _Loader()
        for path in paths:
            loader.load_path(Path(path))
        return loader.finish()

    @classmethod
    def from_source(cls, text: str, path: str = "<string>") -> RuleSet:
        """Rules from the YAML text of one rule file."""
        loader = _Loader()
        loader.load_file(path, text)
        return loader.finish()

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        i = self._by_id.get(rule_id)
        return None if i is None else self.rules[i]

    def match(self, article: Article) -> list[Match]:
        """Every rule that fires on ``article``, in rule-file order."""
        ev = Evaluator(article)
        out = []
        for i in self._index.candidates(ev):
            found = ev.eval(self._nodes[i], BOTH)
            if found is not None:
                rule = self.rules[i]
                out.append(Match(rule.id, rule.name, rule, ev.spans(found)))
        return out

    def explain(self, article: Article, rule_id: str) -> list[str]:
        """Lines saying which top-level clauses of the rule's query held, and why not."""
        i = self._by_id.get(rule_id)
        if i is None:
            raise KeyError(f"no rule with id {rule_id!r}")
        node = self._nodes[i]
        ev = Evaluator(article)
        clauses = node.children if isinstance(node, q.And | q.Or) else (node,)
        return [_explain(ev, clause) for clause in clauses]


# -------------------------------------------------------------------------------- evaluation


class Evaluator:
    """One article, tokenised once, against which any number of queries are evaluated."""

    def __init__(self, article: Article) -> None:
        self.article = article
        self.fields: tuple[Tokens, Tokens] = (tokenize(article.title), tokenize(article.text))
        self._cache: dict[tuple[Any, ...], Result] = {}

    def eval(self, node: q.Node, scope: tuple[int, ...]) -> Result:
        """Where ``node`` holds in the fields ``scope`` (None when it does not hold)."""
        match node:
            case q.Term():
                return self.cached(("t", node.key, scope), lambda: self.term(node, scope))
            case q.Regex():
                return self.cached(("r", node.pattern, scope), lambda: self.regex(node, scope))
            case q.Entity(aliases=aliases) | q.Or(children=aliases):
                return _union([self.eval(kid, scope) for kid in aliases])
            case q.And(children=kids):
                return self.all_of(kids, scope)
            case q.Not(child=child):
                return [] if self.eval(child, scope) is None else None
            case q.Scope(field=name, child=child):
                return self.eval(child, (FIELDS.index(name),))
            case q.Near():
                return self.near(node, scope)
            case q.Meta():
                return [] if meta_holds(node, self.article) else None
        raise TypeError(f"unknown query node {node!r}")  # pragma: no cover

    def cached(self, key: tuple[Any, ...], compute: Callable[[], Result]) -> Result:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def term(self, term: q.Term, scope: tuple[int, ...]) -> Result:
        out: list[Occ] = []
        last = len(term.words) - 1
        for f in scope:
            toks = self.fields[f]
            for p in find(toks, term.words, term.exact, term.prefix):
                out.append((f, p, p + last, toks.starts[p], toks.ends[p + last]))
        return out or None

    def regex(self, node: q.Regex, scope: tuple[int, ...]) -> Result:
        out: list[Occ] = []
        for f in scope:
            toks = self.fields[f]
            for m in node.regex.finditer(toks.text):
                start, end = m.span()
                if end > start:
                    first = bisect_right(toks.ends, start)
                    last = max(first, bisect_left(toks.starts, end) - 1)
                    out.append((f, first, last, start, end))
        return out or None

    def all_of(self, kids: Sequence[q.Node], scope: tuple[int, ...]) -> Result:
        found: list[Result] = []
        for kid in kids:
            res = self.eval(kid, scope)
            if res is None:
                return None
            found.append(res)
        return _union(found)

    def near(self, node: q.Near, scope: tuple[int, ...]) -> Result:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope) if left else None
        if not left or not right:
            return None
        return near_pairs(left, right, node.n, node.ordered)

    def spans(self, found: list[Occ]) -> list[Span]:
        """Spans for the occurrences of a fired rule, limited as the module promises."""
        per_text: dict[str, int] = {}
        out: list[Span] = []
        for f, _, _, start, end in found:
            text = self.fields[f].text
            key = fold(text[start:end])
            per_text[key] = per_text.get(key, 0) + 1
            if per_text[key] <= MAX_SPANS_PER_TEXT:
                out.append(make_span(FIELDS[f], text, start, end))
            if len(out) >= MAX_SPANS:
                break
        return out


def _union(results: Sequence[Result]) -> Result:
    held = [r for r in results if r is not None]
    if not held:
        return None
    if len(held) == 1:
        return held[0]
    return sorted({occ for r in held for occ in r})


def near_pairs(left: list[Occ], right: list[Occ], n: int, ordered: bool) -> Result:
    """The occurrences of ``left`` and ``right`` that are within ``n`` words of each other."""
    keys = [(o[0], o[1]) for o in right]
    widest = max(o[2] - o[1] for o in right)
    used: set[Occ] = set()
    for a in left:
        lo = bisect_left(keys, (a[0], a[1] - n - widest))
        hi = bisect_right(keys, (a[0], a[2] + n))
        for b in right[lo:hi]:
            if 1 <= b[1] - a[2] <= n or (not ordered and 1 <= a[1] - b[2] <= n):
                used.add(a)
                used.add(b)
    return sorted(used) if used else None


def meta_holds(node: q.Meta, article: Article) -> bool:
    """Whether the article's site, source or language is what ``node`` asks for."""
    if node.field == "site":
        site = article.site
        return site == node.value or site.endswith("." + node.value)
    if node.field == "source":
        return article.source.casefold() == node.value
    lang = (article.language or "").casefold()
    return lang == node.value or lang.startswith((node.value + "-", node.value + "_"))


def make_span(field_name: str, text: str, start: int, end: int) -> Span:
    """A span with a snippet of up to SNIPPET_CONTEXT characters each side, cut at spaces."""
    lo = max(0, start - SNIPPET_CONTEXT)
    if lo > 0 and not text[lo - 1].isspace():
        space = _SPACE.search(text, lo, start)
        lo = space.end() if space else lo
    hi = min(len(text), end + SNIPPET_CONTEXT)
    if hi < len(text) and not text[hi].isspace():
        spaces = [m.start() for m in _SPACE.finditer(text, end, hi)]
        hi = spaces[-1] if spaces else hi
    lead = "…" if lo > 0 else ""
    left = lead + text[lo:start].lstrip()
    right = text[end:hi].rstrip() + ("…" if hi < len(text) else "")
    snippet = (left + text[start:end] + right).replace("\n", " ")
    highlight = (len(left), len(left) + end - start)
    return Span(field_name, text[start:end], start, end, snippet, highlight)


# ---------------------------------------------------------------------------------- explain


def _explain(ev: Evaluator, node: q.Node) -> str:
    found = ev.eval(node, BOTH)
    if isinstance(node, q.Not):
        if found is not None:
            return f"✓ {node.src}  (not found)"
        inner = ev.eval(node.child, BOTH) or []
        return f"✗ {node.src}: found {_places(ev, inner)}"
    if isinstance(node, q.Meta):
        actual = _meta_value(node, ev.article) or "none"
        mark = "✓" if found is not None else "✗"
        sep = "  (" if found is not None else ": "
        return f"{mark} {node.src}{sep}{node.field} is {actual!r}{')' if found is not None else ''}"
    if found is not None:
        return f"✓ {node.src}  ({_places(ev, found) or 'holds'})"
    return f"✗ {node.src}: {_why_not(ev, node)}"


def _why_not(ev: Evaluator, node: q.Node) -> str:
    if isinstance(node, q.Near):
        for side in (node.left, node.right):
            if ev.eval(side, BOTH) is None:
                return f"{side.src} not found"
        order = " in that order" if node.ordered else ""
        return f"both found but not{order} within {node.n} words"
    if isinstance(node, q.And):
        missing = [k.src for k in node.children if ev.eval(k, BOTH) is None]
        return "failed: " + ", ".join(missing)
    if isinstance(node, q.Scope):
        return f"not found in {node.field}"
    return "no term found"


def _places(ev: Evaluator, found: list[Occ], limit: int = 3) -> str:
    shown = []
    for f, _, _, start, end in found:
        item = f'"{ev.fields[f].text[start:end]}" in {FIELDS[f]}'
        if item not in shown:
            shown.append(item)
    more = ", …" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


def _meta_value(node: q.Meta, article: Article) -> str:
    if node.field == "site":
        return article.site
    if node.field == "source":
        return article.source
    return article.language or ""


# ------------------------------------------------------------------------ candidate selection


class _Index:
    """Which rules could fire given the words of an article.

    A rule is filed under a set of *trigger* words at least one of which must be in the
    article for it to fire (NOT never selects); rules without such a set are always tried.
    """

    def __init__(self, nodes: Sequence[q.Node]) -> None:
        self.words: dict[str, list[int]] = {}
        self.prefixes: dict[str, list[int]] = {}
        self.always: list[int] = []
        for i, node in enumerate(nodes):
            found = triggers(node)
            if found is None:
                self.always.append(i)
                continue
            for word, is_prefix in found:
                (self.prefixes if is_prefix else self.words).setdefault(word, []).append(i)
        self.lengths = sorted({len(stem) for stem in self.prefixes})

    def candidates(self, ev: Evaluator) -> list[int]:
        """Indices of the rules worth evaluating on ``ev``'s article, in rule order."""
        picked = set(self.always)
        words, prefixes = self.words, self.prefixes
        for toks in ev.fields:
            if len(toks.index) <= len(words):
                for word in toks.index.keys() & words.keys():
                    picked.update(words[word])
            else:
                for word, rules in words.items():
                    if word in toks.index:
                        picked.update(rules)
            for n in self.lengths:
                for stem in {word[:n] for word in toks.index} & prefixes.keys():
                    picked.update(prefixes[stem])
        return sorted(picked)


Trigger = tuple[str, bool]


def triggers(node: q.Node) -> set[Trigger] | None:
    """Words one of which must be present for ``node`` to hold; None when there are none."""
    match node:
        case q.Term(words=words, exact=exact, prefix=prefix):
            word = fold(words[0]) if exact else words[0]
            return {(word, prefix and len(words) == 1)}
        case q.Entity(aliases=kids) | q.Or(children=kids):
            sets = [triggers(k) for k in kids]
            return None if any(s is None for s in sets) else set().union(*sets)  # type: ignore[arg-type]
        case q.And(children=kids):
            known = [s for s in (triggers(k) for k in kids) if s is not None]
            return min(known, key=len) if known else None
        case q.Near(left=left, right=right):
            return triggers(q.And((left, right)))
        case q.Scope(child=child):
            return triggers(child)
    return None


# ------------------------------------------------------------------------------------ loading


class _Loader:
    """Reads rule files, collecting every problem instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.rules: list[Rule] = []
        self.nodes: list[q.Node] = []
        self.seen: dict[str, Rule] = {}
        self.loaded: set[Path] = set()

    def finish(self) -> RuleSet:
        if self.errors:
            files = list(dict.fromkeys(e.path for e in self.errors))
            self.errors.sort(key=lambda e: (files.index(e.path), e.line or 0, e.col or 0))
            raise ConfigErrors(self.errors)
        return RuleSet(self.rules, self.nodes)

    def load_path(self, path: Path) -> None:
        if path.is_dir():
            files = sorted(
                p for p in path.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file()
            )
        elif path.exists():
            files = [path]
        else:
            files = []
            self.errors.append(ConfigError("no such rule file or folder", str(path)))
        for file in files:
            if file.resolve() not in self.loaded:
                self.loaded.add(file.resolve())
                self.load_file(str(file))

    def load_file(self, path: str, text: str | None = None) -> None:
        try:
            src = load(path, text)
        except ConfigError as exc:
            self.errors.append(exc)
            return
        data = src.data
        if data is None:
            return
        if not isinstance(data, dict):
            self.errors.append(
                src.error((), "a rule file is a mapping with 'entities:' and 'rules:'")
            )
            return
        self.unknown_keys(src, (), data, FILE_KEYS)
        entities = self.entities(src, data.get("entities"))
        rules = data.get("rules")
        if rules is None:
            return
        if not isinstance(rules, list):
            self.errors.append(src.error(("rules",), "'rules' must be a list of rules"))
            return
        for i, item in enumerate(rules):
            self.rule(src, i, item, entities)

    def unknown_keys(
        self, src: Source, where: KeyPath, data: dict[str, Any], known: Sequence[str]
    ) -> None:
        for key in data:
            if key not in known:
                allowed = ", ".join(known)
                message = f"unknown key {key!r} (allowed: {allowed})"
                self.errors.append(_key_error(src, (*where, key), message))

    def entities(self, src: Source, data: Any) -> dict[str, list[q.Term]]:
        out: dict[str, list[q.Term]] = {}
        if data is None:
            return out
        if not isinstance(data, dict):
            self.errors.append(src.error(("entities",), "'entities' must map names to aliases"))
            return out
        for name, aliases in data.items():
            out[name] = self.entity(src, name, aliases)
        return out

    def entity(self, src: Source, name: str, aliases: Any) -> list[q.Term]:
        kp: KeyPath = ("entities", name)
        if not _ENTITY_RE.match(name):
            bad = f"bad entity name {name!r}: no spaces, quotes, parentheses or '@'"
            self.errors.append(src.error(kp, bad))
        if isinstance(aliases, str):
            term = self.alias(src, kp, aliases)
            return [term] if term else []
        if not isinstance(aliases, list) or not aliases:
            self.errors.append(src.error(kp, f"entity {name!r} needs a list of aliases"))
            return []
        return [t for j, a in enumerate(aliases) if (t := self.alias(src, (*kp, j), a))]

    def alias(self, src: Source, kp: KeyPath, alias: Any) -> q.Term | None:
        if not isinstance(alias, str):
            self.errors.append(src.error(kp, "an alias must be a string"))
            return None
        try:
            return q.parse_alias(alias)
        except q.QueryError as exc:
            self.errors.append(self.located(src, kp, exc))
            return None

    def located(self, src: Source, kp: KeyPath, exc: q.QueryError) -> ConfigError:
        line, col = src.text_pos(kp, exc.offset)
        return ConfigError(exc.message, src.path, line, col)

    def rule(self, src: Source, i: int, item: Any, entities: dict[str, list[q.Term]]) -> None:
        kp: KeyPath = ("rules", i)
        if not isinstance(item, dict):
            self.errors.append(src.error(kp, "a rule is a mapping with at least 'id' and 'query'"))
            return
        before = len(self.errors)
        self.unknown_keys(src, kp, item, RULE_KEYS)
        rule_id = self.rule_id(src, kp, item)
        node = self.query(src, kp, item, entities)
        name = self.string(src, (*kp, "name"), item["name"]) if "name" in item else rule_id
        notify = self.names(src, (*kp, "notify"), item.get("notify", []))
        channels = self.names(src, (*kp, "channels"), item.get("channels", []))
        if len(self.errors) > before or rule_id is None or node is None or name is None:
            return
        pos = src.pos(kp)
        rule = Rule(
            rule_id, name, item["query"], notify, channels, src.path, pos.line if pos else 0
        )
        self.seen[rule_id] = rule
        self.rules.append(rule)
        self.nodes.append(node)

    def rule_id(self, src: Source, kp: KeyPath, item: dict[str, Any]) -> str | None:
        if "id" not in item:
            self.errors.append(src.error(kp, "rule has no 'id'"))
            return None
        raw = item["id"]
        rule_id = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
        if not _ID_RE.match(rule_id):
            self.errors.append(
                src.error(
                    (*kp, "id"), f"bad rule id {raw!r}: use letters, digits, '-', '_', '.' or ':'"
                )
            )
            return None
        first = self.seen.get(rule_id)
        if first is not None:
            where = f"{first.path}:{first.line}"
            self.errors.append(
                src.error((*kp, "id"), f"duplicate rule id {rule_id!r} (first defined at {where})")
            )
            return None
        return rule_id

    def query(
        self, src: Source, kp: KeyPath, item: dict[str, Any], entities: dict[str, list[q.Term]]
    ) -> q.Node | None:
        if "query" not in item:
            self.errors.append(src.error(kp, "rule has no 'query'"))
            return None
        text = item["query"]
        qkp = (*kp, "query")
        if text is None:
            self.errors.append(src.error(qkp, "empty query"))
            return None
        if not isinstance(text, str):
            self.errors.append(src.error(qkp, "'query' must be a string"))
            return None
        try:
            return q.parse(text, entities)
        except q.QueryError as exc:
            self.errors.append(self.located(src, qkp, exc))
            return None

    def string(self, src: Source, kp: KeyPath, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.errors.append(src.error(kp, f"'{kp[-1]}' must be a non-empty string"))
            return ""
        return value

    def names(self, src: Source, kp: KeyPath, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.errors.append(src.error(kp, f"'{kp[-1]}' must be a list of names"))
            return ()
        for j, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                self.errors.append(src.error((*kp, j), f"'{kp[-1]}' entries must be names"))
        return tuple(str(item) for item in items)


def _key_error(src: Source, kp: KeyPath, message: str) -> ConfigError:
    """An error pointing at the key of ``kp`` (yamlsrc records where values are, not keys)."""
    pos = src.pos(kp)
    if pos is not None:
        pattern = re.compile(rf"(?<![\w-]){re.escape(str(kp[-1]))}['\"]?\s*:")
        for line in range(pos.line, max(0, pos.line - 3), -1):
            text = src.lines[line - 1] if line <= len(src.lines) else ""
            found = [m for m in pattern.finditer(text) if line < pos.line or m.start() < pos.col]
            if found:
                return ConfigError(message, src.path, line, found[-1].start() + 1)
    return src.error(kp, message)
