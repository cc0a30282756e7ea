/* flowcore command line: aligned text tables for people.
 *
 * Columns are aligned by display width, as a terminal shows the text: most
 * characters take one column, combining marks and zero-width characters
 * none, East Asian wide and fullwidth characters and emoji two (the ranges
 * of char_width below), each byte of invalid UTF-8 one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

struct cli_table_s {
  size_t ncols;
  char **headers;
  char *align;
  size_t *max_width; /* 0: none */
  char **cells;      /* rows * ncols */
  size_t rows, cap;
};

/* Decodes the UTF-8 sequence at s (NUL-terminated): returns its length in
 * bytes and the code point in *cp, or 1 with *cp = 0xFFFD for a byte that
 * does not start a valid sequence. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp) {
  size_t len, i;
  uint32_t c;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    len = 2;
    c = s[0] & 0x1Fu;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    len = 3;
    c = s[0] & 0x0Fu;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    len = 4;
    c = s[0] & 0x07u;
  } else {
    *cp = 0xFFFD;
    return 1;
  }
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) { /* also stops at the NUL */
      *cp = 0xFFFD;
      return 1;
    }
    c = (c << 6) | (s[i] & 0x3Fu);
  }
  if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
      (c >= 0xD800 && c <= 0xDFFF)) {
    *cp = 0xFFFD;
    return 1;
  }
  *cp = c;
  return len;
}

typedef struct {
  uint32_t lo, hi;
} range_t;

static int in_ranges(uint32_t cp, const range_t *r, size_t n) {
  size_t a = 0, b = n;
  while (a < b) {
    size_t mid = (a + b) / 2;
    if (cp < r[mid].lo)
      b = mid;
    else if (cp > r[mid].hi)
      a = mid + 1;
    else
      return 1;
  }
  return 0;
}

/* Columns a terminal gives the code point cp: 0, 1 or 2. The common
 * combining and zero-width blocks and the East Asian Wide/Fullwidth blocks
 * (sorted, for a binary search); not the full Unicode tables. */
