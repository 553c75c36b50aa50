#ifndef PF_UTIL_FILEIO_H
#define PF_UTIL_FILEIO_H
/* Whole-file reads with a size limit, and atomic writes with a mode. */
#include <stddef.h>

/* Reads path into *data_r (caller frees; NUL-terminated).  Refuses files
 * larger than max.  On error returns -1 and sets *error_r (static text). */
int pf_file_read(const char *path, size_t max, char **data_r, size_t *len_r, const char **error_r);
/* Writes to path.tmp, fsyncs, renames over path.  mode e.g. 0600. */
int pf_file_write(const char *path, const void *data, size_t len, unsigned mode,
                  const char **error_r);
/* Strips trailing whitespace/newlines in place (for key and secret files). */
void pf_str_rtrim(char *s);

#endif
