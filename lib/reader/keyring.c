/* KEK keyring with reload-on-miss.
 *
 * Worker threads look KEKs up concurrently.  A miss takes the mutex and,
 * at most once per S_RELOAD_MS, loads the file again; the new ring becomes
 * current and the old one is kept (not freed) until shutdown, because other
 * threads may still hold KEKs borrowed from it.  Rotations are rare
 * (yearly), so the kept rings are few; a bound stops a file that keeps
 * failing from growing the list.  The file is trusted (mode 0600, the
 * reader's own); the kek id looked up comes from the database. */
#include "reader/keyring.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_RELOAD_MS 2000
#define S_KEEP_MAX 64

struct pf_keyring {
    char *path;
    pthread_mutex_t lock;
    pf_kek_t *current;
    pf_kek_t *kept[S_KEEP_MAX];
    int nkept;
    int64_t last_reload_ms;
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pf_keyring_open(const char *path, pf_keyring_t **kr_r, const char **error_r)
{
    pf_kek_t *ring = NULL;
    if (pf_kek_load(path, &ring, error_r) != 0)
        return -1;
    pf_keyring_t *kr = xcalloc(1, sizeof(*kr));
    kr->path = xstrdup(path);
    pthread_mutex_init(&kr->lock, NULL);
    kr->current = ring;
    *kr_r = kr;
    return 0;
}

const pf_kek_t *pf_keyring_find(pf_keyring_t *kr, const char *kek_id)
{
    pthread_mutex_lock(&kr->lock);
    const pf_kek_t *k = pf_kek_find(kr->current, kek_id);
    int64_t now = s_now_ms();
    if (k == NULL && now - kr->last_reload_ms >= S_RELOAD_MS && kr->nkept < S_KEEP_MAX) {
        kr->last_reload_ms = now;
        pf_kek_t *ring = NULL;
        const char *err;
        if (pf_kek_load(kr->path, &ring, &err) != 0) {
            pf_warn("event=kek_reload_failed file=\"%s\" error=\"%s\"", kr->path, err);
        } else if (pf_kek_find(ring, kek_id) == NULL) {
            pf_kek_destroy(&ring);
        } else {
            kr->kept[kr->nkept++] = kr->current;
            kr->current = ring;
            k = pf_kek_find(ring, kek_id);
            pf_info("event=kek_reloaded current=%s", pf_kek_id(ring));
        }
    }
    pthread_mutex_unlock(&kr->lock);
    return k;
}

void pf_keyring_destroy(pf_keyring_t **krp)
{
    pf_keyring_t *kr = *krp;
    if (kr == NULL)
        return;
    pf_kek_destroy(&kr->current);
    for (int i = 0; i < kr->nkept; i++)
        pf_kek_destroy(&kr->kept[i]);
    pthread_mutex_destroy(&kr->lock);
    free(kr->path);
    free(kr);
    *krp = NULL;
}
