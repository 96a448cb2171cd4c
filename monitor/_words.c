/* The folding and cutting of ASCII text into words that monitor.words.Tokens needs, in one
 * call: fold_ascii, and Vocabulary.fold (further down) for text matched against a rule set.
 *
 * fold_ascii(text), for an ASCII ``text`` (ValueError otherwise), returns
 * (flat, folded, words, joined), equal to what these Python steps made of it (the frozen copy
 * of them is the reference in tests/test_words_c.py):
 *
 *     flat = text.encode("ascii").translate(_ASCII_FOLD_BYTES).decode("ascii")
 *     folded = flat.split()
 *     words = set(folded)
 *     joined = " " + " ".join(folded) + " "
 *
 * that is: ``flat`` is ``text`` with each ASCII letter lowered, each digit kept and every
 * other character (punctuation, space, control) a space, so it has the length of ``text``;
 * ``folded`` its words, the maximal runs of letters and digits, in order; ``words`` the
 * distinct ones; ``joined`` the words with one space on either side of each (two spaces
 * when there is none). Equal words of ``folded`` are the same str object, the one ``words``
 * holds, and ``words`` is filled in the order the words first occur, as ``set(folded)``
 * fills it.
 *
 * Work: one pass folds the text and counts its words and their letters, so that the
 * results are allocated at their size; a second cuts the words out, making a str only for
 * a word's first occurrence, found in a table of the words met so far keyed by the
 * interpreter's own bytes hash (the str hash, randomised per process), so that crafted text
 * makes its look-ups collide no more than it would those of ``set(folded)``.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
/* fold's pass 64 characters at a time where there is SSE2 (WORDS_SCALAR: never, to test
 * the plain pass on such a machine) */
#if defined(__SSE2__) && !defined(WORDS_SCALAR)
#define WORDS_BLOCKS 1
#include <emmintrin.h>
#endif

#if PY_VERSION_HEX >= 0x030E0000
#define HASH_BYTES(p, n) Py_HashBuffer((p), (n))
#else
#define HASH_BYTES(p, n) _Py_HashBytes((p), (n))
#endif

/* FOLD[c]: the ASCII character c folded: letters lowered, digits kept, the rest a space. */
static unsigned char FOLD[128];

static void init_fold(void) {
    int c;
    for (c = 0; c < 128; c++)
        FOLD[c] = ' ';
    for (c = '0'; c <= '9'; c++)
        FOLD[c] = (unsigned char)c;
    for (c = 'a'; c <= 'z'; c++)
        FOLD[c] = (unsigned char)c;
    for (c = 'A'; c <= 'Z'; c++)
        FOLD[c] = (unsigned char)(c - 'A' + 'a');
}

/* The distinct words met so far: open addressing, linear probing, at most half full. A
 * word is a stretch of ``flat``, where its first occurrence starts at ``at``. */
typedef struct {
    Py_hash_t hash;
    Py_ssize_t at, len;
    PyObject *word; /* NULL: an empty slot */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    Py_ssize_t used;
} Table;

/* Room for ``words`` words (up to 65,536), so that in most text, where about half the words
 * are repeats, it need not grow. */
