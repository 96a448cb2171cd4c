"""YAML loading that remembers where every value came from.

Config and rule errors must name ``path:line:col``; plain ``yaml.safe_load`` forgets positions,
so we compose the node tree ourselves and keep a map from each value's key path to its
position. Only YAML's safe core types are built (no tags, no anchors' aliases beyond safe
loading), and duplicate mapping keys are an error instead of a silent overwrite.
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


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column of a value; ``quoted`` tells if its text starts after a quote."""

    line: int
    col: int
    quoted: bool = False
    block: bool = False
    indent: int = 0


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

        Exact for single-line plain and quoted scalars (the usual query); for block or folded
        scalars it points at the right line when the text kept its newlines.
        """
        p = self.positions.get(keypath)
        if p is None:
            return None, None
        if p.block:
            value = _get(self.data, keypath)
            before = str(value)[:offset]
            extra_lines = before.count("\n")
            col = len(before) - (before.rfind("\n") + 1)
            return p.line + 1 + extra_lines, p.indent + col + 1
        return p.line, p.col + (1 if p.quoted else 0) + offset


def _get(data: Any, keypath: KeyPath) -> Any:
    for k in keypath:
        data = data[k]
    return data


def key_label(keypath: KeyPath) -> str:
    """``feeds[0].interval`` style name for a key path."""
    out = ""
    for k in keypath:
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
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
        src.data = _build(node, (), src) if node is not None else None
    except RecursionError:
        raise ConfigError("YAML nested too deeply", spath) from None
    return src


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
        if "flow" in msg and mark is not None and "${" in _line(text, mark.line):
            msg += ' (inside { } or [ ], quote a ${VAR} reference: "${VAR}")'
        if mark is None:
            raise ConfigError(f"invalid YAML: {msg}", spath) from None
        raise ConfigError(f"invalid YAML: {msg}", spath, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", spath) from None


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else ""


def _build(node: yaml.Node, keypath: KeyPath, src: Source) -> Any:
    mark = node.start_mark
    style = getattr(node, "style", None)
    block = style in ("|", ">")
    indent = 0
    if block and mark.line + 1 < len(src.lines):
        first = src.lines[mark.line + 1]
        indent = len(first) - len(first.lstrip(" "))
    src.positions[keypath] = Pos(
        mark.line + 1, mark.column + 1, quoted=style in ("'", '"'), block=block, indent=indent
    )
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = _scalar(knode, src)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError(
                    "mapping keys must be plain strings",
                    src.path,
                    knode.start_mark.line + 1,
                    knode.start_mark.column + 1,
                )
            skey = str(key)
            if skey in out:
                raise ConfigError(
                    f"duplicate key {skey!r}",
                    src.path,
                    knode.start_mark.line + 1,
                    knode.start_mark.column + 1,
                )
            km = knode.start_mark
            src.key_positions[(*keypath, skey)] = Pos(km.line + 1, km.column + 1)
            out[skey] = _build(vnode, (*keypath, skey), src)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, (*keypath, i), src) for i, child in enumerate(node.value)]
    return _scalar(node, src)


def _scalar(node: yaml.Node, src: Source) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError(
            "expected a plain value here",
            src.path,
            node.start_mark.line + 1,
            node.start_mark.column + 1,
        )
    try:
        return _SCALARS.construct_scalar(node) if node.style else _resolve(node)
    except yaml.YAMLError as exc:
        m = node.start_mark
        raise ConfigError(f"invalid value: {exc}", src.path, m.line + 1, m.column + 1) from None


def _resolve(node: yaml.ScalarNode) -> Any:
    """Plain scalars get YAML's safe typing (ints, bools, null); tags beyond that are refused."""
    if node.tag not in _SCALARS.yaml_constructors:
        raise yaml.YAMLError(f"unsupported tag {node.tag}")
    return _SCALARS.yaml_constructors[node.tag](_SCALARS, node)
