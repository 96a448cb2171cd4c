"""Noticing rule-file edits: a cheap signature of every rule file, compared on a timer.

Polling mtimes (every couple of seconds) instead of inotify keeps this portable (bind mounts,
ConfigMap symlink swaps in Kubernetes, macOS) and dependency-free; reading a few stat()s is
negligible next to polling feeds.
"""

from __future__ import annotations

from pathlib import Path

Signature = tuple[tuple[str, int, int], ...]


def rule_files(paths: list[Path]) -> list[Path]:
    """The rule files a set of paths names: files as given, folders' *.yml and *.yaml."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted([*p.glob("*.yml"), *p.glob("*.yaml")]))
        else:
            out.append(p)
    return out


def signature(paths: list[Path]) -> Signature:
    """(path, mtime_ns, size) of every rule file; missing files count as changes too."""
    sig: list[tuple[str, int, int]] = []
    for f in rule_files(paths):
        try:
            st = f.stat()
        except OSError:
            sig.append((str(f), -1, -1))
            continue
        sig.append((str(f), st.st_mtime_ns, st.st_size))
    return tuple(sig)
