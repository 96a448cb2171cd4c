/* monitor.prefilter's candidate selection in C: one call per article over prepared tables.
 *
 * Keys(keys) numbers a rule set's keys (exact str, distinct; ``keys[i]`` gets id i) in an
 * open-addressing table, and keeps a count per key of the articles it was counted in. A key
 * starting with " " is a phrase or prefix key (present when it is in an article's ``keys``);
 * any other is a word (present when it is in the article's ``words``). It is made once per
 * Index; the counts only grow.
 *
 * Table(keys, postings, seconds, always) is one filing of the rules, never changed once made
 * (refiling makes a new one): ``postings`` is {key: rules filed under it alone}, ``seconds``
 * is {key: ((second, rules), ...)} for the rules filed under ``key`` that also need
 * ``second``, ``always`` the rules to try on every article. Every key must be one of
 * ``keys``; rules are ints in [0, 2**32 - 1). Each key's rules are kept as groups, each with
 * a second key or none, in flat arrays indexed by key id.
 *
 * Table.select(words, keys, count) -> the sorted distinct rules of ``always``, of every group
 * of a present key without a second key, and of every group of a present key whose second
 * key is present either way (in ``words`` or in ``keys``): the same list as the Python code
 * it replaces (tests/test_prefilter_select.py states it plainly). ``words`` and ``keys`` are
 * sets (TypeError otherwise); an element that is not an exact str is never a key. With
 * ``count`` true, it also adds one to the count of each key among ``keys`` and of each word
 * key among ``words``.
 *
 * Each element of the two sets is looked up once, with the hash the set holds for it, in
 * batches whose slots are prefetched together; its str is read only when a slot's tag
 * matches. The present keys go into a small table of the call's own, which the second keys
 * are looked up in. The time is linear in the sizes of the two sets (times the longest run
 * of full slots of the key table, fixed by the rules' keys) and of the groups of the present
 * keys, plus a sort of the rules picked. No Python code runs during a call (the only objects
 * read are the sets, exact str, ints and the tables), so with the GIL held a call sees one
 * table whole, the sets do not change under it, and counting needs no lock.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX   /* no second key */
#define FROM_WORDS 1      /* a key found in ``words`` */
#define FROM_KEYS 2       /* a key found in ``keys`` */
#define SEQ 4             /* a phrase or prefix key */
#define STACK_SLOTS 1024  /* a call's table of present keys on the stack up to this size */
#define STACK_RULES 256
#define BATCH 64          /* set elements whose slots are fetched at once */

/* A slot of the table of keys: a key's id, its hash's high bits and, when they fit, its
 * characters, so that a look-up reads one slot (half a cache line) and seldom the str,
 * which is elsewhere in memory. */
#define INLINE 16
typedef struct {
    uint32_t tag;  /* the hash's high 32 bits */
    uint32_t id1;  /* id + 1; 0: an empty slot */
    uint32_t len;  /* in characters */
    unsigned char kind, seq, inlined, unused; /* seq: it starts with " "; inlined: in data */
    char data[INLINE];
} Slot;

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    PyObject **strs;      /* by id, owned */
    Py_ssize_t *counts;   /* by id */
    Slot *slots;          /* aligned to 32 bytes, in ``alloc`` */
    void *alloc;
    size_t mask;
} Keys;

/* Rules filed under a key, and the second key they need (NONE: none). */
typedef struct {
    uint32_t second, start, stop; /* the rules are rules[start..stop] */
} Group;

typedef struct {
    PyObject_HEAD
    Keys *keys;
    uint32_t *first;      /* by id, n + 1: the key's groups are first[id]..first[id + 1] */
    Group *groups;
    uint32_t *rules;
    size_t nrules;
    uint32_t *always;
    Py_ssize_t nalways;
} Table;

static PyTypeObject KeysType, TableType;

/* ------------------------------------------------------------------------------- Keys */

/* Whether ``s`` is the key in ``slot``: 1 or 0, or -1 with an exception set. Anything but
 * an exact str never is (a str subclass may define equality its own way). */
