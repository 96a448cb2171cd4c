"""The ``news-monitor`` command: run, check, match, extract, deliveries.

Promises: every error a user can cause (bad YAML, unknown key, bad rule, unreachable Redis at
start, unreadable input) is printed as one clear line — ``path:line:col: error: message`` where
there is a position — and never as a traceback; ``check`` prints every problem of the config and
the rule files at once; exit status 0 on success, 1 on such errors. A URL given as an INPUT is
the operator's own, like a sink URL: its host:port is fetched even when private or loopback,
under every other fetch limit, while redirects from it stay under the address guard.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from monitor import deliveries, logs
from monitor.article import Article
from monitor.clean import extract
from monitor.config import Config, FetchConfig, check_config, config_path, load_config
from monitor.daemon import Daemon, resources, route_errors
from monitor.errors import ConfigError, ConfigErrors, FetchError, MonitorError
from monitor.fetch import Fetcher, make_session
from monitor.hit import iso
from monitor.netguard import NOT_PUBLIC
from monitor.rules import Match, RuleSet, load_resident

EXIT_OK, EXIT_ERROR = 0, 1
# The fix the address guard names, which only fits a fetch the config governs.
_GUARD_FIX = re.compile(r"\s*\(allow it with fetch\.allow_private\)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        result: int = args.func(args)
        return result
    except ConfigErrors as exc:
        for err in exc.errors:
            print(err, file=sys.stderr)
        return EXIT_ERROR
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except (RecursionError, MemoryError) as exc:  # input beyond what we can hold: say so
        print(
            f"error: input too large or too deeply nested ({type(exc).__name__})", file=sys.stderr
        )
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="news-monitor", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "-c",
            "--config",
            help="config file (default: $NEWS_MONITOR_CONFIG, "
            "./monitor.yml, then the embedded defaults)",
        )

    run = sub.add_parser("run", help="run the daemon until SIGTERM/SIGINT")
    with_config(run)
    run.add_argument("--log-format", choices=["json", "console"], help="default: json unless a tty")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check", help="validate the config and every rule file")
    with_config(check)
    check.set_defaults(func=cmd_check)

    match = sub.add_parser("match", help="show which rules match each input, and why")
    with_config(match)
    match.add_argument("--json", action="store_true", help="one JSON object per input")
    match.add_argument("--explain", metavar="RULE_ID", help="say which clauses of a rule held")
    match.add_argument("inputs", nargs="+", metavar="INPUT", help="HTML file, URL, or - (stdin)")
    match.set_defaults(func=cmd_match)

    deliveries.add_parser(sub, with_config)
    sub.choices["deliveries"].set_defaults(func=cmd_deliveries)

    extract = sub.add_parser("extract", help="print the cleaned article of each input")
    extract.add_argument("--json", action="store_true", help="one JSON object per input")
    extract.add_argument("inputs", nargs="+", metavar="INPUT", help="HTML file, URL, or - (stdin)")
    extract.set_defaults(func=cmd_extract)
    return p


# -- check / run -----------------------------------------------------------------------------


def load_all(path_arg: str | None, *, resident: bool = False) -> tuple[Config, RuleSet]:
    """Config and rules, fully validated (no I/O beyond reading files); ``resident`` rules
    are kept as the daemon keeps them (see :func:`monitor.rules.load_resident`).

    Raises ConfigErrors with every problem found: each config key's, then — when the
    config's ``rules:`` value is usable — every rule file's, then each ``notify`` entry
    naming a sink the config does not define.
    """
    checked = check_config(config_path(path_arg))
    config, errors = checked.config, list(checked.errors)
    rules = _rules(config, errors, resident) if checked.usable("rules") else None
    if rules is not None and checked.usable("sinks"):
        errors.extend(route_errors(rules, config))
    if errors or rules is None:
        raise ConfigErrors(errors)
    return config, rules


def _rules(config: Config, errors: list[ConfigError], resident: bool) -> RuleSet | None:
    """The config's rules, or None with their problems added to ``errors``; a rule path
    that does not exist is a problem of the config's ``rules:`` value."""
    paths = [p for p in config.rules if p.exists()]
    missing = [p for p in config.rules if not p.exists()]
    errors.extend(config.error("rules", f"no such rule file or folder: {p}") for p in missing)
    try:
        return load_resident(paths) if resident else RuleSet.from_files(paths)
    except ConfigErrors as exc:
        errors.extend(exc.errors)
    except ConfigError as exc:
        errors.append(exc)
    return None


