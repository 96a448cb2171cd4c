/* The text of an entry's HTML in one pass, without building a tree.
 *
 * text(html, markup) reads ``html`` as an HTML5 tokenizer does (tags with their attributes
 * and quoted values, comments, bogus comments, raw-text elements, character references)
 * and writes out only the text a reader would see:
 *
 * - the content of script, style and title (raw text) and of template, svg and math
 *   (nested markup, counted by depth) is dropped; that of noscript is kept, as a feed
 *   reader runs no scripts;
 * - the content of xmp, iframe, noembed, noframes and plaintext is text as written, that of
 *   textarea text with its references decoded (as libxml2 reads them too);
 * - a start or end tag of a block element (monitor.clean's list) becomes a newline;
 * - a self-closing tag (``<script src="..."/>``, as XML serialisers write them) has no
 *   content, whatever its element (HTML5 would read on; libxml2 does not either), but for
 *   template, which HTML5 and libxml2 open all the same;
 *   every other tag, every comment, doctype and processing instruction disappears;
 * - character references are decoded as Python's html.unescape decodes them (the HTML5
 *   table, legacy names without ";" included), except that a numeric reference to a C0
 *   control but tab/LF/CR, or to U+FFFE/U+FFFF, becomes a space, as a raw one does;
 * - raw C0 controls but tab/LF/CR, U+FFFE and U+FFFF become spaces, lone surrogates U+FFFD,
 *   and U+2028, U+2029 and NEL newlines; other whitespace is left as written.
 *
 * With markup false, ``html`` is plain text: only references and the characters above
 * are treated. The work is linear in the input (one forward pass; a reference looks at most
 * 33 characters ahead) and the output is never longer than the input, so a hostile entry
 * costs one pass and one buffer of its length; there is no nesting limit and no tree.
 *
 * The input is read as Python stores it (1, 2 or 4 bytes a character): every function of
 * the pass takes that width as a constant and is inlined into one copy of the pass per
 * width. The output starts at the input's width and is widened once if a reference (the
 * only thing that can) writes a character that does not fit. Widening the input to 4 bytes
 * and narrowing the output back took a sixth of the time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define NAME_MAX_CHARS 15 /* longer tag names are never special */
#define REF_MAX_CHARS 32  /* as html.unescape: [^\t\n\f <&#;]{1,32};? */

static PyObject *entities;   /* html.entities.html5 */
static Py_ssize_t legacy_max; /* longest name without ";" in it */

#if defined(__GNUC__) || defined(__clang__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

typedef struct {
    const void *s; /* the input, ``kind`` bytes a character (the passes' argument) */
    Py_ssize_t len;
    void *out;      /* cap characters of out_kind bytes */
    int out_kind;   /* 1, 2 or 4: at least the input's; widened as a reference needs */
    int failed;     /* no memory to widen the output */
    Py_ssize_t n;
    Py_ssize_t cap;
} Reader;

INLINE Py_UCS4 at(const Reader *r, int kind, Py_ssize_t i) {
    return kind == 1   ? ((const Py_UCS1 *)r->s)[i]
           : kind == 2 ? ((const Py_UCS2 *)r->s)[i]
                       : ((const Py_UCS4 *)r->s)[i];
}

