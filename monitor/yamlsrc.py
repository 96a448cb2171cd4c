"""YAML loading that remembers where every value came from.

Config and rule errors must name ``path:line:col``; plain ``yaml.safe_load`` forgets positions,
so we compose the node tree ourselves and keep a map from each value's key path to its
position. Only YAML's safe core scalar types are built: any other tag, on a scalar, mapping or
sequence, is refused, and duplicate mapping keys are an error instead of a silent overwrite.
Anchors and aliases work, but the values built through aliases are bounded (see
:func:`alias_budget`), so a few hundred bytes of nested aliases cannot expand to billions.
Every problem — a syntax error, a forbidden character, a value its tag cannot read — is one
ConfigError at ``path:line:col``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

KeyPath = tuple[str | int, ...]
# libyaml composes ten times faster (big rule files); the pure-Python composer runs only to
# word an error. One loader builds every scalar: its constructors keep no state between calls.
_COMPOSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALARS = yaml.SafeLoader("")
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_CORE + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_KINDS = {_CORE + "int": "an integer", _CORE + "float": "a number", _CORE + "bool": "a boolean"}
_COLLECTION_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: _CORE + "map",
    yaml.SequenceNode: _CORE + "seq",
}
# Values built through aliases, at least: far beyond what a config's few anchors expand to.
ALIAS_VALUES_MIN = 100_000


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column of a value; ``quoted`` tells if its text starts after a quote."""

    line: int
    col: int
    quoted: bool = False
    block: bool = False
    spread: bool = False  # a block scalar, or a plain one over several lines


@dataclass(slots=True)
class Source:
    """A loaded YAML document: the plain data and where each piece of it sits."""

    path: str
    data: Any
    positions: dict[KeyPath, Pos] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list, repr=False)
    key_positions: dict[KeyPath, Pos] = field(default_factory=dict)

    def pos(self, keypath: KeyPath) -> Pos | None:
        """Position of ``keypath``, or of its nearest parent that has one."""
        while True:
            found = self.positions.get(keypath)
            if found is not None or not keypath:
                return found
            keypath = keypath[:-1]

    def error(self, keypath: KeyPath, message: str, *, at_key: bool = False) -> ConfigError:
        """A ConfigError located at ``keypath``'s value (or at its key, with ``at_key``)."""
        p = self.key_positions.get(keypath) if at_key else None
        p = p or self.pos(keypath)
        return ConfigError(message, self.path, p.line if p else None, p.col if p else None)

    def text_pos(self, keypath: KeyPath, offset: int) -> tuple[int | None, int | None]:
        """Line and column of character ``offset`` inside the scalar at ``keypath``.

        Exact for single-line plain and quoted scalars (the usual query). For block scalars
        (``|``, ``>``, folded or not) and plain scalars over several lines, whose text has
        no escapes, the n-th character of the value that is not a space, tab or newline is
        the n-th such character of the source from where the text starts: what YAML folds
        and de-indents is whitespace only. An offset at a space points at the next
        character; one at the end, just past the last. Quoted scalars over several lines
        (escapes, ``''``) are placed as if on one line.
        """
        p = self.positions.get(keypath)
        if p is None:
            return None, None
        if p.spread:
            value = str(_get(self.data, keypath))
            return self._aligned(p, value, offset)
        return p.line, p.col + (1 if p.quoted else 0) + offset

    def _aligned(self, p: Pos, value: str, offset: int) -> tuple[int, int]:
        """Where, in the source, the value's character at ``offset`` is (see text_pos)."""
        wanted, total = _solid(value[:offset]), _solid(value)
        if not total:  # nothing to align with: the scalar's own place
            return p.line, p.col
        at_end = wanted >= total
        if at_end:
            wanted -= 1  # the last character: the place is just past it
        # A block scalar's text starts on the line after its header (``|``, ``>-``...).
        line, col = (p.line, 0) if p.block else (p.line - 1, p.col - 1)
        last = (p.line, p.col)
        seen = 0
        for index in range(line, len(self.lines)):
            text = self.lines[index]
            for c in range(col if index == line else 0, len(text)):
                if text[c] in _BLANKS:
                    continue
                if seen == wanted:
                    return index + 1, c + 1 + (1 if at_end else 0)
                seen += 1
                last = (index + 1, c + 1)
        return last