def located(config: Config, exc: ConfigError) -> ConfigError:
    """``exc`` placed at the config value it names (``redis.url: cannot reach Redis…``)
    when it came without a line and column."""
    if exc.line is not None or exc.path != str(config.path):
        return exc
    key = exc.message.partition(":")[0]
    return config.error(key, exc.message.partition(": ")[2]) if key in config.positions else exc


def cmd_check(args: argparse.Namespace) -> int:
    config, rules = load_all(args.config)
    store = f"redis ({config.redis.prefix})" if config.redis else f"sqlite in {config.state_dir}"
    sinks = ", ".join(f"{s.name} ({s.type} {s.redacted_url})" for s in config.sinks.values())
    files = len({r.path for r in rules.rules})
    print(
        f"{config.path}: ok: {len(config.feeds)} feeds, {len(rules.rules)} rules "
        f"in {files} files, store: {store}, sinks: {sinks or 'none'}"
    )
    return EXIT_OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    """``deliveries`` (list) and ``deliveries replay SINK [ID…]``."""
    config = load_config(config_path(args.config))
    try:
        if args.action == "replay":
            return asyncio.run(deliveries.replay(config, args.sink, args.ids))
        return asyncio.run(deliveries.list_deliveries(config, args.json))
    except ConfigError as exc:
        raise located(config, exc) from None
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def cmd_run(args: argparse.Namespace) -> int:
    config, rules = load_all(args.config, resident=True)
    logs.configure(json=None if args.log_format is None else args.log_format == "json")
    try:
        asyncio.run(_run(config, rules))
    except ConfigError as exc:  # a store that cannot be opened: point at its config value
        raise located(config, exc) from None
    except asyncio.CancelledError:  # a second SIGTERM/SIGINT: stop now, no drain
        print("news-monitor: stopped without draining (second signal)", file=sys.stderr)
        return 130
    return EXIT_OK


async def _run(config: Config, rules: RuleSet) -> None:
    async with resources(config) as deps:
        daemon = Daemon(deps, rules)
        loop = asyncio.get_running_loop()
        main_task = asyncio.current_task()

        def on_stop() -> None:
            # First signal asks for a drain; a second one stops at once (uvicorn's habit).
            if daemon.stop.is_set() and main_task is not None:
                main_task.cancel()
            daemon.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_stop)
        loop.add_signal_handler(signal.SIGHUP, daemon.reload_soon)
        await daemon.run()


# -- match / extract -------------------------------------------------------------------------


def read_input(name: str, config: Config | None = None) -> tuple[bytes, str | None]:
    """The bytes of one INPUT (file, URL or ``-``) and its URL when it has one. A file or
    stdin is read up to ``fetch.max_bytes``, as a fetched page is (``/dev/zero`` ends)."""
    if not name:
        raise MonitorError("empty INPUT: give a file, a URL or - for stdin")
    if name.startswith(("http://", "https://")):
        return asyncio.run(_fetch(name, config)), name
    limit = (config.fetch if config else FetchConfig()).max_bytes
    try:
        if name == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with Path(name).open("rb") as f:
                data = f.read(limit + 1)
    except OSError as exc:
        raise MonitorError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise MonitorError(f"{name} is larger than fetch.max_bytes ({limit} bytes)")
    return data, None


async def _fetch(url: str, config: Config | None) -> bytes:
    """The page at ``url``, a URL typed on the command line: under every limit of the
    config's fetch section (or the defaults), with ``url``'s own host:port allowed."""
    cfg = allowing(config.fetch if config else FetchConfig(), url)
    try:
        async with make_session(cfg) as session:
            resp = await Fetcher(cfg, session).get(url, accept="text/html,*/*;q=0.5")
    except FetchError as exc:
        raise refusal_for_cli(exc, config) from None
    return resp.body