static inline int is_space(Py_UCS4 c) { /* HTML5 whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static inline int is_alpha(Py_UCS4 c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

/* The output made ``kind`` bytes a character wide (its characters moved to a new buffer);
 * -1, with r->failed set and the output as it was, when there is no memory for that. */
static int widen(Reader *r, int kind) {
    void *out = PyMem_Malloc((size_t)kind * (size_t)(r->cap + 1));
    Py_ssize_t k;
    if (out == NULL) {
        r->failed = 1;
        return -1;
    }
    for (k = 0; k < r->n; k++) {
        Py_UCS4 c = PyUnicode_READ(r->out_kind, r->out, k);
        PyUnicode_WRITE(kind, out, k, c);
    }
    PyMem_Free(r->out);
    r->out = out;
    r->out_kind = kind;
    return 0;
}

INLINE void put(Reader *r, Py_UCS4 c) {
    if (c < 0x20) {
        if (c != '\t' && c != '\n' && c != '\r')
            c = ' ';
    } else if (c >= 0x80) {
        if (c == 0x85 || c == 0x2028 || c == 0x2029)
            c = '\n';
        else if (c == 0xFFFE || c == 0xFFFF)
            c = ' ';
        else if (c >= 0xD800 && c <= 0xDFFF)
            c = 0xFFFD;
    }
    if (r->n >= r->cap) /* never: nothing writes more than it reads (see text()) */
        return;
    if ((r->out_kind == 1 && c > 0xFF) || (r->out_kind == 2 && c > 0xFFFF)) {
        if (widen(r, c > 0xFFFF ? 4 : 2) < 0)
            return;
    }
    PyUnicode_WRITE(r->out_kind, r->out, r->n, c);
    r->n++;
}

/* Whether put() writes ``c`` as it is and it is neither "<" nor "&": text to copy. Below
 * U+0100 by a table (filled at import), a load per character of the run loop. */
static unsigned char plain_byte[256];

static int plain_slow(Py_UCS4 c) {
    if (c < 0x80)
        return c >= 0x20 ? c != '<' && c != '&' : c == '\n' || c == '\t' || c == '\r';
    return c != 0x85 && c != 0x2028 && c != 0x2029 && (c < 0xD800 || c > 0xDFFF) &&
           c != 0xFFFE && c != 0xFFFF;
}

INLINE int plain(Py_UCS4 c) {
    if (c < 0x100)
        return plain_byte[c];
    return c != 0x2028 && c != 0x2029 && (c < 0xD800 || c > 0xDFFF) && c != 0xFFFE &&
           c != 0xFFFF;
}

/* Input characters [start, end), all plain(), written out as they are. */
INLINE void put_run(Reader *r, int kind, Py_ssize_t start, Py_ssize_t end) {
    Py_ssize_t k, count = end - start;
    if (count > r->cap - r->n) /* never, as in put() */
        return;
    if (kind == r->out_kind) {
        memcpy((char *)r->out + r->n * kind, (const char *)r->s + start * kind,
               (size_t)(count * kind));
    } else if (r->out_kind == 2) { /* and kind 1: a reference widened the output */
        Py_UCS2 *out = (Py_UCS2 *)r->out + r->n;
        for (k = 0; k < count; k++)
            out[k] = (Py_UCS2)at(r, kind, start + k);
    } else {
        Py_UCS4 *out = (Py_UCS4 *)r->out + r->n;
        for (k = 0; k < count; k++)
            out[k] = at(r, kind, start + k);
    }
    r->n += count;
}

/* --- character references ------------------------------------------------------------ */

/* Windows-1252 for the references HTML5 reads so (html._invalid_charrefs, 0x80-0x9F). */
static const Py_UCS4 cp1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178,
};

/* The character a numeric reference to ``n`` gives, or (Py_UCS4)-1 for none. */
static Py_UCS4 numeric_char(Py_UCS4 n) {
    if (n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF))
        return 0xFFFD;
    if (n < 0x20 || n == 0xFFFE || n == 0xFFFF) /* controls as spaces; see put() */
        return (n == '\t' || n == '\n' || n == '\r') ? n : ' ';
    if (n >= 0x80 && n <= 0x9F) /* 0x81, 0x8D, 0x8F, 0x90, 0x9D stay C1 controls */
        return cp1252[n - 0x80];
    if (n == 0x7F || n == 0x0B || (n >= 0xFDD0 && n <= 0xFDEF) || (n & 0xFFFE) == 0xFFFE)
        return (Py_UCS4)-1; /* html._invalid_codepoints */
    return n;
}

