/* The character and whitespace stages of monitor.textnorm's normalisation, a pass each.
 *
 * fold(text, nfkc) returns what these Python steps made of ``text`` (the frozen copy of them
 * is the reference in tests/test_textnorm_c.py), ``nfkc`` returning the NFKC of a str
 * (monitor.textnorm's calls unicodedata):
 *
 * - first, U+00A0 NO-BREAK SPACE becomes " ", U+2026 HORIZONTAL ELLIPSIS "...", and the
 *   invisibles (monitor.textnorm._INVISIBLE: U+00AD, U+200B-U+200F, U+202A-U+202E,
 *   U+2060-U+2064, U+2066-U+2069, U+FE00-U+FE0F, U+FEFF) are dropped;
 * - then NFKC;
 * - last, the quotes and dashes (monitor.textnorm._FOLD) are folded: U+2018-U+201B and
 *   U+2032 PRIME become "'"; U+201C-U+201F, U+2033 DOUBLE PRIME, U+00AB and U+00BB '"';
 *   U+2010-U+2015 and U+2212 MINUS SIGN "-"; and the C1 controls (U+0080-U+009F) " ".
 *
 * NFKC costs most and mostly changes nothing, so ``nfkc`` is called only where it may. A
 * character is NFKC-stable (the table below) when NFKC leaves it as it is wherever it
 * stands: text made of nothing else (after the first step) is NFKC, and fold takes it in one
 * pass, the first and last steps per character. Any other character stands for its own NFKC
 * (``nfkc`` called on it alone, once for each distinct one, at most 16) when that is made of
 * NFKC-stable characters (a trade mark sign, "TM"; a non-breaking hyphen, U+2010): with
 * those in place of these the text is still compatibility-equivalent (NFKD maps each
 * character on its own, then sorts each run of combining marks stably by class, which gives
 * the same for both) and made of NFKC-stable characters, so it is the NFKC of the text; the
 * last step then folds what they stand for too (two primes make "''", where '"' would be
 * wrong). When such a character is found (a combining accent, say), or stands for what is
 * wider than the text's kind, the steps are taken one at a time instead: a pass for the
 * first, ``nfkc`` on the whole text, a pass for the last.
 *
 * Work: a pass skips ASCII 8 bytes at a time and looks characters from U+0080 on up in
 * tables; it copies nothing until a character changes, then copies into a buffer of the
 * text's kind and from there into a str of the narrowest kind. Text that comes out as it
 * went in is returned as it is.
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

/* --- tidy() ------------------------------------------------------------------------------ */

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

/* --- fold(): the character stage ------------------------------------------------------- */

/* What fold() does to a character from U+0080 on (fold_action()): LEAVE it; in its first
 * step, DROP it, make it "..." (DOTS) or a space (NBSP); or, from ' ' on, make it that ASCII
 * character in its last step. */
enum { LEAVE = 0, DROP, DOTS, NBSP, UNSTABLE, LAST_STEP = 0x20 };

static unsigned char latin1_fold[256]; /* U+0080-U+00FF (below, LEAVE) */
static unsigned char punct_fold[128];  /* U+2000-U+207F, General Punctuation */

static void init_folds(void) {
    int c;
    for (c = 0x80; c <= 0x9f; c++) /* the C1 controls */
        latin1_fold[c] = ' ';
    latin1_fold[0xa0] = NBSP;
    latin1_fold[0xad] = DROP; /* soft hyphen */
    latin1_fold[0xab] = '"';
    latin1_fold[0xbb] = '"';
    for (c = 0x200b; c <= 0x200f; c++) /* zero-width characters and direction marks */
        punct_fold[c - 0x2000] = DROP;
    for (c = 0x202a; c <= 0x202e; c++) /* bidi embeddings and overrides */
        punct_fold[c - 0x2000] = DROP;
    for (c = 0x2060; c <= 0x2064; c++) /* word joiner, invisible operators */
        punct_fold[c - 0x2000] = DROP;
    for (c = 0x2066; c <= 0x2069; c++) /* bidi isolates */
        punct_fold[c - 0x2000] = DROP;
    punct_fold[0x26] = DOTS; /* horizontal ellipsis */
    for (c = 0x2010; c <= 0x2015; c++) /* hyphens and dashes */
        punct_fold[c - 0x2000] = '-';
    for (c = 0x2018; c <= 0x201b; c++) /* single quotes */
        punct_fold[c - 0x2000] = '\'';
    for (c = 0x201c; c <= 0x201f; c++) /* double quotes */
        punct_fold[c - 0x2000] = '"';
    punct_fold[0x32] = '\''; /* prime */
    punct_fold[0x33] = '"';  /* double prime */
}

