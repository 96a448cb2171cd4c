"""Queries compiled to Python functions, one code object per query *shape*.

Promises:

- ``CodeCompiler().compile(node)`` returns a function ``f(words, phrases, ev)`` that is True
  exactly when ``ev.eval(node)`` is not None, given ``words`` (``ev.words``: the folded word
  sets of title, body and both) and ``phrases`` (the phrase and prefix keys of
  :attr:`CodeCompiler.keys` present in each of those scopes, as :meth:`present` finds them).
- Plain words are set look-ups, phrases and prefixes look-ups of their key (see
  :func:`monitor.checks.sequence_key`) among the present keys, all inline in one function
  with no call per term; only NEAR, ``case:`` terms, regexes and metadata call out, to the
  closures of :mod:`monitor.checks`. AND and OR test cheap children first.
- Queries that differ only in their words share one compiled code object (the words are
  bound as default arguments), so compiling costs once per shape, not once per rule. A shape
  too deep or too large for Python's compiler falls back to the closures of
  :mod:`monitor.checks`, which give the same answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import FunctionType
from typing import Any

from monitor import query as q
from monitor.checks import ALL, SCOPES, Compiler, sequence_key
from monitor.evaluate import FIELDS, Evaluator, meta_holds

WordSets = tuple[set[str], set[str], set[str]]
KeySets = tuple[set[str], set[str], set[str]]
FastCheck = Callable[[WordSets, KeySets, Evaluator], bool]
MAX_CONSTS = 64  # larger queries are rare and unique: closures beat compiling them
_CHEAP, _CALL = 1, 10


class CodeCompiler:
    """Builds fast checks; ``keys`` collects every phrase and prefix key they look up."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self._makers: dict[str, Callable[..., FastCheck] | None] = {}
        self._closures = Compiler()

    def compile(self, node: q.Node) -> FastCheck:
        """The check for a whole query."""
        consts: list[Any] = []
        try:
            expr, _ = self.expr(node, ALL, consts)
        except _TooBig:
            return self._fallback(node)
        maker = self._makers.get(expr, _MISSING)
        if maker is _MISSING:
            maker = self._makers[expr] = _make(expr, len(consts))
        if maker is None:
            return self._fallback(node)
        check: FastCheck = maker(*consts)
        return check

    def _fallback(self, node: q.Node) -> FastCheck:
        # The closures search the joined words themselves; the keys are still scanned for,
        # so that the positional evaluator knows which of this query's phrases are there.
        self.keys.update(
            sequence_key(t)
            for t in q.terms(node)
            if isinstance(t, q.Term) and (len(t.words) > 1 or t.prefix)
        )
        check = self._closures.compile(node)
        return lambda words, phrases, ev: check(ev)

    def present(self, ev: Evaluator) -> KeySets:
        """The keys present in each scope of ``ev``, by plain substring search (a slow,
        obviously right reference for :class:`monitor.prefilter.Scanner`)."""
        title = {k for k in self.keys if k in ev.joined[0]}
        body = {k for k in self.keys if k in ev.joined[1]}
        return title, body, title | body

    def expr(self, node: q.Node, s: int, consts: list[Any]) -> tuple[str, int]:
        """(Python expression, cost) for ``node`` in scope ``s``; constants go to ``consts``."""
        if len(consts) > MAX_CONSTS:
            raise _TooBig
        match node:
            case q.Term():
                return self.term(node, s, consts)
            case q.Entity(aliases=kids) | q.Or(children=kids):
                return self.any_of(kids, s, consts)
            case q.And(children=kids):
                return self.all_of(kids, s, consts)
            case q.Not(child=child):
                inner, cost = self.expr(child, s, consts)
                return f"not {inner}", cost
            case q.Scope(field=name, child=child):
                return self.expr(child, FIELDS.index(name), consts)
            case q.Near(left=left, right=right):
                lhs, _ = self.expr(left, s, consts)
                rhs, _ = self.expr(right, s, consts)
                # Both sides present is necessary; only then are word positions worth it.
                exact = _const(consts, _positional(node, SCOPES[s]))
                return f"({lhs} and {rhs} and {exact}(ev))", _CALL
            case q.Regex():
                return f"{_const(consts, self._closures.check(node, s)[0])}(ev)", _CALL
            case q.Meta(field=name):
                holds = _const(consts, _meta(node, name))
                return f"{holds}(ev)", _CHEAP
        raise TypeError(f"unknown query node {node!r}")  # pragma: no cover

    def term(self, term: q.Term, s: int, consts: list[Any]) -> tuple[str, int]:
        if term.exact:
            # The folded word or key is necessary and a set look-up; only then compare case.
            key = sequence_key(term)
            exact = _const(consts, self._closures.check(term, s)[0])
            if len(term.words) == 1 and not term.prefix:
                return f"({_const(consts, key.strip())} in W[{s}] and {exact}(ev))", _CALL
            self.keys.add(key)
            return f"({_const(consts, key)} in P[{s}] and {exact}(ev))", _CALL
        if len(term.words) == 1 and not term.prefix:
            return f"({_const(consts, term.words[0])} in W[{s}])", _CHEAP
        key = sequence_key(term)
        self.keys.add(key)
        return f"({_const(consts, key)} in P[{s}])", _CHEAP

    def any_of(self, kids: Iterable[q.Node], s: int, consts: list[Any]) -> tuple[str, int]:
        return self._combine(kids, s, consts, any_of=True)

    def all_of(self, kids: Iterable[q.Node], s: int, consts: list[Any]) -> tuple[str, int]:
        return self._combine(kids, s, consts, any_of=False)

    def _combine(
        self, kids: Iterable[q.Node], s: int, consts: list[Any], *, any_of: bool
    ) -> tuple[str, int]:
        """OR (``any_of``) or AND of ``kids``: set tests first, the rest cheapest first."""
        words, keys, others = _split(kids)
        parts: list[tuple[str, int]] = []
        if words:
            parts.append(_set_test(words, "W", s, consts, any_of=any_of))
        if keys:
            self.keys.update(keys)
            parts.append(_set_test(keys, "P", s, consts, any_of=any_of))
        parts += sorted((self.expr(k, s, consts) for k in others), key=lambda p: p[1])
        return _join(parts, " or " if any_of else " and "), max(c for _, c in parts)


