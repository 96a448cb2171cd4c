"""Main-text extraction: quality and speed of monitor.extract vs trafilatura modes alone.

Runs monitor.extract, trafilatura precision mode and trafilatura default mode over the
annotated pages in the shared corpus (../shared/corpus/pages), in the same process, and
prints pages per CPU second, the share of ``must_contain`` snippets found and the share of
``must_not_contain`` (boilerplate) snippets leaked.

Speed is CPU time of this process, page by page. Each page is run ``--rounds`` times, the
extractors taking turns (so a burst of load elsewhere hits them alike), and the figure is the
corpus over the sum of each page's fastest run; the median round is printed beside it.
CPU time still rises when another process shares the cores, so compare figures taken in one
run. ``--baseline FILE`` adds another version of monitor/clean.py (a copy saved before a
change) as one more extractor, for a before/after in the same process.

    .venv/bin/python bench/extract.py [--corpus PATH] [--rounds N] [--baseline FILE]
                                      [--only-ours]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import trafilatura

from monitor.clean import extract
from monitor.textnorm import normalize

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"

Page = tuple[bytes, dict[str, list[str] | str]]
Run = Callable[[bytes, str], str]


def squash(text: str) -> str:
    """Normalised text with all whitespace runs made one space, for snippet search."""
    return re.sub(r"\s+", " ", normalize(text)).strip()


def load_pages(corpus: Path) -> list[Page]:
    """(html bytes, annotation) for every annotated page."""
    pages = corpus / "pages"
    notes = json.loads((pages / "annotations.json").read_text(encoding="utf-8"))
    return [((pages / "html" / name).read_bytes(), note) for name, note in sorted(notes.items())]


def quality(pages: list[Page], texts: list[str]) -> tuple[float, float]:
    """(found share, leaked share) of the extracted ``texts`` of ``pages``."""
    found = total_in = leaked = total_out = 0
    for text, (_, note) in zip(texts, pages, strict=True):
        flat = squash(text)
        for snippet in note["must_contain"]:
            total_in += 1
            found += squash(snippet) in flat
        for snippet in note["must_not_contain"]:
            total_out += 1
            leaked += squash(snippet) in flat
    return found / max(total_in, 1), leaked / max(total_out, 1)


def timed(runs: list[Run], pages: list[Page], rounds: int) -> list[tuple[list[float], list[str]]]:
    """Per run: CPU seconds per page and round (page-major), and the texts of the last round."""
    seconds: list[list[float]] = [[] for _ in runs]
    texts: list[list[str]] = [[""] * len(pages) for _ in runs]
    for round_no in range(rounds):
        for i, (html, note) in enumerate(pages):
            shift = (round_no + i) % len(runs)  # whoever goes first changes page by page
            for k in [*range(shift, len(runs)), *range(shift)]:
                start = time.process_time()
                texts[k][i] = runs[k](html, str(note["url"]))
                seconds[k].append(time.process_time() - start)
    return list(zip(seconds, texts, strict=True))


def rates(seconds: list[float], pages: int, rounds: int) -> tuple[float, float]:
    """(pages/s from each page's fastest run, pages/s of the median round)."""
    per_page = [seconds[i::pages] for i in range(pages)]  # appended round-major
    best = sum(min(times) for times in per_page)
    by_round = [sum(seconds[r * pages : (r + 1) * pages]) for r in range(rounds)]
    return pages / best, pages / statistics.median(by_round)


def ours(html: bytes, url: str) -> str:
    return extract(html, url=url).text


def trafilatura_precision(html: bytes, url: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return trafilatura.extract(html, url=url, favor_precision=True) or ""


def trafilatura_default(html: bytes, url: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return trafilatura.extract(html, url=url) or ""


def baseline_run(path: Path) -> Run:
    """``extract`` of another copy of monitor/clean.py, loaded as its own module."""
    spec = importlib.util.spec_from_file_location("clean_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return lambda html, url: str(module.extract(html, url=url).text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every page, interleaved")
    parser.add_argument("--baseline", type=Path, help="another monitor/clean.py to compare")
    parser.add_argument("--only-ours", action="store_true", help="skip trafilatura alone")
    args = parser.parse_args()
    pages = load_pages(args.corpus)
    named: list[tuple[str, Run]] = []
    if not args.only_ours:
        named += [("trafilatura precision", trafilatura_precision)]
        named += [("trafilatura default", trafilatura_default)]
    if args.baseline:
        named.append((f"baseline {args.baseline.name}", baseline_run(args.baseline)))
    named.append(("monitor.extract", ours))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{len(pages)} pages, {args.rounds} rounds, load average {load}")
    results = timed([run for _, run in named], pages, args.rounds)
    for (name, _), (seconds, texts) in zip(named, results, strict=True):
        best, median = rates(seconds, len(pages), args.rounds)
        found, leaked = quality(pages, texts)
        print(
            f"{name:24s} {best:6.1f} pages/s (CPU, best; median round {median:5.1f})"
            f"  found {found:6.1%}  leaked {leaked:6.1%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
