"""Configuration: the YAML file of DESIGN.md, validated completely before any I/O starts.

Promises: every problem is a :class:`ConfigError` naming ``file:line:col`` and the key
(``feeds[2].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)``), and one pass finds the
problems of every key (:func:`check_config`); unknown keys are errors. ``${VAR}`` (and
``${VAR:-default}``) is read from the environment, or from the file named by ``VAR_FILE``, in
every scalar value; the text read is then taken as the key's type (``true`` for a boolean,
``5`` for a count, ``16MiB`` for a size; for ``fetch.allow_private`` also entries separated by
commas), and a message about it shows the ``${VAR}`` text, never what the environment holds.
Relative paths are relative to the config file's folder. The result is a frozen value passed
to whoever needs it — there is no global config. Values are checked as ``run`` will use
them, so ``check`` accepts nothing ``run`` fails on: URLs, hosts and ports as a connection
reads them, durations and counts within bounds, paths the system can look up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from monitor import yamlsrc
from monitor.addresses import (
    CONTROL,
    host_problem,
    port_problem,
    redis_url_problem,
    split_host_port,
    url_problem,
    valid_allow_entry,
)
from monitor.errors import ConfigError, ConfigErrors
from monitor.opml import read_opml
from monitor.sinks.webhook import signing_keys
from monitor.units import parse_duration, parse_size
from monitor.yamlsrc import KeyPath, Source, key_label

DEFAULT_CONFIG = Path(__file__).parent / "defaults" / "monitor.yml"
# The longest feed polling interval (and max_interval) accepted: well inside the 30 days
# the stores keep an entry's seen mark after its feed last listed it.
MAX_POLL_INTERVAL = 7 * 86_400.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# The words YAML reads as booleans, for text that came from the environment.
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_INT = re.compile(r"[+-]?[0-9]{1,100}")
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
# The largest count taken (stream length, concurrency…): far past any sane setting, and
# well inside what Redis (a signed 64-bit MAXLEN) and every other consumer accept.
MAX_COUNT = 1_000_000_000
P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One feed to poll."""

    url: str
    name: str
    interval: float
    fetch_article: bool = False
    max_interval: float = 86_400.0  # ceiling of adaptive polling (monitor.schedule)


@dataclass(frozen=True, slots=True)
class RedisConfig:
    """Where the shared store lives."""

    url: str
    prefix: str = "news-monitor"
    stream_maxlen: int = 100_000


@dataclass(frozen=True, slots=True)
class SinkConfig:
    """A named destination rules route hits to. ``url`` and ``secrets`` are secret."""

    name: str
    type: str
    url: str = field(repr=False)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    timeout: float = 10.0

    @property
    def redacted_url(self) -> str:
        """Scheme and host only: webhook paths (Slack's above all) are credentials."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.hostname or ''}/…"


@dataclass(frozen=True, slots=True)
class FetchConfig:
    """Limits applied to every fetch of a feed or page."""

    allow_private: bool | tuple[str, ...] = False
    timeout: float = 20.0
    connect_timeout: float = 10.0
    max_bytes: int = 16 * 2**20
    max_redirects: int = 5
    concurrency: int = 64
    per_host: int = 4
    user_agent: str = "news-monitor/0.1 (+https://github.com/news-monitor)"


@dataclass(frozen=True, slots=True)
class WebSubConfig:
    """WebSub subscriptions: hubs push to ``callback`` (served on ``http.listen``)."""

    callback: str
    lease: float = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The health/metrics listener; ``port`` 0 picks a free port, None disables it."""

    host: str = "127.0.0.1"
    port: int | None = 9108


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    path: Path
    feeds: tuple[FeedConfig, ...]
    rules: tuple[Path, ...]
    state_dir: Path
    redis: RedisConfig | None = None
    sinks: dict[str, SinkConfig] = field(default_factory=dict)
    fetch: FetchConfig = FetchConfig()
    http: HttpConfig = HttpConfig()
    default_interval: float = 600.0
    shutdown_grace: float = 10.0
    websub: WebSubConfig | None = None
    # Where each value sits in the file, by key label (``redis.url``), for later errors.
    positions: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False, compare=False)

    def error(self, key: str, message: str) -> ConfigError:
        """``key: message`` as a ConfigError at ``key``'s value in this config's file (no
        line and column when the file does not set ``key``)."""
        line, col = self.positions.get(key, (None, None))
        return ConfigError(f"{key}: {message}", str(self.path), line, col)