static inline unsigned fold_action(Py_UCS4 c) { /* c >= 0x80 */
    if (c < 0x100)
        return latin1_fold[c];
    if (c - 0x2000 < 0x80)
        return punct_fold[c - 0x2000];
    if (c == 0x2212) /* minus sign */
        return '-';
    if ((c & ~(Py_UCS4)0xf) == 0xfe00 || c == 0xfeff) /* variation selectors, BOM */
        return DROP;
    return LEAVE;
}

/* The NFKC-stable characters of U+0000-U+1FFFF (none from U+20000 on is taken as one): those
 * assigned (later Unicode versions change no assigned character's decomposition or combining
 * class, and compose none of them anew), of canonical combining class 0, that NFKC leaves as
 * they are alone (unicodedata.normalize) and that are not the second of a canonical
 * composition (nor Hangul vowel or trailing consonant jamo). Text made of nothing else passes
 * NFKC's quick check (UAX #15): it is NFKC. A bit for each, blocks of 256 shared. Generated
 * from unicodedata (of UNIDATA_VERSION) by ``python tests/test_textnorm_c.py``; the tests
 * check it against the running Python's. */
#define UNIDATA_VERSION "14.0.0"
static const unsigned char stable_index[512] = {
      0,   1,   2,   3,   4,   5,   6,   7,   8,   9,  10,  11,  12,  13,  14,  15,
     16,  17,  18,  19,  20,  20,  21,  22,  23,  24,  25,  26,  27,  28,  29,  30,
     31,  32,  33,  34,  35,  20,  20,  20,  20,  20,  36,  37,  38,  39,  40,  41,
     42,  43,  44,  45,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  46,  20,  47,  48,  49,  50,  51,  52,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  53,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  45,  54,  55,  45,  56,  57,  58,
     59,  60,  61,  62,  63,  64,  20,  65,  66,  67,  68,  69,  70,  71,  72,  73,
     74,  75,  76,  77,  78,  79,  80,  81,  82,  83,  84,  45,  85,  86,  87,  88,
     20,  20,  20,  89,  90,  91,  45,  45,  45,  45,  45,  45,  45,  45,  45,  92,
     20,  20,  20,  20,  93,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,
     45,  45,  45,  45,  20,  20,  94,  45,  45,  45,  45,  45,  45,  45,  45,  45,
     45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,
     45,  45,  45,  45,  45,  45,  45,  45,  20,  20,  95,  96,  45,  45,  97,  98,
     20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,  20,
     20,  20,  20,  20,  20,  20,  20,  99,  20,  20,  20,  20, 100, 101,  45,  45,
     45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,
     45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45, 102,
     20, 103, 104,  45,  45,  45,  45,  45,  45,  45,  45,  45, 105,  45,  45,  45,
     45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45,  45, 106,
    107, 108, 109, 110,  45,  45,  45,  45,  20,  20, 111,  45,  45,  45,  45, 112,
     45, 113, 114,  45,  45,  45,  45, 115, 116, 117,  45,  45, 118, 119, 120,  45,
    121, 122, 123,  20,  20,  20, 124, 125, 126,  20, 127, 128,  45,  45,  45,  45,
};
static const uint64_t stable_bits[129][4] = {
    {0xffffffffffffffff, 0xffffffffffffffff, 0x88c37afeffffffff, 0xffffffffffffffff},
    {0x7ff3ffffffffffff, 0x7ffffffffffffdfe, 0xffffffffffffffff, 0xfff1ffffffffe00f},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xfe00ffffffffffff, 0xffffffe0c0ffffff},
    {0x0000000000000000, 0xb8ef000000008000, 0xfffffffbffffd740, 0xfdc8ffffff80ffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffff07, 0xffffffffffffffff},
    {0xfffeffffffffffff, 0xfffffffffe7fffff, 0x400000000000e77f, 0x001f87ffffff0049},
    {0xfffffffff800ffff, 0xfe1effff000007ff, 0xffffffffffffffff, 0xffffc260603fffff},
    {0x0000fffffffdbfff, 0xffffffffffffe000, 0x0003ffffffffffff, 0xc7f007ffffffffff},
    {0x7fff0110043fffff, 0xffff07ff41ffffff, 0xffffffff00037fff, 0x00000004000003ff},
    {0xefffffffffffffff, 0xffffffff00e1dfff, 0xa3c5fdfffff99fef, 0x3fffffcf0000599f},
    {0xc325fdfffff987ee, 0x007fffc010021987, 0xe3edfdfffffbbfee, 0xfe03ffcf00011bbf},
    {0xa3edfdfffff99fee, 0x00ffffcf8020199f, 0x83ffc718d63dc7ec, 0x07ffffc000011dc7},
    {0xe3fffdfffffddfff, 0xff80ffcf27001ddf, 0xe3effdfffffddfff, 0x0006ffcf60001ddb},
    {0xa7fffffffffddfff, 0xffffffcfff70dddf, 0x2ffbfffffc7fffee, 0x001cffc07f5f007f},
    {0x80f7fffffffffffe, 0x000000000ffff0ff, 0x38f7ffaffffff7d6, 0x00000000c3ff305f},
    {0xfd5ffffffcffefff, 0xc0001dffef7bdef7, 0xdd5fef7bdef7ff20, 0x0000000007ffdfbf},
    {0xf97fbfffffffffff, 0xffffffffffffffff, 0xffffffffffffdfff, 0xefffffffffff20bf},
    {0xffffffffffffffff, 0xffc00001ffffffff, 0x000000ffffffffff, 0xfffffffffffffff8},
    {0xffffffffffffffff, 0xffffffff3d7f3dff, 0x7f3dffffffff3dff, 0xffffffffff7fff3d},
    {0xffffffffff3dffff, 0x1fffffff07ffffff, 0xffffffff03ffffff, 0x3f3fffffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffff1fffffff, 0x01ffffffffffffff},
    {0x006fffff800fffff, 0x000ddfff000fffff, 0xffffffffffffffff, 0x03ff03ff1ffbffff},
    {0xffffffff03ffffff, 0x01ffffffffffffff, 0xffff05ffffffffff, 0x003fffffffffffff},
    {0x01ff0fff7fffffff, 0x001f3ffffffffff1, 0xffff0fffffffffff, 0xffffffffc7ff03ff},
    {0xffffffffce7fffff, 0x001ffffe7fffffff, 0x40003fff03ff03ff, 0x0000000000000000},
    {0xffcfffffffffffff, 0x7ff007ffffff1fef, 0xfffff3ffffffffff, 0xf003ffbfffffffff},
    {0xf87fffffffffffff, 0xffffffffffffe3ff, 0xe7ffffffffff01ff, 0x04efde02000800ff},
    {0x08008fffffffffff, 0xfefff80000004000, 0x0000000007ffffff, 0x0000000000000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xfffffffff3ffffff, 0xffffffffffffffff},
    {0xffffffff3f3fffff, 0x1555ffffaaff3f3f, 0x17dfffffffffffff, 0x15dc17f707c715dc},
    {0xaf277f8fff7df800, 0x0000ffdf7f7ffc7f, 0xfffffeff00000000, 0x0000001de0000001},
    {0x040442a8c1900110, 0x000000000000fc1e, 0xffffffffffff0dff, 0xffffffffffffffff},
    {0xfffe4fffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff},
    {0xfffff9ffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff},
    {0x0000007fffffffff, 0x00000000000007ff, 0x0000000000000000, 0xfffff80000000000},
    {0xffffffffffffefff, 0xff8fffffffffffff, 0xffffffffffffffff, 0xffffffffefffffff},
    {0xffffffffffffffff, 0xffcfffffffffffff, 0xffffffffffbfffff, 0xffffffffffffffff},
    {0xffffffffffffffff, 0xcfffffffffffffff, 0xffffffffffffffff, 0xfe0c7fffffffffff},
    {0xffff20bfffffffff, 0x000100ffffffffff, 0x7f7f7f7f007fffff, 0x000000007f7f7f7f},
    {0xffffffffffffffff, 0x000000003fffffff, 0xffffffff7bffffff, 0x0007ffffffffffff},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x0fff000000000000},
    {0xf8bf03fffffffffe, 0xfffffffffffffffe, 0xffffffff607fffff, 0x7fffffffffffffff},
    {0x0000ffffffffffe0, 0x0000000000000000, 0xffffffff00030000, 0xffff000fffffffff},
    {0x0000000000000000, 0x800000000000ff00, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffff1fff, 0xffffffffffff007f},
    {0x00000fffffffffff, 0xc00f7fffffffffff, 0xffffffff0fffffff, 0x00fcffffffffffff},
    {0xffffffffffffffff, 0xfffeffffffffffff, 0xffffffffffffffff, 0xfce0000003eb07ff},
    {0x03ff0fffffffffbf, 0x00ffffffffffffff, 0xffffffffffffffff, 0xfffc000003ffc02f},
    {0xffffc7ffffffffff, 0x1fffffff8007ffff, 0xfff7ffffffffffff, 0x7fffffffc3ffbffe},
    {0x007fffffffffffff, 0xfffffffff3ff3fff, 0x3e62ffffffffffff, 0x003ffffff8000005},
    {0xffff7f7f007e7e7e, 0xffff0dff0fffffff, 0xffffffffffffffff, 0x03ff1fffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffff000fffffffff, 0x0ffffffffffff87f},
    {0x0000039a801ac000, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0xfffc000000000000, 0x0000000000000007},
    {0xc000000000000000, 0x000000000000ffff, 0x0000000000000000, 0xe000000000008000},
    {0x000000000000ffff, 0x0008000000000060, 0x0000000000000000, 0x8000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x3e00000000000000},
    {0xb7ffff7fffffefff, 0x000000003fff3fff, 0xffffffffffffffff, 0x07ffffffffffffff},
    {0xff8fffffffffff87, 0xffffffffffffffff, 0x000000011fff7fff, 0x1fffffffffff0000},
    {0x0000000000000000, 0x0000000000000000, 0xffffffff1fffffff, 0x0ffffffe0001ffff},
    {0xffffe00fffffffff, 0x003fffffffff07ff, 0xffffffffbfffffff, 0x00000000003fff0f},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffff03ff3fffffff, 0x0fffffffff0fffff},
    {0xffff00ffffffffff, 0xf7ff800fffffffff, 0x1bfbfffbffb7f7ff, 0x0000000000000000},
    {0x007fffffffffffff, 0x000000ff003fffff, 0x0000000000000001, 0x0000000000000000},
    {0x91bffffffffffd3f, 0xffffffffffbfffff, 0x0000ff807fffffff, 0xf837ffff00000000},
    {0x83ffffff8fffffff, 0x0000000000000000, 0xf0ffffffffffffff, 0xfffffffffffcffff},
    {0x003ffffffeef506f, 0xffffffff01ff01ff, 0x00000000ffffffff, 0x007ff81fffffffff},
    {0xfe3fffffffffffff, 0xff07ffffff3fffff, 0x0000fe001e03ffff, 0x0000000000000000},
    {0xffffffffffffffff, 0x00000000000001ff, 0x0007ffffffffffff, 0xfc07ffffffffffff},
    {0x03ff000fffffffff, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x7fffffff00000000, 0x000323ffffffffff, 0x0000000000000000},
    {0xffff00ffffffffff, 0xffff000003fe003f, 0xffff0000000003c3, 0x007fffff00000fff},
    {0xffffffffffffffff, 0x003efffffffc3fbf, 0xf9ffffffffffffff, 0x03ff01ffffff2007},
    {0xffc7ff7ffffffff8, 0x0077ffffffff00ff, 0xffffffffffffffff, 0x001ffffefffffbfe},
    {0x7f9ffffffffbffff, 0x0000000000000000, 0xffff03ffbfffbd7f, 0x03ff01ffffffffff},
    {0xa3edfdfffff99fef, 0x0000000fe001199f, 0x0000000000000000, 0x0000000000000000},
    {0xffffffffffffffff, 0x00000003afffffbb, 0xdbfeffffffffffff, 0x0000000003ff00f3},
    {0x0000000000000000, 0x0000000000000000, 0x7f3f7fffffffffff, 0x000000003ffffffe},
    {0x7fffffffffffffff, 0x00001fff03ff001f, 0x033fffffffffffff, 0x00000000000003ff},
    {0xffff07ffe7ffffff, 0x000000000000007f, 0x0000000000000000, 0x0000000000000000},
    {0x09ffffffffffffff, 0x0000000000000000, 0xffffffff00000000, 0x8007ffffffffffff},
    {0x99beffffff6ff27f, 0x0000000003ff0077, 0xfffffcff00000000, 0x0000001efcffffff},
    {0xffefffffffffffff, 0xffffffffffff007f, 0xffff0007fdffffff, 0x01ffffffffffffff},
    {0x7f7ffffffffffdff, 0xffff1fffffff003f, 0x007ffefffffcffff, 0x0000000000000000},
    {0xb47ffffffffffb7f, 0xfffffdbf03ff00cb, 0x000003ff017b7fff, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x01ffffff00000000},
    {0x0000000000000000, 0x0000000000000000, 0x0001000000000000, 0x8003ffffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0x0000000003ffffff, 0x0000000000000000},
    {0xffffffffffffffff, 0x001f7fffffffffff, 0xffffffffffffffff, 0xffffffffffffffff},
    {0xffffffffffffffff, 0x000000000000000f, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0xffffffffffff0000, 0x0007ffffffffffff},
    {0x01ff7fffffffffff, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0xffffffffffffffff, 0x000000000000007f, 0x0000000000000000, 0x0000000000000000},
    {0x01ffffffffffffff, 0xffffc3ff7fffffff, 0x7fffffffffffffff, 0x00203fffffff03ff},
    {0xff80ffffffffffff, 0xe0fffffbfbff003f, 0x000000000000ffff, 0x0000000000000000},
    {0x0000000000000000, 0xffffffffffffffff, 0x0000000007ffffff, 0x0000000000000000},
    {0xffffffffffffffff, 0xffffffffffff87ff, 0x00000000ffff80ff, 0x0000001f00000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x00ffffffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x00000000003fffff},
    {0x00000000000001ff, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x6fef000000000000},
    {0x00000007ffffffff, 0xffff00f000070000, 0xffffffffffffffff, 0xffffffffffffffff},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x0fffffffffffffff},
    {0xffffffffffffffff, 0x1fff07ffffffffff, 0x0000000fb3ff01ff, 0x0000000000000000},
    {0xffff3fffffffffff, 0xffffffffffff007f, 0xffffffffffffffff, 0x000000000000000f},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x003fffffffffffff},
    {0xfffffe7fffffffff, 0x07f81c003fffffff, 0x07ffc3fffffff018, 0x000007fffffffffe},
    {0xffffffffffffffff, 0x0000000000000023, 0x0000000000000000, 0x000fffff00000000},
    {0xffffffffffffffff, 0x01ffffff007fffff, 0x0000000000000000, 0x0000000000000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0x0000fffef8000fff, 0x0000000000000000},
    {0x000000007fffffff, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0x3f801fffffffffff, 0x000000000000c3ff, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x00003fffffff0000, 0x83ff0fffffffffff},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x7fff6f7f00000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x000000000000ff9f},
    {0xffffffffffffffff, 0x00000000c3ff080f, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0xfffe000000000000, 0x001fffffffffffff, 0x0000000000000000},
    {0x3ffffffffffffffe, 0x0000000000000000, 0x0000000000000000, 0x0000000000000000},
    {0x0000000000000000, 0x0000000000000000, 0x0000000000000000, 0x0003000000000000},
    {0xffff0fffffffffff, 0xffffffffffffffff, 0xfffe7fff000fffff, 0x003ffffffffefffe},
    {0x000080000000f800, 0xffffe3ffffff0000, 0x00003ffffffeffff, 0xffffffc000000000},
    {0x0000000000000000, 0x0000003f00000000, 0x0000000000000000, 0x0000000000000000},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff, 0x1fff1fffe0ffffff},
    {0xffffffffffffffff, 0x000fffffffffffff, 0xffffffffffffffff, 0x00010fff01ffffff},
    {0xffffffffffff0fff, 0xffffffff03ff00ff, 0x00033fffffff00ff, 0x0000000000000000},
    {0xffffffffffffffff, 0x1f1f3fff000fffff, 0x07ff1fffffff007f, 0x007f00ff03ff003f},
    {0xffffffffffffffff, 0xffffffffffffffff, 0xfffffffffff7ffff, 0x00000000000007ff},
};