/* A numeric reference at i ("&#...") that ends by ``end``: its end, or 0 when there is none. */
INLINE Py_ssize_t numeric_ref(Reader *r, int kind, Py_ssize_t i, Py_ssize_t end) {
    Py_ssize_t j = i + 2;
    int hex = j < end && (at(r, kind, j) | 0x20) == 'x';
    Py_UCS4 n = 0;
    Py_ssize_t start;
    if (hex)
        j++;
    start = j;
    for (; j < end; j++) {
        Py_UCS4 c = at(r, kind, j), d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (hex && (c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            break;
        if (n <= 0x10FFFF) /* past it stays past it: no overflow */
            n = n * (hex ? 16 : 10) + d;
    }
    if (j == start)
        return 0;
    if (j < end && at(r, kind, j) == ';')
        j++;
    Py_UCS4 c = numeric_char(n);
    if (c != (Py_UCS4)-1)
        put(r, c);
    return j;
}

/* A named reference at i ("&name") that ends by ``end``: its end, 0 when there is none, -1
 * on error. */
INLINE Py_ssize_t named_ref(Reader *r, int kind, Py_ssize_t i, Py_ssize_t end) {
    Py_ssize_t j = i + 1, x, longest;
    PyObject *full, *value;
    Py_UCS4 maxc = 0;
    while (j < end && j - i - 1 < REF_MAX_CHARS) {
        Py_UCS4 c = at(r, kind, j);
        if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' ||
            c == '#' || c == ';')
            break;
        if (c > maxc)
            maxc = c;
        j++;
    }
    if (j == i + 1)
        return 0;
    if (j < end && at(r, kind, j) == ';')
        j++;
    longest = j - i - 1;
    full = PyUnicode_New(longest, maxc > ';' ? maxc : ';');
    if (full == NULL)
        return -1;
    for (x = 0; x < longest; x++)
        PyUnicode_WRITE(PyUnicode_KIND(full), PyUnicode_DATA(full), x, at(r, kind, i + 1 + x));
    /* The whole name (with its ";"), else its longest prefix that is a name without one. */
    for (x = longest; x >= 2; x = (x - 1 < legacy_max ? x - 1 : legacy_max)) {
        PyObject *name = x == longest ? (Py_INCREF(full), full)
                                      : PyUnicode_Substring(full, 0, x);
        if (name == NULL)
            break;
        value = PyDict_GetItemWithError(entities, name);
        Py_DECREF(name);
        if (value != NULL) {
            Py_ssize_t k, n = PyUnicode_GET_LENGTH(value);
            for (k = 0; k < n; k++)
                put(r, PyUnicode_READ_CHAR(value, k));
            Py_DECREF(full);
            return i + 1 + x;
        }
        if (PyErr_Occurred())
            break;
    }
    Py_DECREF(full);
    return PyErr_Occurred() ? -1 : 0;
}

/* A reference at i ("&") that ends by ``end``: its end after writing what it stands for,
 * or i + 1 after writing the "&" itself when it is none; -1 on error. */
INLINE Py_ssize_t reference(Reader *r, int kind, Py_ssize_t i, Py_ssize_t end) {
    Py_ssize_t after;
    if (i + 1 < end && at(r, kind, i + 1) == '#')
        after = numeric_ref(r, kind, i, end);
    else
        after = named_ref(r, kind, i, end);
    if (after != 0)
        return after;
    put(r, '&');
    return i + 1;
}

/* --- tags -------------------------------------------------------------------------------- */

/* What an element is to this pass. */
enum kind { OTHER, BLOCK, DROPPED, KEPT, RCDATA, PLAINTEXT, NESTED };

typedef struct {
    char name[NAME_MAX_CHARS + 1]; /* lower-case ASCII; "" when too long or not ASCII */
    enum kind kind;
    int end; /* an end tag */
    int self_closing;
} Tag;

typedef struct {
    const char *name;
    enum kind kind;
} Element;

/* BLOCK: its tags are line breaks. DROPPED: raw text, not
 * shown. KEPT: raw text, shown as written. RCDATA: text with references, shown. PLAINTEXT:
 * the rest of the input is text. NESTED: markup, not shown (counted by depth). */
static const Element ELEMENTS[] = {
    {"address", BLOCK}, {"article", BLOCK}, {"aside", BLOCK}, {"blockquote", BLOCK},
    {"br", BLOCK}, {"caption", BLOCK}, {"center", BLOCK}, {"dd", BLOCK}, {"details", BLOCK},
    {"dialog", BLOCK}, {"dir", BLOCK}, {"div", BLOCK}, {"dl", BLOCK}, {"dt", BLOCK},
    {"fieldset", BLOCK}, {"figcaption", BLOCK}, {"figure", BLOCK}, {"footer", BLOCK},
    {"form", BLOCK}, {"h1", BLOCK}, {"h2", BLOCK}, {"h3", BLOCK}, {"h4", BLOCK},
    {"h5", BLOCK}, {"h6", BLOCK}, {"header", BLOCK}, {"hgroup", BLOCK}, {"hr", BLOCK},
    {"iframe", KEPT}, {"legend", BLOCK}, {"li", BLOCK}, {"listing", BLOCK}, {"main", BLOCK},
    {"math", NESTED}, {"menu", BLOCK}, {"nav", BLOCK}, {"noembed", KEPT},
    {"noframes", KEPT}, {"ol", BLOCK}, {"p", BLOCK}, {"plaintext", PLAINTEXT},
    {"pre", BLOCK}, {"script", DROPPED}, {"search", BLOCK}, {"section", BLOCK},
    {"style", DROPPED}, {"summary", BLOCK}, {"svg", NESTED}, {"table", BLOCK},
    {"tbody", BLOCK}, {"td", BLOCK}, {"template", NESTED}, {"textarea", RCDATA},
    {"tfoot", BLOCK}, {"th", BLOCK}, {"thead", BLOCK}, {"title", DROPPED}, {"tr", BLOCK},
    {"ul", BLOCK}, {"xmp", KEPT},
};

/* ELEMENTS by a hash of their names, filled at import: most tags are looked up with one
 * probe and one strcmp (a, span, img...: an empty slot at once). */
#define SLOTS 256
static const Element *slots[SLOTS];

static inline unsigned slot_of(const char *name) {
    unsigned h = 5381;
    for (; *name; name++)
        h = h * 33 + (unsigned char)*name;
    return h % SLOTS;
}

static inline enum kind kind_of(const char *name) {
    for (unsigned i = slot_of(name);; i = (i + 1) % SLOTS) {
        const Element *found = slots[i];
        if (found == NULL)
            return OTHER;
        if (strcmp(found->name, name) == 0)
            return found->kind;
    }
}

/* Reads a tag whose name starts at i (after "<" or "</"); returns the index after its ">",
 * or -1 when the input ends inside it (HTML5 then drops the tag). */
INLINE Py_ssize_t read_tag(const Reader *r, int kind, Py_ssize_t i, Tag *tag) {
    Py_ssize_t n = 0;
    Py_UCS4 c, quote;
    tag->self_closing = 0;
    for (; i < r->len; i++, n++) {
        c = at(r, kind, i);
        if (is_space(c) || c == '/' || c == '>')
            break;
        if (n < NAME_MAX_CHARS)
            /* NUL (U+FFFD to HTML5) and non-ASCII characters make a name no element has */
            tag->name[n] = (c < 0x80 && c != 0) ? (char)((c >= 'A' && c <= 'Z') ? c | 0x20 : c)
                                                : '\x01';
    }
    tag->name[n <= NAME_MAX_CHARS ? n : 0] = '\0';
    tag->kind = kind_of(tag->name);
    /* Attributes: names run to whitespace, "/", ">" or "="; a value is quoted or runs to
     * whitespace or ">". Only where a value starts do quotes matter. */
    while (i < r->len) {
        c = at(r, kind, i);
        if (c == '>')
            return i + 1;
        if (c == '/') {
            tag->self_closing = i + 1 < r->len && at(r, kind, i + 1) == '>';
            i++;
            continue;
        }
        if (is_space(c)) {
            i++;
            continue;
        }
        i++; /* an attribute name's first character may be "=" */
        while (i < r->len && !is_space(c = at(r, kind, i)) && c != '/' && c != '>' && c != '=')
            i++;
        while (i < r->len && is_space(at(r, kind, i)))
            i++;
        if (i >= r->len || at(r, kind, i) != '=')
            continue;
        i++;
        while (i < r->len && is_space(at(r, kind, i)))
            i++;
        if (i >= r->len)
            break;
        quote = at(r, kind, i);
        if (quote == '"' || quote == '\'') {
            if (kind == 1) { /* long values (URLs, styles) are common: memchr's pace */
                const Py_UCS1 *s = r->s, *found = memchr(s + i + 1, (int)quote, r->len - i - 1);
                i = found == NULL ? r->len : found - s;
            } else {
                for (i++; i < r->len && at(r, kind, i) != quote; i++)
                    ;
            }
            i++;
        } else {
            while (i < r->len && !is_space(c = at(r, kind, i)) && c != '>')
                i++;
        }
    }
    return -1;
}

/* Where the raw text of element ``name`` that starts at i ends: at its "</name" followed by
 * whitespace, "/" or ">", or at the end of the input. */
INLINE Py_ssize_t raw_end(const Reader *r, int kind, Py_ssize_t i, const char *name) {
    size_t len = strlen(name), k;
    for (; i + 1 + (Py_ssize_t)len < r->len; i++) {
        if (at(r, kind, i) != '<' || at(r, kind, i + 1) != '/')
            continue;
        for (k = 0; k < len; k++) {
            Py_UCS4 c = at(r, kind, i + 2 + k);
            if (c >= 0x80 || (char)(c | 0x20) != name[k])
                break;
        }
        if (k == len) {
            Py_ssize_t after = i + 2 + (Py_ssize_t)len;
            Py_UCS4 c = after < r->len ? at(r, kind, after) : '>';
            if (is_space(c) || c == '/' || c == '>')
                return i;
        }
    }
    return r->len;
}

/* Where a comment or bogus comment at i ("<!", "<?" or "</" not followed by a letter)
 * ends, after its closing. */
INLINE Py_ssize_t comment_end(const Reader *r, int kind, Py_ssize_t i) {
    Py_ssize_t j;
    if (i + 3 < r->len && at(r, kind, i + 1) == '!' && at(r, kind, i + 2) == '-' && at(r, kind, i + 3) == '-') {
        j = i + 4;
        if (j < r->len && at(r, kind, j) == '>') /* <!--> */
            return j + 1;
        if (j + 1 < r->len && at(r, kind, j) == '-' && at(r, kind, j + 1) == '>') /* <!---> */
            return j + 2;
        for (; j + 2 < r->len; j++) {
            if (at(r, kind, j) == '-' && at(r, kind, j + 1) == '-') {
                if (at(r, kind, j + 2) == '>')
                    return j + 3;
                if (at(r, kind, j + 2) == '!' && j + 3 < r->len && at(r, kind, j + 3) == '>')
                    return j + 4;
            }
        }
        return r->len;
    }
    for (j = i + 2; j < r->len; j++)
        if (at(r, kind, j) == '>')
            return j + 1;
    return r->len;
}

/* --- the pass ------------------------------------------------------------------------------ */

/* Text from i to ``end`` as written (raw text), or with references decoded. */
INLINE int copy_text(Reader *r, int kind, Py_ssize_t i, Py_ssize_t end, int decode) {
    while (i < end) {
        Py_UCS4 c = at(r, kind, i);
        if (decode && c == '&') {
            /* a reference never reads past the element's text */
            if ((i = reference(r, kind, i, end)) < 0)
                return -1;
        } else {
            put(r, c);
            i++;
        }
    }
    return 0;
}

INLINE int markup_pass(Reader *r, int kind) {
    Py_ssize_t i = 0;
    char nested[NAME_MAX_CHARS + 1] = ""; /* the dropped element we are in, if any */
    Py_ssize_t depth = 0;
    Tag tag;
    while (i < r->len) {
        Py_UCS4 c = at(r, kind, i);
        if (depth == 0) { /* most characters: copied as they are, a run at a time */
            Py_ssize_t start = i, len = r->len;
            while (plain(c)) {
                if (++i == len)
                    break;
                c = at(r, kind, i);
            }
            put_run(r, kind, start, i);
            if (i == len)
                break;
        }
        if (c == '&' && depth == 0) {
            if ((i = reference(r, kind, i, r->len)) < 0)
                return -1;
            continue;
        }
        if (c != '<' || i + 1 >= r->len) {
            if (depth == 0)
                put(r, c);
            i++;
            continue;
        }
        c = at(r, kind, i + 1);
        if (is_alpha(c)) {
            tag.end = 0;
            i = read_tag(r, kind, i + 1, &tag);
        } else if (c == '/' && i + 2 < r->len && is_alpha(at(r, kind, i + 2))) {
            tag.end = 1;
            i = read_tag(r, kind, i + 2, &tag);
        } else if (c == '/' && i + 2 < r->len && at(r, kind, i + 2) == '>') {
            i += 3; /* </> */
            continue;
        } else if (c == '!' || c == '?' || c == '/') {
            i = comment_end(r, kind, i);
            continue;
        } else {
            if (depth == 0)
                put(r, '<');
            i++;
            continue;
        }
        if (i < 0)
            break;
        if (depth > 0) { /* inside template, svg or math: only its own tags count */
            if (strcmp(tag.name, nested) == 0 && (tag.end || !tag.self_closing))
                depth += tag.end ? -1 : 1;
            else if (tag.kind == PLAINTEXT && !tag.end)
                i = r->len;
            else if (tag.kind >= DROPPED && tag.kind <= RCDATA && !tag.end && !tag.self_closing)
                i = raw_end(r, kind, i, tag.name);
            continue;
        }
        if (tag.kind == BLOCK) {
            put(r, '\n');
            continue;
        }
        if (tag.end || (tag.self_closing && tag.kind != NESTED))
            continue; /* <script src="..."/>, as XML serialisers write it: empty */
        switch (tag.kind) {
        case DROPPED:
            i = raw_end(r, kind, i, tag.name);
            break;
        case KEPT:
        case RCDATA: {
            Py_ssize_t end = raw_end(r, kind, i, tag.name);
            if (copy_text(r, kind, i, end, tag.kind == RCDATA) < 0)
                return -1;
            i = end;
            break;
        }
        case PLAINTEXT:
            copy_text(r, kind, i, r->len, 0); /* cannot fail: it decodes nothing */
            i = r->len;
            break;
        case NESTED:
            if (!(tag.self_closing && strcmp(tag.name, "template") != 0)) {
                strcpy(nested, tag.name);
                depth = 1;
            }
            break;
        default:
            break;
        }
    }
    return 0;
}

/* The pass for input ``kind`` bytes a character wide: one inlined copy per width. */
static int pass_1(Reader *r, int markup) {
    return markup ? markup_pass(r, 1) : copy_text(r, 1, 0, r->len, 1);
}
static int pass_2(Reader *r, int markup) {
    return markup ? markup_pass(r, 2) : copy_text(r, 2, 0, r->len, 1);
}
static int pass_4(Reader *r, int markup) {
    return markup ? markup_pass(r, 4) : copy_text(r, 4, 0, r->len, 1);
}

static PyObject *text(PyObject *self, PyObject *args) {
    PyObject *html, *result;
    int markup, kind, rc;
    Reader r;
    (void)self;
    if (!PyArg_ParseTuple(args, "Up:text", &html, &markup))
        return NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(html) < 0) /* a legacy string, which 3.12 no longer has */
        return NULL;
#endif
    kind = PyUnicode_KIND(html);
    r.s = PyUnicode_DATA(html);
    r.len = PyUnicode_GET_LENGTH(html);
    r.n = 0;
    r.cap = r.len;
    r.out_kind = kind;
    r.failed = 0;
    /* Every step writes at most as many characters as it reads (a reference of n >= 2
     * characters at most 2, a tag of 3 or more at most one), so the input's length is
     * enough for the output. */
    r.out = PyMem_Malloc((size_t)kind * (size_t)(r.len + 1));
    if (r.out == NULL)
        return PyErr_NoMemory();
    rc = kind == PyUnicode_1BYTE_KIND   ? pass_1(&r, markup)
         : kind == PyUnicode_2BYTE_KIND ? pass_2(&r, markup)
                                        : pass_4(&r, markup);
    if (rc < 0 || r.failed) {
        PyMem_Free(r.out);
        return rc < 0 ? NULL : PyErr_NoMemory();
    }
    result = PyUnicode_FromKindAndData(r.out_kind, r.out, r.n);
    PyMem_Free(r.out);
    return result;
}

