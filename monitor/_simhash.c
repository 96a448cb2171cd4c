/* monitor.simhash.fingerprint in C: the words of a text, their cached hashes, the votes.
 *
 * words(text, min_line_chars, min_line_words, max_words) -> the words SimHash uses: the text
 * is lower-cased (text.lower()) and cut at "\n" only; a line of fewer than ``min_line_chars``
 * characters (of the lower-cased line) is skipped; the words of a line are its maximal runs
 * of characters for which str.isalnum() holds (Py_UNICODE_ISALNUM: what the regex
 * ``[^\W_]+`` finds; in ASCII [a-z0-9]); a line of fewer than ``min_line_words`` words is
 * skipped; the words of the other lines are kept, the first ``max_words`` of them.
 *
 * fingerprint(text, min_line_chars, min_line_words, max_words, min_words, sample_from, sample,
 *             cache, cache_limit, digest)
 *   -> simhash([cache[w] or digest(w) for w in words(text, ...)], sample_from, sample), or
 * None when there are fewer than ``min_words`` words (then ``cache`` is not touched). The
 * cache is a Cache (a type of this module: len(cache), word in cache, cache.clear()) of words'
 * hashes. The words it does not hold are hashed by ``digest`` (8 bytes each) and then added
 * to it, all at once, after clearing it if it holds ``cache_limit`` words or more; a word
 * longer than a slot of it (CACHE_BYTES, in bytes of the word's str kind) is never added.
 * Only the calls of ``digest`` run Python code, and another thread may then clear or fill
 * ``cache``: the hashes found in it are copied out before the first call, and the others are
 * this call's own, so no result depends on other threads.
 *
 * simhash(hashes, sample_from, sample) takes each word's 64-bit hash as 8 little-endian
 * bytes. The shingles are the word triples (a, b, c) at i, i + 1, i + 2; with at least
 * ``sample_from`` words only those whose first word's hash has a low byte divisible by
 * ``sample`` are kept. Each kept shingle is the feature
 * (a ^ rotl(b, 21) ^ rotl(c, 42)) * 0x9E3779B97F4A7C15 mod 2**64, and bit j of the result is
 * set when more than half of the features have it set. None when no shingle is kept.
 *
 * The same as the Python code it replaces (tests keep frozen copies of it), at a fraction of
 * the cost. An ASCII line (most lines, in most texts) is lower-cased and its letters and
 * digits found 8 characters at a time, into a buffer, with no str made; another line is
 * lower-cased by str.lower() and read a character at a time. The words go into a table of
 * the text's distinct words (about half of a text's words are repeats), their characters
 * into an arena, narrowed to the kind a str of them would have; each distinct word is looked
 * up once in the cache, an open-addressing table holding each word's characters and hash in
 * one slot, and a str is made only for a word it does not hold, to be digested. The votes
 * are one pass over the features, 8 bits at a time into byte-wide counters (a table lookup
 * per byte of a feature), flushed into wide ones every 255 features.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* SPREAD[v] has byte k set to bit k of v: adding it to a word of 8 byte-wide counters counts
 * 8 bits of a feature at once (up to 255 features before the bytes must be flushed). */
static uint64_t SPREAD[256];

/* ALNUM[c]: ASCII c is a letter or a digit. LOWER[c]: ASCII c lower-cased. */
static unsigned char ALNUM[128], LOWER[128];

static PyObject *lower_name; /* "lower", interned */

/* Adds the byte-wide counters to the wide ones, and clears them. */
static void flush(uint64_t packed[8], Py_ssize_t counts[64]) {
    for (int k = 0; k < 8; k++) {
        for (int j = 0; j < 8; j++)
            counts[8 * k + j] += (Py_ssize_t)((packed[k] >> (8 * j)) & 0xFF);
        packed[k] = 0;
    }
}

static inline uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int k = 7; k >= 0; k--)
        v = (v << 8) | p[k];
    return v;
}

/* The SimHash of the n hashes h (see the opening comment); sample is in 1..256. */
static PyObject *vote(const uint64_t *h, Py_ssize_t n, Py_ssize_t sample_from,
                      Py_ssize_t sample) {
    Py_ssize_t counts[64] = {0}, i, total = 0;
    uint64_t fp = 0, packed[8] = {0};
    int pending = 0;
    for (i = 0; i + 2 < n; i++) {
        uint64_t feature;
        if (n >= sample_from && (h[i] & 0xFF) % (uint64_t)sample != 0)
            continue;
        feature = (h[i] ^ rotl(h[i + 1], 21) ^ rotl(h[i + 2], 42)) * MULTIPLIER;
        for (int k = 0; k < 8; k++) /* byte k of packed[k] counts bit 8k + j's votes */
            packed[k] += SPREAD[(feature >> (8 * k)) & 0xFF];
        total++;
        if (++pending == 255) {
            flush(packed, counts);
            pending = 0;
        }
    }
    flush(packed, counts);
    if (total == 0)
        Py_RETURN_NONE;
    for (int j = 0; j < 64; j++)
        if (counts[j] > total / 2)
            fp |= (uint64_t)1 << j;
    return PyLong_FromUnsignedLongLong(fp);
}