static int table_init(Table *t, Py_ssize_t words) {
    size_t size = 16;
    while (size < (size_t)words && size < ((size_t)1 << 16))
        size <<= 1;
    t->slots = PyMem_Calloc(size, sizeof(Slot));
    if (t->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    t->mask = size - 1;
    t->used = 0;
    return 0;
}

static int table_grow(Table *t) {
    size_t size = 2 * (t->mask + 1), i, j;
    Slot *slots = PyMem_Calloc(size, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (i = 0; i <= t->mask; i++) {
        if (t->slots[i].word == NULL)
            continue;
        j = (size_t)t->slots[i].hash & (size - 1);
        while (slots[j].word != NULL)
            j = (j + 1) & (size - 1);
        slots[j] = t->slots[i];
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->mask = size - 1;
    return 0;
}

/* The str of the word flat[at:at + len], new (and added to ``words``) on its first
 * occurrence; a new reference. */
static PyObject *word_at(Table *t, const Py_UCS1 *flat, Py_ssize_t at, Py_ssize_t len,
                         PyObject *words) {
    Py_hash_t hash = HASH_BYTES(flat + at, len);
    size_t i = (size_t)hash & t->mask;
    Slot *s;
    PyObject *word;

    for (s = &t->slots[i]; s->word != NULL; s = &t->slots[i]) {
        if (s->hash == hash && s->len == len && memcmp(flat + s->at, flat + at, (size_t)len) == 0) {
            Py_INCREF(s->word);
            return s->word;
        }
        i = (i + 1) & t->mask;
    }
    word = PyUnicode_New(len, 127);
    if (word == NULL)
        return NULL;
    memcpy(PyUnicode_1BYTE_DATA(word), flat + at, (size_t)len);
    if (PySet_Add(words, word) < 0) {
        Py_DECREF(word);
        return NULL;
    }
    s->hash = hash;
    s->at = at;
    s->len = len;
    s->word = word; /* borrowed: ``words`` holds it */
    if ((size_t)++t->used * 2 > t->mask + 1 && table_grow(t) < 0) {
        Py_DECREF(word);
        return NULL;
    }
    return word;
}

/* 0 if ``text`` is an ASCII str (ready), else -1 with the error for the argument of ``fn``. */
static int ascii_arg(PyObject *text, const char *fn) {
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "%s() argument must be str, not %.80s", fn,
                     Py_TYPE(text)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_Format(PyExc_ValueError, "%s() argument must be ASCII", fn);
        return -1;
    }
    return 0;
}

static PyObject *fold_ascii(PyObject *self, PyObject *text) {
    PyObject *flat = NULL, *folded = NULL, *words = NULL, *joined = NULL, *res;
    Py_ssize_t n, i, count = 0, letters = 0, k = 0;
    const Py_UCS1 *in;
    Py_UCS1 *out, *j;
    int inside = 0;
    Table table = {NULL, 0, 0};

    (void)self;
    if (ascii_arg(text, "fold_ascii") < 0)
        return NULL;
    n = PyUnicode_GET_LENGTH(text);
    in = PyUnicode_1BYTE_DATA(text);

    /* folded, with the words and their letters counted */
    flat = PyUnicode_New(n, 127);
    if (flat == NULL)
        return NULL;
    out = PyUnicode_1BYTE_DATA(flat);
    for (i = 0; i < n; i++) {
        Py_UCS1 c = FOLD[in[i]];
        int letter = c != ' ';
        out[i] = c;
        letters += letter;
        count += letter & !inside;
        inside = letter;
    }

    folded = PyList_New(count);
    words = PySet_New(NULL);
    joined = PyUnicode_New(count ? letters + count + 1 : 2, 127);
    if (folded == NULL || words == NULL || joined == NULL || table_init(&table, count) < 0)
        goto error;
    j = PyUnicode_1BYTE_DATA(joined);
    *j++ = ' ';
    if (!count)
        *j = ' ';
    for (i = 0; k < count; k++) {
        Py_ssize_t at, len;
        PyObject *word;
        while (out[i] == ' ')
            i++;
        at = i;
        while (i < n && out[i] != ' ')
            i++;
        len = i - at;
        word = word_at(&table, out, at, len, words);
        if (word == NULL)
            goto error;
        PyList_SET_ITEM(folded, k, word);
        memcpy(j, out + at, (size_t)len);
        j += len;
        *j++ = ' ';
    }
    PyMem_Free(table.slots);
    table.slots = NULL;
    res = PyTuple_New(4);
    if (res == NULL)
        goto error;
    PyTuple_SET_ITEM(res, 0, flat);
    PyTuple_SET_ITEM(res, 1, folded);
    PyTuple_SET_ITEM(res, 2, words);
    PyTuple_SET_ITEM(res, 3, joined);
    return res;

error:
    PyMem_Free(table.slots); /* PyMem_Free(NULL) does nothing */
    Py_XDECREF(flat);
    Py_XDECREF(folded);
    Py_XDECREF(words);
    Py_XDECREF(joined);
    return NULL;
}

/* index(folded): {word: [its positions in folded, ascending]}, the words in first-occurrence
 * order: what Tokens.index built in Python, a dict look-up and an append per word. */
static PyObject *index_words(PyObject *self, PyObject *folded) {
    PyObject *index, *positions, *at;
    Py_ssize_t i;
    (void)self;
    if (!PyList_Check(folded)) {
        PyErr_SetString(PyExc_TypeError, "index() takes a list of str");
        return NULL;
    }
    index = PyDict_New();
    if (index == NULL)
        return NULL;
    for (i = 0; i < PyList_GET_SIZE(folded); i++) {
        /* Exact str only: a subclass's __eq__ or __hash__ could run Python code during
         * the look-up and change the list under the borrowed item. */
        PyObject *word = PyList_GET_ITEM(folded, i);
        if (!PyUnicode_CheckExact(word)) {
            PyErr_SetString(PyExc_TypeError, "index() takes a list of str");
            goto fail;
        }
        positions = PyDict_GetItemWithError(index, word);
        if (positions == NULL) {
            if (PyErr_Occurred())
                goto fail;
            positions = PyList_New(0);
            if (positions == NULL)
                goto fail;
            if (PyDict_SetItem(index, word, positions) < 0) {
                Py_DECREF(positions);
                goto fail;
            }
            Py_DECREF(positions); /* the dict holds it */
        }
        at = PyLong_FromSsize_t(i);
        if (at == NULL || PyList_Append(positions, at) < 0) {
            Py_XDECREF(at);
            goto fail;
        }
        Py_DECREF(at);
    }
    return index;
fail:
    Py_DECREF(index);
    return NULL;
}

/* Vocabulary(words, keys=()): a rule set's words and phrase and prefix keys, for ``fold``,
 * which is ``fold_ascii`` for text matched against them. fold(text) returns
 * (flat, joined, known, found):
 *
 *     flat, joined   as fold_ascii makes them;
 *     known          set(flat.split()) & words, the vocabulary's own str objects;
 *     found          {key for key in keys if key in joined}, the keys' own str objects.
 *
 * Only ASCII words and keys are kept (no ASCII text holds the others). No str is made for a
 * word of the text, only set entries for the known words and found keys: most words of an
 * article are in no rule, and the word list and set of fold_ascii were most of its cost;
 * and the keys are found on the way, where a scan for them (Hyperscan, whose tables do not
 * stay in cache between articles) cost as much again.
 *
 * A key is " w1 ... wn " (a phrase: the words in a row) or " w1 ... wn" (its last word a
 * prefix), as monitor.checks.sequence_key makes them. joined holds one space before and
 * after each word, so a key is in joined exactly when, at the end of some word, what joined
 * holds so far ends with it (a phrase), or ends with it followed by the rest of a word (a
 * prefix key). So each key is filed where that can first be seen: a one-word phrase under its
 * word, a longer phrase under its last two words (found by a look-up of each pair of known
 * words in a row, then compared whole when it is longer), a prefix key of one word under its
 * first three letters (or fewer, if its prefix is shorter; each word's first letters are
 * looked up, and the first 8 compared as one integer), and a longer one under the word
 * before the prefix. A key that is ASCII but not of this shape (none that
 * sequence_key makes) is searched for in joined. Each key is compared at most once for each
 * word of the text and each key filed with it, so the cost is linear in the text for a
 * given rule set (whose keys are trusted config).
 *
 * The words are kept in an open-addressing table at most half full, keyed by a hash of
 * their letters. Only the look-ups come from the text, and the table's content is fixed, so
 * however the text is crafted a look-up costs at most the longest run of taken slots; the
 * same holds for the tables of word pairs and of first letters. */

/* A known word: its str and that str's characters; the fold call that last put it in its
 * ``known`` set; the keys filed under it: its one-word phrase, whether it begins or ends a
 * filed pair, and the prefix keys whose prefix comes right after it (``after`` of them,
 * from ``after_at`` in ``Vocabulary.filed``). */
#define FIRST_OF_PAIR 1
#define SECOND_OF_PAIR 2
typedef struct {
    /* read for every occurrence: the word's first 8 letters (see word_key), its length */
    uint64_t head;
    uint64_t stamp;
    int32_t len, pair;
    int32_t phrase; /* index in ``keys``, or -1 */
    int32_t after_at, after;
    const Py_UCS1 *data;
    PyObject *word;
} Known;

/* A key: its str and characters, the length of its prefix (0 for a phrase), and the fold
 * call that last put it in its ``found`` set. */
typedef struct {
    PyObject *key;
    const Py_UCS1 *data;
    Py_ssize_t len, prefix;
    uint64_t stamp;
    uint64_t head, mask; /* a prefix's first 8 letters as ``word_key`` reads them */
} Key;

/* A pair of known words in a row with phrases filed under it: ``count`` of them from
 * ``at`` in ``Vocabulary.filed``. ``pair`` is 0 for an empty slot. */
typedef struct {
    uint64_t pair;
    Py_ssize_t at, count;
} Pair;

/* A run of ``Vocabulary.filed``: the prefix keys filed under one word or first letters. */
typedef struct {
    Py_ssize_t at, count;
} Run;

/* The prefix keys of one word whose prefix begins with three letters: ``letters`` is those
 * letters as the low bytes of word_key's head, with bit 24 set (0: an empty slot). */
typedef struct {
    uint32_t letters;
    Run run;
} Tri;


#define ALNUM 36 /* what folding leaves in words: 0-9 and a-z */

typedef struct {
    PyObject_HEAD
    /* The words: slot = (high 32 bits of the hash) << 32 | (index in ``words``) + 1, 0
     * when empty; eight bytes a slot, so a look-up (most are of words not there) reads one
     * cache line. */
    uint64_t *slots;
    size_t mask;
    Known *words;
    Py_ssize_t size;
    Key *keys;
    Py_ssize_t nkeys;
    Pair *pairs; /* open addressing, at most half full */
    size_t pair_mask;
    /* One-word prefix keys: those of 3 letters or more by their first three (``tri``,
     * open addressing, at most half full), of two by both, of one by it. */
    Tri *tri;
    size_t tri_mask;
    Run starts[ALNUM * ALNUM];
    uint64_t started[(ALNUM * ALNUM + 63) / 64]; /* which of ``starts`` hold any */
    Run single[ALNUM];
    Py_ssize_t *filed;         /* key indices, in runs */
    uint64_t *heads, *masks;   /* of prefix keys, beside ``filed``: one cache line holds a
                                * run's, where the keys lie apart */
    Py_ssize_t *odd;           /* keys searched for in ``joined`` */
    Py_ssize_t nodd;
    uint64_t stamp;
} Vocabulary;

/* A word's key: its first 8 letters in one integer (``head``, zeros past its end: no
 * letter is a zero, so with the length it tells words of up to 8 letters apart), and a hash
 * of it and of the letters past the 8th (FNV-1a), mixed so that the low bits, which pick the
 * slot, depend on every letter. fold works both out letter by letter as it copies them. */
#define HASH_START 0xCBF29CE484222325ULL
#define HASH_STEP(h, c) (((h) ^ (c)) * 0x100000001B3ULL)

static uint64_t hash_done(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return h;
}

static uint64_t key_hash(uint64_t head, uint64_t tail, Py_ssize_t len) {
    return hash_done(((head ^ ((uint64_t)len << 58)) * 0x9E3779B97F4A7C15ULL) ^ tail);
}

static uint64_t word_key(const Py_UCS1 *p, Py_ssize_t len, uint64_t *head) {
    uint64_t tail = HASH_START;
    Py_ssize_t i;
    *head = 0;
    for (i = 0; i < len; i++) {
        if (i < 8)
            *head |= (uint64_t)p[i] << (8 * i);
        else
            tail = HASH_STEP(tail, p[i]);
    }
    return key_hash(*head, tail, len);
}

/* The slot of the word p[:len] with this head and hash, or of the empty slot where it would
 * go. */
static uint64_t *vocab_find(Vocabulary *v, const Py_UCS1 *p, Py_ssize_t len, uint64_t head,
                            uint64_t hash) {
    size_t i = (size_t)hash & v->mask;
    uint64_t tag = hash >> 32 << 32, *slot;
    for (slot = &v->slots[i]; *slot != 0; slot = &v->slots[i]) {
        if ((*slot & 0xFFFFFFFF00000000ULL) == tag) {
            Known *k = &v->words[(*slot & 0xFFFFFFFFULL) - 1];
            if (k->head == head && k->len == len &&
                (len <= 8 || memcmp(k->data + 8, p + 8, (size_t)(len - 8)) == 0))
                return slot;
        }
        i = (i + 1) & v->mask;
    }
    return slot;
}

static Tri *tri_find(Tri *tri, size_t mask, uint32_t letters) {
    size_t i = (size_t)hash_done(letters) & mask;
    while (tri[i].letters != 0 && tri[i].letters != letters)
        i = (i + 1) & mask;
    return &tri[i];
}

/* The index in ``words`` of the word p[:len], or -1. */
static Py_ssize_t vocab_index(Vocabulary *v, const Py_UCS1 *p, Py_ssize_t len) {
    uint64_t head, hash = word_key(p, len, &head);
    uint64_t slot = *vocab_find(v, p, len, head, hash);
    return slot ? (Py_ssize_t)(slot & 0xFFFFFFFFULL) - 1 : -1;
}

static uint64_t pair_of(Py_ssize_t first, Py_ssize_t second) {
    return ((uint64_t)(first + 1) << 32) | (uint64_t)(second + 1);
}

static Pair *pair_find(Vocabulary *v, uint64_t pair) {
    size_t i = (size_t)hash_done(pair) & v->pair_mask;
    while (v->pairs[i].pair != 0 && v->pairs[i].pair != pair)
        i = (i + 1) & v->pair_mask;
    return &v->pairs[i];
}

static int alnum_index(Py_UCS1 c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

/* Whether the word w[:len] begins with the prefix of ``key`` (whose first letters, as
 * ``word_key`` reads them, the caller found at the word's start). */
static int has_prefix(const Key *key, const Py_UCS1 *w, Py_ssize_t len) {
    const Py_UCS1 *prefix = key->data + key->len - key->prefix;
    return key->prefix <= len &&
           (key->prefix <= 8 || memcmp(w + 8, prefix + 8, (size_t)(key->prefix - 8)) == 0);
}

static void vocab_dealloc(Vocabulary *v) {
    Py_ssize_t i;
    if (v->words != NULL)
        for (i = 0; i < v->size; i++)
            Py_DECREF(v->words[i].word);
    if (v->keys != NULL)
        for (i = 0; i < v->nkeys; i++)
            Py_DECREF(v->keys[i].key);
    PyMem_Free(v->slots);
    PyMem_Free(v->words);
    PyMem_Free(v->keys);
    PyMem_Free(v->pairs);
    PyMem_Free(v->tri);
    PyMem_Free(v->filed);
    PyMem_Free(v->heads);
    PyMem_Free(v->masks);
    PyMem_Free(v->odd);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

/* ``seq`` as a list of exact, ready str (TypeError naming ``what`` otherwise). */
static PyObject *str_list(PyObject *seq, const char *what) {
    PyObject *list = PySequence_List(seq);
    Py_ssize_t i;
    if (list == NULL)
        return NULL;
    if (PyList_GET_SIZE(list) >= 0x7FFFFFFF) {
        PyErr_Format(PyExc_OverflowError, "Vocabulary() takes fewer than 2**31 %s", what);
        goto fail;
    }
    for (i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *s = PyList_GET_ITEM(list, i);
        /* Exact str only: the tables keep pointers into the str's characters. */
        if (!PyUnicode_CheckExact(s)) {
            PyErr_Format(PyExc_TypeError, "Vocabulary() takes str %s, not %.80s", what,
                         Py_TYPE(s)->tp_name);
            goto fail;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(s) < 0)
            goto fail;
#endif
    }
    return list;
fail:
    Py_DECREF(list);
    return NULL;
}

static int add_words(Vocabulary *v, PyObject *list) {
    Py_ssize_t i, n = PyList_GET_SIZE(list);
    size_t size = 64;
    while (size < (size_t)n * 2) /* at most half full */
        size <<= 1;
    v->slots = PyMem_Calloc(size, sizeof(uint64_t));
    v->words = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Known));
    if (v->slots == NULL || v->words == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    v->mask = size - 1;
    for (i = 0; i < n; i++) {
        PyObject *word = PyList_GET_ITEM(list, i);
        const Py_UCS1 *data;
        Py_ssize_t len;
        uint64_t hash, head, *slot;
        Known *k;
        if (!PyUnicode_IS_ASCII(word))
            continue;
        data = PyUnicode_1BYTE_DATA(word);
        len = PyUnicode_GET_LENGTH(word);
        if (len > 0x7FFFFFFF)
            continue; /* no article field is that long */
        hash = word_key(data, len, &head);
        slot = vocab_find(v, data, len, head, hash);
        if (*slot != 0)
            continue;
        k = &v->words[v->size];
        Py_INCREF(word);
        k->word = word;
        k->data = data;
        k->head = head;
        k->len = (int32_t)len;
        k->phrase = -1;
        *slot = (hash >> 32 << 32) | (uint64_t)(v->size + 1);
        v->size++;
    }
    return 0;
}

/* Where key ``i`` is filed (see the opening comment): -1 to search for it. ``last`` and
 * ``before`` are the indices of its last and second-last words (-1: none, or a prefix). */
enum { ODD, PHRASE1, PAIR, START, AFTER };

static int key_shape(Vocabulary *v, Key *key, Py_ssize_t *last, Py_ssize_t *before) {
    const Py_UCS1 *p = key->data;
    Py_ssize_t n = key->len, i = 0, at, words = 0;
    *last = *before = -1;
    if (n < 2 || p[0] != ' ')
        return ODD;
    while (i < n) {
        /* p[i] is a space: a word (or the prefix) follows, or the key ends */
        if (i == n - 1)
            break; /* the phrase's closing space */
        at = ++i;
        while (i < n && p[i] != ' ') {
            if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')))
                return ODD;
            i++;
        }
        if (i == at)
            return ODD; /* two spaces in a row */
        if (i == n) { /* no space after it: the prefix */
            key->prefix = i - at;
            word_key(p + at, key->prefix, &key->head);
            key->mask = key->prefix >= 8 ? ~(uint64_t)0 : ((uint64_t)1 << (8 * key->prefix)) - 1;
            return words == 0 ? START : (*before = *last, AFTER);
        }
        *before = *last;
        *last = vocab_index(v, p + at, i - at);
        if (*last < 0)
            return ODD; /* a word that is no rule's: searched for, as any odd key */
        words++;
    }
    return words == 1 ? PHRASE1 : PAIR;
}

/* File every key, in two passes: count what goes where, then place (``filed`` in runs). */
static int add_keys(Vocabulary *v, PyObject *list) {
    Py_ssize_t i, n = PyList_GET_SIZE(list), used = 0, pairs = 0, tris = 0, next = 0;
    Py_ssize_t *shape = NULL, *lasts = NULL, *befores = NULL;
    PyObject *taken = PySet_New(NULL);
    size_t size = 16;
    int ok = -1;

    if (taken == NULL)
        return -1;

    v->keys = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Key));
    v->odd = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    v->filed = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    v->heads = PyMem_Calloc(n ? (size_t)n : 1, sizeof(uint64_t));
    v->masks = PyMem_Calloc(n ? (size_t)n : 1, sizeof(uint64_t));
    shape = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    lasts = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    befores = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    if (!v->keys || !v->odd || !v->filed || !v->heads || !v->masks || !shape || !lasts ||
        !befores) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *s = PyList_GET_ITEM(list, i);
        Key *key = &v->keys[v->nkeys];
        Py_ssize_t j;
        int seen;
        if (!PyUnicode_IS_ASCII(s))
            continue;
        seen = PySet_Contains(taken, s); /* each key once */
        if (seen < 0 || (!seen && PySet_Add(taken, s) < 0))
            goto done;
        if (seen)
            continue;
        key->data = PyUnicode_1BYTE_DATA(s);
        key->len = PyUnicode_GET_LENGTH(s);
        key->key = s;
        Py_INCREF(s);
        j = v->nkeys++;
        shape[j] = key_shape(v, key, &lasts[j], &befores[j]);
        switch (shape[j]) {
        case ODD:
            v->odd[v->nodd++] = j;
            break;
        case PHRASE1:
            v->words[lasts[j]].phrase = (int32_t)j;
            break;
        case PAIR:
            pairs++;
            break;
        case START:
            if (key->prefix == 1)
                v->single[alnum_index(key->data[1])].count++;
            else if (key->prefix == 2) {
                int at = alnum_index(key->data[1]) * ALNUM + alnum_index(key->data[2]);
                v->starts[at].count++;
                v->started[at / 64] |= (uint64_t)1 << (at % 64);
            } else
                tris++;
            break;
        case AFTER:
            v->words[befores[j]].after++;
            break;
        }
    }
    /* the runs' starts, then the keys placed in them */
    for (i = 0; i < ALNUM * ALNUM; i++) {
        v->starts[i].at = next;
        next += v->starts[i].count;
        v->starts[i].count = 0;
    }
    for (i = 0; i < ALNUM; i++) {
        v->single[i].at = next;
        next += v->single[i].count;
        v->single[i].count = 0;
    }
    for (i = 0; i < v->size; i++) {
        v->words[i].after_at = (int32_t)next;
        next += v->words[i].after;
        v->words[i].after = 0;
    }
    size = 16;
    while (size < (size_t)tris * 2)
        size <<= 1;
    v->tri = PyMem_Calloc(size, sizeof(Tri));
    if (v->tri == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    v->tri_mask = size - 1;
    for (i = 0; i < v->nkeys; i++) { /* count each one's keys */
        Tri *t;
        if (shape[i] != START || v->keys[i].prefix < 3)
            continue;
        t = tri_find(v->tri, v->tri_mask, (uint32_t)(v->keys[i].head & 0xFFFFFF) | (1u << 24));
        t->letters = (uint32_t)(v->keys[i].head & 0xFFFFFF) | (1u << 24);
        t->run.count++;
    }
    for (i = 0; i <= (Py_ssize_t)v->tri_mask; i++) {
        v->tri[i].run.at = next;
        next += v->tri[i].run.count;
        v->tri[i].run.count = 0;
    }
    size = 16;
    while (size < (size_t)pairs * 2)
        size <<= 1;
    v->pairs = PyMem_Calloc(size, sizeof(Pair));
    if (v->pairs == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    v->pair_mask = size - 1;
    for (i = 0; i < v->nkeys; i++) { /* count each pair's keys */
        Pair *p;
        if (shape[i] != PAIR)
            continue;
        p = pair_find(v, pair_of(befores[i], lasts[i]));
        p->pair = pair_of(befores[i], lasts[i]);
        p->count++;
        v->words[befores[i]].pair |= FIRST_OF_PAIR;
        v->words[lasts[i]].pair |= SECOND_OF_PAIR;
    }
    for (i = 0; i <= (Py_ssize_t)v->pair_mask; i++) {
        if (v->pairs[i].pair == 0)
            continue;
        v->pairs[i].at = next;
        next += v->pairs[i].count;
        v->pairs[i].count = 0;
    }
    for (i = 0; i < v->nkeys; i++) {
        Key *key = &v->keys[i];
        Run *run = NULL;
        switch (shape[i]) {
        case PAIR: {
            Pair *p = pair_find(v, pair_of(befores[i], lasts[i]));
            v->filed[p->at + p->count++] = i;
            break;
        }
        case START:
            if (key->prefix >= 3)
                run = &tri_find(v->tri, v->tri_mask, (uint32_t)(key->head & 0xFFFFFF) | (1u << 24))
                           ->run;
            else if (key->prefix == 2)
                run = &v->starts[alnum_index(key->data[1]) * ALNUM + alnum_index(key->data[2])];
            else
                run = &v->single[alnum_index(key->data[1])];
            v->heads[run->at + run->count] = key->head;
            v->masks[run->at + run->count] = key->mask;
            v->filed[run->at + run->count++] = i;
            break;
        case AFTER: {
            Known *k = &v->words[befores[i]];
            v->heads[k->after_at + k->after] = key->head;
            v->masks[k->after_at + k->after] = key->mask;
            v->filed[k->after_at + k->after++] = i;
            break;
        }
        }
        (void)used;
    }
    ok = 0;
done:
    Py_DECREF(taken);
    PyMem_Free(shape);
    PyMem_Free(lasts);
    PyMem_Free(befores);
    return ok;
}

static PyObject *vocab_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *words_in, *keys_in = NULL, *words = NULL, *keys = NULL;
    Vocabulary *v = NULL;

    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "Vocabulary() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Vocabulary", 1, 2, &words_in, &keys_in))
        return NULL;
    words = str_list(words_in, "words");
    if (words == NULL)
        return NULL;
    keys = keys_in == NULL ? PyList_New(0) : str_list(keys_in, "keys");
    if (keys == NULL)
        goto fail;
    v = (Vocabulary *)type->tp_alloc(type, 0);
    if (v == NULL || add_words(v, words) < 0 || add_keys(v, keys) < 0)
        goto fail;
    Py_DECREF(words);
    Py_DECREF(keys);
    return (PyObject *)v;
