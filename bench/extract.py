"""Main-text extraction: quality and speed of monitor.extract vs trafilatura modes alone.

Runs monitor.extract, trafilatura precision mode and trafilatura default mode over the
annotated pages in the shared corpus (../shared/corpus/pages), in the same process, and
prints pages/s, the share of ``must_contain`` snippets found and the share of
``must_not_contain`` (boilerplate) snippets leaked.

    .venv/bin/python bench/extract.py [--corpus PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import re
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


def squash(text: str) -> str:
    """Normalised text with all whitespace runs made one space, for snippet search."""
    return re.sub(r"\s+", " ", normalize(text)).strip()


def load_pages(corpus: Path) -> list[tuple[bytes, dict[str, list[str] | str]]]:
    """(html bytes, annotation) for every annotated page."""
    pages = corpus / "pages"
    notes = json.loads((pages / "annotations.json").read_text(encoding="utf-8"))
    return [((pages / "html" / name).read_bytes(), note) for name, note in sorted(notes.items())]


def score(
    pages: list[tuple[bytes, dict[str, list[str] | str]]], run: Callable[[bytes, str], str]
) -> tuple[float, float, float]:
    """(pages per CPU second, found share, leaked share) of ``run`` over ``pages``."""
    texts: list[str] = []
    # CPU time, not wall time: the figure should not depend on what else the machine runs.
    start = time.process_time()
    for html, note in pages:
        texts.append(run(html, str(note["url"])))
    elapsed = time.process_time() - start
    found = total_in = leaked = total_out = 0
    for text, (_, note) in zip(texts, pages, strict=True):
        flat = squash(text)
        for snippet in note["must_contain"]:
            total_in += 1
            found += squash(snippet) in flat
        for snippet in note["must_not_contain"]:
            total_out += 1
            leaked += squash(snippet) in flat
    return len(pages) / elapsed, found / max(total_in, 1), leaked / max(total_out, 1)


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


RUNS: tuple[tuple[str, Callable[[bytes, str], str]], ...] = (
    ("trafilatura precision", trafilatura_precision),
    ("trafilatura default", trafilatura_default),
    ("monitor.extract", ours),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=1, help="passes over the pages")
    args = parser.parse_args()
    pages = load_pages(args.corpus) * args.repeat
    print(f"{len(pages)} pages")
    for name, run in RUNS:
        rate, found, leaked = score(pages, run)
        print(f"{name:24s} {rate:7.1f} pages/s (CPU)  found {found:6.1%}  leaked {leaked:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
