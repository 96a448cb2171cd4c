from collections.abc import Callable

class Cache:
    """Words' 64-bit hashes, for :func:`fingerprint` (bounded by its ``cache_limit``)."""

    def __len__(self) -> int: ...
    def __contains__(self, word: object) -> bool: ...
    def clear(self) -> None: ...

def simhash(hashes: list[bytes], sample_from: int, sample: int, /) -> int | None: ...
def words(text: str, min_line_chars: int, min_line_words: int, max_words: int, /) -> list[str]: ...
def fingerprint(
    text: str,
    min_line_chars: int,
    min_line_words: int,
    max_words: int,
    min_words: int,
    sample_from: int,
    sample: int,
    cache: Cache,
    cache_limit: int,
    digest: Callable[[str], bytes],
    /,
) -> int | None: ...