/* Whether c is NFKC-stable: set in the table for U+0000-U+1FFFF, never from U+20000 on. */
static inline int nfkc_stable(Py_UCS4 c) {
    return c < 0x20000 && (stable_bits[stable_index[c >> 8]][(c >> 6) & 3] >> (c & 63)) & 1;
}

/* The steps of a pass: FIRST, LAST; STABLE: stop at a character that may not be NFKC. */
enum { FIRST = 1, LAST = 2, STABLE = 4 };

/* What a pass of ``mode`` does with ``c`` (from U+0080 on): LEAVE it, an action of one of its
 * steps, or stop (UNSTABLE): after its first step, the character is not NFKC-stable. */
static inline unsigned fold_step(Py_UCS4 c, int mode) {
    unsigned act = fold_action(c);
    if (act != LEAVE && act < LAST_STEP && (mode & FIRST))
        return act;
    if ((mode & STABLE) && !nfkc_stable(c))
        return UNSTABLE;
    if (act >= LAST_STEP && (mode & LAST))
        return act;
    return LEAVE;
}

/* Buffers the output of a pass: ``cap`` characters of the input's kind. */
typedef struct {
    void *data;
    Py_ssize_t len, cap;
} Buffer;

/* Makes room for at least ``need`` characters of ``size`` bytes (at least doubling). */
static int grow(Buffer *b, Py_ssize_t need, size_t size) {
    Py_ssize_t cap = b->cap > need / 2 ? 2 * b->cap : need;
    void *data;
    if (cap < need || (size_t)cap > (size_t)PY_SSIZE_T_MAX / size) {
        PyErr_NoMemory();
        return -1;
    }
    data = PyMem_Realloc(b->data, (size_t)cap * size);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

/* The characters of a call's text that are not NFKC-stable, each with its NFKC (the nfkc
 * callable's result for it alone) when that is made of NFKC-stable characters only. */
#define MAX_SUBSTITUTES 16
typedef struct {
    PyObject *nfkc;
    int n;
    Py_UCS4 chars[MAX_SUBSTITUTES];
    PyObject *nfkcs[MAX_SUBSTITUTES];
} Substitutes;

/* What stands for ``c`` (not NFKC-stable) after NFKC, borrowed from ``s``; or NULL: with
 * ``*status`` 0 when nothing can (its NFKC holds a character that is not NFKC-stable, or
 * the text holds too many such characters), -1 when an exception was raised. */
static PyObject *substitute(Substitutes *s, Py_UCS4 c, int *status) {
    PyObject *one, *r;
    Py_ssize_t j, n;
    int i, kind;
    const void *data;

    for (i = 0; i < s->n; i++)
        if (s->chars[i] == c)
            return s->nfkcs[i];
    *status = 0;
    if (s->n == MAX_SUBSTITUTES)
        return NULL;
    one = PyUnicode_FromOrdinal((int)c);
    if (one == NULL) {
        *status = -1;
        return NULL;
    }
    r = PyObject_CallOneArg(s->nfkc, one);
    Py_DECREF(one);
    if (r == NULL || !PyUnicode_Check(r)) {
        if (r != NULL)
            PyErr_Format(PyExc_TypeError, "fold() argument 2 must return str, not %.80s",
                         Py_TYPE(r)->tp_name);
        Py_XDECREF(r);
        *status = -1;
        return NULL;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(r) < 0) {
        Py_DECREF(r);
        *status = -1;
        return NULL;
    }
#endif
    n = PyUnicode_GET_LENGTH(r);
    kind = PyUnicode_KIND(r);
    data = PyUnicode_DATA(r);
    for (j = 0; j < n; j++)
        if (!nfkc_stable(PyUnicode_READ(kind, data, j))) {
            Py_DECREF(r);
            return NULL;
        }
    s->chars[s->n] = c;
    s->nfkcs[s->n++] = r;
    return r;
}

/* The passes, once per kind (T its code unit; HIGH has the bits of a 64-bit word that are
 * set when one of the characters it holds is not ASCII). */
#define DEFINE_FOLD(NAME, T, HIGH)                                                                 \
    /* How many characters from ``p`` on the pass leaves as they are. */                           \
    static Py_ssize_t NAME##_span(const T *p, const T *end, int mode) {                            \
        const T *start = p;                                                                        \
        const Py_ssize_t lanes = 8 / (Py_ssize_t)sizeof(T);                                        \
        uint64_t w;                                                                                \
        for (;;) {                                                                                 \
            while (end - p >= lanes) {                                                             \
                memcpy(&w, p, 8);                                                                  \
                if (w & (HIGH))                                                                    \
                    break;                                                                         \
                p += lanes;                                                                        \
            }                                                                                      \
            while (p < end && *p < 0x80)                                                           \
                p++;                                                                               \
            if (p == end || fold_step(*p, mode) != LEAVE)                                          \
                return p - start;                                                                  \
            p++;                                                                                   \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* The pass from ``s[i]`` on (the ``i`` characters before, left as they were, are in           \
     * ``b``); returns 1, 0 when in STABLE mode it met a character that may leave the text not     \
     * NFKC, or -1 (an exception raised). */                                                       \
    static int NAME(const T *s, Py_ssize_t n, Py_ssize_t i, int mode, Buffer *b,                   \
                    Substitutes *subs) {                                                           \
        const T *p = s + i, *end = s + n;                                                          \
        T *out = (T *)b->data;                                                                     \
        Py_ssize_t o = i, k, len, j;                                                               \
        unsigned act;                                                                              \
        PyObject *r;                                                                               \
        int status, rkind;                                                                         \
        const void *rdata;                                                                         \
        Py_UCS4 c;                                                                                 \
        while (p < end) {                                                                          \
            k = NAME##_span(p, end, mode);                                                         \
            memcpy(out + o, p, (size_t)k * sizeof(T));                                             \
            o += k;                                                                                \
            p += k;                                                                                \
            if (p == end)                                                                          \
                break;                                                                             \
            c = *p++;                                                                              \
            act = fold_step(c, mode);                                                              \
            if (act == UNSTABLE) { /* NFKC's result for it, then its last step */                  \
                if ((r = substitute(subs, c, &status)) == NULL)                                    \
                    return status;                                                                 \
                len = PyUnicode_GET_LENGTH(r);                                                     \
                rkind = PyUnicode_KIND(r);                                                         \
                rdata = PyUnicode_DATA(r);                                                         \
                if (b->cap - o < len + (end - p)) {                                                \
                    if (grow(b, o + len + (end - p), sizeof(T)) < 0)                               \
                        return -1;                                                                 \
                    out = (T *)b->data;                                                            \
                }                                                                                  \
                for (j = 0; j < len; j++) {                                                        \
                    c = PyUnicode_READ(rkind, rdata, j);                                           \
                    if (c > (Py_UCS4)(T)-1)                                                        \
                        return 0; /* wider than the text */                                        \
                    if (c >= 0x80 && (act = fold_step(c, LAST)) != LEAVE)                          \
                        c = act;                                                                   \
                    out[o++] = (T)c;                                                               \
                }                                                                                  \
            } else if (act == DOTS) {                                                              \
                if (b->cap - o < 3 + (end - p)) {                                                  \
                    if (grow(b, o + 3 + (end - p), sizeof(T)) < 0)                                 \
                        return -1;                                                                 \
                    out = (T *)b->data;                                                            \
                }                                                                                  \
                out[o++] = '.';                                                                    \
                out[o++] = '.';                                                                    \
                out[o++] = '.';                                                                    \
            } else if (act != DROP)                                                                \
                out[o++] = (T)(act == NBSP ? ' ' : act);                                           \
        }                                                                                          \
        b->len = o;                                                                                \
        return 1;                                                                                  \
    }

DEFINE_FOLD(fold1, Py_UCS1, 0x8080808080808080ULL)
DEFINE_FOLD(fold2, Py_UCS2, 0xff80ff80ff80ff80ULL)
DEFINE_FOLD(fold4, Py_UCS4, 0xffffff80ffffff80ULL)

/* One pass of ``mode`` over ``text``: a new reference; or NULL, with ``*status`` 0 when in
 * STABLE mode the text may not be NFKC, -1 when an exception was raised. */
static PyObject *fold_pass(PyObject *text, int mode, Substitutes *subs, int *status) {
    Py_ssize_t n, i;
    int kind, done;
    const void *in;
    Buffer b;
    PyObject *res;

    *status = -1;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return NULL;
#endif
    n = PyUnicode_GET_LENGTH(text);
    kind = PyUnicode_KIND(text);
    in = PyUnicode_DATA(text);
    switch (kind) {
    case PyUnicode_1BYTE_KIND: i = fold1_span(in, (const Py_UCS1 *)in + n, mode); break;
    case PyUnicode_2BYTE_KIND: i = fold2_span(in, (const Py_UCS2 *)in + n, mode); break;
    default: i = fold4_span(in, (const Py_UCS4 *)in + n, mode); break;
    }
    if (i == n) { /* left as it is */
        if (PyUnicode_CheckExact(text)) {
            Py_INCREF(text);
            return text;
        }
        return PyUnicode_FromKindAndData(kind, in, n);
    }
    b.len = 0;
    b.cap = n + 16;
    b.data = PyMem_Malloc((size_t)b.cap * (size_t)kind);
    if (b.data == NULL)
        return PyErr_NoMemory();
    memcpy(b.data, in, (size_t)i * (size_t)kind);
    switch (kind) {
    case PyUnicode_1BYTE_KIND: done = fold1(in, n, i, mode, &b, subs); break;
    case PyUnicode_2BYTE_KIND: done = fold2(in, n, i, mode, &b, subs); break;
    default: done = fold4(in, n, i, mode, &b, subs); break;
    }
    res = done > 0 ? PyUnicode_FromKindAndData(kind, b.data, b.len) : NULL;
    PyMem_Free(b.data);
    *status = res == NULL && done > 0 ? -1 : done;
    return res;
}

static PyObject *fold(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *text, *first, *normal, *res;
    Substitutes subs;
    int status, i;

    (void)self;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "fold() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    text = args[0];
    if (!PyUnicode_Check(text)) {
        PyErr_Format(PyExc_TypeError, "fold() argument 1 must be str, not %.80s",
                     Py_TYPE(text)->tp_name);
        return NULL;
    }
    subs.nfkc = args[1];
    subs.n = 0;
    if (!PyCallable_Check(subs.nfkc)) {
        PyErr_Format(PyExc_TypeError, "fold() argument 2 must be callable, not %.80s",
                     Py_TYPE(subs.nfkc)->tp_name);
        return NULL;
    }
    res = fold_pass(text, FIRST | LAST | STABLE, &subs, &status);
    for (i = 0; i < subs.n; i++)
        Py_DECREF(subs.nfkcs[i]);
    subs.n = 0;
    if (res != NULL || status < 0)
        return res;
    /* NFKC may change the text after its first step: the steps one at a time. */
    first = fold_pass(text, FIRST, &subs, &status);
    if (first == NULL)
        return NULL;
    normal = PyObject_CallOneArg(subs.nfkc, first);
    Py_DECREF(first);
    if (normal == NULL)
        return NULL;
    if (!PyUnicode_Check(normal)) {
        PyErr_Format(PyExc_TypeError, "fold() argument 2 must return str, not %.80s",
                     Py_TYPE(normal)->tp_name);
        Py_DECREF(normal);
        return NULL;
    }
    res = fold_pass(normal, LAST, &subs, &status);
    Py_DECREF(normal);
    return res;
}

/* --- has_c0(): the raw control bytes a feed parser stops at ------------------------- */

/* Whether ``data`` holds a C0 control other than tab, LF and CR (0x00-0x08, 0x0B, 0x0C,
 * 0x0E-0x1F), which XML and JSON forbid. monitor.parse makes each such byte a space before
 * parsing; nearly no feed holds one, and this read-only pass (16 bytes at a time with
 * SSE2) spares it the copy of the whole body that bytes.translate makes. */
static inline int c0_byte(unsigned char c) {
    return c < 0x20 && c != '\t' && c != '\n' && c != '\r';
}

static PyObject *has_c0(PyObject *self, PyObject *arg) {
    Py_buffer view;
    const unsigned char *p, *end;
    int found = 0;

    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    p = (const unsigned char *)view.buf;
    end = p + view.len;
#if defined(__SSE2__) && !defined(TEXTNORM_NO_SSE2)
    {
        const __m128i below = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t'),
                      lf = _mm_set1_epi8('\n'), cr = _mm_set1_epi8('\r');
        for (; end - p >= 16 && !found; p += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)p);
            /* unsigned x <= 0x1f, and not one of the three */
            __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(x, below), x);
            __m128i ok = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, tab), _mm_cmpeq_epi8(x, lf)),
                                      _mm_cmpeq_epi8(x, cr));
            found = _mm_movemask_epi8(_mm_andnot_si128(ok, low)) != 0;
        }
    }
