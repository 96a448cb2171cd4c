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

static PyObject *fold_ascii(PyObject *self, PyObject *text) {
    PyObject *flat = NULL, *folded = NULL, *words = NULL, *joined = NULL, *res;
    Py_ssize_t n, i, count = 0, letters = 0, k = 0;
    const Py_UCS1 *in;
    Py_UCS1 *out, *j;
    int inside = 0;
    Table table = {NULL, 0, 0};

    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "fold_ascii() argument must be str, not %.80s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "fold_ascii() argument must be ASCII");
        return NULL;
    }
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

/* Vocabulary(words): the ASCII words of ``words`` (others are left out: no ASCII text has
 * them), for ``fold``, which is ``fold_ascii`` for text matched against a fixed set of words
 * (a rule set's): fold(text) returns (flat, joined, known), ``flat`` and ``joined`` as
 * fold_ascii makes them and ``known`` equal to ``set(flat.split()) & words``, holding the
 * vocabulary's own str objects. No str is made for a word of the text, only set entries for
 * the known words: most words of an article are in no rule, and the word list and set of
 * fold_ascii were most of its cost.
 *
 * The words are kept in an open-addressing table at most a quarter full, keyed by a hash of
 * their bytes made a machine word at a time. Only the look-ups come from the text, and the
 * table's content (the rules' words) is fixed, so however the text is crafted a look-up
 * costs at most the longest run of taken slots. */

/* A known word: its str, that str's characters, and the fold call that last put it in its
 * ``known`` set. */
typedef struct {
    PyObject *word;
    const Py_UCS1 *data;
    Py_ssize_t len;
    uint64_t stamp;
} Known;

/* The table: slot = (high 32 bits of the hash) << 32 | (index in ``words``) + 1, 0 when
 * empty; eight bytes a slot, so that a look-up, mostly of a word that is not there, reads
 * one cache line of a table small enough to stay in cache. */
typedef struct {
    PyObject_HEAD
    uint64_t *slots;
    Known *words;
    size_t mask;
    Py_ssize_t size;
    uint64_t stamp;
} Vocabulary;

/* The hash of a word: FNV-1a over its bytes as they are folded, then mixed so that the low
 * bits, which pick the slot, depend on every byte. */
#define HASH_START 0xCBF29CE484222325ULL
#define HASH_STEP(h, c) (((h) ^ (c)) * 0x100000001B3ULL)

static uint64_t hash_done(uint64_t h) {
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return h;
}

static uint64_t word_hash(const Py_UCS1 *p, Py_ssize_t len) {
    uint64_t h = HASH_START;
    Py_ssize_t i;
    for (i = 0; i < len; i++)
        h = HASH_STEP(h, p[i]);
    return hash_done(h);
}

/* The slot of the word p[:len] with this hash, or of the empty slot where it would go. */
static uint64_t *vocab_find(Vocabulary *v, const Py_UCS1 *p, Py_ssize_t len, uint64_t hash) {
    size_t i = (size_t)hash & v->mask;
    uint64_t tag = hash >> 32 << 32, *slot;
    for (slot = &v->slots[i]; *slot != 0; slot = &v->slots[i]) {
        if ((*slot & 0xFFFFFFFF00000000ULL) == tag) {
            Known *k = &v->words[(*slot & 0xFFFFFFFFULL) - 1];
            if (k->len == len && memcmp(k->data, p, (size_t)len) == 0)
                return slot;
        }
        i = (i + 1) & v->mask;
    }
    return slot;
}

static void vocab_dealloc(Vocabulary *v) {
    Py_ssize_t i;
    if (v->words != NULL) {
        for (i = 0; i < v->size; i++)
            Py_DECREF(v->words[i].word);
        PyMem_Free(v->words);
    }
    PyMem_Free(v->slots);
    Py_TYPE(v)->tp_free((PyObject *)v);
}

static PyObject *vocab_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *iterable, *list, *word;
    Vocabulary *v;
    Py_ssize_t i, n;
    size_t size = 64;

    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "Vocabulary() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Vocabulary", 1, 1, &iterable))
        return NULL;
    list = PySequence_List(iterable);
    if (list == NULL)
        return NULL;
    n = PyList_GET_SIZE(list);
    if (n >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_OverflowError, "Vocabulary() takes fewer than 2**31 words");
        Py_DECREF(list);
        return NULL;
    }
    while (size < (size_t)n * 2) /* at most half full */
        size <<= 1;
    v = (Vocabulary *)type->tp_alloc(type, 0);
    if (v == NULL)
        goto fail;
    v->slots = PyMem_Calloc(size, sizeof(uint64_t));
    v->words = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Known));
    if (v->slots == NULL || v->words == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    v->mask = size - 1;
    for (i = 0; i < n; i++) {
        const Py_UCS1 *data;
        Py_ssize_t len;
        uint64_t hash, *slot;
        Known *k;
        word = PyList_GET_ITEM(list, i);
        /* Exact str only: the table keeps pointers into the str's characters. */
        if (!PyUnicode_CheckExact(word)) {
            PyErr_Format(PyExc_TypeError, "Vocabulary() takes str words, not %.80s",
                         Py_TYPE(word)->tp_name);
            goto fail;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(word) < 0)
            goto fail;
#endif
        if (!PyUnicode_IS_ASCII(word))
            continue;
        data = PyUnicode_1BYTE_DATA(word);
        len = PyUnicode_GET_LENGTH(word);
        hash = word_hash(data, len);
        slot = vocab_find(v, data, len, hash);
        if (*slot != 0)
            continue;
        k = &v->words[v->size];
        Py_INCREF(word);
        k->word = word;
        k->data = data;
        k->len = len;
        *slot = (hash >> 32 << 32) | (uint64_t)(v->size + 1);
        v->size++;
    }
    Py_DECREF(list);
    return (PyObject *)v;
fail:
    Py_DECREF(list);
    Py_XDECREF(v);
    return NULL;
}