static int check_sample(Py_ssize_t sample) {
    if (sample < 1 || sample > 256) {
        PyErr_SetString(PyExc_ValueError, "sample must be in 1..256");
        return -1;
    }
    return 0;
}

/* The 64-bit hash in item, an 8-byte bytes object; -1 and TypeError when it is not one. */
static int hash_of(PyObject *item, uint64_t *out) {
    if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != 8) {
        PyErr_SetString(PyExc_TypeError, "hashes must be 8-byte bytes objects");
        return -1;
    }
    *out = le64((const unsigned char *)PyBytes_AS_STRING(item));
    return 0;
}

static PyObject *simhash(PyObject *self, PyObject *args) {
    PyObject *list, *result;
    Py_ssize_t sample_from, sample, n, i;
    uint64_t *h;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!nn:simhash", &PyList_Type, &list, &sample_from, &sample))
        return NULL;
    if (check_sample(sample) < 0)
        return NULL;
    n = PyList_GET_SIZE(list);
    if (n < 3)
        Py_RETURN_NONE;
    h = PyMem_Malloc(sizeof(uint64_t) * (size_t)n);
    if (h == NULL)
        return PyErr_NoMemory();
    for (i = 0; i < n; i++) {
        if (hash_of(PyList_GET_ITEM(list, i), &h[i]) < 0) {
            PyMem_Free(h);
            return NULL;
        }
    }
    result = vote(h, n, sample_from, sample);
    PyMem_Free(h);
    return result;
}

/* --- words ------------------------------------------------------------------------------ */

/* PyUnicode_READY, which Python 3.12 deprecates (every str is ready there). */
static inline int ready(PyObject *text) {
#if PY_VERSION_HEX < 0x030C0000
    return PyUnicode_READY(text);
#else
    (void)text;
    return 0;
#endif
}

static inline int is_word_char(Py_UCS4 c) {
    return c < 128 ? ALNUM[c] : Py_UNICODE_ISALNUM(c);
}

/* One entry per distinct word of a text (fingerprint). */
typedef struct {
    uint64_t key;     /* word_key of its characters */
    uint64_t head;    /* the first 8 bytes of its characters (zeros past the end) */
    Py_ssize_t at;    /* where its characters are in the arena */
    Py_ssize_t bytes; /* of its characters */
    int kind;         /* of its characters: the smallest that holds them, as a str has it */
    uint64_t hash;    /* its 64-bit hash, once known */
} entry_t;

typedef struct {
    Py_ssize_t min_line_chars, min_line_words, max_words;
    Py_ssize_t n;             /* words kept so far */
    Py_ssize_t *spans;        /* of the current line: word i at 2i (start), 2i + 1 (end) */
    Py_ssize_t span_capacity; /* in words */
    unsigned char *low;       /* an ASCII line lower-cased (and 8 bytes to spare) */
    Py_ssize_t low_capacity;
    uint64_t *alnum; /* bit j % 64 of alnum[j / 64]: character j of low is a letter or digit */
    Py_ssize_t alnum_capacity;
    /* words(): the words kept, in a list */
    PyObject *list;
    /* fingerprint(): the distinct words, and which of them each word kept is */
    entry_t *entries;
    Py_ssize_t distinct, entry_capacity;
    Py_ssize_t *slots; /* open addressing on the entries' keys: index + 1, or 0 */
    size_t mask;       /* the number of slots (a power of two) less one */
    Py_ssize_t *tokens; /* the entry of each word kept */
    Py_ssize_t token_capacity;
    unsigned char *arena; /* the characters of the distinct words, each 4-aligned */
    Py_ssize_t arena_size, arena_capacity;
} words_t;

static void words_free(words_t *w) {
    PyMem_Free(w->entries);
    PyMem_Free(w->slots);
    PyMem_Free(w->tokens);
    PyMem_Free(w->spans);
    PyMem_Free(w->low);
    PyMem_Free(w->alnum);
    PyMem_Free(w->arena);
    Py_XDECREF(w->list);
}

/* items (holding *capacity items of size bytes) grown to hold count, or items itself when it
 * does; NULL and MemoryError when memory runs out (items is then left as it was). */
