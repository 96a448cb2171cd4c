from collections.abc import Callable

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
    cache: dict[str, bytes],
    cache_limit: int,
    digest: Callable[[str], bytes],
    /,
) -> int | None: ...