/* One word of ``fold``: the known word it is, put in ``known`` on its first occurrence. */
static int vocab_add(Vocabulary *v, const Py_UCS1 *word, Py_ssize_t len, uint64_t h,
                     uint64_t stamp, PyObject *known) {
    uint64_t *slot = vocab_find(v, word, len, hash_done(h));
    Known *k;
    if (*slot == 0)
        return 0;
    k = &v->words[(*slot & 0xFFFFFFFFULL) - 1];
    if (k->stamp == stamp)
        return 0;
    k->stamp = stamp;
    return PySet_Add(known, k->word);
}

static PyObject *vocab_fold(Vocabulary *v, PyObject *text) {
    PyObject *flat = NULL, *joined = NULL, *known = NULL, *res;
    Py_ssize_t n, i, len = 0;
    const Py_UCS1 *in;
    Py_UCS1 *out, *j, *j0;
    uint64_t stamp, h = HASH_START;

    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "fold() argument must be str, not %.80s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    if (!PyUnicode_IS_ASCII(text)) {
        PyErr_SetString(PyExc_ValueError, "fold() argument must be ASCII");
        return NULL;
    }
    n = PyUnicode_GET_LENGTH(text);
    in = PyUnicode_1BYTE_DATA(text);
    flat = PyUnicode_New(n, 127);
    joined = PyUnicode_New(n + 2, 127); /* the most it can take; cut to size below */
    known = PySet_New(NULL);
    if (flat == NULL || joined == NULL || known == NULL)
        goto error;
    /* 64 bits: the count never wraps around to a stamp still in a slot */
    stamp = ++v->stamp;
    out = PyUnicode_1BYTE_DATA(flat);
    j = j0 = PyUnicode_1BYTE_DATA(joined);
    *j++ = ' ';
    /* One pass: fold each character; copy each word's letters to ``joined`` while
     * hashing them, and look the word up where it ends. */
    for (i = 0; i < n; i++) {
        Py_UCS1 c = FOLD[in[i]];
        out[i] = c;
        if (c != ' ') {
            *j++ = c;
            h = HASH_STEP(h, c);
            len++;
        } else if (len) {
            *j++ = ' ';
            if (vocab_add(v, j - 1 - len, len, h, stamp, known) < 0)
                goto error;
            len = 0;
            h = HASH_START;
        }
    }
    if (len) {
        *j++ = ' ';
        if (vocab_add(v, j - 1 - len, len, h, stamp, known) < 0)
            goto error;
    }
    if (j - j0 == 1) /* no word: two spaces, as fold_ascii makes it */
        *j++ = ' ';
    if (j - j0 < n + 2 && PyUnicode_Resize(&joined, j - j0) < 0)
        goto error;
    res = PyTuple_New(3);
    if (res == NULL)
        goto error;
    PyTuple_SET_ITEM(res, 0, flat);
    PyTuple_SET_ITEM(res, 1, joined);
    PyTuple_SET_ITEM(res, 2, known);
    return res;

error:
    Py_XDECREF(flat);
    Py_XDECREF(joined);
    Py_XDECREF(known);
    return NULL;
}

static Py_ssize_t vocab_len(Vocabulary *v) { return v->size; }

static PySequenceMethods vocab_as_sequence = {
    .sq_length = (lenfunc)vocab_len,
};

static PyMethodDef vocab_methods[] = {
    {"fold", (PyCFunction)vocab_fold, METH_O,
     "fold(text, /)\n--\n\n"
     "For ASCII ``text``: (flat, joined, known), ``flat`` and ``joined`` as fold_ascii "
     "makes them\nand ``known`` the words of the vocabulary among its words."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject VocabularyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._words.Vocabulary",
    .tp_basicsize = sizeof(Vocabulary),
    .tp_dealloc = (destructor)vocab_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Vocabulary(words, /)\n--\n\n"
              "A fixed set of ASCII words (others are left out) that ``fold`` looks the words "
              "of a text up in.",
    .tp_methods = vocab_methods,
    .tp_as_sequence = &vocab_as_sequence,
    .tp_new = vocab_new,
};

static PyMethodDef methods[] = {
    {"index", index_words, METH_O,
     "index(folded, /)\n--\n\n"
     "Each word of the list ``folded`` with its positions there, in order."},
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