fail:
    Py_XDECREF(words);
    Py_XDECREF(keys);
    Py_XDECREF(v);
    return NULL;
}

/* Put key ``i`` in ``found`` unless this call already has. */
static int key_found(Vocabulary *v, Py_ssize_t i, uint64_t stamp, PyObject *found) {
    Key *key = &v->keys[i];
    if (key->stamp == stamp)
        return 0;
    key->stamp = stamp;
    return PySet_Add(found, key->key);
}

/* Whether key ``i`` ends at ``end`` in joined (which begins at ``j0``). */
static int key_ends_at(Vocabulary *v, Py_ssize_t i, const Py_UCS1 *j0, const Py_UCS1 *end) {
    Key *key = &v->keys[i];
    return end - j0 >= key->len && memcmp(end - key->len, key->data, (size_t)key->len) == 0;
}

/* The word just written to joined: ``word`` (``len`` letters, with ``head`` and ``tail`` as
 * word_key makes them, joined's space after it already written), after the known word
 * ``prev`` (-1: none or unknown). Puts it in ``known`` and the keys that end with it in
 * ``found``; returns its index in ``words`` (-1 if unknown), or -2 on error. */
static Py_ssize_t vocab_word(Vocabulary *v, const Py_UCS1 *j0, const Py_UCS1 *word,
                             Py_ssize_t len, uint64_t head, uint64_t tail, Py_ssize_t prev,
                             uint64_t stamp, PyObject *known, PyObject *found) {
    uint64_t *slot = vocab_find(v, word, len, head, key_hash(head, tail, len));
    Py_ssize_t i, at = -1;
    Known *k = NULL;
    Run *run;
    int start;

    if (*slot != 0) {
        at = (Py_ssize_t)(*slot & 0xFFFFFFFFULL) - 1;
        k = &v->words[at];
        if (k->stamp != stamp) {
            k->stamp = stamp;
            if (PySet_Add(known, k->word) < 0)
                return -2;
        }
        if (k->phrase >= 0 && key_found(v, k->phrase, stamp, found) < 0)
            return -2;
        if (prev >= 0 && (k->pair & SECOND_OF_PAIR) && (v->words[prev].pair & FIRST_OF_PAIR)) {
            Pair *p = pair_find(v, pair_of(prev, at));
            for (i = p->at; i < p->at + p->count; i++)
                if (key_ends_at(v, v->filed[i], j0, word + len + 1) &&
                    key_found(v, v->filed[i], stamp, found) < 0)
                    return -2;
        }
    }
    if (prev >= 0 && v->words[prev].after) { /* prefix keys whose prefix follows ``prev`` */
        Known *before = &v->words[prev];
        for (i = before->after_at; i < before->after_at + before->after; i++) {
            Key *key;
            if ((head & v->masks[i]) != v->heads[i])
                continue;
            key = &v->keys[v->filed[i]];
            if (key->stamp != stamp && has_prefix(key, word, len) &&
                key_ends_at(v, v->filed[i], j0, word + key->prefix) &&
                key_found(v, v->filed[i], stamp, found) < 0)
                return -2;
        }
    }
    /* one-word prefix keys: by the word's first letter, its first two, its first three */
    run = &v->single[alnum_index(word[0])];
    for (i = run->at; i < run->at + run->count; i++)
        if (key_found(v, v->filed[i], stamp, found) < 0)
            return -2;
    if (len < 2)
        return at;
    start = alnum_index(word[0]) * ALNUM + alnum_index(word[1]);
    if (v->started[start / 64] >> (start % 64) & 1) {
        run = &v->starts[start];
        for (i = run->at; i < run->at + run->count; i++)
            if (key_found(v, v->filed[i], stamp, found) < 0)
                return -2;
    }
    if (len < 3)
        return at;
    run = &tri_find(v->tri, v->tri_mask, (uint32_t)(head & 0xFFFFFF) | (1u << 24))->run;
    for (i = run->at; i < run->at + run->count; i++) {
        Key *key;
        if ((head & v->masks[i]) != v->heads[i])
            continue;
        key = &v->keys[v->filed[i]];
        if (key->stamp != stamp && has_prefix(key, word, len) &&
            key_found(v, v->filed[i], stamp, found) < 0)
            return -2;
    }
    return at;
}

