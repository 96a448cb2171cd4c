"""YAML loading: a hostile or odd document is one line naming file:line:col (and the key),
never a traceback, a hang or gigabytes of memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import RuleSet, yamlsrc
from monitor.config import load_config
from monitor.errors import ConfigError


def write(tmp_path: Path, text: str, name: str = "monitor.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def alias_bomb(levels: int, key: str = "x") -> str:
    """``levels`` anchors, each a list of ten aliases to the one before: 10**levels values
    written out, a few hundred bytes as written."""
    lines = [f"{key}:", "  a0: &a0 [" + ",".join(['"lol"'] * 10) + "]"]
    for i in range(1, levels):
        lines.append(f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# The values built through aliases pass 100000 at a4's eighth alias: a1..a3 build 12330, and
# each *a3 is 11111 more. "  a4: &a4 [" is 11 characters, each "*a3," four.
BOMB_AT = ":6:40: error: YAML aliases here expand to more than 100000 values"


def test_alias_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    """Nested aliases standing for ten million values are refused, at the alias that passes
    the budget, instead of being expanded."""
    path = write(tmp_path, alias_bomb(7))
    with pytest.raises(ConfigError) as info:
        yamlsrc.load(path)
    assert str(info.value).startswith(f"{path}{BOMB_AT}")
    assert "\n" not in str(info.value)


def test_alias_bomb_in_config_and_rule_file(tmp_path: Path) -> None:
    """The bomb is refused the same way by `check`'s config loading and by the rule loader
    the daemon reloads with."""
    config = write(tmp_path, alias_bomb(9))
    with pytest.raises(ConfigError, match=rf"^{config}{BOMB_AT}"):
        load_config(config, env={})
    rules = write(tmp_path, alias_bomb(9, key="entities"), name="rules.yml")
    with pytest.raises(ConfigError, match=rf"^{rules}{BOMB_AT}"):
        RuleSet.from_files([rules])


def test_aliases_in_normal_use_still_load(tmp_path: Path) -> None:
    """Anchors reused many times load: the budget grows with the file, so a big rule file
    naming one anchor per rule is no bomb, and a file without aliases has no limit."""
    per_rule = "".join(f"  - {{id: r{i}, notify: *desk}}\n" for i in range(60_000))
    src = yamlsrc.load(write(tmp_path, f"desk: &desk [a, b]\nrules:\n{per_rule}"))
    assert len(src.data["rules"]) == 60_000 and src.data["rules"][-1]["notify"] == ["a", "b"]
    assert yamlsrc.ALIAS_VALUES_MIN < 3 * 60_000  # more values via aliases than the minimum
    plain = yamlsrc.load(write(tmp_path, "x: &x {a: [1, 2]}\ny: *x\nz: [*x, *x]\n"))
    assert plain.data["z"] == [{"a": [1, 2]}] * 2 and plain.pos(("z", 1, "a")) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("state_dir: 2001-02-30\n", ":1:12: error: state_dir: '2001-02-30' is not a valid date"),
        ("a:\n  b: 2001-01-01 25:00:00\n", ":2:6: error: a.b: '2001-01-01 25:00:00' is not a val"),
        ("shutdown_grace: !!float abc\n", ":1:17: error: shutdown_grace: 'abc' is not a number"),
        ("a: [!!int abc]\n", ":1:5: error: a[0]: 'abc' is not an integer (tag !!int)"),
        ("a: {b: !!bool maybe}\n", ":1:8: error: a.b: 'maybe' is not a boolean (tag !!bool)"),
        ("a: !!timestamp abc\n", ":1:4: error: a: 'abc' is not a valid date or time"),
        ("fetch: !!python/object:os.system {timeout: 5s}\n", ":1:8: error: fetch: unsupported tag"),
        ("fetch: !custom {timeout: 5s}\n", ":1:8: error: fetch: unsupported tag !custom"),
        ("feeds: !custom [a]\n", ":1:8: error: feeds: unsupported tag !custom"),
        ("feeds: !!set {a, b}\n", ":1:8: error: feeds: unsupported tag !!set"),
        ("a: !!binary aGk=\n", ":1:4: error: a: unsupported tag !!binary"),
        ("a: {b: 1, <<: {c: 2}}\n", ":1:11: error: a: unsupported tag !!merge (merge keys"),
        ('state_dir: "a\x07b"\n', ":1:14: error: invalid YAML: control character U+0007"),
        ("a: 1\nb: x\x00y\n", ":2:5: error: invalid YAML: control character U+0000"),
    ],
)
def test_bad_document_is_one_located_line(tmp_path: Path, text: str, expected: str) -> None:
    """Dates that do not exist, text a tag cannot read, tags on anything, and characters
    YAML forbids: each is one line with file:line:col and, where there is one, the key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        yamlsrc.load(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}{expected}")
    assert message.count("error:") == 1


