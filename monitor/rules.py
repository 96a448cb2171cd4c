"""Alert rules: loading rule files, and matching articles against them.

Promises:

- Loading validates everything and reports *every* problem across all files at once, as a
  :class:`~monitor.errors.ConfigErrors` whose items each carry ``path:line:col`` (the column
  points inside the query string for query errors; a query beyond the size limits of
  :mod:`monitor.query` is an error naming its rule). Nothing half-loaded is ever returned.
- Matching is pure (no I/O) and scales with the rules that could fire, not with all rules:
  each article field is folded and cut into words once (:mod:`monitor.words`), finding the
  rules' words and phrase and prefix keys in it on the way (one C pass for text that folds
  to ASCII, a Hyperscan or Aho-Corasick scan of the rest), those words and keys pick the
  candidate rules (:mod:`monitor.prefilter`), and only those run their
  compiled checks (:mod:`monitor.codegen`). Word positions and regexes are computed only
  for the few rules that need them (:mod:`monitor.evaluate`, which also states the NEAR
  distance and the limits on hostile text: each field is cut at 200,000 characters before
  matching).
- A :class:`Match` works out its spans on first access to ``spans``/``snippets`` (then
  keeps them); they are the same as if computed at match time. Term occurrences and
  snippets are computed once per article and shared by every match that shows them.
- A rule fires at most once per article; its :class:`Match` carries a :class:`Span` for the
  positive terms that matched (never for terms under NOT), at most three per distinct
  matched text and 25 in all, title first, in text order.
- ``throttle`` (optional) is a duration (``10m``) kept as seconds on :attr:`Rule.throttle`
  for delivery to use; this module only validates it.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor import query as q
from monitor import yamlsrc
from monitor._words import Vocabulary
from monitor.article import Article
from monitor.codegen import CodeCompiler, FastCheck
from monitor.errors import ConfigError, ConfigErrors
from monitor.evaluate import BOTH, FIELDS, Evaluator, Occ
from monitor.prefilter import Index, Scanner
from monitor.units import parse_duration
from monitor.words import fold
from monitor.yamlsrc import KeyPath, Source

SNIPPET_CONTEXT = 60
MAX_SPANS_PER_TEXT = 3
MAX_SPANS = 25
MAX_EXPLAIN_DEPTH = 3
RULE_KEYS = ("id", "name", "query", "notify", "channels", "throttle")
FILE_KEYS = ("entities", "rules")
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*\Z")
_ENTITY_RE = re.compile(r"[^\s()\"@]+\Z")
_SPACE = re.compile(r"\s")
_LAST_SPACE = re.compile(r".*\s", re.DOTALL)


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
    throttle: float | None = None
    # (line, col) of each ``notify`` entry, for errors about the sink it names.
    notify_at: tuple[tuple[int, int], ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Span:
    """Where a term matched: ``text[start:end]`` of ``field``, and a snippet around it."""

    field: str
    text: str
    start: int
    end: int
    snippet: str
    highlight: tuple[int, int]


class Match:
    """A rule that fired on an article, with the spans that made it fire.

    ``spans`` is worked out on first access (most callers of :meth:`RuleSet.match` only
    look at which rules fired); the article's tokens stay referenced until then.
    """

    __slots__ = ("_spans", "_whence", "rule", "rule_id", "rule_name")

    def __init__(
        self,
        rule_id: str,
        rule_name: str,
        rule: Rule,
        spans: list[Span] | None = None,
        *,
        whence: tuple[Evaluator, q.Node] | None = None,
    ) -> None:
        self.rule_id = rule_id
        self.rule_name = rule_name
        self.rule = rule
        self._spans = spans if spans is not None or whence is not None else []
        self._whence = whence

    @property
    def spans(self) -> list[Span]:
        """Where the rule's positive terms matched (see the module docstring)."""
        if self._spans is None:
            assert self._whence is not None
            ev, node = self._whence
            ev.for_spans()
            self._spans = spans(ev, ev.eval(node, BOTH) or [])
            self._whence = None
        return self._spans

    @property
    def snippets(self) -> list[str]:
        """The distinct snippets of the spans, in span order."""
        return list(dict.fromkeys(s.snippet for s in self.spans))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return (self.rule_id, self.rule_name, self.rule, self.spans) == (
            other.rule_id,
            other.rule_name,
            other.rule,
            other.spans,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Match(rule_id={self.rule_id!r}, rule_name={self.rule_name!r}, "
            f"rule={self.rule!r}, spans={self.spans!r})"
        )


# ---------------------------------------------------------------------------------- rule set


class RuleSet:
    """Loaded, validated rules, ready to match articles."""

    def __init__(self, rules: Sequence[Rule], nodes: Sequence[q.Node]) -> None:
        self.rules = list(rules)
        self._nodes = list(nodes)
        self._by_id = {r.id: i for i, r in enumerate(self.rules)}
        self._index = Index(self._nodes)
        compiler = CodeCompiler()
        self._checks: list[FastCheck] = [compiler.compile(node) for node in self._nodes]
        self._scanner = Scanner(compiler.keys | self._index.keys)
        # Every folded word a rule looks for, and every key: ASCII fields are cut into words
        # keeping only these words in their word sets (see Tokens), which answers every
        # presence check alike, and the keys are found on the way; the scanner finds them
        # in other text.
        self._known = Vocabulary(self._index.words, self._scanner.keys)

    @classmethod
    def from_files(cls, paths: Sequence[str | Path] | str | Path) -> RuleSet:
        """Rules from files and folders (each ``*.yml``/``*.yaml`` in a folder, sorted);
        one path may be given on its own."""
        if isinstance(paths, str | Path):
            paths = [paths]
        with _no_gc():
            loader = _Loader()
            for path in paths:
                loader.load_path(Path(path))
            return loader.finish()

    @classmethod
    def from_source(cls, text: str, path: str = "<string>") -> RuleSet:
        """Rules from the YAML text of one rule file."""
        with _no_gc():
            loader = _Loader()
            loader.load_file(path, text)
            return loader.finish()

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, if any."""
        i = self._by_id.get(rule_id)
        return None if i is None else self.rules[i]

    def match(self, article: Article) -> list[Match]:
        """Every rule that fires on ``article``, in rule-file order."""
        ev = Evaluator(article, self._known)
        words, checks = ev.words, self._checks
        title, body = (
            self._scanner.find(t.joined) if t.keys is None else t.keys for t in ev.fields
        )
        keys = (title, body, title | body)
        ev.scanned = (self._scanner.keys, keys)
        out = []
        for i in self._index.candidates(words[2], keys[2]):
            if checks[i](words, keys, ev):
                rule = self.rules[i]
                out.append(Match(rule.id, rule.name, rule, whence=(ev, self._nodes[i])))
        ev.fired = len(out)
        return out

    def explain(self, article: Article, rule_id: str) -> list[str]:
        """Lines saying which top-level clauses of the rule's query held, and why not; a
        failed clause names the sub-clauses that failed (see :func:`explain`)."""
        i = self._by_id.get(rule_id)
        if i is None:
            raise KeyError(f"no rule with id {rule_id!r}")
        return explain(Evaluator(article, self._known), self._nodes[i])


def spans(ev: Evaluator, found: list[Occ]) -> list[Span]:
    """Spans for the occurrences of a fired rule, limited as the module promises."""
    per_text: dict[str, int] = {}
    out: list[Span] = []
    made = ev.spans
    for occ in found:
        f, _, _, start, end = occ
        text = ev.fields[f].text
        key = fold(text[start:end])
        per_text[key] = per_text.get(key, 0) + 1
        if per_text[key] <= MAX_SPANS_PER_TEXT:
            span = made.get(occ)
            if span is None:
                span = made[occ] = make_span(FIELDS[f], text, start, end)
            out.append(span)
        if len(out) >= MAX_SPANS:
            break
    return out


def make_span(field_name: str, text: str, start: int, end: int) -> Span:
    """A span with a snippet of up to SNIPPET_CONTEXT characters each side, cut at spaces."""
    lo = max(0, start - SNIPPET_CONTEXT)
    if lo > 0 and not text[lo - 1].isspace():
        space = _SPACE.search(text, lo, start)
        lo = space.end() if space else lo
    hi = min(len(text), end + SNIPPET_CONTEXT)
    if hi < len(text) and not text[hi].isspace():
        # The last space before ``hi``, found by one greedy match rather than every space.
        last = _LAST_SPACE.match(text, end, hi)
        hi = last.end() - 1 if last else hi
    lead = "…" if lo > 0 else ""
    left = lead + text[lo:start].lstrip()
    right = text[end:hi].rstrip() + ("…" if hi < len(text) else "")
    snippet = (left + text[start:end] + right).replace("\n", " ")
    highlight = (len(left), len(left) + end - start)
    return Span(field_name, text[start:end], start, end, snippet, highlight)


# ---------------------------------------------------------------------------------- explain


def explain(ev: Evaluator, node: q.Node) -> list[str]:
    """One line per top-level clause of ``node``: ✓ with where it held, or ✗ with why not.

    A failed clause names the sub-clauses that failed, each with its own reason, down to
    MAX_EXPLAIN_DEPTH levels: ``✗ japan OR (china NEAR/2 trade): none held: japan (not
    ; china NEAR/2 trade (both found but not within 2 words)``.
    """
    clauses = node.children if isinstance(node, q.And | q.Or) else (node,)
    return [_explain(ev, clause) for clause in clauses]


def _explain(ev: Evaluator, node: q.Node) -> str:
    found = ev.eval(node, BOTH)
    if isinstance(node, q.Not):
        if found is not None:
            return f"✓ {node.src}  (not found)"
        return f"✗ {node.src}: {_why_not(ev, node, BOTH, 0)}"
    if isinstance(node, q.Meta):
        actual = ev.meta(node.field) or "none"
        if found is not None:
            return f"✓ {node.src}  ({node.field} is {actual!r})"
        return f"✗ {node.src}: {node.field} is {actual!r}"
    if found is not None:
        return f"✓ {node.src}  ({_places(ev, found) or 'holds'})"
    return f"✗ {node.src}: {_why_not(ev, node, BOTH, 0)}"


def _why_not(ev: Evaluator, node: q.Node, scope: tuple[int, ...], depth: int) -> str:
    """Why ``node`` does not hold in ``scope``."""
    match node:
        case q.Near(left=left, right=right, n=n, ordered=ordered):
            for side in (left, right):
                if ev.eval(side, scope) is None:
                    return f"{_failed(ev, side, scope, depth)} not found"
            order = " in that order" if ordered else ""
            return f"both found but not{order} within {n} words"
        case q.And(children=kids):
            missing = [_failed(ev, k, scope, depth) for k in kids if ev.eval(k, scope) is None]
            return "failed: " + ", ".join(missing)
        case q.Or(children=kids) if not all(_simple(k) for k in kids):
            return "none held: " + "; ".join(_failed(ev, k, scope, depth) for k in kids)
        case q.Not(child=child):
            return f"found {_places(ev, ev.eval(child, scope) or []) or child.src}"
        case q.Scope(field=name, child=child):
            inner = (FIELDS.index(name),)
            if _simple(child) or depth >= MAX_EXPLAIN_DEPTH:
                return f"not found in {name}"
            return f"not found in {name}: {_why_not(ev, child, inner, depth + 1)}"
        case q.Meta(field=name):
            return f"{name} is {ev.meta(name) or 'none'!r}"
    return "no term found"


def _failed(ev: Evaluator, node: q.Node, scope: tuple[int, ...], depth: int) -> str:
    """A failed sub-clause: its text, with its own reason unless it is a plain term."""
    if _simple(node) or depth >= MAX_EXPLAIN_DEPTH:
        return node.src
    return f"{node.src} ({_why_not(ev, node, scope, depth + 1)})"


def _simple(node: q.Node) -> bool:
    return isinstance(node, q.Term | q.Entity | q.Regex)


def _places(ev: Evaluator, found: list[Occ], limit: int = 3) -> str:
    shown: list[str] = []
    for f, _, _, start, end in found:
        item = f'"{ev.fields[f].text[start:end]}" in {FIELDS[f]}'
        if item not in shown:
            shown.append(item)
        if len(shown) > limit:
            break
    more = ", …" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more


# ------------------------------------------------------------------------------------ loading


@contextmanager
def _no_gc() -> Iterator[None]:
    """The cycle collector paused: loading makes millions of long-lived objects and no
    garbage cycles, and every collection on the way would walk all of them again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_resident(paths: Sequence[str | Path]) -> RuleSet:
    """Rules for a long-running process: :meth:`RuleSet.from_files`, after which every object
    alive is moved out of the cycle collector's sight (``gc.freeze``).

    A rule set is millions of objects that live until the next reload; left in view, each
    full collection walks them all again, which at 100k rules costs more than matching
    (objects are still freed by reference counting when dropped). Each call first hands
    the frozen objects back and collects, so cyclic garbage frozen with one rule set is
    reclaimed at the next reload. Process-wide, hence not done by ``from_files`` itself.
    """
    gc.unfreeze()
    gc.collect()
    try:
        return RuleSet.from_files(paths)
    finally:
        gc.freeze()


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
            src = yamlsrc.load(path, text)
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
                self.errors.append(src.error((*where, key), message, at_key=True))

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
        node = self.query(src, kp, item, entities, rule_id)
        name = self.string(src, (*kp, "name"), item["name"]) if "name" in item else rule_id
        notify = self.names(src, (*kp, "notify"), item.get("notify", []))
        channels = self.names(src, (*kp, "channels"), item.get("channels", []))
        throttle = self.duration(src, (*kp, "throttle"), item.get("throttle"))
        if len(self.errors) > before or rule_id is None or node is None or name is None:
            return
        pos = src.pos(kp)
        line = pos.line if pos else 0
        notify_at = _entry_positions(src, (*kp, "notify"), len(notify))
        rule = Rule(
            rule_id, name, item["query"], notify, channels, src.path, line, throttle, notify_at
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
        self,
        src: Source,
        kp: KeyPath,
        item: dict[str, Any],
        entities: dict[str, list[q.Term]],
        rule_id: str | None,
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
        except q.QueryLimitError as exc:
            # About the rule as a whole (its size), so it names the rule.
            if rule_id is not None:
                exc = q.QueryLimitError(f"rule {rule_id!r}: {exc.message}", exc.offset)
            self.errors.append(self.located(src, qkp, exc))
        except q.QueryError as exc:
            self.errors.append(self.located(src, qkp, exc))
        return None

    def string(self, src: Source, kp: KeyPath, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.errors.append(src.error(kp, f"'{kp[-1]}' must be a non-empty string"))
            return ""
        return value

    def duration(self, src: Source, kp: KeyPath, value: Any) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.errors.append(src.error(kp, f"'{kp[-1]}': {exc}"))
            return None

    def names(self, src: Source, kp: KeyPath, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.errors.append(src.error(kp, f"'{kp[-1]}' must be a list of names"))
            return ()
        for j, item in enumerate(items):
            if not isinstance(item, str) or not item.strip():
                self.errors.append(src.error((*kp, j), f"'{kp[-1]}' entries must be names"))
        return tuple(str(item) for item in items)


def _entry_positions(src: Source, kp: KeyPath, count: int) -> tuple[tuple[int, int], ...]:
    """(line, col) of each of the ``count`` entries of the list at ``kp`` (of the value
    itself when it is a single string, or of the enclosing key when it is absent)."""
    out = []
    for j in range(count):
        pos = src.pos((*kp, j))
        out.append((pos.line, pos.col) if pos else (0, 0))
    return tuple(out)