#if defined(WORDS_BLOCKS)
/* fold's pass, 64 characters at a time (x86, so little-endian): 16 are folded by a few
 * vector operations (as FOLD does: letters lowered, digits kept, the rest a space), the
 * spaces of 64 make one mask, and the words' starts and ends are read off the mask by bit
 * operations, where a branch on each character (a word's end) cost most of the time. */
static inline __m128i fold16(__m128i c) {
    __m128i lower = _mm_or_si128(c, _mm_set1_epi8(0x20));
    __m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                  _mm_cmplt_epi8(lower, _mm_set1_epi8('z' + 1)));
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(c, _mm_set1_epi8('9' + 1)));
    __m128i kept = _mm_or_si128(_mm_and_si128(alpha, lower), _mm_and_si128(digit, c));
    return _mm_or_si128(kept, _mm_andnot_si128(_mm_or_si128(alpha, digit), _mm_set1_epi8(' ')));
}

/* The word flat[s:e] (``n`` characters in all): copied to joined at ``*jp`` with a space
 * after it, keyed and looked up (vocab_word). Returns what vocab_word returns. */
static Py_ssize_t block_word(Vocabulary *v, const Py_UCS1 *flat, Py_ssize_t n, Py_ssize_t s,
                             Py_ssize_t e, Py_UCS1 *j0, Py_UCS1 **jp, Py_ssize_t prev,
                             uint64_t stamp, PyObject *known, PyObject *found) {
    const Py_UCS1 *w = flat + s;
    Py_ssize_t len = e - s, i;
    Py_UCS1 *j = *jp;
    uint64_t head = 0, tail = HASH_START;
    /* joined is never ahead of flat by more than its leading space, and holds n + 2
     * characters: 16 bytes from j end inside it when s + 16 <= n */
    if (len <= 16 && s + 16 <= n)
        _mm_storeu_si128((__m128i *)j, _mm_loadu_si128((const __m128i *)w));
    else
        memcpy(j, w, (size_t)len);
    j[len] = ' ';
    *jp = j + len + 1;
    if (s + 8 <= n) {
        memcpy(&head, w, 8);
        if (len < 8)
            head &= ((uint64_t)1 << (8 * len)) - 1;
    } else
        for (i = 0; i < len && i < 8; i++)
            head |= (uint64_t)w[i] << (8 * i);
    for (i = 8; i < len; i++)
        tail = HASH_STEP(tail, w[i]);
    return vocab_word(v, j0, j, len, head, tail, prev, stamp, known, found);
}

