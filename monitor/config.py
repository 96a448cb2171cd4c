"""Configuration: the YAML file of DESIGN.md, validated completely before any I/O starts.

Promises: every problem is a :class:`ConfigError` naming ``file:line:col`` and the key
(``feeds[2].interval: invalid duration '5x' (use e.g. 30s, 5m, 1h)``); unknown keys are errors;
``${VAR}`` (and ``${VAR:-default}``) is read from the environment, or from the file named by
``VAR_FILE``; relative paths are relative to the config file's folder. The result is a frozen
value passed to whoever needs it — there is no global config.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from monitor import yamlsrc
from monitor.errors import ConfigError
from monitor.opml import read_opml
from monitor.sinks.webhook import signing_keys
from monitor.units import parse_duration, parse_size
from monitor.yamlsrc import KeyPath, Source, key_label

DEFAULT_CONFIG = Path(__file__).parent / "defaults" / "monitor.yml"
# The longest feed polling interval (and max_interval) accepted: well inside the 30 days
# the stores keep an entry's seen mark after its feed last listed it.
MAX_POLL_INTERVAL = 7 * 86_400.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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


def config_path(cli_value: str | None) -> Path:
    """``-c``, then ``$NEWS_MONITOR_CONFIG``, then ``./monitor.yml``, then the embedded one."""
    if cli_value:
        return Path(cli_value)
    env = os.environ.get("NEWS_MONITOR_CONFIG")
    if env:
        return Path(env)
    local = Path("monitor.yml")
    return local if local.exists() else DEFAULT_CONFIG


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    """Read and validate the config at ``path``; raises ConfigError on the first problem."""
    src = yamlsrc.load(path)
    return _Builder(src, dict(os.environ) if env is None else env).build()


class _Builder:
    """Walks the YAML once, turning each section into its frozen value."""

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

    def __init__(self, src: Source, env: dict[str, str]) -> None:
        self.src = src
        self.env = env
        self.base = Path(src.path).resolve().parent

    def err(self, kp: KeyPath, msg: str, *, at_key: bool = False) -> ConfigError:
        return self.src.error(kp, f"{key_label(kp)}: {msg}" if kp else msg, at_key=at_key)

    def build(self) -> Config:
        data = self.src.data
        if data is None:
            data = {}
        self.mapping((), data, self.TOP)
        defaults = self.defaults(data.get("defaults", {}))
        feeds = self.feeds(data.get("feeds", []), defaults)
        rules_value = self.string(("rules",), data["rules"]) if "rules" in data else "rules"
        return Config(
            path=Path(self.src.path),
            feeds=feeds,
            rules=(self.path(rules_value),),
            state_dir=self.path(self.string(("state_dir",), data.get("state_dir", "state"))),
            redis=self.redis(data["redis"]) if data.get("redis") is not None else None,
            sinks=self.sinks(data.get("sinks") or {}),
            fetch=self.fetch(data.get("fetch") or {}),
            http=self.http(data.get("http") or {}),
            default_interval=defaults["interval"],
            shutdown_grace=self.duration(("shutdown_grace",), data.get("shutdown_grace", "10s")),
            websub=self.websub(data["websub"]) if data.get("websub") is not None else None,
        )

    # -- sections -------------------------------------------------------------------------

    def defaults(self, value: Any) -> dict[str, Any]:
        kp: KeyPath = ("defaults",)
        self.mapping(kp, value, {"interval", "fetch_article", "max_interval"})
        return {
            "interval": self.poll_every((*kp, "interval"), value.get("interval", "10m")),
            "max_interval": self.poll_every(
                (*kp, "max_interval"), value.get("max_interval", "24h")
            ),
            "fetch_article": self.boolean(
                (*kp, "fetch_article"), value.get("fetch_article", False)
            ),
        }

    def feeds(self, value: Any, defaults: dict[str, Any]) -> tuple[FeedConfig, ...]:
        if not isinstance(value, list):
            raise self.err(("feeds",), "expected a list of feeds")
        out: list[FeedConfig] = []
        for i, item in enumerate(value):
            kp: KeyPath = ("feeds", i)
            if isinstance(item, dict) and "opml" in item:
                self.mapping(kp, item, {"opml", "interval", "fetch_article", "max_interval"})
                out.extend(self.opml(kp, item, defaults))
                continue
            keys = {"url", "name", "interval", "fetch_article", "max_interval"}
            self.mapping(kp, item, keys, required={"url"})
            url = self.url((*kp, "url"), item["url"])
            out.append(
                FeedConfig(
                    url=url,
                    name=self.string((*kp, "name"), item.get("name") or _host(url)),
                    interval=self.poll_every((*kp, "interval"), item.get("interval"))
                    if "interval" in item
                    else defaults["interval"],
                    fetch_article=self.boolean(
                        (*kp, "fetch_article"), item.get("fetch_article", defaults["fetch_article"])
                    ),
                    max_interval=self.max_interval(kp, item, defaults),
                )
            )
        seen: dict[str, int] = {}
        for i, feed in enumerate(out):
            if feed.url in seen:
                raise self.err(("feeds", i), f"feed {feed.url} is listed twice")
            seen[feed.url] = i
        return tuple(out)

    def opml(self, kp: KeyPath, item: dict[str, Any], defaults: dict[str, Any]) -> list[FeedConfig]:
        path = self.path(self.string((*kp, "opml"), item["opml"]))
        try:
            entries = read_opml(path)
        except ConfigError as exc:
            raise self.err((*kp, "opml"), str(exc)) from None
        interval = (
            self.poll_every((*kp, "interval"), item["interval"])
            if "interval" in item
            else defaults["interval"]
        )
        fetch_article = self.boolean(
            (*kp, "fetch_article"), item.get("fetch_article", defaults["fetch_article"])
        )
        ceiling = self.max_interval(kp, item, defaults)
        return [
            FeedConfig(u, n or _host(u), interval, fetch_article, max_interval=ceiling)
            for u, n in entries
        ]

    def max_interval(self, kp: KeyPath, item: dict[str, Any], defaults: dict[str, Any]) -> float:
        if "max_interval" not in item:
            return float(defaults["max_interval"])
        return self.poll_every((*kp, "max_interval"), item["max_interval"])

    def websub(self, value: Any) -> WebSubConfig:
        kp: KeyPath = ("websub",)
        self.mapping(kp, value, {"callback", "lease"}, required={"callback"})
        return WebSubConfig(
            callback=self.url((*kp, "callback"), value["callback"]),
            lease=self.duration((*kp, "lease"), value.get("lease", "7d")),
        )

    def redis(self, value: Any) -> RedisConfig:
        kp: KeyPath = ("redis",)
        self.mapping(kp, value, {"url", "prefix", "stream_maxlen"}, required={"url"})
        url = self.string((*kp, "url"), value["url"])
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise self.err((*kp, "url"), "expected redis://host:port/db, rediss:// or unix://")
        return RedisConfig(
            url=url,
            prefix=self.string((*kp, "prefix"), value.get("prefix", "news-monitor")),
            stream_maxlen=self.integer((*kp, "stream_maxlen"), value.get("stream_maxlen", 100_000)),
        )

    def sinks(self, value: Any) -> dict[str, SinkConfig]:
        kp: KeyPath = ("sinks",)
        if not isinstance(value, dict):
            raise self.err(kp, "expected a mapping of sink names to sinks")
        out: dict[str, SinkConfig] = {}
        for name, item in value.items():
            skp: KeyPath = (*kp, name)
            self.mapping(skp, item, {"type", "url", "secret", "timeout"}, required={"type", "url"})
            kind = self.string((*skp, "type"), item["type"])
            if kind not in ("webhook", "slack"):
                raise self.err((*skp, "type"), f"unknown sink type {kind!r} (webhook or slack)")
            if "secret" in item and kind != "webhook":
                raise self.err((*skp, "secret"), "only webhook sinks take a secret")
            out[name] = SinkConfig(
                name=name,
                type=kind,
                url=self.url((*skp, "url"), item["url"]),
                secrets=self.secrets((*skp, "secret"), item.get("secret")),
                timeout=self.duration((*skp, "timeout"), item.get("timeout", "10s")),
            )
        return out

    def secrets(self, kp: KeyPath, value: Any) -> tuple[str, ...]:
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
        keys = {
            "allow_private",
            "timeout",
            "connect_timeout",
            "max_bytes",
            "max_redirects",
            "concurrency",
            "per_host",
            "user_agent",
        }
        self.mapping(kp, value, keys)
        d = FetchConfig()
        return FetchConfig(
            allow_private=self.allow_private((*kp, "allow_private"), value.get("allow_private")),
            timeout=self.duration((*kp, "timeout"), value.get("timeout", d.timeout)),
            connect_timeout=self.duration(
                (*kp, "connect_timeout"), value.get("connect_timeout", d.connect_timeout)
            ),
            max_bytes=self.size((*kp, "max_bytes"), value.get("max_bytes", d.max_bytes)),
            max_redirects=self.integer(
                (*kp, "max_redirects"), value.get("max_redirects", d.max_redirects), minimum=0
            ),
            concurrency=self.integer((*kp, "concurrency"), value.get("concurrency", d.concurrency)),
            per_host=self.integer((*kp, "per_host"), value.get("per_host", d.per_host)),
            user_agent=self.string((*kp, "user_agent"), value.get("user_agent", d.user_agent)),
        )

    def allow_private(self, kp: KeyPath, value: Any) -> bool | tuple[str, ...]:
        if value is None or isinstance(value, bool):
            return bool(value)
        if not isinstance(value, list):
            raise self.err(kp, "expected true, false, or a list of host:port / CIDR entries")
        out = []
        for i, entry in enumerate(value):
            text = self.string((*kp, i), entry)
            if not _valid_allow_entry(text):
                raise self.err((*kp, i), f"{text!r} is neither host:port nor an address/CIDR")
            out.append(text)
        return tuple(out)

    def http(self, value: Any) -> HttpConfig:
        kp: KeyPath = ("http",)
        self.mapping(kp, value, {"listen"})
        listen = value.get("listen", "127.0.0.1:9108")
        if listen is False or listen is None:
            return HttpConfig(port=None)
        text = self.string((*kp, "listen"), listen)
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
            raise self.err((*kp, "listen"), f"expected host:port, got {text!r}")
        return HttpConfig(host=host.strip("[]") or "0.0.0.0", port=int(port))

    # -- scalars --------------------------------------------------------------------------

    def mapping(
        self,
        kp: KeyPath,
        value: Any,
        allowed: set[str] | frozenset[str],
        required: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        if not isinstance(value, dict):
            raise self.err(kp, "expected a mapping")
        for key in value:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                raise self.err((*kp, key), f"unknown key (expected one of: {hint})", at_key=True)
        for key in sorted(required):
            if key not in value or value[key] is None:
                raise self.err(kp, f"missing required key {key!r}")

    def string(self, kp: KeyPath, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.err(kp, "expected a string")
        return self.expand(kp, str(value))

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
            if default is not None:
                return default
            raise self.err(kp, f"environment variable {name} is not set (set it, or {name}_FILE)")

        return _VAR.sub(sub, text)

    def url(self, kp: KeyPath, value: Any) -> str:
        text = self.string(kp, value).strip()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # Name the key, not the value: sink URLs are secrets.
            raise self.err(kp, "expected an http:// or https:// URL")
        return text

    def path(self, text: str) -> Path:
        p = Path(text).expanduser()
        return p if p.is_absolute() else self.base / p

    def boolean(self, kp: KeyPath, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.err(kp, "expected true or false")
        return value

    def integer(self, kp: KeyPath, value: Any, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.err(kp, f"expected a whole number ≥ {minimum}")
        return value

    def duration(self, kp: KeyPath, value: Any) -> float:
        try:
            return parse_duration(self.expand(kp, value) if isinstance(value, str) else value)
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
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.err(kp, str(exc)) from None


def _host(url: str) -> str:
    return (urlsplit(url).hostname or url).removeprefix("www.")


def _valid_allow_entry(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
        return True
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)