def test_bad_date_in_a_rule_file_names_the_rule_key(tmp_path: Path) -> None:
    """A rule file's impossible date is a located error of the rule loader, not a crash."""
    path = write(tmp_path, "rules:\n  - {id: a, query: x, name: 2001-02-30}\n", "r.yml")
    with pytest.raises(ConfigError) as info:
        RuleSet.from_files([path])
    assert str(info.value).startswith(f"{path}:2:29: error: rules[0].name: '2001-02-30' is not")


def test_known_tags_and_dates_still_read(tmp_path: Path) -> None:
    """Core tags keep working: !!str forces text, a real date is a date, quoted text stays."""
    src = yamlsrc.load(
        write(tmp_path, "a: !!str 5\nb: '2001-02-30'\nc: !!int '7'\nd: 2001-02-28\n")
    )
    assert (src.data["a"], src.data["b"], src.data["c"]) == ("5", "2001-02-30", 7)
    assert str(src.data["d"]) == "2001-02-28"


def test_key_labels_stay_on_one_line() -> None:
    """A key that is empty or holds a line break is shown quoted, so messages stay one line."""
    assert yamlsrc.key_label(("sinks", "a\nb", "url")) == "sinks['a\\nb'].url"
    assert yamlsrc.key_label(("", 0)) == "[''][0]"
    assert yamlsrc.key_label(("feeds", 2, "interval")) == "feeds[2].interval"


QUERY_LAYOUTS = {
    "folded": ("query: >-\n      korea AND\n      (control OR\n      x AND)\n", "6:9"),
    "folded, kept": ("query: >\n      korea AND\n\n      x AND\n", "6:9"),
    "literal": ("query: |\n      korea AND\n        (control OR x AND)\n", "5:23"),
    "plain over lines": ("query: korea AND\n      (control OR\n      x AND)\n", "5:9"),
    "one line": ("query: korea AND (x AND)\n", "3:25"),
    "quoted": ("query: 'korea AND (x AND)'\n", "3:26"),
    "anchored": ("query: &q korea AND\n      (x AND)\n", "4:10"),
    "tagged": ("query: !!str korea AND\n      (x AND)\n", "4:10"),
    "anchored, one line": ("query: &q korea AND (x AND)\n", "3:28"),
}


@pytest.mark.parametrize("layout", QUERY_LAYOUTS)
def test_query_errors_point_into_the_query_however_it_is_laid_out(
    tmp_path: Path, layout: str
) -> None:
    """A query error is at its token's line and column in a folded (``>``), literal (``|``)
    or plain multi-line query too, not counted as if the text were on one line."""
    query, place = QUERY_LAYOUTS[layout]
    write(tmp_path, f"rules:\n  - id: a\n    {query}", name="r.yml")
    with pytest.raises(ConfigError) as info:
        RuleSet.from_files([tmp_path])
    message = "error: 'AND' needs a term on its right"
    assert str(info.value) == f"{tmp_path / 'r.yml'}:{place}: {message}"


def test_an_offset_past_a_folded_query_is_just_past_its_last_character(tmp_path: Path) -> None:
    """The end of a folded value is placed after its last character, not at the next key."""
    src = yamlsrc.load(write(tmp_path, "q: >-\n  a b\n  cd\n\nnext: 1\n"))
    assert src.text_pos(("q",), len("a b cd")) == (3, 5)
    assert src.text_pos(("q",), 2) == (2, 5)  # "b"
    assert src.text_pos(("q",), 4) == (3, 3)  # "c", after the fold


@pytest.mark.parametrize("header", [">-", "|", ">"])
def test_an_empty_block_query_is_reported_at_itself(tmp_path: Path, header: str) -> None:
    """An empty block scalar has no character to align with: its error is at the scalar,
    not at the end of the file in another rule."""
    text = f"rules:\n  - id: a\n    query: {header}\n\n  - id: b\n    query: x\n    name: zzz\n"
    write(tmp_path, text, name="r.yml")
    with pytest.raises(ConfigError) as info:
        RuleSet.from_files([tmp_path])
    assert str(info.value).startswith(f"{tmp_path / 'r.yml'}:3:12: error: "), str(info.value)