#endif
    for (; p < end && !found; p++)
        found = c0_byte(*p);
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

static PyMethodDef methods[] = {
    {"fold", (PyCFunction)(void (*)(void))fold, METH_FASTCALL,
     "fold(text, nfkc, /)\n--\n\n"
     "``text`` with no-break spaces made spaces, ellipses \"...\" and the invisibles dropped;\n"
     "then ``nfkc`` of that (called only when it may not be NFKC); then quotes, dashes and\n"
     "C1 controls folded to ASCII."},
    {"tidy", (PyCFunction)(void (*)(void))tidy, METH_FASTCALL,
     "tidy(text, limit, /)\n--\n\n"
     "``text`` with \"\\r\" made \"\\n\", controls made spaces, each line's words joined by "
     "one space,\nempty lines dropped, cut to ``limit`` characters and stripped."},
    {"has_c0", has_c0, METH_O,
     "has_c0(data, /)\n--\n\n"
     "Whether the bytes ``data`` hold a C0 control other than tab, LF and CR."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_textnorm",
    .m_doc = "The character and whitespace stages of monitor.textnorm.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__textnorm(void) {
    PyObject *m;
    init_classes();
    init_folds();
    m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddStringConstant(m, "UNIDATA_VERSION", UNIDATA_VERSION) < 0)
        Py_CLEAR(m);
    return m;
}
