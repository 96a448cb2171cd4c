/* The whitespace stage of monitor.textnorm's normalisation, in one pass.
 *
 * tidy(text, limit) returns what these Python steps made of ``text`` (the frozen copy of
 * them is the reference in tests/test_textnorm_c.py):
 *
 * - "\r\n" and "\r" become "\n";
 * - the controls that are not whitespace ([\x00-\x08\x0e-\x1b\x7f]) become spaces;
 * - every line ("\n"-separated) becomes its words (runs of characters that are not
 *   str.isspace) joined by one space; lines holding no word are dropped, the others joined
 *   by "\n";
 * - the result is cut to ``limit`` characters and stripped (str.strip) again.
 *
 * One quirk of those steps is kept: NEL (U+0085, whitespace to str.isspace) is treated as
 * above only when the text holds some other whitespace but " ", "\n", "\r" and tab;
 * otherwise the steps strip it at the ends of lines only, and only when they tidy the text
 * at all (see quirk()). monitor.textnorm never passes NEL here (its earlier steps make
 * every C1 control a space), so that slow path exists for exactness only.
 *
 * Work: one pass over the input, copying what is in final form already (ASCII words with
 * one space or newline between them) 16 bytes at a time, into a string allocated at the
 * input's length and kind (the output is never longer than the input), shrunk at the end,
 * or copied into a narrower kind when the characters that made the input wide were all
 * whitespace. Text that comes out as it went in is
 * returned as it is. A text longer than ``limit`` is tidied whole and then cut, as the
 * Python steps did: NFKC can make text longer than monitor.textnorm's cut of its input.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Character classes below U+0100. SPACE: " ", tab and the controls made spaces; NEWLINE:
 * "\n" and "\r"; NEL: U+0085; ODD: the rest of what str.isspace calls whitespace ("\x0b",
 * "\x0c", "\x1c"-"\x1f", NBSP, and all of it from U+0100 on). */
enum { WORD = 0, SPACE, NEWLINE, ODD, NEL };

static unsigned char latin1_class[256];

static void init_classes(void) {
    int c;
    for (c = 0x00; c <= 0x08; c++)
        latin1_class[c] = SPACE;
    for (c = 0x0e; c <= 0x1b; c++)
        latin1_class[c] = SPACE;
    for (c = 0x1c; c <= 0x1f; c++)
        latin1_class[c] = ODD;
    latin1_class['\t'] = SPACE;
    latin1_class['\n'] = NEWLINE;
    latin1_class['\x0b'] = ODD;
    latin1_class['\x0c'] = ODD;
    latin1_class['\r'] = NEWLINE;
    latin1_class[' '] = SPACE;
    latin1_class[0x7f] = SPACE;
    latin1_class[0x85] = NEL;
    latin1_class[0xa0] = ODD;
}