static void *reserve(void *items, Py_ssize_t *capacity, Py_ssize_t count, size_t size) {
    Py_ssize_t want = *capacity;
    if (items != NULL && count <= want)
        return items;
    while (want < count || want < 16)
        want = want < 16 ? 16 : 2 * want;
    if ((size_t)want > PY_SSIZE_T_MAX / size ||
        (items = PyMem_Realloc(items, size * (size_t)want)) == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    *capacity = want;
    return items;
}

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LITTLE_ENDIAN_WORDS 1
#else
#define LITTLE_ENDIAN_WORDS 0
#endif

/* The n bytes (1..8) at p as a number, byte k at bits 8k..8k+7. padded: 8 bytes can be read
 * at p (the ones past n are ignored). */
static inline uint64_t load_bytes(const unsigned char *p, Py_ssize_t n, int padded) {
    uint64_t v = 0;
    if (padded && LITTLE_ENDIAN_WORDS) {
        memcpy(&v, p, 8);
        return n < 8 ? v & (((uint64_t)1 << (8 * n)) - 1) : v;
    }
    for (Py_ssize_t k = 0; k < n; k++)
        v |= (uint64_t)p[k] << (8 * k);
    return v;
}

/* A hash of the bytes characters of the given kind at p, whose first 8 are head, for the
 * table of distinct words. */
static uint64_t word_key(const unsigned char *p, Py_ssize_t bytes, int kind, uint64_t head,
                         int padded) {
    uint64_t key = (head ^ (uint64_t)bytes << 3 ^ (uint64_t)kind) * MULTIPLIER;
    for (Py_ssize_t k = 8; k < bytes; k += 8) {
        key ^= key >> 29;
        key = (key ^ load_bytes(p + k, bytes - k < 8 ? bytes - k : 8, padded)) * MULTIPLIER;
    }
    key ^= key >> 32;
    return key * 0xD6E8FEB86659FD93ULL;
}

/* Doubles the slots (or makes the first 256). 0, or -1 and MemoryError. */
static int grow_slots(words_t *w) {
    size_t size = w->slots == NULL ? 256 : 2 * (w->mask + 1);
    Py_ssize_t *slots = PyMem_Calloc(size, sizeof(Py_ssize_t));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < w->distinct; k++) {
        size_t slot = (size_t)(w->entries[k].key >> 32) & (size - 1);
        while (slots[slot] != 0)
            slot = (slot + 1) & (size - 1);
        slots[slot] = k + 1;
    }
    PyMem_Free(w->slots);
    w->slots = slots;
    w->mask = size - 1;
    return 0;
}

/* Room at the arena's end for a word of bytes bytes and 8 bytes to spare after it, 4-aligned;
 * the place, or NULL and MemoryError. */
static unsigned char *arena_end(words_t *w, Py_ssize_t bytes) {
    Py_ssize_t at = (w->arena_size + 3) & ~(Py_ssize_t)3;
    unsigned char *arena = reserve(w->arena, &w->arena_capacity, at + bytes + 8, 1);
    if (arena == NULL)
        return NULL;
    w->arena = arena;
    w->arena_size = at;
    memset(arena + at + bytes, 0, 8); /* read, never used, by load_bytes */
    return arena + at;
}

/* Records the next word kept, of bytes bytes of the given kind at p (with 8 bytes to spare
 * after them), as its entry in the table of distinct words: a new entry has them copied to the
 * arena's end (p may be that place). 0, or -1 and MemoryError. */
static int add_distinct(words_t *w, const unsigned char *p, Py_ssize_t bytes, int kind) {
    uint64_t head = load_bytes(p, bytes < 8 ? bytes : 8, 1);
    uint64_t key = word_key(p, bytes, kind, head, 1);
    size_t slot = (size_t)(key >> 32) & w->mask;
    Py_ssize_t found;
    unsigned char *dst;
    entry_t *e;
    while ((found = w->slots[slot]) != 0) {
        e = &w->entries[found - 1];
        if (e->key == key && e->head == head && e->bytes == bytes && e->kind == kind &&
            (bytes <= 8 || memcmp(w->arena + e->at + 8, p + 8, (size_t)bytes - 8) == 0))
            goto done;
        slot = (slot + 1) & w->mask;
    }
    e = reserve(w->entries, &w->entry_capacity, w->distinct + 1, sizeof(entry_t));
    if (e == NULL)
        return -1;
    w->entries = e;
    if ((dst = arena_end(w, bytes)) == NULL)
        return -1;
    memmove(dst, p, (size_t)bytes); /* (p is dst itself for add_narrowed, made room for) */
    e = &w->entries[w->distinct];
    e->key = key;
    e->head = head;
    e->at = w->arena_size;
    e->bytes = bytes;
    e->kind = kind;
    e->hash = 0;
    w->arena_size += bytes;
    found = ++w->distinct;
    w->slots[slot] = found;
    if ((size_t)w->distinct * 2 > w->mask + 1 && grow_slots(w) < 0)
        return -1;
done:
    w->tokens[w->n] = found - 1;
    return 0;
}