@dataclass(frozen=True, slots=True)
class Checked:
    """A config built as far as its file allows, and every problem found on the way.

    Each bad value is replaced by its default, so ``config`` is fit for use only when
    ``errors`` is empty; ``failed`` names the top-level keys that had a problem (``""`` when
    the document itself is not a mapping).
    """

    config: Config
    errors: tuple[ConfigError, ...]
    failed: frozenset[str]

    def usable(self, key: str) -> bool:
        """Whether ``config``'s value for top-level ``key`` is the one the file meant (the
        file's own, or the default when the file leaves it out)."""
        return key not in self.failed and "" not in self.failed


def config_path(cli_value: str | None) -> Path:
    """``-c``, then ``$NEWS_MONITOR_CONFIG``, then ``./monitor.yml``, then the embedded one."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("NEWS_MONITOR_CONFIG")
    if env:
        return Path(env)
    local = Path("monitor.yml")
    return local if local.exists() else DEFAULT_CONFIG


def check_config(path: str | Path, env: dict[str, str] | None = None) -> Checked:
    """Read and validate the config at ``path``, collecting every problem each key has.

    Raises ConfigError only when the file cannot be read or parsed as YAML at all.
    """
    src = yamlsrc.load(path)
    builder = _Builder(src, dict(os.environ) if env is None else env)
    config = builder.build()
    errors = sorted(builder.errors, key=lambda e: (e.line or 0, e.col or 0))
    return Checked(config, tuple(errors), frozenset(builder.failed))


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate the config at ``path``; raises a ConfigError for its one problem,
    or ConfigErrors listing them all when there are several."""
    checked = check_config(path, env)
    if len(checked.errors) == 1:
        raise checked.errors[0]
    if checked.errors:
        raise ConfigErrors(list(checked.errors))
    return checked.config


@dataclass(frozen=True, slots=True)
class _Poll:
    """How a feed is polled: set under ``defaults:`` and overridden per feed."""

    interval: float = 600.0
    fetch_article: bool = False
    max_interval: float = 86_400.0


