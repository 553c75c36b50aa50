/* File helpers for keys and configuration.  Secret files are written with
 * mode 0600 via a temporary file and rename, so a crash leaves the old or
 * the new file, never half of one. */
#include "util/fileio.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pf_file_read(const char *path, size_t max, char **data_r, size_t *len_r, const char **error_r)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error_r = errno == ENOENT ? "file does not exist" : "cannot open file";
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *error_r = "not a regular file";
        return -1;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        *error_r = "file too large";
        return -1;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1) {
                free(buf);
                close(fd);
                *error_r = "file too large";
                return -1;
            }
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            close(fd);
            *error_r = "cannot read file";
            return -1;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (len > max) {
        free(buf);
        *error_r = "file too large";
        return -1;
    }
    buf[len] = '\0';
    *data_r = buf;
    if (len_r)
        *len_r = len;
    return 0;
}

int pf_file_write(const char *path, const void *data, size_t len, unsigned mode,
                  const char **error_r)
{
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        free(tmp);
        *error_r = "cannot create file";
        return -1;
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            unlink(tmp);
            free(tmp);
            *error_r = "cannot write file";
            return -1;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        *error_r = "cannot sync or rename file";
        return -1;
    }
    free(tmp);
    return 0;
}

void pf_str_rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}