static int same(const Keys *k, const Slot *slot, PyObject *s) {
    if (!PyUnicode_CheckExact(s))
        return 0;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    if (slot->len != PyUnicode_GET_LENGTH(s) || slot->kind != PyUnicode_KIND(s))
        return 0;
    return memcmp(slot->inlined ? slot->data : PyUnicode_DATA(k->strs[slot->id1 - 1]),
                  PyUnicode_DATA(s), (size_t)slot->len * slot->kind) == 0;
}

/* Puts in ``*found`` the slot of ``s`` (of hash ``h``), or NULL if it is not a key; -1 with
 * an exception set. ``s`` is only read when a slot's tag matches its hash: most words of
 * an article are not keys, and are found out without a read of their str. */
static int lookup(const Keys *k, PyObject *s, Py_hash_t h, const Slot **found) {
    uint32_t tag = (uint32_t)((uint64_t)(size_t)h >> 32);
    size_t i = (size_t)h & k->mask;
    for (;;) {
        const Slot *slot = &k->slots[i];
        int eq;
        if (slot->id1 == 0) {
            *found = NULL;
            return 0;
        }
        if (slot->tag == tag && (eq = same(k, slot, s)) != 0) {
            *found = slot;
            return eq;
        }
        i = (i + 1) & k->mask;
    }
}

static int exact_str(PyObject *s, const char *what) {
    if (!PyUnicode_CheckExact(s)) {
        PyErr_Format(PyExc_TypeError, "%s must hold str, not %.80s", what, Py_TYPE(s)->tp_name);
        return -1;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return -1;
#endif
    return 0;
}

static int no_keywords(const char *name, PyObject *kwds) {
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
        return -1;
    }
    return 0;
}

static void keys_dealloc(Keys *k) {
    if (k->strs != NULL)
        for (Py_ssize_t i = 0; i < k->n; i++)
            Py_XDECREF(k->strs[i]);
    PyMem_Free(k->strs);
    PyMem_Free(k->counts);
    PyMem_Free(k->alloc);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static int keys_fill(Keys *k, PyObject *list) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    size_t size = 64;
    if (n >= 0x7FFFFFFF) {
        PyErr_SetString(PyExc_OverflowError, "Keys() takes fewer than 2**31 keys");
        return -1;
    }
    while (size < (size_t)n * 3) /* at most a third full */
        size <<= 1;
    k->strs = PyMem_Calloc(n ? (size_t)n : 1, sizeof(PyObject *));
    k->counts = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_ssize_t));
    k->alloc = PyMem_Calloc(size + 1, sizeof(Slot));
    k->slots = (Slot *)(((uintptr_t)k->alloc + sizeof(Slot) - 1) & ~(uintptr_t)(sizeof(Slot) - 1));
    if (k->strs == NULL || k->counts == NULL || k->alloc == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    k->mask = size - 1;
    for (Py_ssize_t id = 0; id < n; id++) {
        PyObject *s = PyList_GET_ITEM(list, id);
        Py_hash_t h;
        const Slot *known;
        if (exact_str(s, "Keys()") < 0 || (h = PyObject_Hash(s)) == -1 ||
            lookup(k, s, h, &known) < 0)
            return -1;
        if (known != NULL) {
            PyErr_Format(PyExc_ValueError, "Keys() takes distinct keys, %R is repeated", s);
            return -1;
        }
        if (PyUnicode_GET_LENGTH(s) >= 0x7FFFFFFF) {
            PyErr_SetString(PyExc_OverflowError, "Keys() takes keys of fewer than 2**31 "
                                                 "characters");
            return -1;
        }
        size_t i = (size_t)h & k->mask;
        while (k->slots[i].id1 != 0)
            i = (i + 1) & k->mask;
        Slot *slot = &k->slots[i];
        slot->tag = (uint32_t)((uint64_t)(size_t)h >> 32);
        slot->id1 = (uint32_t)id + 1;
        slot->len = (uint32_t)PyUnicode_GET_LENGTH(s);
        slot->kind = (unsigned char)PyUnicode_KIND(s);
        slot->seq = slot->len > 0 && PyUnicode_READ_CHAR(s, 0) == ' ';
        slot->inlined = (size_t)slot->len * slot->kind <= INLINE;
        if (slot->inlined)
            memcpy(slot->data, PyUnicode_DATA(s), (size_t)slot->len * slot->kind);
        Py_INCREF(s);
        k->strs[id] = s;
        k->n = id + 1;
    }
    return 0;
}

