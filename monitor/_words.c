/* The folding and cutting of ASCII text into words that monitor.words.Tokens needs, in one
 * call.
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
    init_fold();
    return PyModule_Create(&module);
}