_BLANKS = " \t\r\n"


def _past_properties(line: str, col: int) -> int:
    """Where a node's content starts on ``line``, past the anchor (``&a``) and tag
    (``!!str``) that PyYAML counts as its start: text offsets are counted from there."""
    while col < len(line) and line[col] in "&!":
        while col < len(line) and line[col] not in " \t":
            col += 1
        while col < len(line) and line[col] in " \t":
            col += 1
    return col


def _solid(text: str) -> int:
    """How many characters of ``text`` are not blanks (:data:`_BLANKS`)."""
    return len(text) - sum(map(text.count, _BLANKS))


def _get(data: Any, keypath: KeyPath) -> Any:
    for k in keypath:
        data = data[k]
    return data


def key_label(keypath: KeyPath) -> str:
    """``feeds[0].interval`` style name for a key path, on one line: a key that is empty or
    holds a line break or other unprintable character shows quoted (``sinks['a\\nb']``)."""
    out = ""
    for k in keypath:
        if isinstance(k, int):
            out += f"[{k}]"
        elif not k or not k.isprintable():
            out += f"[{k!r}]"
        else:
            out += f".{k}" if out else k
    return out


def load(path: str | Path, text: str | None = None) -> Source:
    """Load one YAML file; a syntax error, or a byte that is not UTF-8, is a ConfigError at
    its line and column."""
    spath = str(path)
    if text is None:
        text = _read(spath)
    try:
        try:
            node = yaml.compose(text, Loader=_COMPOSER)
        except yaml.YAMLError:
            node = _compose_for_errors(text, spath)
        src = Source(spath, None)
        src.lines = text.splitlines()
        if node is not None:
            src.data = _Builder(src, alias_budget(text)).build(node, (), aliased=False)
    except _TooManyAliases:
        raise _alias_bomb_error(text, spath) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", spath) from None
    return src


def alias_budget(text: str) -> int:
    """How many values the document may build through aliases: one per character of the
    file, and at least :data:`ALIAS_VALUES_MIN`. Written out, each value takes a character or
    more, so aliases can at most double what the file's own text would cost."""
    return max(ALIAS_VALUES_MIN, len(text))


def _read(spath: str) -> str:
    """The UTF-8 text of the file; a byte that is not UTF-8 is an error at its line:col."""
    try:
        data = Path(spath).read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", spath) from None
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", spath) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line_start = before.rfind(b"\n") + 1
        col = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        msg = f"not UTF-8 (byte 0x{data[exc.start]:02x}: {exc.reason}); save the file as UTF-8"
        raise ConfigError(msg, spath, before.count(b"\n") + 1, col) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # as text mode reads it


