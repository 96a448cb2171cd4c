"""Config values `check` must refuse because `run` would fail on them: each is one line
naming file:line:col and the key, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import RuleSet
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.units import parse_duration, parse_size

DIGITS_400 = "1" * 400
SINK = "sinks:\n  s: {type: webhook, url: 'https://h.example/'"
DURATION_KEYS = [
    ("feeds:\n  - {url: 'https://a.example/', interval: %s}\n", "feeds[0].interval"),
    ("feeds:\n  - {url: 'https://a.example/', max_interval: %s}\n", "feeds[0].max_interval"),
    ("defaults: {interval: %s}\n", "defaults.interval"),
    ("fetch: {timeout: %s}\n", "fetch.timeout"),
    ("fetch: {connect_timeout: %s}\n", "fetch.connect_timeout"),
    (SINK + ", timeout: %s}\n", "sinks.s.timeout"),
    ("websub: {callback: 'https://m.example/w', lease: %s}\n", "websub.lease"),
    ("shutdown_grace: %s\n", "shutdown_grace"),
]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "monitor.yml"
    path.write_text(text)
    return path


def one_error(path: Path, env: dict[str, str] | None = None) -> str:
    """The config's single problem, checked to be one line at the file."""
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    assert message.count("error:") == 1 and "Traceback" not in message
    return message


@pytest.mark.parametrize(("template", "key"), DURATION_KEYS)
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (".nan", "duration is not a number"),
        (".inf", "duration must be at most 365d"),
        ("1.0e+400", "duration must be at most 365d"),
        ("99999999999999999d", "duration must be at most 365d"),
    ],
)
def test_durations_must_be_finite_and_at_most_a_year(
    tmp_path: Path, template: str, key: str, value: str, expected: str
) -> None:
    """NaN, infinite and absurd durations are refused for every duration key."""
    message = one_error(write(tmp_path, template % value))
    assert f": error: {key}: {expected}" in message


def test_rule_throttle_must_be_finite(tmp_path: Path) -> None:
    """A rule's throttle takes the same bounds."""
    path = tmp_path / "r.yml"
    for value, expected in ((".nan", "is not a number"), (".inf", "at most 365d")):
        path.write_text(f"rules:\n  - {{id: a, query: x, throttle: {value}}}\n")
        with pytest.raises(ConfigError, match=f"^{path}:2:33: error: .*throttle.*{expected}"):
            RuleSet.from_files([path])