/* Records the size characters at first of a line (kind, data) (add_distinct), in the smallest
 * kind that holds them, as a str of them has it: put at the arena's end to be read there.
 * 0, or -1 and MemoryError. */
static int add_narrowed(words_t *w, int kind, const void *data, Py_ssize_t first,
                        Py_ssize_t size) {
    Py_UCS4 most = 0;
    int to;
    unsigned char *p;
    for (Py_ssize_t k = first; k < first + size; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        most = c > most ? c : most;
    }
    to = most < 256 ? PyUnicode_1BYTE_KIND : most < 65536 ? PyUnicode_2BYTE_KIND
                                                          : PyUnicode_4BYTE_KIND;
    if ((p = arena_end(w, size * to)) == NULL)
        return -1;
    for (Py_ssize_t k = 0; k < size; k++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, first + k);
        if (to == PyUnicode_1BYTE_KIND)
            p[k] = (Py_UCS1)c;
        else if (to == PyUnicode_2BYTE_KIND)
            ((Py_UCS2 *)p)[k] = (Py_UCS2)c;
        else
            ((Py_UCS4 *)p)[k] = c;
    }
    return add_distinct(w, p, size * to, to);
}

/* Keeps the count words whose spans are in w->spans, of the line lower-cased: in w->low when
 * line is NULL (ASCII), else the str line. 0, or -1 with an exception. */
static int keep(words_t *w, PyObject *line, Py_ssize_t count) {
    const Py_ssize_t *spans = w->spans;
    if (w->list == NULL) {
        Py_ssize_t *tokens =
            reserve(w->tokens, &w->token_capacity, w->n + count, sizeof(Py_ssize_t));
        if (tokens == NULL)
            return -1;
        w->tokens = tokens;
    }
    for (Py_ssize_t k = 0; k < count; k++, w->n++) {
        Py_ssize_t first = spans[2 * k], size = spans[2 * k + 1] - first;
        PyObject *word;
        int failed;
        if (w->list == NULL && line == NULL) {
            if (add_distinct(w, w->low + first, size, PyUnicode_1BYTE_KIND) < 0)
                return -1;
        } else if (w->list == NULL) {
            if (add_narrowed(w, PyUnicode_KIND(line), PyUnicode_DATA(line), first, size) < 0)
                return -1;
        } else {
            if (line == NULL) {
                word = PyUnicode_New(size, 127);
                if (word == NULL)
                    return -1;
                memcpy(PyUnicode_1BYTE_DATA(word), w->low + first, (size_t)size);
            } else {
                word = PyUnicode_Substring(line, first, first + size);
                if (word == NULL)
                    return -1;
            }
            failed = PyList_Append(w->list, word);
            Py_DECREF(word);
            if (failed < 0)
                return -1;
        }
    }
    return 0;
}

/* Records the span [first, i) as word count of the line when there is room for it, counts it,
 * and leaves the line's loop once the line is known to be kept and to fill what room there
 * is (the rest of it is not read). */
#define RECORD(first, i)                                                                       \
    do {                                                                                       \
        if (count < room) {                                                                    \
            spans[2 * count] = (first);                                                        \
            spans[2 * count + 1] = (i);                                                        \
        }                                                                                      \
        if (++count >= min_line_words && count >= room)                                        \
            goto counted;                                                                      \
    } while (0)

/* The space the words of a line of size characters need: 0, or -1 and MemoryError. Sets
 * *room to the most words to record (a line cannot hold more than (size + 1) / 2). */
static int line_room(words_t *w, Py_ssize_t size, Py_ssize_t *room) {
    Py_ssize_t *spans;
    *room = w->max_words - w->n;
    if (*room > (size + 1) / 2)
        *room = (size + 1) / 2;
    spans = reserve(w->spans, &w->span_capacity, *room, 2 * sizeof(Py_ssize_t));
    if (spans == NULL)
        return -1;
    w->spans = spans;
    return 0;
}

/* The index of the lowest bit set in x (not 0). */
static inline int ctz64(uint64_t x) {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int j = 0;
    for (; !(x & 1); x >>= 1)
        j++;
    return j;
#endif
}

#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL

/* The ASCII line [start, end) of (kind, data): lower-cased into w->low, its letters and digits
 * marked in w->alnum, its words kept when there are at least min_line_words of them (as many
 * as fit under max_words). 0, or -1 with an exception. */
