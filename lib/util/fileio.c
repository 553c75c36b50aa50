/* File helpers for keys and configuration.  Secret files are written with
 * mode 0600 via a temporary file of the writer's own, fsync, rename and an
 * fsync of the directory, so a crash or power loss leaves the old or the
 * new file, never half of one, and a reported write stays written.
 * Read-modify-write of one file by several processes (the KEK keyring)
 * needs pf_file_lock around it: the rename alone does not stop one writer
 * from replacing what another just wrote. */
#include "util/fileio.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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

/* Opens a temporary file beside path that no other writer uses: a shared
 * name with O_TRUNC would let two writers interleave into one file. */
static int s_open_tmp(const char *path, unsigned mode, char **tmp_r)
{
    static unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
        char *tmp = xasprintf("%s.tmp.%ld.%u", path, (long)getpid(), n);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0) {
            *tmp_r = tmp;
            return fd;
        }
        free(tmp);
        if (errno != EEXIST) /* EEXIST: left by a crashed process of the same pid */
            return -1;
    }
    return -1;
}

/* fsyncs the directory holding path, so a rename into it is durable. */
static int s_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash == NULL   ? xstrdup(".")
                : slash == path ? xstrdup("/")
                                : xstrndup(path, (size_t)(slash - path));
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int pf_file_write(const char *path, const void *data, size_t len, unsigned mode,
                  const char **error_r)
{
    char *tmp = NULL;
    int fd = s_open_tmp(path, mode, &tmp);
    if (fd < 0) {
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
    /* data before the rename, the rename before we report success: after a
     * power loss the file is the old or the new one, and a caller that
     * acted on the new one (a KEK whose wraps PostgreSQL committed) finds it */
    bool synced = fsync(fd) == 0;
    bool closed = close(fd) == 0; /* also when the sync failed */
    if (!synced || !closed || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        *error_r = "cannot sync or rename file";
        return -1;
    }
    free(tmp);
    if (s_sync_dir(path) != 0) {
        *error_r = "file replaced, but cannot sync its directory";
        return -1;
    }
    return 0;
}

int pf_file_lock(const char *path, int *fd_r, const char **error_r)
{
    char *lock = xasprintf("%s.lock", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock);
    if (fd < 0) {
        *error_r = "cannot open lock file";
        return -1;
    }
    while (flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
            close(fd);
            *error_r = "cannot lock file";
            return -1;
        }
    }
    *fd_r = fd;
    return 0;
}

void pf_file_unlock(int *fd)
{
    if (*fd >= 0)
        close(*fd); /* releases the flock */
    *fd = -1;
}

void pf_str_rtrim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
}
