/* flowcore command line: aligned text tables for people.
 *
 * Widths count UTF-8 code points (no East Asian wide characters, which
 * would need wcwidth and a locale). */
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

/* Code points in s (continuation bytes are not counted). */
static size_t text_width(const char *s) {
  size_t w = 0;
  for (; *s != '\0'; s++)
    if (((unsigned char)*s & 0xC0) != 0x80)
      w++;
  return w;
}

/* A copy of s with control characters as spaces, at most `max` code points
 * (0: no limit; a cut text ends with "..."). */
static char *clean_copy(const char *s, size_t max) {
  size_t len, i, w = 0, cut = (size_t)-1;
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
  /* Keep max-3 code points, then "...". */
  for (i = 0; i < len; i++) {
    if (((unsigned char)out[i] & 0xC0) != 0x80) {
      if (w == max - (max > 3 ? 3 : 0)) {
        cut = i;
        break;
      }
      w++;
    }
  }
  if (cut != (size_t)-1) {
    if (max > 3)
      memcpy(out + cut, "...", 4);
    else
      out[cut] = '\0';
  }
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