def _compose_for_errors(text: str, spath: str) -> yaml.Node | None:
    """The pure-Python composer, whose messages and marks the rest of the tool reports."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(str(x) for x in (exc.context, exc.problem) if x) or "invalid YAML"
        if "flow" in msg and mark is not None and "${" in _line(text.splitlines(), mark.line):
            msg += ' (inside { } or [ ], quote a ${VAR} reference: "${VAR}")'
        if mark is None:
            raise ConfigError(f"invalid YAML: {msg}", spath) from None
        raise ConfigError(f"invalid YAML: {msg}", spath, mark.line + 1, mark.column + 1) from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, spath) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", spath) from None


def _reader_error(exc: yaml.reader.ReaderError, text: str, spath: str) -> ConfigError:
    """A character YAML does not allow in a file (a control character, NUL), at its
    line:col — the reader knows only its offset in the text."""
    at = exc.position
    line = text.count("\n", 0, at) + 1
    col = at - (text.rfind("\n", 0, at) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    msg = (
        f"invalid YAML: control character U+{code:04X} is not allowed in a YAML file "
        f'(inside a double-quoted string, write it as the escape "{escape}")'
    )
    return ConfigError(msg, spath, line, col)


def _line(lines: list[str], index: int) -> str:
    """Line ``index`` (0-based) of ``lines``, or "" past the end."""
    return lines[index] if 0 <= index < len(lines) else ""


class _TooManyAliases(Exception):
    """The document builds more values through aliases than its budget allows."""


class _Builder:
    """Turns a composed node tree into plain data, noting each value's position in ``src``.

    yaml.compose gives every alias its anchor's node, so nested aliases make a small tree
    stand for an enormous document (an "alias bomb"). A collection met a second time is
    met through an alias; every value built from there on counts against ``budget``, and
    going past it raises :class:`_TooManyAliases` — so building costs at most the file's own
    values plus ``budget``.
    """

    def __init__(self, src: Source, budget: int) -> None:
        self.src = src
        self.budget = budget
        self.seen: set[int] = set()  # ids of the collections built so far
        self.through_aliases = 0

    def build(self, node: yaml.Node, keypath: KeyPath, *, aliased: bool) -> Any:
        """The plain value of ``node`` (``aliased``: reached through an alias)."""
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            aliased = aliased or id(node) in self.seen
            self.seen.add(id(node))
        if aliased:
            self.through_aliases += 1
            if self.through_aliases > self.budget:
                raise _TooManyAliases
        self.src.positions[keypath] = self.pos(node)
        if isinstance(node, yaml.MappingNode):
            _check_tag(node, keypath, self.src)
            return self.mapping(node, keypath, aliased)
        if isinstance(node, yaml.SequenceNode):
            _check_tag(node, keypath, self.src)
            children = enumerate(node.value)
            return [self.build(child, (*keypath, i), aliased=aliased) for i, child in children]
        return _scalar(node, keypath, self.src)

    def pos(self, node: yaml.Node) -> Pos:
        """Where ``node`` starts, and how its text is laid out from there."""
        mark = node.start_mark
        style = getattr(node, "style", None)
        block = style in ("|", ">")
        spread = block or (not style and node.end_mark.line > mark.line)
        quoted = style in ("'", '"')
        col = _past_properties(_line(self.src.lines, mark.line), mark.column)
        return Pos(mark.line + 1, col + 1, quoted=quoted, block=block, spread=spread)

    def mapping(self, node: yaml.MappingNode, keypath: KeyPath, aliased: bool) -> dict[str, Any]:
        """A mapping's keys as strings; a duplicate or non-scalar key is an error."""
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = _scalar(knode, keypath, self.src)
            km = knode.start_mark
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError(
                    "mapping keys must be plain strings", self.src.path, km.line + 1, km.column + 1
                )
            skey = str(key)
            if skey in out:
                raise ConfigError(
                    f"duplicate key {skey!r}", self.src.path, km.line + 1, km.column + 1
                )
            self.src.key_positions[(*keypath, skey)] = Pos(km.line + 1, km.column + 1)
            out[skey] = self.build(vnode, (*keypath, skey), aliased=aliased)
        return out


def _alias_bomb_error(text: str, spath: str) -> ConfigError:
    """The alias at which the document's values built through aliases pass its budget.

    libyaml's composer keeps no alias positions, so the pure-Python one composes again and
    counts at each alias what it expands to, in the same order the builder did.
    """
    budget = alias_budget(text)
    msg = (
        f"YAML aliases here expand to more than {budget} values in all; "
        "write the values out, or use fewer nested aliases"
    )
    loader = _AliasCounter(text, budget)
    try:
        loader.get_single_node()
    except _AliasBomb as bomb:
        return ConfigError(msg, spath, bomb.mark.line + 1, bomb.mark.column + 1)
    finally:
        loader.dispose()
    return ConfigError(msg, spath)