/* Whitespace to str.isspace at or above U+0100. */
static inline int wide_space(Py_UCS4 c) {
    if (c < 0x1680)
        return 0;
    return c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

#define CLASS_OF(c) ((c) < 0x100 ? latin1_class[c] : wide_space(c) ? ODD : WORD)

typedef struct {
    Py_ssize_t len; /* characters written */
    Py_UCS4 bits;   /* every character written, or-ed: bounds the widest */
    unsigned seen;  /* 1 << class, for every class met */
} Result;

/* The main pass, once per kind (T its code unit): words joined by one space, non-empty lines
 * by "\n".
 *
 * Most text is in that form already over long stretches: ASCII words, each followed by one
 * space or newline and another word. Such a stretch is found and copied a block at a time
 * (PLAIN_BLOCKS): it ends at a character that is whitespace, a control or from 0x80 on
 * (the loop around classifies those one by one), unless it is " " or "\n" and the next
 * character an ASCII word character (0x21-0x7E). A block is copied whole before it is
 * looked at: the output never gets ahead of the input (a separator stands for at least one
 * whitespace character), so such a copy never writes past the input's length in the output,
 * and what it writes past the stretch is overwritten or cut off afterwards. */
static inline int lowest_bit(uint64_t x) { /* x != 0 */
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_ctzll(x);
#else
    int b = 0;
    while (!(x & 1)) {
        x >>= 1;
        b++;
    }
    return b;
#endif
}

#if defined(__SSE2__) && !defined(TEXTNORM_NO_SSE2)
#include <emmintrin.h>
/* 16 bytes at a time, with the character after them. Lanes compare signed: characters from
 * 0x80 (0x8000 in 2-byte lanes) on are negative, so below 0x21 too. */
#define PLAIN_BLOCKS(T, L, H, SET1, CMPEQ, CMPLT, CMPGT)                                           \
    {                                                                                              \
        const Py_ssize_t lanes = 16 / (Py_ssize_t)sizeof(T);                                       \
        const __m128i lo = SET1(0x21), hi = SET1(0x7e), sp = SET1(' '), nl = SET1('\n');           \
        while (end - p > lanes) {                                                                  \
            __m128i x = _mm_loadu_si128((const __m128i *)p);                                       \
            __m128i next = _mm_loadu_si128((const __m128i *)(p + 1));                              \
            __m128i gap = _mm_or_si128(CMPEQ(x, sp), CMPEQ(x, nl));                                \
            __m128i nw = _mm_or_si128(CMPLT(x, lo), CMPGT(x, hi));                                 \
            __m128i nw_next = _mm_or_si128(CMPLT(next, lo), CMPGT(next, hi));                      \
            int special = _mm_movemask_epi8(                                                       \
                _mm_or_si128(_mm_andnot_si128(gap, nw), _mm_and_si128(gap, nw_next)));             \
            _mm_storeu_si128((__m128i *)q, x);                                                     \
            if (special)                                                                           \
                return (p - start) + lowest_bit((uint64_t)special) / (int)sizeof(T);               \
            p += lanes;                                                                            \
            q += lanes;                                                                            \
        }                                                                                          \
    }
#elif PY_LITTLE_ENDIAN && !defined(TEXTNORM_NO_SWAR)
/* Eight characters at a time in 64-bit words (one, two or four), with the character after
 * them, by exact per-lane tests: each lane's top bit is set before subtracting, so no
 * borrow crosses lanes. ``L`` has 1 in each lane, ``H`` each lane's top bit; the tests set
 * the top bit of the lanes below ``v`` (at most 0x80), equal to ``v``, from 0x80 on. */
#define LANES_BELOW(x, v, L, H) (~(((x) | (H)) - (v) * (L)) & ~(x) & (H))
#define LANES_EQUAL(x, v, L, H) LANES_BELOW((x) ^ ((v) * (L)), 1, L, H)
#define LANES_HIGH(x, L, H) (((((x) & ((H) - 0x80 * (L))) + ((H) - 0x80 * (L))) | (x)) & (H))
#define LANES_NOT_WORD(x, L, H)                                                                    \
    (LANES_BELOW(x, 0x21, L, H) | LANES_EQUAL(x, 0x7f, L, H) | LANES_HIGH(x, L, H))
#define PLAIN_BLOCKS(T, L, H, SET1, CMPEQ, CMPLT, CMPGT)                                           \
    {                                                                                              \
        const Py_ssize_t lanes = 8 / (Py_ssize_t)sizeof(T);                                        \
        while (end - p > 8) {                                                                      \
            uint64_t special[sizeof(T)], any = 0;                                                  \
            Py_ssize_t w;                                                                          \
            for (w = 0; w < (Py_ssize_t)sizeof(T); w++) {                                          \
                uint64_t x, next, gap;                                                             \
                memcpy(&x, p + w * lanes, 8);                                                      \
                memcpy(&next, p + w * lanes + 1, 8);                                               \
                memcpy(q + w * lanes, &x, 8);                                                      \
                gap = LANES_EQUAL(x, ' ', L, H) | LANES_EQUAL(x, '\n', L, H);                      \
                special[w] = (LANES_NOT_WORD(x, L, H) & ~gap) |                                    \
                             (gap & LANES_NOT_WORD(next, L, H));                                   \
                any |= special[w];                                                                 \
            }                                                                                      \
            if (any) {                                                                             \
                for (w = 0; !special[w]; w++)                                                      \
                    ;                                                                              \
                return (p - start) + w * lanes + lowest_bit(special[w]) / (8 * (int)sizeof(T));    \
            }                                                                                      \
            p += 8;                                                                                \
            q += 8;                                                                                \
        }                                                                                          \
    }
#else
#define PLAIN_BLOCKS(T, L, H, SET1, CMPEQ, CMPLT, CMPGT) /* one character at a time, below */
#endif

#define DEFINE_WORDS(NAME, T, L, H, SET1, CMPEQ, CMPLT, CMPGT)                                     \
    /* How many characters from ``p`` (which follows a word character) are in final form;          \
     * copied to ``q``. */                                                                         \
    static Py_ssize_t NAME##_plain_run(const T *p, const T *end, T *q) {                           \
        const T *start = p;                                                                        \
        PLAIN_BLOCKS(T, L, H, SET1, CMPEQ, CMPLT, CMPGT)                                           \
        while (p < end && *p > 0x20 && *p < 0x7f)                                                  \
            *q++ = *p++;                                                                           \
        return p - start;                                                                          \
    }                                                                                              \
                                                                                                   \
    static void NAME(const T *p, Py_ssize_t n, T *q0, Result *r) {                                 \
        const T *end = p + n;                                                                      \
        T *q = q0;                                                                                 \
        Py_UCS4 bits = 0, c = 0;                                                                   \
        unsigned seen = 0, gap = 0;                                                                \
        while (p < end) {                                                                          \
            /* whitespace (and controls) up to the next word */                                    \
            while ((c = *p), CLASS_OF(c) != WORD) {                                                \
                gap |= 1u << CLASS_OF(c);                                                          \
                if (++p == end)                                                                    \
                    goto done;                                                                     \
            }                                                                                      \
            if (q != q0)                                                                           \
                *q++ = (gap & (1u << NEWLINE)) ? '\n' : ' ';                                       \
            seen |= gap;                                                                           \
            gap = 0;                                                                               \
            /* the word, and what follows it already in final form */                              \
            for (;;) {                                                                             \
                Py_ssize_t run = NAME##_plain_run(p, end, q);                                      \
                p += run;                                                                          \
                q += run;                                                                          \
                if (p == end)                                                                      \
                    goto done;                                                                     \
                c = *p;                                                                            \
                if (c < 0x80 || CLASS_OF(c) != WORD)                                               \
                    break;                                                                         \
                do {                                                                               \
                    *q++ = (T)c;                                                                   \
                    bits |= c;                                                                     \
                    if (++p == end)                                                                \
                        goto done;                                                                 \
                    c = *p;                                                                        \
                } while (c >= 0x80 && CLASS_OF(c) == WORD);                                        \
                if (c >= 0x80)                                                                     \
                    break;                                                                         \
            }                                                                                      \
        }                                                                                          \
    done:                                                                                          \
        r->len = q - q0;                                                                           \
        r->bits = bits;                                                                            \
        r->seen = seen | gap;                                                                      \
    }

