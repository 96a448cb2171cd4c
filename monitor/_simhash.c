/* The arithmetic of monitor.simhash.fingerprint, once its words are hashed.
 *
 * simhash(hashes, sample_from, sample) takes each word's 64-bit hash as 8 little-endian
 * bytes. The shingles are the word triples (a, b, c) at i, i + 1, i + 2; with at least
 * ``sample_from`` words only those whose first word's hash has a low byte divisible by
 * ``sample`` are kept. Each kept shingle is the feature
 * (a ^ rotl(b, 21) ^ rotl(c, 42)) * 0x9E3779B97F4A7C15 mod 2**64, and bit j of the result is
 * set when more than half of the features have it set. None when no shingle is kept.
 *
 * The same as the big-integer lanes of the Python code it replaces (which tests keep as a
 * reference), at a fraction of the cost: one pass over the hashes, 64 counters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define MULTIPLIER 0x9E3779B97F4A7C15ULL

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* SPREAD[v] has byte k set to bit k of v: adding it to a word of 8 byte-wide counters counts
 * 8 bits of a feature at once (up to 255 features before the bytes must be flushed). */
static uint64_t SPREAD[256];

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

static PyObject *simhash(PyObject *self, PyObject *args) {
    PyObject *list;
    Py_ssize_t sample_from, sample, n, i, total = 0;
    uint64_t *h;
    Py_ssize_t counts[64] = {0};
    uint64_t fp = 0, packed[8] = {0};
    int pending = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!nn:simhash", &PyList_Type, &list, &sample_from, &sample))
        return NULL;
    if (sample < 1 || sample > 256) {
        PyErr_SetString(PyExc_ValueError, "sample must be in 1..256");
        return NULL;
    }
    n = PyList_GET_SIZE(list);
    if (n < 3)
        Py_RETURN_NONE;
    h = PyMem_Malloc(sizeof(uint64_t) * (size_t)n);
    if (h == NULL)
        return PyErr_NoMemory();
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != 8) {
            PyMem_Free(h);
            PyErr_SetString(PyExc_TypeError, "hashes must be 8-byte bytes objects");
            return NULL;
        }
        h[i] = le64((const unsigned char *)PyBytes_AS_STRING(item));
    }
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
    PyMem_Free(h);
    if (total == 0)
        Py_RETURN_NONE;
    for (int j = 0; j < 64; j++)
        if (counts[j] > total / 2)
            fp |= (uint64_t)1 << j;
    return PyLong_FromUnsignedLongLong(fp);
}

static PyMethodDef methods[] = {
    {"simhash", simhash, METH_VARARGS,
     "simhash(hashes, sample_from, sample) -> the SimHash of the word hashes, or None"},
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
    return PyModule_Create(&module);
}