static PyObject *keys_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *arg, *list;
    Keys *k;
    if (no_keywords("Keys", kwds) < 0 || !PyArg_UnpackTuple(args, "Keys", 1, 1, &arg))
        return NULL;
    list = PySequence_List(arg);
    if (list == NULL)
        return NULL;
    k = (Keys *)type->tp_alloc(type, 0);
    if (k != NULL && keys_fill(k, list) < 0)
        Py_CLEAR(k);
    Py_DECREF(list);
    return (PyObject *)k;
}

static Py_ssize_t keys_len(Keys *k) { return k->n; }

/* The id of ``s``, -1 if it is not a key, -2 with an exception set; ``seq`` tells
 * whether it is a phrase or prefix key. */
static Py_ssize_t key_id(Keys *k, PyObject *s, int *seq) {
    Py_hash_t h;
    const Slot *slot;
    if (exact_str(s, "a key") < 0 || (h = PyObject_Hash(s)) == -1 || lookup(k, s, h, &slot) < 0)
        return -2;
    *seq = slot != NULL && slot->seq;
    return slot == NULL ? -1 : (Py_ssize_t)slot->id1 - 1;
}

static PyObject *keys_count(Keys *k, PyObject *s) {
    int seq;
    Py_ssize_t id = key_id(k, s, &seq);
    return id == -2 ? NULL : PyLong_FromSsize_t(id < 0 ? 0 : k->counts[id]);
}

static PyObject *keys_counted(Keys *k, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(0);
    for (Py_ssize_t id = 0; out != NULL && id < k->n; id++) {
        PyObject *item;
        if (k->counts[id] == 0)
            continue;
        item = Py_BuildValue("(On)", k->strs[id], k->counts[id]);
        if (item == NULL || PyList_Append(out, item) < 0)
            Py_CLEAR(out);
        Py_XDECREF(item);
    }
    return out;
}

/* ------------------------------------------------------------------------------ Table */

static void table_dealloc(Table *t) {
    Py_XDECREF(t->keys);
    PyMem_Free(t->first);
    PyMem_Free(t->groups);
    PyMem_Free(t->rules);
    PyMem_Free(t->always);
    Py_TYPE(t)->tp_free((PyObject *)t);
}

/* The id of filing key ``s`` (KeyError if it is not a key). */
static Py_ssize_t filed_id(Keys *k, PyObject *s) {
    int seq;
    Py_ssize_t id = key_id(k, s, &seq);
    if (id == -1)
        PyErr_Format(PyExc_KeyError, "%R is not one of the keys", s);
    return id < 0 ? -1 : id;
}

static int rule_of(PyObject *o, uint32_t *out) {
    long r = PyLong_Check(o) ? PyLong_AsLong(o) : -1;
    if (r == -1 && PyErr_Occurred())
        return -1;
    if (r < 0 || (unsigned long)r >= NONE) {
        PyErr_SetString(PyExc_ValueError, "rules must be ints in [0, 2**32 - 1)");
        return -1;
    }
    *out = (uint32_t)r;
    return 0;
}

/* The arguments are walked twice: first each group is only counted (``rules`` NULL), then
 * filled in. Only tuples are accepted, so that no Python code runs in between and both
 * walks see the same groups (and the second checks it stays within what the first
 * counted). */
typedef struct {
    Table *t;
    uint32_t *fill; /* by id: the next group of the key to fill */
    size_t groups, rules;
} Build;

