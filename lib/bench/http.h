#ifndef PF_BENCH_HTTP_H
#define PF_BENCH_HTTP_H
/* A small HTTP/1.1 client with keep-alive, for loading postfach-reader:
 * one connection, GET only, Content-Length bodies (what the reader sends),
 * reconnecting when the server closed the connection.  Not a general
 * client: no TLS, no chunked encoding, no redirects. */
#include <stddef.h>

typedef struct pf_bench_http pf_bench_http_t;

/* Resolves nothing: host must be a numeric IPv4 address. */
pf_bench_http_t *pf_bench_http_new(const char *host, int port);
/* GET path with "Authorization: Bearer <bearer>" (bearer may be NULL).
 * Returns 0 with *status_r and *body_len_r, or -1 with *error_r (static
 * text) when no well-formed response arrived. */
int pf_bench_http_get(pf_bench_http_t *h, const char *path, const char *bearer, int *status_r,
                      size_t *body_len_r, const char **error_r);
void pf_bench_http_destroy(pf_bench_http_t **h);

#endif