static size_t char_width(uint32_t cp) {
  /* clang-format off */
  static const range_t zero[] = {
      {0x0300, 0x036F}, /* combining diacritical marks */
      {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x0610, 0x061A}, {0x064B, 0x065F},
      {0x0E31, 0x0E31}, {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E},
      {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
      {0x200B, 0x200F}, /* zero width space, joiners, direction marks */
      {0x2028, 0x202E}, {0x2060, 0x2064},
      {0x20D0, 0x20FF}, /* combining marks for symbols */
      {0xFE00, 0xFE0F}, /* variation selectors */
      {0xFE20, 0xFE2F}, {0xFEFF, 0xFEFF}, {0xE0100, 0xE01EF}};
  static const range_t wide[] = {
      {0x1100, 0x115F},   /* Hangul Jamo */
      {0x231A, 0x231B},   {0x2329, 0x232A}, {0x23E9, 0x23EC}, {0x23F0, 0x23F0},
      {0x23F3, 0x23F3},   {0x25FD, 0x25FE}, {0x2614, 0x2615}, {0x2648, 0x2653},
      {0x267F, 0x267F},   {0x2693, 0x2693}, {0x26A1, 0x26A1}, {0x26AA, 0x26AB},
      {0x26BD, 0x26BE},   {0x26C4, 0x26C5}, {0x26CE, 0x26CE}, {0x26D4, 0x26D4},
      {0x26EA, 0x26EA},   {0x26F2, 0x26F3}, {0x26F5, 0x26F5}, {0x26FA, 0x26FA},
      {0x26FD, 0x26FD},   {0x2705, 0x2705}, {0x270A, 0x270B}, {0x2728, 0x2728},
      {0x274C, 0x274C},   {0x274E, 0x274E}, {0x2753, 0x2755}, {0x2757, 0x2757},
      {0x2795, 0x2797},   {0x27B0, 0x27B0}, {0x27BF, 0x27BF}, {0x2B1B, 0x2B1C},
      {0x2B50, 0x2B50},   {0x2B55, 0x2B55},
      {0x2E80, 0x303E},   /* CJK radicals ... CJK symbols and punctuation */
      {0x3041, 0x33FF},   /* kana, bopomofo, CJK compatibility */
      {0x3400, 0x4DBF},   /* CJK extension A */
      {0x4E00, 0x9FFF},   /* CJK unified ideographs */
      {0xA000, 0xA4CF},   /* Yi */
      {0xA960, 0xA97F},   {0xAC00, 0xD7A3}, /* Hangul syllables */
      {0xF900, 0xFAFF},   /* CJK compatibility ideographs */
      {0xFE10, 0xFE19},   {0xFE30, 0xFE6F}, /* CJK compatibility forms */
      {0xFF00, 0xFF60},   /* fullwidth forms */
      {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF},
      {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A},
      {0x1F200, 0x1F251}, {0x1F300, 0x1F64F}, /* pictographs, emoticons */
      {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
      {0x20000, 0x2FFFD}, /* CJK extensions B-F */
      {0x30000, 0x3FFFD}};
  /* clang-format on */
  if (in_ranges(cp, zero, sizeof zero / sizeof zero[0]))
    return 0;
  if (in_ranges(cp, wide, sizeof wide / sizeof wide[0]))
    return 2;
  return 1;
}

/* Display width of s in terminal columns. */
static size_t text_width(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t w = 0;
  while (*p != '\0') {
    uint32_t cp;
    p += utf8_next(p, &cp);
    w += char_width(cp);
  }
  return w;
}

/* A copy of s with control characters as spaces, at most `max` columns wide
 * (0: no limit; a cut text ends with "..."). */
static char *clean_copy(const char *s, size_t max) {
  size_t len, i, w = 0, keep;
  char *out;
  if (s == NULL)
    s = "";
  len = strlen(s);
  out = malloc(len + 4);
  if (out == NULL)
    return NULL;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = (c < 0x20 || c == 0x7F) ? ' ' : (char)c;
  }
  out[len] = '\0';
  if (max == 0 || text_width(out) <= max)
    return out;
  /* Keep what fits in max-3 columns (whole characters), then "...". */
  keep = max > 3 ? max - 3 : max;
  i = 0;
  while (out[i] != '\0') {
    uint32_t cp;
    size_t n = utf8_next((const unsigned char *)out + i, &cp), cw = char_width(cp);
    if (w + cw > keep)
      break;
    w += cw;
    i += n;
  }
  if (max > 3)
    memcpy(out + i, "...", 4);
  else
    out[i] = '\0';
  return out;
}

cli_table_t *cli_table_new(size_t ncols, const char *const *headers, const char *align) {
  cli_table_t *t = calloc(1, sizeof *t);
  size_t i;
  if (t == NULL)
    return NULL;
  t->ncols = ncols;
  t->headers = calloc(ncols, sizeof *t->headers);
  t->align = calloc(ncols + 1, 1);
  t->max_width = calloc(ncols, sizeof *t->max_width);
  if (t->headers == NULL || t->align == NULL || t->max_width == NULL) {
    cli_table_free(t);
    return NULL;
  }
  for (i = 0; i < ncols; i++) {
    t->headers[i] = clean_copy(headers[i], 0);
    t->align[i] = align != NULL && align[i] == 'r' ? 'r' : 'l';
    if (t->headers[i] == NULL) {
      cli_table_free(t);
      return NULL;
    }
  }
  return t;
}

void cli_table_max_width(cli_table_t *t, size_t col, size_t width) {
  if (t != NULL && col < t->ncols)
    t->max_width[col] = width;
}

int cli_table_add(cli_table_t *t, const char *const *cells) {
  size_t i;
  if (t->rows == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 16;
    char **p = realloc(t->cells, ncap * t->ncols * sizeof *p);
    if (p == NULL)
      return -1;
    t->cells = p;
    t->cap = ncap;
  }
  for (i = 0; i < t->ncols; i++) {
    char *c = clean_copy(cells[i], t->max_width[i]);
    if (c == NULL) {
      while (i-- > 0)
        free(t->cells[t->rows * t->ncols + i]);
      return -1;
    }
    t->cells[t->rows * t->ncols + i] = c;
  }
  t->rows++;
  return 0;
}

size_t cli_table_rows(const cli_table_t *t) { return t != NULL ? t->rows : 0; }

static void print_row(const cli_table_t *t, char *const *row, const size_t *widths, FILE *out) {
  size_t i, line_len = 0, pos = 0;
  char *line;
  for (i = 0; i < t->ncols; i++)
    line_len += strlen(row[i]) + widths[i] + 2;
  line = malloc(line_len + 2);
  if (line == NULL)
    return;
  for (i = 0; i < t->ncols; i++) {
    size_t w = text_width(row[i]), pad = widths[i] > w ? widths[i] - w : 0, len = strlen(row[i]);
    int last = i + 1 == t->ncols;
    if (t->align[i] == 'r') {
      memset(line + pos, ' ', pad);
      pos += pad;
    }
    memcpy(line + pos, row[i], len);
    pos += len;
    if (t->align[i] != 'r' && !last) {
      memset(line + pos, ' ', pad);
      pos += pad;
    }
    if (!last) {
      memcpy(line + pos, "  ", 2);
      pos += 2;
    }
  }
  /* No trailing blanks. */
  while (pos > 0 && line[pos - 1] == ' ')
    pos--;
  line[pos++] = '\n';
  line[pos] = '\0';
  cli_printf(out, "%s", line);
  free(line);
}

void cli_table_print(const cli_table_t *t, FILE *out) {
  size_t *widths, i, r;
  if (t == NULL)
    return;
  widths = calloc(t->ncols, sizeof *widths);
  if (widths == NULL)
    return;
  for (i = 0; i < t->ncols; i++) {
    widths[i] = text_width(t->headers[i]);
    for (r = 0; r < t->rows; r++) {
      size_t w = text_width(t->cells[r * t->ncols + i]);
      if (w > widths[i])
        widths[i] = w;
    }
  }
  print_row(t, t->headers, widths, out);
  for (r = 0; r < t->rows; r++)
    print_row(t, t->cells + r * t->ncols, widths, out);
  free(widths);
}

void cli_table_free(cli_table_t *t) {
  size_t i;
  if (t == NULL)
    return;
  for (i = 0; i < t->rows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  if (t->headers != NULL)
    for (i = 0; i < t->ncols; i++)
      free(t->headers[i]);
  free(t->headers);
  free(t->align);
  free(t->max_width);
  free(t);
}