static int add_group(Build *b, Py_ssize_t id, uint32_t second, PyObject *rules) {
    Table *t = b->t;
    Py_ssize_t n;
    if (!PyTuple_Check(rules)) {
        PyErr_SetString(PyExc_TypeError, "rules must be tuples");
        return -1;
    }
    n = PyTuple_GET_SIZE(rules);
    if (n == 0)
        return 0;
    if (t->rules == NULL) {
        t->first[id]++;
        b->groups++;
        b->rules += (size_t)n;
        return 0;
    }
    if (b->fill[id] >= t->first[id + 1] || (size_t)n > b->rules) {
        PyErr_SetString(PyExc_RuntimeError, "Table() arguments changed while read");
        return -1;
    }
    Group *g = &t->groups[b->fill[id]++];
    g->second = second;
    g->start = g->stop = (uint32_t)(t->nrules - b->rules);
    for (Py_ssize_t i = 0; i < n; i++)
        if (rule_of(PyTuple_GET_ITEM(rules, i), &t->rules[g->stop++]) < 0)
            return -1;
    b->rules -= (size_t)n;
    return 0;
}

static int add_pairs(Build *b, Py_ssize_t id, PyObject *pairs) {
    if (!PyTuple_Check(pairs)) {
        PyErr_SetString(PyExc_TypeError, "seconds must hold tuples");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(pairs); i++) {
        PyObject *pair = PyTuple_GET_ITEM(pairs, i);
        Py_ssize_t sid;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "seconds must hold (second, rules) tuples");
            return -1;
        }
        sid = filed_id(b->t->keys, PyTuple_GET_ITEM(pair, 0));
        if (sid < 0 || add_group(b, id, (uint32_t)sid, PyTuple_GET_ITEM(pair, 1)) < 0)
            return -1;
    }
    return 0;
}

static int add_all(Build *b, PyObject *postings, PyObject *seconds) {
    PyObject *key, *value;
    Py_ssize_t pos = 0, id;
    while (PyDict_Next(postings, &pos, &key, &value))
        if ((id = filed_id(b->t->keys, key)) < 0 || add_group(b, id, NONE, value) < 0)
            return -1;
    pos = 0;
    while (PyDict_Next(seconds, &pos, &key, &value))
        if ((id = filed_id(b->t->keys, key)) < 0 || add_pairs(b, id, value) < 0)
            return -1;
    return 0;
}