/* Folds the block of flat at ``b`` (64 characters, or the rest of the text); returns its
 * mask of spaces, the characters past the end of the text counted as spaces. */
static uint64_t fold_block(const Py_UCS1 *in, Py_UCS1 *out, Py_ssize_t n, Py_ssize_t b) {
    Py_ssize_t k, m = n - b < 64 ? n - b : 64;
    uint64_t space = 0;
    if (m == 64) {
        for (k = 0; k < 64; k += 16) {
            __m128i f = fold16(_mm_loadu_si128((const __m128i *)(in + b + k)));
            _mm_storeu_si128((__m128i *)(out + b + k), f);
            space |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(f, _mm_set1_epi8(' ')))
                     << k;
        }
        return space;
    }
    for (k = 0; k < m; k++) {
        out[b + k] = FOLD[in[b + k]];
        space |= (uint64_t)(out[b + k] == ' ') << k;
    }
    return space | ~(uint64_t)0 << m;
}

static int fold_blocks(Vocabulary *v, const Py_UCS1 *in, Py_UCS1 *out, Py_ssize_t n,
                       Py_UCS1 *j0, Py_UCS1 **jp, uint64_t stamp, PyObject *known,
                       PyObject *found) {
    Py_ssize_t b, start = 0, prev = -1;
    uint64_t carry = 0; /* 1 when the character before the block is in a word */
    uint64_t next = n > 0 ? fold_block(in, out, n, 0) : 0;
    for (b = 0; b < n; b += 64) {
        /* The block after this one is folded first, so a word's 16-byte copy and 8-byte
         * key, which may reach into it, read folded characters. */
        uint64_t space = next, words, starts, events;
        if (b + 64 < n)
            next = fold_block(in, out, n, b + 64);
        words = ~space;
        starts = words & ~((words << 1) | carry);
        events = starts | (space & ((words << 1) | carry)); /* starts, and ends (spaces) */
        carry = words >> 63;
        while (events) {
            int bit = __builtin_ctzll(events);
            if (starts >> bit & 1)
                start = b + bit;
            else if ((prev = block_word(v, out, n, start, b + bit, j0, jp, prev, stamp, known,
                                        found)) == -2)
                return -1;
            events &= events - 1;
        }
    }
    if (carry && block_word(v, out, n, start, n, j0, jp, prev, stamp, known, found) == -2)
        return -1; /* a word running to the end of a whole last block */
    return 0;
}
#endif