DEFINE_WORDS(words1, Py_UCS1, 0x0101010101010101ULL, 0x8080808080808080ULL, _mm_set1_epi8,
             _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_cmpgt_epi8)
DEFINE_WORDS(words2, Py_UCS2, 0x0001000100010001ULL, 0x8000800080008000ULL, _mm_set1_epi16,
             _mm_cmpeq_epi16, _mm_cmplt_epi16, _mm_cmpgt_epi16)
DEFINE_WORDS(words4, Py_UCS4, 0x0000000100000001ULL, 0x8000000080000000ULL, _mm_set1_epi32,
             _mm_cmpeq_epi32, _mm_cmplt_epi32, _mm_cmpgt_epi32)

/* --- NEL without other odd whitespace (never from monitor.textnorm) -------------------- */

/* The character at ``*i`` after the first two steps ("\r\n" and "\r" made "\n", controls
 * made spaces); advances ``*i`` past what it stands for. */
static Py_UCS4 mapped(int kind, const void *in, Py_ssize_t n, Py_ssize_t *i) {
    Py_UCS4 c = PyUnicode_READ(kind, in, *i);
    (*i)++;
    if (c == '\r') {
        if (*i < n && PyUnicode_READ(kind, in, *i) == '\n')
            (*i)++;
        return '\n';
    }
    if (c < 0x100 && c != '\t' && latin1_class[c] == SPACE)
        return ' ';
    return c;
}

/* What the Python steps make of text holding NEL and, of the rest of the whitespace,
 * nothing but " ", "\n", "\r" and tabs: if the text (after the first two steps) holds no two
 * spaces or newlines in a row, no tab and no whitespace at either end, it is left as it is
 * (NELs inside it included); otherwise tabs become spaces, each line is stripped of spaces
 * and NELs at both ends, lines left empty are dropped and runs of spaces inside the others
 * made one space, NELs inside them kept. (The caller cuts and strips.) */