static int table_fill(Table *t, PyObject *postings, PyObject *seconds, PyObject *always) {
    Py_ssize_t n = t->keys->n, nalways;
    Build b = {t, NULL, 0, 0};
    uint32_t total = 0;
    int ok = -1;
    t->first = PyMem_Calloc((size_t)n + 1, sizeof(uint32_t));
    if (t->first == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (add_all(&b, postings, seconds) < 0)
        return -1;
    if (b.groups >= NONE || b.rules >= NONE) {
        PyErr_SetString(PyExc_OverflowError, "Table() takes fewer than 2**32 - 1 rules");
        return -1;
    }
    for (Py_ssize_t id = 0; id <= n; id++) { /* counts to offsets */
        uint32_t c = t->first[id];
        t->first[id] = total;
        total += c;
    }
    t->nrules = b.rules;
    nalways = PyTuple_GET_SIZE(always);
    b.fill = PyMem_Malloc(((size_t)n + 1) * sizeof(uint32_t));
    t->groups = PyMem_Malloc((b.groups + 1) * sizeof(Group));
    t->rules = PyMem_Malloc((b.rules + 1) * sizeof(uint32_t));
    t->always = PyMem_Malloc(((size_t)nalways + 1) * sizeof(uint32_t));
    if (b.fill == NULL || t->groups == NULL || t->rules == NULL || t->always == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(b.fill, t->first, ((size_t)n + 1) * sizeof(uint32_t));
    if (add_all(&b, postings, seconds) < 0)
        goto done;
    for (Py_ssize_t id = 0; id < n; id++)
        if (b.fill[id] != t->first[id + 1]) {
            PyErr_SetString(PyExc_RuntimeError, "Table() arguments changed while read");
            goto done;
        }
    for (Py_ssize_t i = 0; i < nalways; i++)
        if (rule_of(PyTuple_GET_ITEM(always, i), &t->always[i]) < 0)
            goto done;
    t->nalways = nalways;
    ok = 0;
done:
    PyMem_Free(b.fill);
    return ok;
}

static PyObject *table_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *keys, *postings, *seconds, *always;
    Table *t;
    if (no_keywords("Table", kwds) < 0 ||
        !PyArg_ParseTuple(args, "O!O!O!O!:Table", &KeysType, &keys, &PyDict_Type, &postings,
                          &PyDict_Type, &seconds, &PyTuple_Type, &always))
        return NULL;
    t = (Table *)type->tp_alloc(type, 0);
    if (t == NULL)
        return NULL;
    Py_INCREF(keys);
    t->keys = (Keys *)keys;
    if (table_fill(t, postings, seconds, always) < 0)
        Py_CLEAR(t);
    return (PyObject *)t;
}

/* A call's own table of the keys present in its article, by id: each with how it was
 * found (FROM_WORDS, FROM_KEYS), and the ids in the order found. */
typedef struct {
    uint32_t *slots; /* id + 1; 0 is empty */
    unsigned char *how;
    uint32_t *found;
    size_t mask, nfound;
} Present;

static size_t present_slot(const Present *p, uint32_t id) {
    size_t i = (size_t)(id * 2654435761u) & p->mask;
    while (p->slots[i] != 0 && p->slots[i] != id + 1)
        i = (i + 1) & p->mask;
    return i;
}

/* Looks ``s`` (of hash ``h``) up, marking its key found ``how``, and counts it when
 * ``count`` (a word key only when found among words). */
static int found_one(Keys *k, Present *p, PyObject *s, Py_hash_t h, unsigned char how,
                     int count) {
    const Slot *slot;
    if (lookup(k, s, h, &slot) < 0)
        return -1;
    if (slot == NULL)
        return 0;
    uint32_t id = slot->id1 - 1;
    size_t i = present_slot(p, id);
    if (p->slots[i] == 0) {
        p->slots[i] = id + 1;
        p->how[i] = slot->seq ? SEQ : 0;
        p->found[p->nfound++] = id;
    }
    p->how[i] |= how;
    if (count && (how == FROM_KEYS || !slot->seq))
        k->counts[id]++;
    return 0;
}

/* Walks a set: its elements and their hashes as the set holds them, with no reference
 * taken (no Python code runs meanwhile, so the set holds them throughout). Python 3.13 made
 * _PySet_NextEntry internal: there an iterator does it, and an element that is not an
 * exact str gets hash 0 (it is never a key, and its own hash could run Python code). */
#if PY_VERSION_HEX < 0x030D0000 && !defined(PREFILTER_SET_ITER)
typedef struct {
    PyObject *set;
    Py_ssize_t pos;
} Walk;

static int walk_start(Walk *w, PyObject *set) {
    w->set = set;
    w->pos = 0;
    return 0;
}

static int walk_next(Walk *w, PyObject **s, Py_hash_t *h) {
    return _PySet_NextEntry(w->set, &w->pos, s, h);
}

static void walk_end(Walk *w) { (void)w; }
#else
typedef struct {
    PyObject *it;
} Walk;

static int walk_start(Walk *w, PyObject *set) {
    w->it = PyObject_GetIter(set);
    return w->it == NULL ? -1 : 0;
}

static int walk_next(Walk *w, PyObject **s, Py_hash_t *h) {
    PyObject *next = PyIter_Next(w->it);
    if (next == NULL)
        return 0;
    Py_DECREF(next); /* the set (an exact set: see select) holds it throughout */
    *s = next;
    *h = PyUnicode_CheckExact(next) ? PyObject_Hash(next) : 0;
    return 1;
}

static void walk_end(Walk *w) { Py_XDECREF(w->it); }
#endif

/* Looks up each element of set ``set``, marking the keys found ``how``, and counts them
 * when ``count`` (only word keys when they were found among words). */
static int find_all(Table *t, Present *p, PyObject *set, unsigned char how, int count) {
    Keys *k = t->keys;
    PyObject *batch[BATCH];
    Py_hash_t hashes[BATCH];
    Walk w;
    int more = 1, ok = 0;
    if (walk_start(&w, set) < 0)
        return -1;
    while (more && ok == 0) {
        /* The slots of a batch of elements are fetched at once, then looked at: the table
         * is mostly out of the CPU caches, and so the misses overlap. */
        int n = 0;
        while (n < BATCH && (more = walk_next(&w, &batch[n], &hashes[n]))) {
            __builtin_prefetch(&k->slots[(size_t)hashes[n] & k->mask]);
            n++;
        }
        for (int b = 0; ok == 0 && b < n; b++)
            ok = found_one(k, p, batch[b], hashes[b], how, count);
    }
    walk_end(&w);
    return ok < 0 || PyErr_Occurred() ? -1 : 0;
}

/* A growable array of rules, on the stack until it outgrows it. */
typedef struct {
    uint32_t *at, *stack;
    size_t len, cap;
} Picked;

static int pick(Picked *out, const uint32_t *rules, size_t n) {
    if (n > out->cap - out->len) {
        size_t cap = out->cap;
        uint32_t *at;
        while (n > cap - out->len)
            cap *= 2;
        at = out->at == out->stack ? PyMem_Malloc(cap * sizeof(uint32_t))
                                   : PyMem_Realloc(out->at, cap * sizeof(uint32_t));
        if (at == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        if (out->at == out->stack)
            memcpy(at, out->stack, out->len * sizeof(uint32_t));
        out->at = at;
        out->cap = cap;
    }
    memcpy(out->at + out->len, rules, n * sizeof(uint32_t));
    out->len += n;
    return 0;
}

static int ascending(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The distinct rules of ``out``, ascending, as a list of ints. */
static PyObject *sorted_list(Picked *out) {
    size_t n = 0;
    PyObject *list;
    if (out->len > 1)
        qsort(out->at, out->len, sizeof(uint32_t), ascending);
    for (size_t i = 0; i < out->len; i++)
        if (n == 0 || out->at[i] != out->at[n - 1])
            out->at[n++] = out->at[i];
    list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *r = PyLong_FromUnsignedLong(out->at[i]);
        if (r == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, r);
    }
    return list;
}

/* The rules of the groups of the present keys whose second key is absent or present. */
static int pick_present(Table *t, Present *p, Picked *out) {
    size_t n = 0;
    /* As with the slots, the tables' entries for all the keys are fetched at once. */
    for (size_t f = 0; f < p->nfound; f++)
        __builtin_prefetch(&t->first[p->found[f]]);
    for (size_t f = 0; f < p->nfound; f++) { /* keeps the keys present as keys, with groups */
        uint32_t id = p->found[f];
        unsigned char how = p->how[present_slot(p, id)];
        if ((how & (how & SEQ ? FROM_KEYS : FROM_WORDS)) && t->first[id] < t->first[id + 1]) {
            __builtin_prefetch(&t->groups[t->first[id]]);
            p->found[n++] = id;
        }
    }
    for (size_t f = 0; f < n; f++) {
        uint32_t id = p->found[f];
        for (const Group *g = &t->groups[t->first[id]]; g < &t->groups[t->first[id + 1]]; g++) {
            if (g->second != NONE && p->slots[present_slot(p, g->second)] == 0)
                continue;
            if (pick(out, t->rules + g->start, g->stop - g->start) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *table_select(Table *t, PyObject *const *args, Py_ssize_t nargs) {
    uint32_t slots[STACK_SLOTS], found[STACK_SLOTS / 2], rules[STACK_RULES];
    unsigned char how[STACK_SLOTS];
    Present p = {slots, how, found, 0, 0};
    Picked out = {rules, rules, 0, STACK_RULES};
    PyObject *result = NULL;
    size_t size = 64, n;
    int count;

    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "select() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    /* Exact set types only: a subclass's __iter__ could run Python code, yield objects the
     * set does not hold, or more than its size says. */
    if (!(PySet_CheckExact(args[0]) || PyFrozenSet_CheckExact(args[0])) ||
        !(PySet_CheckExact(args[1]) || PyFrozenSet_CheckExact(args[1]))) {
        PyErr_SetString(PyExc_TypeError, "select() takes sets of words and keys");
        return NULL;
    }
    if ((count = PyObject_IsTrue(args[2])) < 0)
        return NULL;
    n = (size_t)PySet_GET_SIZE(args[0]) + (size_t)PySet_GET_SIZE(args[1]);
    while (size < n * 2) /* at most half full */
        size <<= 1;
    p.mask = size - 1;
    if (size > STACK_SLOTS) {
        p.slots = PyMem_Calloc(size, sizeof(uint32_t));
        p.how = PyMem_Malloc(size);
        p.found = PyMem_Malloc(n * sizeof(uint32_t));
        if (p.slots == NULL || p.how == NULL || p.found == NULL) {
            PyErr_NoMemory();
            goto done;
        }
    } else {
        memset(slots, 0, size * sizeof(uint32_t));
    }
    if (find_all(t, &p, args[0], FROM_WORDS, count) < 0 ||
        find_all(t, &p, args[1], FROM_KEYS, count) < 0 || pick_present(t, &p, &out) < 0 ||
        pick(&out, t->always, (size_t)t->nalways) < 0)
        goto done;
    result = sorted_list(&out);
done:
    if (p.slots != slots) {
        PyMem_Free(p.slots);
        PyMem_Free(p.how);
        PyMem_Free(p.found);
    }
    if (out.at != rules)
        PyMem_Free(out.at);
    return result;
}

/* ----------------------------------------------------------------------------- module */

static PySequenceMethods keys_as_sequence = {
    .sq_length = (lenfunc)keys_len,
};

static PyMethodDef keys_methods[] = {
    {"count", (PyCFunction)keys_count, METH_O,
     "count(key, /)\n--\n\nThe number of articles ``key`` was counted in (0 for a non-key)."},
    {"counted", (PyCFunction)keys_counted, METH_NOARGS,
     "counted()\n--\n\nEach key counted at least once, with its count, as (key, count) "
     "pairs."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KeysType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._prefilter.Keys",
    .tp_basicsize = sizeof(Keys),
    .tp_dealloc = (destructor)keys_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Keys(keys, /)\n--\n\n"
              "A rule set's distinct keys, numbered in order, with a count of articles each.",
    .tp_methods = keys_methods,
    .tp_as_sequence = &keys_as_sequence,
    .tp_new = keys_new,
};

static PyMethodDef table_methods[] = {
    {"select", (PyCFunction)(void (*)(void))table_select, METH_FASTCALL,
     "select(words, keys, count, /)\n--\n\n"
     "The rules worth checking on an article with these words and phrase and prefix "
     "keys,\nascending; with ``count`` true the keys present are counted too."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "monitor._prefilter.Table",
    .tp_basicsize = sizeof(Table),
    .tp_dealloc = (destructor)table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Table(keys, postings, seconds, always, /)\n--\n\n"
              "One filing of the rules under their keys, that ``select`` picks from.",
    .tp_methods = table_methods,
    .tp_new = table_new,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_prefilter",
    .m_doc = "monitor.prefilter's candidate selection, one C call per article.",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__prefilter(void) {
    PyObject *m;
    if (PyType_Ready(&KeysType) < 0 || PyType_Ready(&TableType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&KeysType);
    if (PyModule_AddObject(m, "Keys", (PyObject *)&KeysType) < 0) {
        Py_DECREF(&KeysType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