static PyObject *vocab_fold(Vocabulary *v, PyObject *text) {
    PyObject *flat = NULL, *joined = NULL, *known = NULL, *found = NULL, *res;
    Py_ssize_t n, i;
    const Py_UCS1 *in;
    Py_UCS1 *out, *j, *j0;
    uint64_t stamp;
#if !defined(WORDS_BLOCKS)
    Py_ssize_t len = 0, prev = -1;
    uint64_t head = 0, tail = HASH_START;
#endif

    if (ascii_arg(text, "fold") < 0)
        return NULL;
    n = PyUnicode_GET_LENGTH(text);
    in = PyUnicode_1BYTE_DATA(text);
    flat = PyUnicode_New(n, 127);
    joined = PyUnicode_New(n + 2, 127); /* the most it can take; cut to size below */
    known = PySet_New(NULL);
    found = PySet_New(NULL);
    if (flat == NULL || joined == NULL || known == NULL || found == NULL)
        goto error;
    /* 64 bits: the count never wraps around to a stamp still in a word or key */
    stamp = ++v->stamp;
    out = PyUnicode_1BYTE_DATA(flat);
    j = j0 = PyUnicode_1BYTE_DATA(joined);
    *j++ = ' ';
#if defined(WORDS_BLOCKS)
    if (fold_blocks(v, in, out, n, j0, &j, stamp, known, found) < 0)
        goto error;
#else
    /* One pass: fold each character; copy each word's letters to ``joined`` while
     * keying them (see word_key), and look the word up where it ends. */
    for (i = 0; i < n; i++) {
        Py_UCS1 c = FOLD[in[i]];
        out[i] = c;
        if (c != ' ') {
            *j++ = c;
            if (len < 8)
                head |= (uint64_t)c << (8 * len);
            else
                tail = HASH_STEP(tail, c);
            len++;
        } else if (len) {
            *j++ = ' ';
            prev = vocab_word(v, j0, j - 1 - len, len, head, tail, prev, stamp, known, found);
            if (prev == -2)
                goto error;
            len = 0;
            head = 0;
            tail = HASH_START;
        }
    }
    if (len) { /* the text ends in a word */
        *j++ = ' ';
        if (vocab_word(v, j0, j - 1 - len, len, head, tail, prev, stamp, known, found) == -2)
            goto error;
    }
#endif
    if (j - j0 == 1) /* no word: two spaces, as fold_ascii makes it */
        *j++ = ' ';
    if (j - j0 < n + 2 && PyUnicode_Resize(&joined, j - j0) < 0)
        goto error;
    for (i = 0; i < v->nodd; i++) {
        Key *key = &v->keys[v->odd[i]];
        Py_ssize_t at = PyUnicode_Find(joined, key->key, 0, PY_SSIZE_T_MAX, 1);
        if (at == -2 || (at >= 0 && PySet_Add(found, key->key) < 0))
            goto error;
    }
    res = PyTuple_New(4);
    if (res == NULL)
        goto error;
    PyTuple_SET_ITEM(res, 0, flat);
    PyTuple_SET_ITEM(res, 1, joined);
    PyTuple_SET_ITEM(res, 2, known);
    PyTuple_SET_ITEM(res, 3, found);
    return res;

error:
    Py_XDECREF(flat);
    Py_XDECREF(joined);
    Py_XDECREF(known);
    Py_XDECREF(found);
    return NULL;
}

