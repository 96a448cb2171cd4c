"""Config validation: every mistake is one line naming file:line:col and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from monitor.config import DEFAULT_CONFIG, check_config, config_path, load_config
from monitor.errors import ConfigError, ConfigErrors

GOOD = """\
feeds:
  - url: https://example.com/world/rss.xml
    name: example-world
    interval: 5m
    fetch_article: true
  - url: https://www.example.org/feed
rules: rules/
state_dir: ./state
sinks:
  desk:    {type: slack,   url: "${SLACK_WEBHOOK_URL}"}
  partner: {type: webhook, url: "https://hooks.example.com/news", secret: "${WEBHOOK_SECRET}"}
fetch:
  allow_private: ["127.0.0.1:8080", "10.0.0.0/8"]
  timeout: 20s
  max_bytes: 16MiB
http:
  listen: 127.0.0.1:9108
"""
ENV = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/secret",
    "WEBHOOK_SECRET": "whsec_abc",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yml"
    path.write_text(text)
    return path


def test_good_config_loads_with_paths_relative_to_the_file(tmp_path: Path) -> None:
    """The DESIGN.md example loads; relative paths resolve against the config's folder."""
    cfg = load_config(write(tmp_path, GOOD), env=ENV)
    assert [f.name for f in cfg.feeds] == ["example-world", "example.org"]
    assert cfg.feeds[0].interval == 300 and cfg.feeds[0].fetch_article
    assert cfg.feeds[1].interval == cfg.default_interval and not cfg.feeds[1].fetch_article
    assert cfg.rules == (tmp_path / "rules",)
    assert cfg.state_dir == tmp_path / "state"
    assert cfg.sinks["desk"].url == ENV["SLACK_WEBHOOK_URL"]
    assert cfg.sinks["partner"].secrets == ("whsec_abc",)
    assert cfg.fetch.allow_private == ("127.0.0.1:8080", "10.0.0.0/8")
    assert cfg.fetch.max_bytes == 16 * 2**20 and cfg.fetch.timeout == 20
    assert (cfg.http.host, cfg.http.port) == ("127.0.0.1", 9108)
    assert cfg.redis is None