class _TooBig(Exception):
    pass


_MISSING: Any = object()


def _split(kids: Iterable[q.Node]) -> tuple[list[str], list[str], list[q.Node]]:
    """Plain words, phrase/prefix keys (not ``case:``) and the other kids."""
    words: list[str] = []
    keys: list[str] = []
    others: list[q.Node] = []
    for kid in kids:
        if isinstance(kid, q.Term) and not kid.exact:
            if len(kid.words) == 1 and not kid.prefix:
                words.append(kid.words[0])
            else:
                keys.append(sequence_key(kid))
        else:
            others.append(kid)
    return words, keys, others


def _set_test(
    items: list[str], name: str, s: int, consts: list[Any], *, any_of: bool
) -> tuple[str, int]:
    if len(set(items)) == 1:
        return f"({_const(consts, items[0])} in {name}[{s}])", _CHEAP
    c = _const(consts, frozenset(items))
    return (f"(not {c}.isdisjoint({name}[{s}]))" if any_of else f"({c} <= {name}[{s}])"), _CHEAP


def _join(parts: list[tuple[str, int]], op: str) -> str:
    return parts[0][0] if len(parts) == 1 else "(" + op.join(p for p, _ in parts) + ")"


def _const(consts: list[Any], value: Any) -> str:
    consts.append(value)
    return f"c{len(consts) - 1}"


def _positional(node: q.Node, scope: tuple[int, ...]) -> Callable[[Evaluator], bool]:
    return lambda ev: ev.eval(node, scope) is not None


def _meta(node: q.Meta, name: str) -> Callable[[Evaluator], bool]:
    return lambda ev: meta_holds(node, ev.meta(name))


def _make(expr: str, count: int) -> Callable[..., FastCheck] | None:
    """A function binding ``count`` constants into a check computing ``expr``, or None when
    Python cannot compile it (nesting too deep). The constants become the check's default
    arguments: fast local reads, and no closure cells for the cycle collector to walk."""
    params = "".join(f", c{i}=None" for i in range(count))
    src = f"def check(W, P, ev{params}):\n return {expr}\n"
    space: dict[str, Any] = {}
    try:
        exec(compile(src, "<query>", "exec"), space)  # our own generated source
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        return None
    proto = space["check"]
    code, scope = proto.__code__, proto.__globals__

    def make(*consts: Any) -> FastCheck:
        check: FastCheck = FunctionType(code, scope, "check", consts)
        return check

    return make


__all__ = ["SCOPES", "CodeCompiler", "FastCheck", "KeySets", "WordSets"]