/* occurrences(tag, joined, flat, key, limit): where the phrase or prefix key ``key`` (" a b "
 * or " a b", as Vocabulary takes them) occurs in ``joined``, as the first ``limit``
 * (tag, first, last, start, end) in order: ``first`` and ``last`` the numbers of its first
 * and last word among the words, ``start`` the offset in ``flat`` where the first begins and
 * ``end`` where the last ends (for a prefix key, the end of the word its prefix begins).
 * ``joined`` is the words of a text joined as fold_ascii joins them (any str), and ``flat``
 * that text with each of its words' characters made a letter or digit and every other a
 * space (ASCII; ValueError otherwise, or when it has fewer words than ``joined``): the flat
 * text of fold_ascii, or a mask of the text made for its offsets. That is what
 * monitor.words.find and Tokens.span work out for a term from the list of words, without
 * that list: most of a fired rule's spans went into cutting a long text into words to find
 * a few of them.
 *
 * Work: one pass over ``joined`` and one over ``flat``, however many occurrences. Each
 * occurrence is searched for by str.find's own search (linear on crafted text), and the
 * words before it are counted on from the previous one: in ``joined`` each word has one
 * space before it, and ``flat`` is walked by two cursors, at the first and at the last word
 * of the occurrence, which only move forward. */

/* Eight characters of ASCII text at a time, where a branch per character (a word's end)
 * cost most of the time: each byte of ``non_spaces`` has its top bit set where the
 * character is not a space (exactly: (b & 0x7f) + 0x7f sets it for any other low 7 bits,
 * and ``| y`` for a set top bit), and ``count_of`` adds up such bits. Little-endian loads
 * put p[0] in the lowest byte; elsewhere the plain loops below do the work alone. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define EIGHT_AT_ONCE 1
#define LOW7 0x7f7f7f7f7f7f7f7fULL
#define TOPS 0x8080808080808080ULL
#define SPACES 0x2020202020202020ULL

static uint64_t non_spaces(const Py_UCS1 *p) {
    uint64_t x, y;
    memcpy(&x, p, 8);
    y = x ^ SPACES;
    return (((y & LOW7) + LOW7) | y) & TOPS;
}

static Py_ssize_t count_of(uint64_t tops) {
    return (Py_ssize_t)(((tops >> 7) * 0x0101010101010101ULL) >> 56);
}
#else
#define EIGHT_AT_ONCE 0
#endif

/* Spaces in p[0:n]. */
static Py_ssize_t count_spaces(const Py_UCS1 *p, Py_ssize_t n) {
    Py_ssize_t i = 0, count = 0;
#if EIGHT_AT_ONCE
    for (; i + 8 <= n; i += 8)
        count += 8 - count_of(non_spaces(p + i));
#endif
    for (; i < n; i++)
        count += p[i] == ' ';
    return count;
}

/* A cursor on the words of ``flat``: word ``word`` starts at ``at``. */
typedef struct {
    Py_ssize_t word, at;
} Cursor;

/* Move ``c`` on to word ``word`` (not before its own); -1 when ``flat`` has no such word. A
 * word starts where a space is followed by another character. */
static int cursor_to(Cursor *c, const Py_UCS1 *flat, Py_ssize_t n, Py_ssize_t word) {
    Py_ssize_t need = word - c->word, i = c->at + 1;
    if (need <= 0)
        return 0;
#if EIGHT_AT_ONCE
    for (; i + 8 <= n; i += 8) {
        uint64_t letters = non_spaces(flat + i);
        uint64_t before = (letters << 8) | (flat[i - 1] != ' ' ? 0x80 : 0);
        uint64_t starts = letters & ~before;
        Py_ssize_t count = count_of(starts);
        if (count >= need) {
            while (--need)
                starts &= starts - 1; /* the lowest start taken off */
            c->at = i + __builtin_ctzll(starts) / 8;
            c->word = word;
            return 0;
        }
        need -= count;
    }
#endif
    for (; i < n; i++) {
        if (flat[i] != ' ' && flat[i - 1] == ' ' && --need == 0) {
            c->at = i;
            c->word = word;
            return 0;
        }
    }
    return -1;
}

static int str_arg(PyObject *arg, const char *name) {
    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s must be str, not %.80s", name, Py_TYPE(arg)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(arg) < 0)
        return -1;
#endif
    return 0;
}

/* Spaces in joined[from:to], of any kind. */
static Py_ssize_t spaces_in(PyObject *joined, Py_ssize_t from, Py_ssize_t to) {
    int kind = PyUnicode_KIND(joined);
    const void *data = PyUnicode_DATA(joined);
    Py_ssize_t i, count = 0;
    if (kind == PyUnicode_1BYTE_KIND)
        return count_spaces((const Py_UCS1 *)data + from, to - from);
    for (i = from; i < to; i++)
        count += PyUnicode_READ(kind, data, i) == ' ';
    return count;
}

