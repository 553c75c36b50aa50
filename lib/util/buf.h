#ifndef PF_UTIL_BUF_H
#define PF_UTIL_BUF_H
/* Growable byte buffer, always NUL-terminated after len for convenience. */
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} pf_buf_t;

void pf_buf_init(pf_buf_t *b);
void pf_buf_append(pf_buf_t *b, const void *p, size_t n);
void pf_buf_puts(pf_buf_t *b, const char *s);
void pf_buf_printf(pf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pf_buf_reset(pf_buf_t *b);
/* Room for n more bytes at the end: write up to n there, then
 * pf_buf_grew with the number written. */
char *pf_buf_space(pf_buf_t *b, size_t n);
void pf_buf_grew(pf_buf_t *b, size_t n);
/* Hands the data to the caller (free()); the buffer is empty afterwards. */
char *pf_buf_steal(pf_buf_t *b, size_t *len_r);
/* Frees the data; wipes it first when wipe is non-zero. */
void pf_buf_free(pf_buf_t *b, int wipe);

#endif
