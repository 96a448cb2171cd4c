"""Rule matching at scale: articles/s and µs/article at 10k and 100k rules.

Builds ~5 KB articles from the shared corpus pages (../shared/corpus/pages, cleaned with
``monitor.extract`` and cached next to the corpus list in a temp file), generates realistic
rule files from the corpus vocabulary (entities with aliases and ``case:`` forms, phrases,
AND/OR/NOT, some NEAR/ONEAR, prefixes, a few regexes, field and metadata scopes).

The rules name rare words and names (a desk's rules are about specific things). By default
they are drawn from the pages *and* the real feeds of the corpus (../shared/corpus/feeds),
so, as on a real desk, most of what the rules name is not in a given article; ``--dense``
draws them from the pages alone, the very text the articles are made of, so that about ten
times as many rules fire (0.15 % of all rules on every article): a stress test of the cost
of firing rules and of their spans. It prints:

- load time of the rule files through ``load_resident`` (as the daemon loads them) and
  memory (tracemalloc peak of loading, RSS growth, peak RSS of the process);
- matching throughput of ``RuleSet.match`` (CPU time), alone and with every match's spans
  read (spans are computed on first access; the daemon reads them for each hit). The index
  learns which words are common from the articles it sees, refiling rules on the way (a
  pause of up to a second at 100k rules, early on); the figures are taken after it has
  seen WARM_UP articles;
- the same figure for a naive matcher, one Python ``re`` search per term and per rule, run in
  the same process on a slice of the rules and scaled to the full count (labelled as such).

No assertions: the figures are for people.

    .venv/bin/python bench/match.py [--rules 10000 100000] [--articles 300] [--seed 1] [--dense]
"""

from __future__ import annotations

import argparse
import gc
import html
import json
import pickle
import random
import re
import resource
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from monitor import query as q
from monitor.article import Article
from monitor.clean import extract
from monitor.evaluate import Evaluator
from monitor.rules import RuleSet, load_resident

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = ROOT.parent / "shared" / "corpus"
ARTICLE_CHARS = 5000
RULES_PER_FILE = 2000
NAIVE_SLICE = 1000
WARM_UP = 1000
RARE_PAGES = 2
_WORD = re.compile(r"[^\W\d_]{3,}")
_CAP = re.compile(r"\b[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})+")
_TAG = re.compile(r"<[^>]*>")
_ITEM = re.compile(r"<(?:item|entry)[\s>].*?</(?:item|entry)>", re.DOTALL)


# -------------------------------------------------------------------------------- articles


def load_texts(corpus: Path) -> list[tuple[str, str, str]]:
    """(title, text, url) of every corpus page, cached in the temp folder after the first run."""
    pages = corpus / "pages"
    cache = Path(tempfile.gettempdir()) / "news-monitor-bench-texts.pkl"
    if cache.exists():
        cached: list[tuple[str, str, str]] = pickle.loads(cache.read_bytes())
        return cached
    notes = json.loads((pages / "annotations.json").read_text(encoding="utf-8"))
    out = []
    for name, note in sorted(notes.items()):
        art = extract((pages / "html" / name).read_bytes(), url=note["url"])
        if art.text:
            out.append((art.title, art.text, art.url))
    cache.write_bytes(pickle.dumps(out))
    return out


def feed_texts(corpus: Path) -> list[tuple[str, str, str]]:
    """("", text, "") of every entry of every corpus feed, tags and entities stripped (for
    the rules' vocabulary only: no parser needed)."""
    out = []
    for path in sorted((corpus / "feeds").rglob("*.xml")):
        raw = path.read_text(encoding="utf-8", errors="replace")
        for item in _ITEM.findall(raw):
            text = _TAG.sub(" ", html.unescape(_TAG.sub(" ", item)))  # markup, then escaped
            out.append(("", text, ""))
    return out


def make_articles(texts: list[tuple[str, str, str]], count: int) -> list[Article]:
    """``count`` articles of about ARTICLE_CHARS characters, cycling through the corpus."""
    bodies = " ".join(t for _, t, _ in texts)
    out = []
    for i in range(count):
        title, _, url = texts[i % len(texts)]
        start = (i * 3001) % max(1, len(bodies) - ARTICLE_CHARS)
        out.append(
            Article(title=title, text=bodies[start : start + ARTICLE_CHARS], url=url, language="en")
        )
    return out


# ----------------------------------------------------------------------------------- rules