static PyObject *occurrences(PyObject *self, PyObject *args) {
    PyObject *tag, *joined, *flat, *key, *out, *occ;
    Py_ssize_t limit, jn, fn, kn, i, from = 0, counted = 0, words = 0, width = 0;
    const Py_UCS1 *f;
    Cursor first = {0, 0}, last = {0, 0};

    (void)self;
    if (!PyArg_ParseTuple(args, "OOOOn:occurrences", &tag, &joined, &flat, &key, &limit))
        return NULL;
    if (str_arg(joined, "occurrences() joined") < 0 || str_arg(flat, "occurrences() flat") < 0 ||
        str_arg(key, "occurrences() key") < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(flat)) {
        PyErr_SetString(PyExc_ValueError, "occurrences() takes ASCII flat text");
        return NULL;
    }
    kn = PyUnicode_GET_LENGTH(key);
    if (kn < 2 || PyUnicode_READ_CHAR(key, 0) != ' ' || PyUnicode_READ_CHAR(key, 1) == ' ') {
        PyErr_SetString(PyExc_ValueError, "occurrences() takes a key \" a b \" or \" a b\"");
        return NULL;
    }
    for (i = 1; i < kn; i++)
        width += PyUnicode_READ_CHAR(key, i) != ' ' && PyUnicode_READ_CHAR(key, i - 1) == ' ';
    out = PyList_New(0);
    if (out == NULL || limit <= 0)
        return out;
    f = PyUnicode_1BYTE_DATA(flat);
    jn = PyUnicode_GET_LENGTH(joined);
    fn = PyUnicode_GET_LENGTH(flat);
    /* the first cursor starts on word 0, wherever flat's first letter is */
    while (first.at < fn && f[first.at] == ' ')
        first.at++;
    last = first;
    while (PyList_GET_SIZE(out) < limit) {
        Py_ssize_t at = PyUnicode_Find(joined, key, from, jn, 1), end;
        if (at == -2)
            goto error;
        if (at < 0)
            break;
        words += spaces_in(joined, counted, at);
        counted = at;
        if (first.at == fn || cursor_to(&first, f, fn, words) < 0 ||
            cursor_to(&last, f, fn, words + width - 1) < 0) {
            PyErr_SetString(PyExc_ValueError, "occurrences(): flat has fewer words than joined");
            goto error;
        }
        for (end = last.at; end < fn && f[end] != ' '; end++)
            ;
        occ = Py_BuildValue("(Onnnn)", tag, words, words + width - 1, first.at, end);
        if (occ == NULL || PyList_Append(out, occ) < 0) {
            Py_XDECREF(occ);
            goto error;
        }
        Py_DECREF(occ);
        from = at + 1;
    }
    return out;
error:
    Py_DECREF(out);
    return NULL;
}

/* offsets(flat): (starts, ends), the offsets where each maximal run of characters other
 * than a space begins and ends in the ASCII ``flat`` (ValueError otherwise), in order: the
 * offsets of every word of a text, from its flat text or mask (see occurrences), which
 * monitor.words._ascii_offsets made by splitting it twice and summing the lengths. */
static PyObject *offsets(PyObject *self, PyObject *flat) {
    PyObject *starts = NULL, *ends = NULL, *at;
    Py_ssize_t n, i, k = 0, count = 0;
    const Py_UCS1 *f;

    (void)self;
    if (str_arg(flat, "offsets() argument") < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(flat)) {
        PyErr_SetString(PyExc_ValueError, "offsets() takes ASCII text");
        return NULL;
    }
    n = PyUnicode_GET_LENGTH(flat);
    f = PyUnicode_1BYTE_DATA(flat);
    for (i = 0; i < n; i++)
        count += f[i] != ' ' && (i == 0 || f[i - 1] == ' ');
    starts = PyList_New(count);
    ends = PyList_New(count);
    if (starts == NULL || ends == NULL)
        goto error;
    for (i = 0; k < count; k++) {
        while (f[i] == ' ')
            i++;
        if ((at = PyLong_FromSsize_t(i)) == NULL)
            goto error;
        PyList_SET_ITEM(starts, k, at);
        while (i < n && f[i] != ' ')
            i++;
        if ((at = PyLong_FromSsize_t(i)) == NULL)
            goto error;
        PyList_SET_ITEM(ends, k, at);
    }
    return Py_BuildValue("(NN)", starts, ends);
error:
    Py_XDECREF(starts);
    Py_XDECREF(ends);
    return NULL;
}

static Py_ssize_t vocab_len(Vocabulary *v) { return v->size; }

static PySequenceMethods vocab_as_sequence = {
    .sq_length = (lenfunc)vocab_len,
};

static PyMethodDef vocab_methods[] = {
    {"fold", (PyCFunction)vocab_fold, METH_O,
     "fold(text, /)\n--\n\n"
     "For ASCII ``text``: (flat, joined, known, found), ``flat`` and ``joined`` as "
     "fold_ascii makes\nthem, ``known`` the vocabulary's words among its words and "
     "``found`` its keys in ``joined``."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._words.Vocabulary",
    .tp_basicsize = sizeof(Vocabulary),
    .tp_dealloc = (destructor)vocab_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Vocabulary(words, keys=(), /)\n--\n\n"
              "A rule set's ASCII words and phrase and prefix keys (others are left out), "
              "that ``fold``\nlooks the words and keys of a text up in.",
    .tp_methods = vocab_methods,
    .tp_as_sequence = &vocab_as_sequence,
    .tp_new = vocab_new,
};

static PyMethodDef methods[] = {
    {"index", index_words, METH_O,
     "index(folded, /)\n--\n\n"
     "Each word of the list ``folded`` with its positions there, in order."},
    {"offsets", offsets, METH_O,
     "offsets(flat, /)\n--\n\n"
     "The offsets where each run of characters other than a space begins and ends in the "
     "ASCII\n``flat``, as two lists."},
    {"occurrences", occurrences, METH_VARARGS,
     "occurrences(tag, joined, flat, key, limit, /)\n--\n\n"
     "The first ``limit`` occurrences of the phrase or prefix key ``key`` in ``joined``, "
     "as\n(tag, first word, last word, start, end), the offsets those of ``flat``."},
    {"fold_ascii", fold_ascii, METH_O,
     "fold_ascii(text, /)\n--\n\n"
     "For ASCII ``text``: (flat, folded, words, joined), its letters lowered and other "
     "characters\nbut digits made spaces, the words of that, their set, and them joined "
     "with a space on\neither side of each."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_words",
    .m_doc = "The folding and cutting of ASCII text into words of monitor.words.Tokens.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__words(void) {
    PyObject *m;
    init_fold();
    if (PyType_Ready(&VocabularyType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&VocabularyType);
    if (PyModule_AddObject(m, "Vocabulary", (PyObject *)&VocabularyType) < 0) {
        Py_DECREF(&VocabularyType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