def test_secrets_are_not_in_repr(tmp_path: Path) -> None:
    """Printing a config never shows sink URLs or secrets."""
    cfg = load_config(write(tmp_path, GOOD), env=ENV)
    text = repr(cfg)
    assert "secret" not in text.replace("secrets", "") and "whsec_abc" not in text
    assert "hooks.slack.com/services" not in text
    assert cfg.sinks["desk"].redacted_url == "https://hooks.slack.com/…"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds: []\nbogus: 1\n", ":2:1: error: bogus: unknown key"),
        (
            "feeds:\n  - url: https://a.example/x\n    intervall: 5m\n",
            ":3:5: error: feeds[0].intervall: unknown key",
        ),
        (
            "feeds:\n  - url: https://a.example/x\n    interval: 5x\n",
            ":3:15: error: feeds[0].interval: invalid duration '5x'",
        ),
        (
            "feeds:\n  - url: https://a.example/x\n    interval: -5\n",
            "feeds[0].interval: duration must be positive",
        ),
        (
            "feeds:\n  - url: https://a.example/x\n    interval: 31d\n",
            ":3:15: error: feeds[0].interval: polling interval must be at most 7d",
        ),
        ("defaults: {max_interval: 8d}\n", "defaults.max_interval: polling interval must be at"),
        (
            "feeds:\n  - url: ftp://a.example/x\n",
            "feeds[0].url: expected an http:// or https:// URL",
        ),
        ("feeds:\n  - name: x\n", ":2:5: error: feeds[0]: missing required key 'url'"),
        (
            "feeds:\n  - url: https://a.example/x\n    fetch_article: yes please\n",
            "feeds[0].fetch_article: expected true or false",
        ),
        ("feeds: {url: x}\n", "feeds: expected a list of feeds"),
        (
            "feeds:\n  - url: https://a.example/x\n  - url: https://a.example/x\n",
            "feeds[1]: feed https://a.example/x is listed twice",
        ),
        ("fetch: {max_bytes: lots}\n", "fetch.max_bytes: invalid size 'lots'"),
        ("fetch: {allow_private: maybe}\n", "fetch.allow_private: expected true, false, or a list"),
        ("fetch: {allow_private: [nonsense]}\n", "fetch.allow_private[0]: 'nonsense' is neither"),
        ("fetch: {max_redirects: -1}\n", "fetch.max_redirects: expected a whole number ≥ 0"),
        ("http: {listen: nowhere}\n", "http.listen: expected host:port"),
        (
            "sinks:\n  x: {type: email, url: https://a.example/}\n",
            "sinks.x.type: unknown sink type 'email'",
        ),
        (
            "sinks:\n  x: {type: slack, url: https://a.example/, secret: s}\n",
            "sinks.x.secret: only webhook sinks take a secret",
        ),
        ("sinks:\n  x: {type: webhook}\n", "sinks.x: missing required key 'url'"),
        (
            "sinks:\n  x: {type: webhook, url: '${NOPE}'}\n",
            "sinks.x.url: environment variable NOPE is not set (set it, or NOPE_FILE)",
        ),
        ("redis: {url: http://localhost}\n", "redis.url: expected redis://"),
        (
            "sinks:\n  x: {type: webhook, url: 'https://h.example/', secret: 'whsec_!!notb64'}\n",
            "sinks.x.secret: secret after 'whsec_' is not valid base64",
        ),
        ("redis: {prefix: x}\n", "redis: missing required key 'url'"),
        ("feeds: [\n", "invalid YAML"),
        ("feeds: []\nfeeds: []\n", ":2:1: error: duplicate key 'feeds'"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    """Each mistake gives exactly one line with the file, position and key."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_env_default_and_file_variables(tmp_path: Path) -> None:
    """${VAR:-default} falls back; VAR_FILE names a file holding the value."""
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("whsec_fromfile\n")
    text = (
        "sinks:\n  p: {type: webhook, url: '${HOOK:-https://h.example/x}', secret: '${SECRET}'}\n"
    )
    cfg = load_config(write(tmp_path, text), env={"SECRET_FILE": str(secret_file)})
    assert cfg.sinks["p"].url == "https://h.example/x"
    assert cfg.sinks["p"].secrets == ("whsec_fromfile",)


def test_unreadable_var_file_is_an_error(tmp_path: Path) -> None:
    """A VAR_FILE that does not exist is a clear error on the key that needs it."""
    text = "sinks:\n  p: {type: webhook, url: 'https://h.example/', secret: '${S}'}\n"
    with pytest.raises(ConfigError, match=r"sinks\.p\.secret\[0\]: cannot read S_FILE"):
        load_config(write(tmp_path, text), env={"S_FILE": str(tmp_path / "missing")})


def test_opml_import(tmp_path: Path) -> None:
    """`- opml: file` adds every xmlUrl outline, with the outline title as the name."""
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        '<outline text="News"><outline title="A" xmlUrl="https://a.example/rss"/>'
        '<outline text="B" xmlUrl="https://b.example/atom"/>'
        '<outline text="dup" xmlUrl="https://a.example/rss"/></outline></body></opml>'
    )
    cfg = load_config(write(tmp_path, "feeds:\n  - opml: feeds.opml\n    interval: 2m\n"), env={})
    assert [(f.url, f.name, f.interval) for f in cfg.feeds] == [
        ("https://a.example/rss", "A", 120.0),
        ("https://b.example/atom", "B", 120.0),
    ]


def test_config_path_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """-c wins, then $NEWS_MONITOR_CONFIG, then ./monitor.yml, then the embedded defaults."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWS_MONITOR_CONFIG", raising=False)
    assert config_path(None) == DEFAULT_CONFIG
    (tmp_path / "monitor.yml").write_text("feeds: []\n")
    assert config_path(None) == Path("monitor.yml")
    monkeypatch.setenv("NEWS_MONITOR_CONFIG", "/etc/x.yml")
    assert config_path(None) == Path("/etc/x.yml")
    assert config_path("mine.yml") == Path("mine.yml")


def test_embedded_defaults_and_example_config_load() -> None:
    """The shipped configs are valid as they stand."""
    root = Path(__file__).resolve().parent.parent
    for path in (DEFAULT_CONFIG, root / "deploy" / "monitor.example.yml"):
        cfg = load_config(path, env={})
        assert cfg.feeds and cfg.redis is None


@pytest.mark.parametrize(
    ("yaml_text", "env", "field", "expected"),
    [
        ("fetch:\n  max_bytes: ${V}\n", {"V": "16MiB"}, "fetch.max_bytes", 16 * 2**20),
        ("fetch:\n  allow_private: ${V}\n", {"V": "true"}, "fetch.allow_private", True),
        ("fetch:\n  allow_private: ${V}\n", {"V": "off"}, "fetch.allow_private", False),
        (
            "fetch:\n  allow_private: ${V}\n",
            {"V": "127.0.0.1:8080, 10.0.0.0/8"},
            "fetch.allow_private",
            ("127.0.0.1:8080", "10.0.0.0/8"),
        ),
        ("fetch:\n  max_redirects: ${V}\n", {"V": "0"}, "fetch.max_redirects", 0),
        ("fetch:\n  concurrency: '${V:-12}'\n", {}, "fetch.concurrency", 12),
        ("fetch:\n  per_host: ${V}\n", {"V": " 3 "}, "fetch.per_host", 3),
        ("fetch:\n  timeout: ${V}\n", {"V": "1m30s"}, "fetch.timeout", 90.0),
        (
            "feeds:\n  - url: https://a.example/\n    fetch_article: ${V}\n",
            {"V": "true"},
            "feeds.0.fetch_article",
            True,
        ),
        (
            "defaults:\n  fetch_article: ${V}\nfeeds:\n  - url: https://a.example/\n",
            {"V": "yes"},
            "feeds.0.fetch_article",
            True,
        ),
        (
            "feeds:\n  - url: https://a.example/\n    interval: ${V}\n",
            {"V": "2m"},
            "feeds.0.interval",
            120.0,
        ),
        (
            "redis:\n  url: redis://127.0.0.1:1/0\n  stream_maxlen: ${V}\n",
            {"V": "5000"},
            "redis.stream_maxlen",
            5000,
        ),
        ("http:\n  listen: ${V}\n", {"V": "false"}, "http.port", None),
        ("shutdown_grace: ${V}\n", {"V": "30"}, "shutdown_grace", 30.0),
    ],
)
def test_env_variables_expand_in_every_scalar_and_take_the_keys_type(
    tmp_path: Path, yaml_text: str, env: dict[str, str], field: str, expected: object
) -> None:
    """${VAR} works in every scalar, and the text read is converted to the key's type."""
    value: Any = load_config(write(tmp_path, yaml_text), env=env)
    for name in field.split("."):
        value = value[int(name)] if name.isdigit() else getattr(value, name)
    assert value == expected and type(value) is type(expected)