class Vocabulary:
    """Words, names and phrases an analyst would write rules about, drawn from the corpus."""

    def __init__(
        self, texts: list[tuple[str, str, str]], more: list[tuple[str, str, str]] = ()
    ) -> None:
        # Document frequency: a desk's rules name specific things, which few documents
        # mention; words that many pages share only narrow a rule down (the ``common`` pool,
        # from the pages alone). ``more`` documents widen what the rules can be about.
        self.words, self.names = _rare(texts + list(more))
        pages: Counter[str] = Counter()
        for _, text, _ in texts:
            pages.update({w.lower() for w in _WORD.findall(text)})
        self.common = sorted(w for w, c in pages.items() if RARE_PAGES < c < len(texts) // 4)
        self.latin = [w for w in self.words if w.isascii()]
        self.sites = sorted({u.split("/")[2].removeprefix("www.") for _, _, u in texts if u})

    def phrase(self, rnd: random.Random) -> str:
        return f'"{rnd.choice(self.names)}"'

    def word(self, rnd: random.Random) -> str:
        return rnd.choice(self.words)

    def narrow(self, rnd: random.Random) -> str:
        return rnd.choice(self.common)


def _rare(docs: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """Words (4+ letters) and capitalised names (with a rare word in them) found in at most
    RARE_PAGES documents."""
    words: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for title, text, _ in docs:
        words.update({w.lower() for w in _WORD.findall(text)})
        names.update(set(_CAP.findall(title + " " + text)))
    rare = sorted(w for w, c in words.items() if c <= RARE_PAGES and len(w) >= 4)
    # A name is a capitalised run with a rare word in it ("Sheepshead Bay"), not a run of
    # common words capitalised in a headline ("How You", "The Data"): rules match
    # regardless of case, and those would fire on every other article.
    distinct = [
        n
        for n, c in names.items()
        if len(n) < 30
        and c <= RARE_PAGES
        and any(words[w.lower()] <= RARE_PAGES for w in n.split())
    ]
    return rare, sorted(distinct)


def entity_block(vocab: Vocabulary, rnd: random.Random, count: int) -> dict[str, list[str]]:
    """``count`` entities, each a few aliases: names, a ``case:`` acronym, a word."""
    out = {}
    for i in range(count):
        name = rnd.choice(vocab.names)
        acronym = "".join(w[0] for w in name.split())
        aliases = [name, rnd.choice(vocab.names), f"case:{acronym}{i % 10}", vocab.word(rnd)]
        out[f"e{i}"] = aliases[: rnd.randint(2, 4)]
    return out


def make_query(vocab: Vocabulary, rnd: random.Random, entities: int) -> str:
    """One query of a kind picked with weights that resemble a real desk's rule file."""
    w, p, c = vocab.word, vocab.phrase, vocab.narrow
    kinds: list[tuple[int, Callable[[], str]]] = [
        (20, lambda: f"@e{rnd.randrange(entities)} AND ({c(rnd)} OR {p(rnd)} OR {w(rnd)})"),
        (15, lambda: f"{p(rnd)} AND {c(rnd)}"),
        (15, lambda: f"({w(rnd)} OR {w(rnd)}) AND {c(rnd)} NOT {c(rnd)}"),
        (10, lambda: f"{p(rnd)} OR {p(rnd)}"),
        (10, lambda: f"{w(rnd)} NEAR/{rnd.randint(2, 10)} {w(rnd)}"),
        (5, lambda: f"{p(rnd)} ONEAR/5 ({w(rnd)} OR {w(rnd)})"),
        (8, lambda: f"{rnd.choice(vocab.latin)[:6]}* AND {w(rnd)}"),
        (5, lambda: f"title:{w(rnd)} OR title:{p(rnd)}"),
        (5, lambda: f"{w(rnd)} AND site:{rnd.choice(vocab.sites)}"),
        (4, lambda: f"{w(rnd)} {c(rnd)} lang:en"),
        (2, lambda: f"{w(rnd)} AND /{rnd.choice(vocab.names).split()[0]}[ -][A-Z]/"),
        (1, lambda: f'case:"{rnd.choice(vocab.names).split()[0].upper()}" AND {w(rnd)}'),
    ]
    weights = [k for k, _ in kinds]
    return rnd.choices([f for _, f in kinds], weights)[0]()


def write_rules(vocab: Vocabulary, count: int, folder: Path, seed: int) -> None:
    """``count`` rules in files of RULES_PER_FILE, each file with its own entities."""
    rnd = random.Random(seed)
    for n, start in enumerate(range(0, count, RULES_PER_FILE)):
        entities = entity_block(vocab, rnd, 200)
        rules = [
            {"id": f"r{i}", "query": make_query(vocab, rnd, len(entities)), "notify": ["desk"]}
            for i in range(start, min(count, start + RULES_PER_FILE))
        ]
        doc = {"entities": entities, "rules": rules}
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000)
        (folder / f"rules{n:03d}.yml").write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------- the naive one


def naive_rule(node: q.Node) -> Callable[[Article], bool]:
    """A rule as nested closures over one ``re.search`` per term; NEAR is taken as AND."""
    match node:
        case q.Term(words=words, exact=exact, prefix=prefix):
            body = r"\W+".join(map(re.escape, words)) + (r"\w*" if prefix else "")
            rx = re.compile(rf"\b{body}\b", 0 if exact else re.I)
            return lambda a: bool(rx.search(a.title) or rx.search(a.text))
        case q.Regex(pattern=pattern):
            rx = re.compile(pattern)
            return lambda a: bool(rx.search(a.title) or rx.search(a.text))
        case q.And(children=kids):
            fs = [naive_rule(k) for k in kids]
            return lambda a: all(f(a) for f in fs)
        case q.Near(left=left, right=right):
            fl, fr = naive_rule(left), naive_rule(right)
            return lambda a: fl(a) and fr(a)
        case q.Or(children=kids) | q.Entity(aliases=kids):
            fs = [naive_rule(k) for k in kids]
            return lambda a: any(f(a) for f in fs)
        case q.Not(child=child):
            f = naive_rule(child)
            return lambda a: not f(a)
        case q.Scope(child=child):
            return naive_rule(child)
    return lambda a: True


# ----------------------------------------------------------------------------------- measuring


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc), else the peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_rules(folder: Path, trace: bool) -> tuple[RuleSet, float, float, float]:
    """(rules, load seconds, tracemalloc peak MB or 0, RSS growth MB)."""
    gc.collect()
    before = rss_mb()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    rs = load_resident([folder])
    elapsed = time.perf_counter() - start
    peak = 0.0
    if trace:
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    gc.collect()
    return rs, elapsed, peak, rss_mb() - before