static void quirk(int kind, const void *in, Py_ssize_t n, void *out, Result *r) {
    Py_ssize_t i = 0, o = 0;
    Py_UCS4 prev = 0, bits = 0, c;
    int tidy = 0;

    while (i < n && !tidy) {
        c = mapped(kind, in, n, &i); /* never 0: NUL is a control, made a space */
        if (c == '\t' || ((c == ' ' || c == '\n') && (prev == ' ' || prev == '\n')) ||
            (prev == 0 && Py_UNICODE_ISSPACE(c)))
            tidy = 1;
        prev = c;
    }
    if (!tidy && Py_UNICODE_ISSPACE(prev))
        tidy = 1;

    i = 0;
    while (i < n) {
        Py_ssize_t start, end, j;
        if (!tidy) {
            c = mapped(kind, in, n, &i);
            PyUnicode_WRITE(kind, out, o, c);
            o++;
            bits |= c;
            continue;
        }
        /* one line, [start, end), then past its "\n", "\r" or "\r\n" */
        start = i;
        while (i < n) {
            c = PyUnicode_READ(kind, in, i);
            if (c == '\n' || c == '\r')
                break;
            i++;
        }
        end = i;
        if (i < n)
            (void)mapped(kind, in, n, &i);
        while (start < end) { /* no "\r" in the line: mapped() takes one character */
            j = start;
            c = mapped(kind, in, end, &j);
            if (c != '\t' && c != ' ' && c != 0x85)
                break;
            start++;
        }
        while (end > start) {
            j = end - 1;
            c = mapped(kind, in, end, &j);
            if (c != '\t' && c != ' ' && c != 0x85)
                break;
            end--;
        }
        if (start == end)
            continue;
        if (o > 0) {
            PyUnicode_WRITE(kind, out, o, '\n');
            o++;
        }
        prev = 0;
        j = start;
        while (j < end) {
            c = mapped(kind, in, end, &j);
            if (c == '\t')
                c = ' ';
            if (c == ' ' && prev == ' ')
                continue;
            PyUnicode_WRITE(kind, out, o, c);
            o++;
            bits |= c;
            prev = c;
        }
    }
    r->len = o;
    r->bits = bits;
}

/* --- the function ------------------------------------------------------------------------ */

static PyObject *tidy(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *text, *res;
    Py_ssize_t n, cap, len;
    int kind;
    const void *in;
    void *out;
    Py_UCS4 narrowest;
    Result r;

    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "tidy() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    text = args[0];
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "tidy() argument 1 must be str, not %.80s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    cap = PyLong_AsSsize_t(args[1]);
    if (cap == -1 && PyErr_Occurred())
        return NULL;
    if (cap < 0) {
        PyErr_SetString(PyExc_ValueError, "tidy() limit must not be negative");
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    n = PyUnicode_GET_LENGTH(text);
    kind = PyUnicode_KIND(text);
    in = PyUnicode_DATA(text);

    res = PyUnicode_New(n, PyUnicode_MAX_CHAR_VALUE(text));
    if (res == NULL)
        return NULL;
    out = PyUnicode_DATA(res);
    switch (kind) {
    case PyUnicode_1BYTE_KIND: words1(in, n, out, &r); break;
    case PyUnicode_2BYTE_KIND: words2(in, n, out, &r); break;
    default: words4(in, n, out, &r); break;
    }
    if ((r.seen & (1u << NEL)) && !(r.seen & (1u << ODD)))
        quirk(kind, in, n, out, &r);

    len = r.len;
    if (len > cap) { /* cut, and stripped again */
        len = cap;
        while (len > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, out, len - 1)))
            len--;
    } else if (len == n && PyUnicode_CheckExact(text) &&
               memcmp(in, out, (size_t)n * (size_t)kind) == 0) {
        Py_DECREF(res);
        Py_INCREF(text);
        return text;
    }
    /* A str must have the narrowest kind that holds it (and ASCII its own flag): when what
     * made the input wide did not make it into the output, or may have been cut off, the
     * output is copied into the right kind. */
    narrowest = kind == PyUnicode_1BYTE_KIND   ? 0x80
                : kind == PyUnicode_2BYTE_KIND ? 0x100
                                               : 0x10000;
    if (PyUnicode_MAX_CHAR_VALUE(text) >= narrowest && (r.bits < narrowest || len < r.len)) {
        PyObject *narrow = PyUnicode_FromKindAndData(kind, out, len);
        Py_DECREF(res);
        return narrow;
    }
    if (PyUnicode_Resize(&res, len) < 0) {
        Py_XDECREF(res);
        return NULL;
    }
    return res;
}

static PyMethodDef methods[] = {
    {"tidy", (PyCFunction)(void (*)(void))tidy, METH_FASTCALL,
     "tidy(text, limit, /)\n--\n\n"
     "``text`` with \"\\r\" made \"\\n\", controls made spaces, each line's words joined by "
     "one space,\nempty lines dropped, cut to ``limit`` characters and stripped."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_textnorm",
    .m_doc = "The whitespace stage of monitor.textnorm.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__textnorm(void) {
    init_classes();
    return PyModule_Create(&module);
}