static int add_ascii_line(words_t *w, int kind, const void *data, Py_ssize_t start,
                          Py_ssize_t end) {
    Py_ssize_t size = end - start, chunks = (size + 63) / 64, room, count = 0, k, first = 0;
    Py_ssize_t min_line_words = w->min_line_words, *spans;
    const unsigned char *src;
    unsigned char *low;
    uint64_t *alnum, carry = 0;
    if ((low = reserve(w->low, &w->low_capacity, size + 8, 1)) == NULL)
        return -1;
    w->low = low;
    if ((alnum = reserve(w->alnum, &w->alnum_capacity, chunks, sizeof(uint64_t))) == NULL)
        return -1;
    w->alnum = alnum;
    if (line_room(w, size, &room) < 0)
        return -1;
    spans = w->spans;
    memset(alnum, 0, sizeof(uint64_t) * (size_t)chunks);
    memset(low + size, 0, 8); /* read, never used, by load_bytes */
    if (kind == PyUnicode_1BYTE_KIND) {
        src = (const unsigned char *)data + start;
    } else { /* narrowed first: every character is below 128 */
        if (kind == PyUnicode_2BYTE_KIND) {
            const Py_UCS2 *p = (const Py_UCS2 *)data + start;
            for (k = 0; k < size; k++)
                low[k] = (unsigned char)p[k];
        } else {
            const Py_UCS4 *p = (const Py_UCS4 *)data + start;
            for (k = 0; k < size; k++)
                low[k] = (unsigned char)p[k];
        }
        src = low;
    }
    k = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* 8 characters at a time: every byte is below 128, so adding up to 127 to each carries
     * into no other; bit 7 of byte b of x + (128 - lo) is set when byte b >= lo, and that of
     * ~(x + (127 - hi)) when byte b <= hi. */
    for (; k + 8 <= size; k += 8) {
        uint64_t x, upper, digit, letter, marks;
        memcpy(&x, src + k, 8);
        upper = (x + 0x3F * ONES) & ~(x + 0x25 * ONES) & HIGH;   /* 'A'..'Z' */
        x |= upper >> 2;                                          /* + 0x20 */
        memcpy(low + k, &x, 8);
        digit = (x + 0x50 * ONES) & ~(x + 0x46 * ONES);           /* '0'..'9' */
        letter = (x + 0x1F * ONES) & ~(x + 0x05 * ONES);          /* 'a'..'z' */
        marks = (((digit | letter) & HIGH) >> 7) * 0x0102040810204080ULL >> 56;
        alnum[k / 64] |= marks << (k % 64);
    }
#endif
    for (; k < size; k++) {
        low[k] = LOWER[src[k]];
        alnum[k / 64] |= (uint64_t)ALNUM[low[k]] << (k % 64);
    }
    /* The words start where a mark follows no mark, and end where no mark follows one. */
    for (Py_ssize_t c = 0; c < chunks; c++) {
        uint64_t marks = alnum[c], edges = marks ^ (marks << 1 | carry);
        carry = marks >> 63;
        if (c == chunks - 1 && size % 64 != 0)
            edges &= ((uint64_t)1 << (size % 64)) - 1;
        while (edges != 0) {
            int j = ctz64(edges);
            edges &= edges - 1;
            if (marks >> j & 1)
                first = 64 * c + j;
            else
                RECORD(first, 64 * c + j);
        }
    }
    if (size > 0 && alnum[(size - 1) / 64] >> ((size - 1) % 64) & 1)
        RECORD(first, size);
counted:
    if (count < min_line_words)
        return 0;
    return keep(w, NULL, count < room ? count : room);
}

/* The line, a lower-cased str: its words kept when there are at least min_line_words of them
 * (as many as fit under max_words). 0, or -1 with an exception. */
static int add_line(words_t *w, PyObject *line) {
    int kind = PyUnicode_KIND(line);
    const void *data = PyUnicode_DATA(line);
    Py_ssize_t size = PyUnicode_GET_LENGTH(line), min_line_words = w->min_line_words;
    Py_ssize_t room, count = 0, i = 0, *spans;
    if (line_room(w, size, &room) < 0)
        return -1;
    spans = w->spans;
    while (i < size) {
        Py_ssize_t first;
        while (i < size && !is_word_char(PyUnicode_READ(kind, data, i)))
            i++;
        if (i == size)
            break;
        first = i;
        while (i < size && is_word_char(PyUnicode_READ(kind, data, i)))
            i++;
        RECORD(first, i);
    }
counted:
    if (count < min_line_words)
        return 0;
    return keep(w, line, count < room ? count : room);
}

/* Where the line starting at i of ASCII data ends: the next "\n" or the end of the text. */
static Py_ssize_t line_end_ascii(const void *data, Py_ssize_t length, Py_ssize_t i) {
    const char *p = data, *nl = memchr(p + i, '\n', (size_t)(length - i));
    return nl ? nl - p : length;
}

/* Where the line starting at i ends (the next "\n" or the end of the text), and in *ascii
 * whether it is all ASCII. */
