"""Feed-list configuration: OPML import, adaptive-polling bounds and the websub section."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.errors import ConfigError

OPML = """<?xml version="1.0"?>
<opml version="2.0"><head><title>x</title></head><body>
<outline text="World"><outline text="A" title="Alpha" xmlUrl="https://a.example/rss"/>
<outline text="B" xmlUrl="https://b.example/atom"/></outline>
<outline text="dup" xmlUrl="https://a.example/rss"/>
<outline text="not a feed" xmlUrl="javascript:alert(1)"/>
</body></opml>
"""


def write(tmp: Path, text: str) -> Path:
    (tmp / "feeds.opml").write_text(OPML)
    path = tmp / "monitor.yml"
    path.write_text(text)
    return path


def test_opml_import_with_bounds(tmp_path: Path) -> None:
    """OPML feeds come in order, deduplicated, http(s) only, with the item's interval bounds."""
    cfg = load_config(
        write(tmp_path, "feeds:\n  - {opml: feeds.opml, interval: 2m, max_interval: 6h}\n")
    )
    assert [(f.url, f.name) for f in cfg.feeds] == [
        ("https://a.example/rss", "Alpha"),
        ("https://b.example/atom", "B"),
    ]
    assert all(f.interval == 120 and f.max_interval == 6 * 3600 for f in cfg.feeds)


def test_opml_with_entities_is_refused(tmp_path: Path) -> None:
    """An OPML file declaring entities is refused with a config error naming the key."""
    path = write(tmp_path, "feeds:\n  - {opml: feeds.opml}\n")
    (tmp_path / "feeds.opml").write_text(
        OPML.replace("<opml", '<!DOCTYPE opml [<!ENTITY b "BOOM">]>\n<opml', 1)
    )
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.opml: .*declares entities"):
        load_config(path)


def test_defaults_max_interval(tmp_path: Path) -> None:
    """max_interval defaults to 24 h, can be set under defaults, and per feed."""
    cfg = load_config(
        write(
            tmp_path,
            "defaults: {max_interval: 2h}\nfeeds:\n  - url: https://a.example/rss\n"
            "  - {url: https://b.example/rss, max_interval: 30m}\n",
        )
    )
    assert [f.max_interval for f in cfg.feeds] == [7200, 1800]
    plain = load_config(write(tmp_path, "feeds:\n  - url: https://a.example/rss\n"))
    assert plain.feeds[0].max_interval == 86400 and plain.websub is None


def test_polling_intervals_up_to_a_week(tmp_path: Path) -> None:
    """A week is the longest interval taken (the stores keep seen marks 30 days after the
    last listing); a day longer is refused, naming the key."""
    week = "feeds:\n  - {url: https://a.example/rss, interval: 7d, max_interval: 7d}\n"
    assert load_config(write(tmp_path, week)).feeds[0].interval == 7 * 86400
    with pytest.raises(ConfigError, match=r"feeds\[0\]\.interval: polling interval"):
        load_config(write(tmp_path, week.replace("interval: 7d", "interval: 8d")))


def test_websub_section(tmp_path: Path) -> None:
    """websub takes a callback URL and a lease; unknown keys name file:line:col."""
    cfg = load_config(
        write(tmp_path, "websub: {callback: 'https://m.example/websub', lease: 2d}\nfeeds: []\n")
    )
    assert cfg.websub is not None
    assert (cfg.websub.callback, cfg.websub.lease) == ("https://m.example/websub", 172800)
    with pytest.raises(ConfigError, match=r"monitor\.yml:1:\d+.*websub\.secret: unknown key"):
        load_config(write(tmp_path, "websub: {callback: 'https://m.example/w', secret: x}\n"))
    with pytest.raises(ConfigError, match=r"websub\.callback"):
        load_config(write(tmp_path, "websub: {callback: 'ftp://m.example/w'}\n"))


@pytest.mark.parametrize(
    ("outline", "expected"),
    [
        ('xmlUrl="http://[x]/"', "outline xmlUrl: invalid URL host"),
        ('xmlUrl="http://a.example:abc/"', "outline xmlUrl: invalid URL port"),
        ('xmlUrl="https://a b.example/rss"', "outline xmlUrl: invalid URL host"),
    ],
)
def test_opml_bad_feed_url_names_the_opml_file_and_line(
    tmp_path: Path, outline: str, expected: str
) -> None:
    """A malformed xmlUrl is one error at the OPML file's line, naming the config key."""
    path = write(tmp_path, "feeds:\n  - {opml: feeds.opml}\n")
    opml = tmp_path / "feeds.opml"
    opml.write_text(OPML.replace('xmlUrl="https://b.example/atom"', outline))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{opml}:4: error: feeds[0].opml: {expected}")
    assert "\n" not in message and message.count("error:") == 1


@pytest.mark.parametrize(
    ("make", "where", "reason"),
    [
        (lambda p: None, "monitor.yml:2:12", "cannot read OPML file .*: No such file or directory"),
        (lambda p: p.mkdir(), "monitor.yml:2:12", "cannot read OPML file .*: Is a directory"),
        (lambda p: p.write_text("not xml"), "other.opml:1:1", "not valid XML: Start tag expected"),
        (lambda p: p.write_text(""), "other.opml:1:1", "not valid XML: Document is empty"),
    ],
)
def test_unreadable_opml_says_why_once(
    tmp_path: Path, make: Callable[[Path], None], where: str, reason: str
) -> None:
    """An OPML file that is missing, a folder or not XML gives one "error:" and the reason:
    at the config key when the file cannot be read, at the file's own line when it is read."""
    path = tmp_path / "monitor.yml"
    path.write_text("feeds:\n  - {opml: other.opml}\n")
    make(tmp_path / "other.opml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert re.match(
        rf"^{re.escape(str(tmp_path))}/{where}: error: feeds\[0\]\.opml: {reason}", message
    )
    assert "\n" not in message and message.count("error:") == 1