@pytest.mark.parametrize(
    ("value", "expected"),
    [(365 * 86400, 365 * 86400.0), ("1h30m", 5400.0), ("250ms", 0.25)],
)
def test_durations_up_to_a_year_still_parse(value: object, expected: float) -> None:
    """The bound leaves every sensible duration alone."""
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # sizes and counts
        (f"fetch: {{max_bytes: '{DIGITS_400}'}}\n", ":1:20: error: fetch.max_bytes: size must be"),
        (f"fetch: {{max_bytes: {DIGITS_400}}}\n", "fetch.max_bytes: size must be at most 4GiB"),
        ("fetch: {max_bytes: 5GiB}\n", "fetch.max_bytes: size must be at most 4GiB"),
        (
            "redis: {url: 'redis://h/0', stream_maxlen: 99999999999999999999999}\n",
            ":1:44: error: redis.stream_maxlen: expected a whole number ≤ 1000000000",
        ),
        ("fetch: {concurrency: 99999999999999999999999}\n", "fetch.concurrency: expected a who"),
        # listen and allow_private: ASCII digits only, real hosts
        ('http: {listen: "127.0.0.1:²"}\n', ":1:16: error: http.listen: expected host:port"),
        ('http: {listen: "127.0.0.1:９１０８"}\n', "http.listen: expected host:port"),
        ('http: {listen: "1.2.3.4.5:80"}\n', "http.listen: expected host:port, got '1.2.3.4.5:80'"),
        ('http: {listen: "exa mple:80"}\n', "http.listen: expected host:port, got 'exa mple:80'"),
        ('http: {listen: "[::1:18799"}\n', "http.listen: expected host:port, got '[::1:18799'"),
        ('http: {listen: "::1:9108"}\n', "an IPv6 address goes inside [ ]"),
        ('fetch: {allow_private: ["h:²"]}\n', ":1:25: error: fetch.allow_private[0]: 'h:²' is"),
        ('fetch: {allow_private: ["exa mple:80"]}\n', "fetch.allow_private[0]: 'exa mple:80'"),
        # URLs: host and port of feeds, sinks, websub callback, redis
        ("feeds: [{url: 'http://[x]/'}]\n", ":1:15: error: feeds[0].url: invalid URL host"),
        ("feeds: [{url: 'http://a.example:99999/'}]\n", "feeds[0].url: invalid URL port"),
        ("feeds: [{url: 'http://a.example:abc/'}]\n", "feeds[0].url: invalid URL port"),
        ("feeds: [{url: 'http://a b.example/'}]\n", "feeds[0].url: invalid URL host"),
        ("feeds: [{url: 'http://a..example/'}]\n", "feeds[0].url: invalid URL host"),
        ("feeds: [{url: 'http://1.2.3.4.5/'}]\n", "feeds[0].url: invalid URL host"),
        ("sinks: {s: {type: slack, url: 'http://[::1'}}\n", "sinks.s.url: invalid URL host"),
        (
            "sinks: {s: {type: slack, url: 'http://127.0.0.1:abc/'}}\n",
            "sinks.s.url: invalid URL port",
        ),
        ("websub: {callback: 'https://m.example:0/w'}\n", "websub.callback: invalid URL port"),
        ("redis: {url: 'redis://[x]/'}\n", ":1:14: error: redis.url: invalid URL host"),
        ("redis: {url: 'redis://127.0.0.1:abc/0'}\n", "redis.url: invalid URL port"),
        ("redis: {url: 'redis://127.0.0.1:99999/0'}\n", "redis.url: invalid URL port"),
        ("redis: {url: 'redis://h/zero'}\n", "redis.url: the URL's path is the database number"),
        ("redis: {url: 'redis://h/0?socket_timeout=x'}\n", "redis.url: Invalid value for 'soc"),
        ("redis: {url: 'unix://'}\n", "redis.url: a unix:// URL names the socket"),
        # text that ends up in HTTP headers, logs and metrics
        (
            'fetch: {user_agent: "a\\r\\nX: 1"}\n',
            ":1:21: error: fetch.user_agent: must not contain",
        ),
        ("sinks: {'': {type: slack, url: 'https://h.example/'}}\n", "error: sinks['']: a sink"),
        ('sinks: {"a\\nb": {type: slack, url: "https://h.example/"}}\n', "sinks['a\\nb']: a sink"),
        ('feeds: [{url: "https://a.example/", name: "a\\nb"}]\n', "feeds[0].name: a name must"),
        # paths the system cannot look up
        (
            "rules: " + "a" * 300 + "\n",
            ":1:8: error: rules: cannot use this path: File name too long",
        ),
        ("state_dir: " + "b/" * 3000 + "\n", "state_dir: cannot use this path: File name too long"),
    ],
)
def test_value_run_would_fail_on_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    """Each value that would crash or misbehave at run time is one located config error."""
    assert expected in one_error(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds: [{url: '${U}'}]\n", "feeds[0].url: invalid URL host"),
        ("sinks: {s: {type: slack, url: '${U}'}}\n", "sinks.s.url: invalid URL host"),
        ("redis: {url: '${R}'}\n", "redis.url: invalid URL host"),
    ],
)
def test_bad_url_from_the_environment(tmp_path: Path, text: str, expected: str) -> None:
    """A malformed URL read from ${VAR} is a located error naming the variable, not its value."""
    env = {"U": "http://[secret-x]/", "R": "redis://[secret-x]/"}
    message = one_error(write(tmp_path, text), env)
    assert expected in message and "secret" not in message


def test_var_file_that_is_not_utf8(tmp_path: Path) -> None:
    """A VAR_FILE holding bytes that are not UTF-8 is an error on the key that reads it."""
    (tmp_path / "x").write_bytes(b"\xff\xfe\x00bad")
    message = one_error(write(tmp_path, "state_dir: ${X}\n"), {"X_FILE": str(tmp_path / "x")})
    assert ":1:12: error: state_dir: X_FILE (" in message and "is not UTF-8 text" in message


def test_good_addresses_and_limits_still_load(tmp_path: Path) -> None:
    """IPv6 in brackets, international host names, ports up to 65535, a default port, Redis
    URLs with passwords and sockets, and limits at their maximum are all accepted."""
    text = (
        "feeds:\n"
        "  - url: 'https://bücher.example/rss'\n"
        "  - url: 'http://[::1]:8080/feed'\n"
        "  - url: 'http://127.0.0.1:65535/x?a=b'\n"
        "  - url: 'https://a.example:/x'\n"
        "  - url: 'https://docker_host.internal/x'\n"
        "sinks: {s: {type: slack, url: 'https://hooks.example/T/B', timeout: 365d}}\n"
        "redis: {url: 'redis://:p%40ss@localhost:6379/2', stream_maxlen: 1000000000}\n"
        "fetch: {max_bytes: 4GiB, allow_private: ['[::1]:8080', 'localhost:80', '10.0.0.0/8']}\n"
        "http: {listen: '[::1]:0'}\n"
    )
    cfg = load_config(write(tmp_path, text), env={})
    assert [f.name for f in cfg.feeds][:2] == ["bücher.example", "::1"]
    assert cfg.fetch.max_bytes == 4 * 2**30 and (cfg.http.host, cfg.http.port) == ("::1", 0)
    for url in ("rediss://h.example", "unix:///run/redis.sock", "redis://"):
        assert load_config(write(tmp_path, f"redis: {{url: '{url}'}}\n"), env={}).redis
    assert parse_size("16 MiB") == 16 * 2**20