class _AliasBomb(Exception):
    """Raised by :class:`_AliasCounter` at the alias that passes the budget."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__()
        self.mark = mark


class _AliasCounter(yaml.SafeLoader):
    """The pure-Python composer, adding up what each alias expands to."""

    def __init__(self, text: str, budget: int) -> None:
        super().__init__(text)
        self.budget = budget
        self.expanded = 0
        self.sizes: dict[int, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose as usual; at an alias, count the values its node expands to."""
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        node = super().compose_node(parent, index)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self.expanded += _expanded_size(node, self.sizes)
        if self.expanded > self.budget:
            raise _AliasBomb(mark)
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for with its aliases written out (memoized by id)."""
    found = sizes.get(id(node))
    if found is not None:
        return found
    if isinstance(node, yaml.MappingNode):
        children = [v for _, v in node.value]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    else:
        return 1
    total = 1 + sum(_expanded_size(child, sizes) for child in children)
    sizes[id(node)] = total
    return total


def _check_tag(node: yaml.Node, keypath: KeyPath, src: Source) -> None:
    """Refuse a tag on a mapping or sequence (``!!set``, ``!!python/object:…``, ``!x``)."""
    if node.tag != _COLLECTION_TAGS[type(node)]:
        m = node.start_mark
        msg = f"unsupported tag {_short_tag(node.tag)} (remove it: tags are not supported)"
        raise ConfigError(_labelled(keypath, msg), src.path, m.line + 1, m.column + 1)


def _scalar(node: yaml.Node, keypath: KeyPath, src: Source) -> Any:
    """A scalar's value as its tag (explicit, or resolved from a plain scalar) reads it."""
    m = node.start_mark
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("expected a plain value here", src.path, m.line + 1, m.column + 1)
    if node.tag not in _SCALAR_TAGS:
        hint = "merge keys '<<' are not supported: write the keys out"
        if node.tag != _CORE + "merge":
            hint = "remove it: tags are not supported"
        msg = f"unsupported tag {_short_tag(node.tag)} ({hint})"
        raise ConfigError(_labelled(keypath, msg), src.path, m.line + 1, m.column + 1)
    try:
        return _SCALARS.yaml_constructors[node.tag](_SCALARS, node)
    # The constructors fail in many ways on text their tag does not fit: a date that does not
    # exist (2001-02-30), "!!int abc", "!!bool maybe", "!!timestamp x".
    except (yaml.YAMLError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
        tagged = _line(src.lines, m.line)[m.column : m.column + 1] == "!"
        msg = _unreadable(node, e, tagged)
        raise ConfigError(_labelled(keypath, msg), src.path, m.line + 1, m.column + 1) from None


def _unreadable(node: yaml.ScalarNode, exc: Exception, tagged: bool) -> str:
    """Why ``node``'s text is not a value of its tag (``tagged``: written with the tag), and
    what to write instead."""
    text = node.value if len(node.value) <= 40 else node.value[:40] + "…"
    if node.tag == _CORE + "timestamp":
        why = f" ({exc})" if isinstance(exc, ValueError) else ""
        hint = " (tag !!timestamp)" if tagged else "; quote it to keep it as text"
        return f"{text!r} is not a valid date or time{why}{hint}"
    kind = _KINDS.get(node.tag, f"a {_short_tag(node.tag)} value")
    return f"{text!r} is not {kind} (tag {_short_tag(node.tag)})"


def _short_tag(tag: str) -> str:
    """A tag as it is written in YAML (``!!float``, ``!custom``)."""
    return "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag


def _labelled(keypath: KeyPath, message: str) -> str:
    """``message`` prefixed with the key it is about, when there is one."""
    return f"{key_label(keypath)}: {message}" if keypath else message