class _Builder:
    """Walks the YAML once, turning each section into its frozen value.

    A bad value is recorded in ``errors`` and replaced by its default, so one pass finds
    the problems of every key; a section that cannot be read at all is replaced whole.
    """

    TOP = frozenset(
        {
            "feeds",
            "rules",
            "redis",
            "state_dir",
            "sinks",
            "fetch",
            "http",
            "defaults",
            "shutdown_grace",
            "websub",
        }
    )
    FEED_KEYS = frozenset({"url", "name", "interval", "fetch_article", "max_interval"})
    OPML_KEYS = frozenset({"opml", "interval", "fetch_article", "max_interval"})
    FETCH_KEYS = frozenset(
        {
            "allow_private",
            "timeout",
            "connect_timeout",
            "max_bytes",
            "max_redirects",
            "concurrency",
            "per_host",
            "user_agent",
        }
    )

    def __init__(self, src: Source, env: dict[str, str]) -> None:
        self.src = src
        self.env = env
        self.base = Path(src.path).resolve().parent
        self.errors: list[ConfigError] = []
        self.failed: set[str] = set()
        # Values that held ${VAR} references: key path -> (text as written, text as read).
        self.from_env: dict[KeyPath, tuple[str, str]] = {}

    def err(self, kp: KeyPath, msg: str, *, at_key: bool = False) -> ConfigError:
        """The problem ``msg`` of the value at ``kp``, its top-level key marked as failed."""
        self.failed.add(str(kp[0]) if kp else "")
        text = f"{key_label(kp)}: {self.hidden(kp, msg)}" if kp else msg
        return self.src.error(kp, text, at_key=at_key)

    def hidden(self, kp: KeyPath, msg: str) -> str:
        """``msg`` showing a value read from the environment as its ``${VAR}`` text, naming
        the variables to check: the environment holds secrets, and messages get logged."""
        found = self.from_env.get(kp)
        if found is None:
            return msg
        raw, text = found
        names = ", ".join(dict.fromkeys(m.group(1) for m in _VAR.finditer(raw)))
        return f"{msg.replace(repr(text), repr(raw))}; check {names} in the environment"

    def checked(self, fallback: T, fn: Callable[P, T], /, *args: P.args, **kw: P.kwargs) -> T:
        """``fn(*args, **kw)``, or ``fallback`` with its ConfigError recorded."""
        try:
            return fn(*args, **kw)
        except ConfigError as exc:
            self.errors.append(exc)
            return fallback

    def get(
        self, section: dict[str, Any], kp: KeyPath, convert: Callable[[KeyPath, Any], T], default: T
    ) -> T:
        """``section``'s value for key ``kp[-1]`` as ``convert`` makes it; ``default`` when
        the key is absent, or when its value is bad (the problem is recorded)."""
        if kp[-1] not in section:
            return default
        return self.checked(default, convert, kp, section[kp[-1]])

    def build(self) -> Config:
        data = {} if self.src.data is None else self.src.data
        data = self.checked({}, self.mapping, (), data, self.TOP)
        poll = self.checked(_Poll(), self.poll, ("defaults",), data.get("defaults", {}), _Poll())
        return Config(
            path=Path(self.src.path),
            feeds=self.checked((), self.feeds, data.get("feeds", []), poll),
            rules=(self.get(data, ("rules",), self.location, self.base / "rules"),),
            state_dir=self.get(data, ("state_dir",), self.location, self.base / "state"),
            redis=self.optional(data, "redis", self.redis),
            sinks=self.checked({}, self.sinks, data.get("sinks") or {}),
            fetch=self.checked(FetchConfig(), self.fetch, data.get("fetch") or {}),
            http=self.checked(HttpConfig(), self.http, data.get("http") or {}),
            default_interval=poll.interval,
            shutdown_grace=self.get(data, ("shutdown_grace",), self.duration, 10.0),
            websub=self.optional(data, "websub", self.websub),
            positions={key_label(kp): (p.line, p.col) for kp, p in self.src.positions.items()},
        )

    def optional(self, data: dict[str, Any], key: str, build: Callable[[Any], T]) -> T | None:
        """The section ``key`` built, or None when it is absent, null or bad (recorded)."""
        return None if data.get(key) is None else self.checked(None, build, data[key])

    # -- sections -------------------------------------------------------------------------

    def poll(self, kp: KeyPath, value: Any, inherited: _Poll) -> _Poll:
        """``defaults:`` (or a feed's own settings): each absent key keeps ``inherited``."""
        section = self.mapping(kp, value, {"interval", "fetch_article", "max_interval"})
        return self.poll_of(kp, section, inherited)

    def poll_of(self, kp: KeyPath, section: dict[str, Any], inherited: _Poll) -> _Poll:
        return _Poll(
            interval=self.get(section, (*kp, "interval"), self.poll_every, inherited.interval),
            fetch_article=self.get(
                section, (*kp, "fetch_article"), self.boolean, inherited.fetch_article
            ),
            max_interval=self.get(
                section, (*kp, "max_interval"), self.poll_every, inherited.max_interval
            ),
        )

    def feeds(self, value: Any, poll: _Poll) -> tuple[FeedConfig, ...]:
        if not isinstance(value, list):
            raise self.err(("feeds",), "expected a list of feeds")
        found: list[tuple[int, FeedConfig]] = []
        for i, item in enumerate(value):
            feeds = self.checked([], self.feed, ("feeds", i), item, poll)
            found.extend((i, feed) for feed in feeds)
        seen: set[str] = set()
        for i, feed in found:
            if feed.url in seen:
                self.errors.append(self.err(("feeds", i), f"feed {feed.url} is listed twice"))
            seen.add(feed.url)
        return tuple(feed for _, feed in found)

    def feed(self, kp: KeyPath, item: Any, inherited: _Poll) -> list[FeedConfig]:
        """One item of ``feeds:``: a feed, or every feed of an OPML file."""
        if isinstance(item, dict) and "opml" in item:
            section = self.mapping(kp, item, self.OPML_KEYS)
            return self.opml(kp, section, self.poll_of(kp, section, inherited))
        section = self.mapping(kp, item, self.FEED_KEYS, required={"url"})
        poll = self.poll_of(kp, section, inherited)
        name = self.get(section, (*kp, "name"), self.name, "") if section.get("name") else ""
        url = self.url((*kp, "url"), section["url"])
        return [
            FeedConfig(
                url, name or _host(url), poll.interval, poll.fetch_article, poll.max_interval
            )
        ]

    def opml(self, kp: KeyPath, section: dict[str, Any], poll: _Poll) -> list[FeedConfig]:
        """The feeds of the OPML file ``section`` names. A file that cannot be read is an
        error at the ``opml`` key; a problem inside the file, at its own path and line."""
        okp = (*kp, "opml")
        path = self.location(okp, section["opml"])
        try:
            outlines = read_opml(path)
        except ConfigError as exc:
            if exc.path is None:
                raise self.err(okp, exc.message) from None
            raise self.opml_error(okp, exc.message, exc.path, exc.line, exc.col) from None
        feeds = []
        for url, title, line in outlines:
            problem = url_problem(url)
            if problem is not None:
                self.errors.append(
                    self.opml_error(okp, f"outline xmlUrl: {problem}", str(path), line)
                )
                continue
            feeds.append(
                FeedConfig(
                    url, title or _host(url), poll.interval, poll.fetch_article, poll.max_interval
                )
            )
        return feeds

    def opml_error(
        self, kp: KeyPath, msg: str, path: str, line: int | None, col: int | None = None
    ) -> ConfigError:
        """``msg`` about the OPML file that ``kp`` imports, at its place in that file."""
        self.failed.add(str(kp[0]))
        return ConfigError(f"{key_label(kp)}: {msg}", path, line, col)

    def websub(self, value: Any) -> WebSubConfig:
        kp: KeyPath = ("websub",)
        section = self.mapping(kp, value, {"callback", "lease"}, required={"callback"})
        lease = self.get(section, (*kp, "lease"), self.duration, 7 * 86_400.0)
        return WebSubConfig(self.url((*kp, "callback"), section["callback"]), lease)

    def redis(self, value: Any) -> RedisConfig:
        kp: KeyPath = ("redis",)
        section = self.mapping(kp, value, {"url", "prefix", "stream_maxlen"}, required={"url"})
        prefix = self.get(section, (*kp, "prefix"), self.string, "news-monitor")
        maxlen = self.get(section, (*kp, "stream_maxlen"), self.integer, 100_000)
        return RedisConfig(self.redis_url((*kp, "url"), section["url"]), prefix, maxlen)

    def redis_url(self, kp: KeyPath, value: Any) -> str:
        """``redis://[user:password@]host:port/db``, ``rediss://…`` or ``unix:///path``,
        checked as far as the Redis client will read it, so ``run`` cannot fail on it."""
        url = self.string(kp, value)
        problem = redis_url_problem(url)
        if problem is not None:
            raise self.err(kp, problem)  # names the key, not the URL: it may hold a password
        return url

    def sinks(self, value: Any) -> dict[str, SinkConfig]:
        if not isinstance(value, dict):
            raise self.err(("sinks",), "expected a mapping of sink names to sinks")
        out: dict[str, SinkConfig] = {}
        for name, item in value.items():
            if not name.strip() or CONTROL.search(name):
                msg = "a sink name must be a non-empty name without control characters"
                self.errors.append(self.err(("sinks", name), msg, at_key=True))
                continue
            sink = self.checked(None, self.sink, ("sinks", name), item)
            if sink is not None:
                out[name] = sink
        return out

    def sink(self, kp: KeyPath, item: Any) -> SinkConfig | None:
        """One sink, or None when its type or URL is bad (recorded)."""
        keys = {"type", "url", "secret", "timeout"}
        section = self.mapping(kp, item, keys, required={"type", "url"})
        kind = self.get(section, (*kp, "type"), self.sink_type, "")
        url = self.get(section, (*kp, "url"), self.url, "")
        timeout = self.get(section, (*kp, "timeout"), self.duration, 10.0)
        if "secret" in section and kind:
            secrets = self.checked((), self.secrets, (*kp, "secret"), section["secret"], kind)
        else:
            secrets = ()
        if not (kind and url):
            return None
        return SinkConfig(str(kp[-1]), kind, url, secrets, timeout)

    def sink_type(self, kp: KeyPath, value: Any) -> str:
        kind = self.string(kp, value)
        if kind not in ("webhook", "slack"):
            raise self.err(kp, f"unknown sink type {kind!r} (webhook or slack)")
        return kind

    def secrets(self, kp: KeyPath, value: Any, kind: str) -> tuple[str, ...]:
        if kind != "webhook":
            raise self.err(kp, "only webhook sinks take a secret")
        if value is None:
            return ()
        values = value if isinstance(value, list) else [value]
        out = tuple(self.string((*kp, i), v) for i, v in enumerate(values))
        if not all(out):
            raise self.err(kp, "secret is empty (is its environment variable set?)")
        try:
            signing_keys(str(kp[-2]), out)  # check's promise: run accepts what check accepts
        except ConfigError as exc:
            raise self.err(kp, exc.message.split(": ", 1)[-1]) from None
        return out

    def fetch(self, value: Any) -> FetchConfig:
        kp: KeyPath = ("fetch",)
        section = self.mapping(kp, value, self.FETCH_KEYS)
        d = FetchConfig()

        def get(key: str, convert: Callable[[KeyPath, Any], T], default: T) -> T:
            return self.get(section, (*kp, key), convert, default)

        return FetchConfig(
            allow_private=get("allow_private", self.allow_private, d.allow_private),
            timeout=get("timeout", self.duration, d.timeout),
            connect_timeout=get("connect_timeout", self.duration, d.connect_timeout),
            max_bytes=get("max_bytes", self.size, d.max_bytes),
            max_redirects=get("max_redirects", self.count, d.max_redirects),
            concurrency=get("concurrency", self.integer, d.concurrency),
            per_host=get("per_host", self.integer, d.per_host),
            user_agent=get("user_agent", self.header, d.user_agent),
        )

    def allow_private(self, kp: KeyPath, value: Any) -> bool | tuple[str, ...]:
        """true/false, or a list of entries; from the environment, true/false or entries
        separated by commas."""
        text = self.env_text(kp, value)
        if text is not None:
            return self.allow_private_text(kp, text)
        if value is None or isinstance(value, bool):
            return bool(value)
        if not isinstance(value, list):
            raise self.err(kp, "expected true, false, or a list of host:port / CIDR entries")
        out = []
        for i, entry in enumerate(value):
            text = self.string((*kp, i), entry)
            if not valid_allow_entry(text):
                raise self.err((*kp, i), f"{text!r} is neither host:port nor an address/CIDR")
            out.append(text)
        return tuple(out)

    def allow_private_text(self, kp: KeyPath, text: str) -> bool | tuple[str, ...]:
        flag = _BOOLS.get(text.strip().lower())
        if flag is not None:
            return flag
        entries = tuple(e.strip() for e in text.split(",") if e.strip())
        if not entries or not all(valid_allow_entry(e) for e in entries):
            msg = "expected true, false, or host:port / CIDR entries separated by commas"
            raise self.err(kp, msg)
        return entries

    def http(self, value: Any) -> HttpConfig:
        kp: KeyPath = ("http",)
        section = self.mapping(kp, value, {"listen"})
        return self.get(section, (*kp, "listen"), self.listen, HttpConfig())

    def listen(self, kp: KeyPath, value: Any) -> HttpConfig:
        """``host:port``, or false (or null) for no listener."""
        text = self.env_text(kp, value)
        if text is None and (value is False or value is None):
            return HttpConfig(port=None)
        if text is not None and _BOOLS.get(text.strip().lower()) is False:
            return HttpConfig(port=None)
        text = self.string(kp, value) if text is None else text
        host, port = split_host_port(text)
        if port is None or port_problem(port, lowest=0) is not None:
            raise self.err(kp, f"expected host:port, got {text!r}")
        problem = host_problem(host) if host else None
        if problem is not None:
            raise self.err(kp, f"expected host:port, got {text!r}: the host is {problem}")
        return HttpConfig(host=host.strip("[]") or "0.0.0.0", port=int(port))

    # -- scalars --------------------------------------------------------------------------
    # Each converter reads ${VAR} references first, then takes the text as its own type.

    def mapping(
        self,
        kp: KeyPath,
        value: Any,
        allowed: set[str] | frozenset[str],
        required: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, Any]:
        """``value`` as a mapping, each unknown key recorded; raises when it is not a
        mapping or lacks a required key."""
        if not isinstance(value, dict):
            raise self.err(kp, "expected a mapping")
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                msg = f"unknown key (expected one of: {hint})"
                self.errors.append(self.err((*kp, key), msg, at_key=True))
        for key in sorted(required):
            if key not in value or value[key] is None:
                raise self.err(kp, f"missing required key {key!r}")
        return value

    def env_text(self, kp: KeyPath, value: Any) -> str | None:
        """``value``'s text with its ``${VAR}`` references read from the environment, or
        None when it has none (then the value keeps the type YAML gave it)."""
        if not isinstance(value, str) or _VAR.search(value) is None:
            return None
        text = self.expand(kp, value)
        self.from_env[kp] = (value, text)
        return text

    def string(self, kp: KeyPath, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.err(kp, "expected a string")
        text = self.env_text(kp, value)
        return str(value) if text is None else text

    def name(self, kp: KeyPath, value: Any) -> str:
        """A name shown in logs and metrics: text without control characters."""
        text = self.string(kp, value)
        if CONTROL.search(text):
            raise self.err(kp, "a name must not contain control characters (line breaks, tabs)")
        return text

    def header(self, kp: KeyPath, value: Any) -> str:
        """Text sent as an HTTP header value: control characters (CR, LF) would split it."""
        text = self.string(kp, value)
        if CONTROL.search(text):
            raise self.err(kp, "must not contain control characters (line breaks, tabs)")
        return text

    def expand(self, kp: KeyPath, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in self.env:
                return self.env[name]
            file_var = self.env.get(f"{name}_FILE")
            if file_var:
                try:
                    return Path(file_var).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    msg = f"cannot read {name}_FILE ({file_var}): {exc.strerror}"
                    raise self.err(kp, msg) from None
                except UnicodeDecodeError:
                    msg = f"{name}_FILE ({file_var}) is not UTF-8 text; save it as UTF-8"
                    raise self.err(kp, msg) from None
            if default is not None:
                return default
            raise self.err(kp, f"environment variable {name} is not set (set it, or {name}_FILE)")

        return _VAR.sub(sub, text)

    def url(self, kp: KeyPath, value: Any) -> str:
        """An http(s) URL whose host and port a connection can use."""
        text = self.string(kp, value).strip()
        problem = url_problem(text)
        if problem is not None:
            raise self.err(kp, problem)  # names the key, not the value: sink URLs are secrets
        return text

    def location(self, kp: KeyPath, value: Any) -> Path:
        """A path, relative to the config's folder, that the system can look up: it may be
        missing, but not too long, looping or forbidden."""
        text = self.string(kp, value)
        try:
            path = Path(text).expanduser()
        except RuntimeError:  # ~user with no such user
            raise self.err(kp, f"cannot expand '~' in {text!r}") from None
        path = path if path.is_absolute() else self.base / path
        try:
            path.stat()
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as exc:
            # Not the path itself: with ${VAR} it would show what the environment holds.
            raise self.err(kp, f"cannot use this path: {exc.strerror or exc}") from None
        except ValueError:
            raise self.err(kp, "a path cannot contain a NUL character") from None
        return path

    def boolean(self, kp: KeyPath, value: Any) -> bool:
        text = self.env_text(kp, value)
        flag = value if text is None else _BOOLS.get(text.strip().lower())
        if not isinstance(flag, bool):
            raise self.err(kp, "expected true or false")
        return flag

    def integer(self, kp: KeyPath, value: Any, minimum: int = 1) -> int:
        """A whole number from ``minimum`` to :data:`MAX_COUNT`."""
        text = self.env_text(kp, value)
        if text is not None:
            value = int(text) if _INT.fullmatch(text.strip()) else None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.err(kp, f"expected a whole number ≥ {minimum}")
        if value > MAX_COUNT:
            raise self.err(kp, f"expected a whole number ≤ {MAX_COUNT}")
        return value

    def count(self, kp: KeyPath, value: Any) -> int:
        """A whole number that may be 0."""
        return self.integer(kp, value, minimum=0)

    def duration(self, kp: KeyPath, value: Any) -> float:
        """``5m``, ``1h30m``, or a number of seconds (as YAML's own number or as text)."""
        text = self.env_text(kp, value)
        if text is not None:
            value = float(text) if _NUMBER.fullmatch(text.strip()) else text
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.err(kp, str(exc)) from None

    def poll_every(self, kp: KeyPath, value: Any) -> float:
        """A feed's polling interval: at most :data:`MAX_POLL_INTERVAL`, since the stores
        forget an entry 30 days after its feed last listed it (a feed polled more rarely
        would have every entry taken for new, cleaned and matched again)."""
        seconds = self.duration(kp, value)
        if seconds > MAX_POLL_INTERVAL:
            raise self.err(kp, "polling interval must be at most 7d")
        return seconds

    def size(self, kp: KeyPath, value: Any) -> int:
        text = self.env_text(kp, value)
        try:
            return parse_size(value if text is None else text)
        except ValueError as exc:
            raise self.err(kp, str(exc)) from None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url).removeprefix("www.")