static PyMethodDef methods[] = {
    {"text", text, METH_VARARGS, "text(html, markup) -> the text of an HTML fragment"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_htmltext", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__htmltext(void) {
    PyObject *html, *key, *value;
    Py_ssize_t pos = 0;
    for (Py_UCS4 c = 0; c < 0x100; c++)
        plain_byte[c] = (unsigned char)plain_slow(c);
    for (size_t e = 0; e < sizeof ELEMENTS / sizeof *ELEMENTS; e++) {
        unsigned i = slot_of(ELEMENTS[e].name);
        while (slots[i] != NULL)
            i = (i + 1) % SLOTS;
        slots[i] = &ELEMENTS[e];
    }
    html = PyImport_ImportModule("html.entities");
    if (html == NULL)
        return NULL;
    entities = PyObject_GetAttrString(html, "html5");
    Py_DECREF(html);
    if (entities == NULL)
        return NULL;
    if (!PyDict_Check(entities)) {
        PyErr_SetString(PyExc_TypeError, "html.entities.html5 is not a dict");
        return NULL;
    }
    while (PyDict_Next(entities, &pos, &key, &value)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(key);
        if (!PyUnicode_Check(value) || PyUnicode_GET_LENGTH(value) > 2) {
            PyErr_SetString(PyExc_ValueError, "an HTML entity longer than 2 characters");
            return NULL;
        }
        if (PyUnicode_READ_CHAR(key, n - 1) != ';' && n > legacy_max)
            legacy_max = n;
    }
    return PyModule_Create(&module);
}