static Py_ssize_t line_end(int kind, const void *data, Py_ssize_t length, Py_ssize_t i,
                           int *ascii) {
    Py_UCS4 all = 0;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = data, *nl = memchr(p + i, '\n', (size_t)(length - i));
        Py_ssize_t end = nl ? nl - p : length;
        for (; i < end; i++)
            all |= p[i];
        *ascii = all < 128;
        return end;
    }
    if (kind == PyUnicode_2BYTE_KIND) {
        const Py_UCS2 *p = data;
        for (; i < length && p[i] != '\n'; i++)
            all |= p[i];
    } else {
        const Py_UCS4 *p = data;
        for (; i < length && p[i] != '\n'; i++)
            all |= p[i];
    }
    *ascii = all < 128;
    return i;
}

/* The lower-cased text, which must be a str. */
static PyObject *lower(PyObject *text) {
    PyObject *low = PyObject_CallMethodNoArgs(text, lower_name);
    if (low == NULL)
        return NULL;
    if (!PyUnicode_Check(low)) {
        Py_DECREF(low);
        PyErr_SetString(PyExc_TypeError, "text.lower() must return a str");
        return NULL;
    }
    if (ready(low) < 0) {
        Py_DECREF(low);
        return NULL;
    }
    return low;
}

/* Keeps the words of text in w (see the opening comment). 0, or -1 with an exception.
 *
 * A str (not a subclass, whose lower() may differ) is lower-cased line by line, which gives
 * what text.lower().split("\n") gives: no character lower-cases to or from "\n", and the one
 * rule of str.lower() that looks at neighbours (a final capital sigma) stops at "\n", which
 * is neither cased nor case-ignorable. An ASCII line is lower-cased here; another is
 * lower-cased by str.lower() first (its length is then the lower-cased one: never shorter,
 * at most 3 times longer). */
static int scan_text(words_t *w, PyObject *text) {
    PyObject *owned = NULL;
    Py_ssize_t start = 0, length;
    int kind, by_line, ascii, failed = 0;
    const void *data;
    if (w->max_words < 0) {
        PyErr_SetString(PyExc_ValueError, "max_words must not be negative");
        return -1;
    }
    if (ready(text) < 0)
        return -1;
    by_line = PyUnicode_CheckExact(text);
    if (!by_line) {
        text = owned = lower(text);
        if (text == NULL)
            return -1;
    }
    ascii = PyUnicode_IS_ASCII(text);
    kind = PyUnicode_KIND(text);
    data = PyUnicode_DATA(text);
    length = PyUnicode_GET_LENGTH(text);
    while (w->n < w->max_words) { /* the lines, as text.split("\n") has them */
        int line_ascii = 1;
        Py_ssize_t end = ascii ? line_end_ascii(data, length, start)
                               : line_end(kind, data, length, start, &line_ascii);
        if (3 * (end - start) < w->min_line_chars) {
            /* too short, even lower-cased */
        } else if (line_ascii && by_line) {
            if (end - start >= w->min_line_chars)
                failed = add_ascii_line(w, kind, data, start, end);
        } else {
            /* lower-cased by str.lower(), or already by a subclass's lower() (which may leave
             * capitals: its lines are read as they are, as text.lower() gave them) */
            PyObject *line = PyUnicode_Substring(text, start, end);
            if (line != NULL && by_line) {
                PyObject *low = lower(line);
                Py_DECREF(line);
                line = low;
            }
            if (line == NULL)
                failed = -1;
            else if (PyUnicode_GET_LENGTH(line) >= w->min_line_chars)
                failed = add_line(w, line);
            Py_XDECREF(line);
        }
        if (failed || end == length)
            break;
        start = end + 1;
    }
    Py_XDECREF(owned);
    return failed ? -1 : 0;
}

static PyObject *words(PyObject *self, PyObject *args) {
    PyObject *text, *list;
    words_t w = {0};
    (void)self;
    if (!PyArg_ParseTuple(args, "Unnn:words", &text, &w.min_line_chars, &w.min_line_words,
                          &w.max_words))
        return NULL;
    w.list = PyList_New(0);
    if (w.list == NULL)
        return NULL;
    if (scan_text(&w, text) < 0) {
        words_free(&w);
        return NULL;
    }
    list = w.list;
    w.list = NULL;
    words_free(&w);
    return list;
}

/* --- the word cache ----------------------------------------------------------------------- */

/* A word's hash, cached with the word's characters (as a str holds them) in the slot itself, so
 * a lookup reads one slot or a few neighbours and makes no str. A word too long for a slot is
 * not cached (a few in 10 000 words of a text are), nor is one whose neighbourhood of
 * CACHE_PROBES slots is full (which a hash good enough for text may allow a hostile text): a
 * lookup reads at most CACHE_PROBES slots, whatever the words. */
#define CACHE_BYTES 29
#define CACHE_PROBES 32
#define CACHE_FIRST_SLOTS 1024