def test_typed_value_from_a_var_file(tmp_path: Path) -> None:
    """VAR_FILE feeds a typed key too: a boolean read from a file is a boolean."""
    (tmp_path / "ap").write_text("true\n")
    cfg = load_config(
        write(tmp_path, "fetch:\n  allow_private: ${AP}\n"), env={"AP_FILE": str(tmp_path / "ap")}
    )
    assert cfg.fetch.allow_private is True


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("fetch:\n  max_bytes: ${V}\n", ":2:14: error: fetch.max_bytes: invalid size '${V}'"),
        ("fetch:\n  allow_private: ${V}\n", ":2:18: error: fetch.allow_private: expected true"),
        ("fetch:\n  max_redirects: ${V}\n", ":2:18: error: fetch.max_redirects: expected a whole"),
        ("fetch:\n  timeout: ${V}\n", ":2:12: error: fetch.timeout: invalid duration '${V}'"),
        ("http:\n  listen: ${V}\n", ":2:11: error: http.listen: expected host:port, got '${V}'"),
        (
            "feeds:\n  - url: https://a.example/\n    fetch_article: ${V}\n",
            ":3:20: error: feeds[0].fetch_article: expected true or false",
        ),
    ],
)
def test_bad_value_from_the_environment_names_the_key_never_the_value(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    """A value read from the environment that does not fit its key is one line naming the
    key and the variable to check, without what the variable holds (it may be a secret)."""
    path = write(tmp_path, yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"V": "hunter2-secret"})
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert expected in message and message.endswith("; check V in the environment")
    assert "hunter2" not in message


def test_every_config_problem_is_reported_at_once(tmp_path: Path) -> None:
    """One pass finds each key's problem independently, in file order, each one line."""
    text = (
        "feeds:\n"
        "  - url: ftp://a.example/\n"
        "  - {url: https://b.example/, interval: 5x, colour: red}\n"
        "fetch: {timeout: 5x, bar: 2}\n"
        "http: {listen: nope}\n"
        "sinks:\n"
        "  a: {type: email, url: 'https://h.example/'}\n"
        "  b: {type: webhook, url: 'https://h.example/', timeout: soon}\n"
    )
    path = write(tmp_path, text)
    checked = check_config(path, env={})
    assert [str(e).removeprefix(str(path)) for e in checked.errors] == [
        ":2:10: error: feeds[0].url: expected an http:// or https:// URL",
        ":3:41: error: feeds[1].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h, 1h30m)",
        ":3:45: error: feeds[1].colour: unknown key (expected one of: fetch_article, interval, "
        "max_interval, name, url)",
        ":4:18: error: fetch.timeout: invalid duration '5x' (use e.g. 30s, 5m, 1h, 1h30m)",
        ":4:22: error: fetch.bar: unknown key (expected one of: allow_private, concurrency, "
        "connect_timeout, max_bytes, max_redirects, per_host, timeout, user_agent)",
        ":5:16: error: http.listen: expected host:port, got 'nope'",
        ":7:13: error: sinks.a.type: unknown sink type 'email' (webhook or slack)",
        ":8:58: error: sinks.b.timeout: invalid duration 'soon' (use e.g. 30s, 5m, 1h, 1h30m)",
    ]
    assert checked.failed == {"feeds", "fetch", "http", "sinks"}
    with pytest.raises(ConfigErrors) as info:
        load_config(path, env={})
    assert [str(e) for e in info.value.errors] == [str(e) for e in checked.errors]


def test_config_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    """A config byte that is not UTF-8 is an error at its line and column."""
    path = tmp_path / "monitor.yml"
    path.write_bytes("feeds: []\nstate_dir: 'é".encode() + b"\xff'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value).startswith(f"{path}:2:14: error: not UTF-8 (byte 0xff")