def throughput(run: Callable[[Article], object], articles: list[Article]) -> float:
    """Seconds of CPU per article for ``run`` over ``articles`` (one warm-up article first)."""
    run(articles[0])
    start = time.process_time()
    for art in articles:
        run(art)
    return (time.process_time() - start) / len(articles)


def report(label: str, per_article: float) -> None:
    print(f"  {label:44s} {1 / per_article:9.0f} articles/s  {per_article * 1e6:9.0f} µs/article")


def bench_count(vocab: Vocabulary, count: int, articles: list[Article], args: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_rules(vocab, count, Path(tmp), args.seed)
        rs, secs, _, grown = load_rules(Path(tmp), trace=False)
        if args.tracemalloc:
            del rs
            gc.collect()
            rs, _, traced, _ = load_rules(Path(tmp), trace=True)
    for i in range(WARM_UP):
        rs.match(articles[i % len(articles)])
    hits = sum(len(rs.match(a)) for a in articles) / len(articles)
    tried = sum(len(rs._index.candidates(*_scope_all(rs, a))) for a in articles) / len(articles)
    print(f"{count} rules: loaded in {secs:.2f} s, RSS +{grown:.0f} MB", end="")
    print(f", tracemalloc peak {traced:.0f} MB" if args.tracemalloc else "")
    print(f"  per article: {tried:.0f} candidate rules checked, {hits:.1f} rules fire")
    report("RuleSet.match", throughput(rs.match, articles))
    report("RuleSet.match + spans of every match", throughput(_match_with_spans(rs), articles))
    naive_slice(rs, count, articles)


def _match_with_spans(rs: RuleSet) -> Callable[[Article], object]:
    """``RuleSet.match`` plus reading every match's spans, as the daemon does for its hits."""
    return lambda a: [m.spans for m in rs.match(a)]


def _scope_all(rs: RuleSet, article: Article) -> tuple[set[str], set[str]]:
    ev = Evaluator(article)
    return ev.words[2], rs._scanner.scan(ev.joined)[2]


def naive_slice(rs: RuleSet, count: int, articles: list[Article]) -> None:
    """The naive loop over the first NAIVE_SLICE rules, scaled to ``count`` rules."""
    nodes = rs._nodes[:NAIVE_SLICE]
    fns = [naive_rule(n) for n in nodes]
    few = articles[: max(5, len(articles) // 10)]
    per = throughput(lambda a: [f(a) for f in fns], few) * count / len(fns)
    report(f"naive re loop ({len(fns)} rules, ×{count / len(fns):g})", per)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rules", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tracemalloc", action="store_true", help="also trace allocations")
    parser.add_argument("--dense", action="store_true", help="rule words from the pages only")
    args = parser.parse_args()
    texts = load_texts(args.corpus)
    articles = make_articles(texts, args.articles)
    vocab = Vocabulary(texts, [] if args.dense else feed_texts(args.corpus))
    size = sum(len(a.text) + len(a.title) for a in articles) / len(articles)
    source = "pages (--dense)" if args.dense else "pages and feeds"
    print(
        f"{len(articles)} articles of {size:.0f} chars; rules drawn from the {source}: "
        f"{len(vocab.words)} rare words, {len(vocab.names)} names"
    )
    for count in args.rules:
        bench_count(vocab, count, articles, args)
    print(f"peak RSS of the process {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