typedef struct {
    uint64_t key;  /* word_key of the characters */
    uint64_t hash; /* the word's 64-bit hash */
    uint16_t bytes;
    uint8_t kind; /* 0: an empty slot */
    unsigned char data[CACHE_BYTES];
} cached_t;

typedef struct {
    PyObject_HEAD
    cached_t *slots; /* NULL until the first word */
    size_t mask;     /* the number of slots (a power of two) less one */
    Py_ssize_t count;
} cache_t;

static PyTypeObject CacheType;

/* The slot holding the bytes characters of the given kind at p, whose word_key is key, or
 * NULL. */
static cached_t *cache_find(cache_t *c, const unsigned char *p, Py_ssize_t bytes, int kind,
                            uint64_t key) {
    if (c->slots == NULL || bytes > CACHE_BYTES)
        return NULL;
    for (size_t k = 0, slot = (size_t)(key >> 24) & c->mask; k < CACHE_PROBES; k++) {
        cached_t *s = &c->slots[(slot + k) & c->mask];
        if (s->kind == 0)
            return NULL;
        if (s->key == key && s->bytes == bytes && s->kind == kind &&
            memcmp(s->data, p, (size_t)bytes) == 0)
            return s;
    }
    return NULL;
}

/* Puts a word in slots (mask + 1 of them) unless it is there or its neighbourhood is full:
 * 1 when put, else 0. */
static int cache_put(cached_t *slots, size_t mask, const unsigned char *p, Py_ssize_t bytes,
                     int kind, uint64_t key, uint64_t hash) {
    for (size_t k = 0, slot = (size_t)(key >> 24) & mask; k < CACHE_PROBES; k++) {
        cached_t *s = &slots[(slot + k) & mask];
        if (s->kind != 0 && s->key == key && s->bytes == bytes && s->kind == kind &&
            memcmp(s->data, p, (size_t)bytes) == 0)
            return 0;
        if (s->kind == 0) {
            s->key = key;
            s->hash = hash;
            s->bytes = (uint16_t)bytes;
            s->kind = (uint8_t)kind;
            memcpy(s->data, p, (size_t)bytes);
            return 1;
        }
    }
    return 0;
}

