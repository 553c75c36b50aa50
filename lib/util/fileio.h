#ifndef PF_UTIL_FILEIO_H
#define PF_UTIL_FILEIO_H
/* Whole-file reads with a size limit, and atomic writes with a mode. */
#include <stddef.h>

/* Reads path into *data_r (caller frees; NUL-terminated).  Refuses files
 * larger than max.  On error returns -1 and sets *error_r (static text). */
int pf_file_read(const char *path, size_t max, char **data_r, size_t *len_r, const char **error_r);
/* Writes to a temporary file of its own beside path (created with O_EXCL),
 * fsyncs it, renames it over path and fsyncs the directory.  mode e.g.
 * 0600.  Returns 0 once the new content is durable, else -1 with *error_r
 * (static text). */
int pf_file_write(const char *path, const void *data, size_t len, unsigned mode,
                  const char **error_r);
/* Takes an exclusive lock for read-modify-write of path: flock on
 * "<path>.lock" (created with mode 0600, never removed, so every process
 * locks the same inode).  Blocks until granted; *fd_r then holds it until
 * pf_file_unlock.  Returns 0, or -1 with *error_r (static text). */
int pf_file_lock(const char *path, int *fd_r, const char **error_r);
void pf_file_unlock(int *fd);
/* Strips trailing whitespace/newlines in place (for key and secret files). */
void pf_str_rtrim(char *s);

#endif