def allowing(cfg: FetchConfig, url: str) -> FetchConfig:
    """``cfg`` with ``url``'s own host:port allowed whatever its address: a URL typed on the
    command line is the operator's own input (as a sink URL is), not one a feed handed us.
    Redirects to other private addresses stay refused; every other limit is kept."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return cfg  # the fetch itself reports the bad port
    if cfg.allow_private is True or not parts.hostname:
        return cfg
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    allowed = cfg.allow_private if isinstance(cfg.allow_private, tuple) else ()
    return replace(cfg, allow_private=(*allowed, f"{host}:{port}"))


def refusal_for_cli(exc: FetchError, config: Config | None) -> FetchError:
    """A refusal by the address guard (a redirect to a private address), naming the fixes
    open here: the config's ``fetch.allow_private`` when there is a config, or typing the
    refused URL itself. Other failures are returned as they are."""
    if NOT_PUBLIC not in str(exc):
        return exc
    fix = "give that URL on the command line to fetch it"
    if config is not None:
        fix = f"allow it with fetch.allow_private in {config.path}, or {fix}"
    message = f"{_GUARD_FIX.sub('', str(exc))} ({fix})"
    return FetchError(message, exc.status, exc.retry_after, lasting=exc.lasting)


def article_of(name: str, config: Config | None = None) -> Article:
    """Read and clean one input."""
    data, url = read_input(name, config)
    return extract(data, url)


def cmd_extract(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for name in args.inputs:
        try:
            article = article_of(name)
        except Exception as exc:  # one bad input is reported, never a traceback
            status = _report(args.json, name, exc)
            continue
        doc = article_json(article)
        if args.json:
            print(json.dumps({"input": name, **doc}, ensure_ascii=False))
        else:
            print(
                f"== {name}\ntitle: {article.title}\nurl: {article.url}\n"
                f"published: {doc['published']}\nlanguage: {article.language}\n\n{article.text}\n"
            )
    return status


def cmd_match(args: argparse.Namespace) -> int:
    config, rules = load_all(args.config)
    if args.explain and rules.get(args.explain) is None:
        raise ConfigError(f"--explain: no rule with id {args.explain!r}")
    status = EXIT_OK
    for name in args.inputs:
        try:
            article = article_of(name, config)
        except Exception as exc:  # one bad input is reported, never a traceback
            status = _report(args.json, name, exc)
            continue
        matches = rules.match(article)
        explain = rules.explain(article, args.explain) if args.explain else None
        if args.json:
            doc: dict[str, Any] = {
                "input": name,
                "title": article.title,
                "matches": [match_json(m) for m in matches],
            }
            if explain is not None:
                doc["explain"] = explain
            print(json.dumps(doc, ensure_ascii=False))
        else:
            print_matches(sys.stdout, name, article, matches, explain)
    return status


def _report(as_json: bool, name: str, exc: Exception) -> int:
    if not isinstance(exc, MonitorError):
        exc = MonitorError(f"{type(exc).__name__}: {exc}")
    if as_json:
        print(json.dumps({"input": name, "error": str(exc)}, ensure_ascii=False))
    else:
        print(f"{name}: error: {exc}", file=sys.stderr)
    return EXIT_ERROR


def article_json(a: Article) -> dict[str, Any]:
    """The cleaned article as JSON-ready data."""
    return {
        "title": a.title,
        "url": a.url,
        "published": iso(a.published),
        "language": a.language,
        "text": a.text,
    }


def match_json(m: Match) -> dict[str, Any]:
    """One rule match as JSON-ready data (spans with snippets)."""
    return {
        "rule": {"id": m.rule_id, "name": m.rule_name},
        "matches": [
            {"field": s.field, "text": s.text, "start": s.start, "end": s.end, "snippet": s.snippet}
            for s in m.spans
        ],
    }


def print_matches(
    out: TextIO, name: str, article: Article, matches: list[Match], explain: list[str] | None
) -> None:
    """Human-readable report: each matching rule and each span, highlighted with [ ]."""
    title = article.title or "(no title)"
    print(f"{name}: {title}", file=out)
    if not matches:
        print("  no rule matched", file=out)
    for m in matches:
        print(f"  ✓ {m.rule_id} — {m.rule_name}", file=out)
        for s in m.spans:
            a, b = s.highlight
            snippet = f"{s.snippet[:a]}[{s.snippet[a:b]}]{s.snippet[b:]}"
            print(f"      {s.field} {s.start}-{s.end}: {snippet}", file=out)
    for line in explain or ():
        print(f"  {line}", file=out)