/* Room for one more word at most half the slots full: 0, or -1 and MemoryError. */
static int cache_reserve(cache_t *c) {
    size_t size = c->slots == NULL ? CACHE_FIRST_SLOTS : 2 * (c->mask + 1);
    cached_t *slots;
    Py_ssize_t count = 0;
    if (c->slots != NULL && (size_t)(c->count + 1) * 2 <= c->mask + 1)
        return 0;
    if (size > PY_SSIZE_T_MAX / sizeof(cached_t) ||
        (slots = PyMem_Calloc(size, sizeof(cached_t))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t k = 0; c->slots != NULL && k <= c->mask; k++) {
        cached_t *s = &c->slots[k];
        if (s->kind != 0)
            count += cache_put(slots, size - 1, s->data, s->bytes, s->kind, s->key, s->hash);
    }
    PyMem_Free(c->slots);
    c->slots = slots;
    c->mask = size - 1;
    c->count = count;
    return 0;
}

static void cache_clear(cache_t *c) {
    if (c->slots != NULL)
        memset(c->slots, 0, sizeof(cached_t) * (c->mask + 1));
    c->count = 0;
}

static PyObject *Cache_clear(PyObject *self, PyObject *unused) {
    (void)unused;
    cache_clear((cache_t *)self);
    Py_RETURN_NONE;
}

static Py_ssize_t Cache_len(PyObject *self) { return ((cache_t *)self)->count; }

/* word in cache: a str whose hash the cache holds. */
static int Cache_contains(PyObject *self, PyObject *word) {
    Py_ssize_t bytes;
    int kind;
    if (!PyUnicode_CheckExact(word) || ready(word) < 0)
        return PyErr_Occurred() ? -1 : 0;
    kind = PyUnicode_KIND(word);
    bytes = PyUnicode_GET_LENGTH(word) * kind;
    if (bytes == 0)
        return 0;
    const unsigned char *p = PyUnicode_DATA(word);
    uint64_t key = word_key(p, bytes, kind, load_bytes(p, bytes < 8 ? bytes : 8, 0), 0);
    return cache_find((cache_t *)self, p, bytes, kind, key) != NULL;
}

static void Cache_dealloc(PyObject *self) {
    PyMem_Free(((cache_t *)self)->slots);
    Py_TYPE(self)->tp_free(self);
}

static PyMethodDef cache_methods[] = {
    {"clear", Cache_clear, METH_NOARGS, "clear() -> None: forgets every word"},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods cache_sequence = {
    .sq_length = Cache_len,
    .sq_contains = Cache_contains,
};

static PyTypeObject CacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._simhash.Cache",
    .tp_basicsize = sizeof(cache_t),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Cache() -> an empty cache of word hashes, for fingerprint",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = Cache_dealloc,
    .tp_methods = cache_methods,
    .tp_as_sequence = &cache_sequence,
};

/* The hashes of the distinct words at the n indices at, by digest, and the cache updated with
 * them (see the opening comment). 0, or -1 with an exception. */
static int digest_missing(words_t *w, const Py_ssize_t *at, Py_ssize_t n, cache_t *cache,
                          Py_ssize_t cache_limit, PyObject *digest) {
    for (Py_ssize_t i = 0; i < n; i++) {
        entry_t *e = &w->entries[at[i]];
        PyObject *word, *d;
        int failed;
        word = PyUnicode_FromKindAndData(e->kind, w->arena + e->at, e->bytes / e->kind);
        if (word == NULL)
            return -1;
        d = PyObject_CallOneArg(digest, word); /* may let other threads run */
        Py_DECREF(word);
        if (d == NULL)
            return -1;
        failed = hash_of(d, &e->hash);
        Py_DECREF(d);
        if (failed < 0)
            return -1;
    }
    if (cache->count >= cache_limit)
        cache_clear(cache);
    for (Py_ssize_t i = 0; i < n; i++) {
        entry_t *e = &w->entries[at[i]];
        if (e->bytes > CACHE_BYTES)
            continue;
        if (cache_reserve(cache) < 0)
            return -1;
        cache->count += cache_put(cache->slots, cache->mask, w->arena + e->at, e->bytes,
                                  e->kind, e->key, e->hash);
    }
    return 0;
}

static PyObject *fingerprint(PyObject *self, PyObject *args) {
    PyObject *text, *digest, *result = NULL;
    cache_t *cache;
    Py_ssize_t min_words, sample_from, sample, cache_limit, i, missing = 0;
    uint64_t *h = NULL;
    Py_ssize_t *at = NULL;
    words_t w = {0};
    (void)self;
    if (!PyArg_ParseTuple(args, "UnnnnnnO!nO:fingerprint", &text, &w.min_line_chars,
                          &w.min_line_words, &w.max_words, &min_words, &sample_from, &sample,
                          &CacheType, &cache, &cache_limit, &digest))
        return NULL;
    if (check_sample(sample) < 0)
        return NULL;
    if (!PyCallable_Check(digest)) {
        PyErr_SetString(PyExc_TypeError, "digest must be callable");
        return NULL;
    }
    if (grow_slots(&w) < 0 || scan_text(&w, text) < 0)
        goto done;
    if (w.n < min_words) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    h = PyMem_Malloc(sizeof(uint64_t) * (size_t)(w.n > 0 ? w.n : 1));
    at = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(w.distinct > 0 ? w.distinct : 1));
    if (h == NULL || at == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* No Python code runs in this loop, so what the cache holds is copied out before any other
     * thread can change it. */
    for (i = 0; i < w.distinct; i++) {
        entry_t *e = &w.entries[i];
        cached_t *s = cache_find(cache, w.arena + e->at, e->bytes, e->kind, e->key);
        if (s != NULL)
            e->hash = s->hash;
        else
            at[missing++] = i;
    }
    if (missing && digest_missing(&w, at, missing, cache, cache_limit, digest) < 0)
        goto done;
    for (i = 0; i < w.n; i++)
        h[i] = w.entries[w.tokens[i]].hash;
    result = vote(h, w.n, sample_from, sample);
done:
    PyMem_Free(h);
    PyMem_Free(at);
    words_free(&w);
    return result;
}

static PyMethodDef methods[] = {
    {"simhash", simhash, METH_VARARGS,
     "simhash(hashes, sample_from, sample) -> the SimHash of the word hashes, or None"},
    {"words", words, METH_VARARGS,
     "words(text, min_line_chars, min_line_words, max_words) -> the words SimHash uses"},
    {"fingerprint", fingerprint, METH_VARARGS,
     "fingerprint(text, min_line_chars, min_line_words, max_words, min_words, sample_from, "
     "sample, cache, cache_limit, digest) -> the SimHash of text's words, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_simhash", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__simhash(void) {
    for (int v = 0; v < 256; v++)
        for (int j = 0; j < 8; j++)
            if (v >> j & 1)
                SPREAD[v] |= (uint64_t)1 << (8 * j);
    for (int c = 0; c < 128; c++) {
        int upper = c >= 'A' && c <= 'Z';
        ALNUM[c] = upper || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        LOWER[c] = (unsigned char)(upper ? c + ('a' - 'A') : c);
    }
    if (lower_name == NULL) {
        lower_name = PyUnicode_InternFromString("lower");
        if (lower_name == NULL)
            return NULL;
    }
    if (PyType_Ready(&CacheType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "Cache", (PyObject *)&CacheType) < 0)
        Py_CLEAR(m);
    return m;
}
