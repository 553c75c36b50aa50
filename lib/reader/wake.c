/* Waking the receipt relay (see wake.h).
 *
 * Callers: message.c (poke, from any worker thread), server.c (new,
 * destroy).  One thread owns the connection; workers only set a flag
 * under the mutex, so a slow or absent database never holds up a request.
 * Pokes that arrive while a NOTIFY is under way or during the gap after
 * it fold into the next one.  After a failure the thread waits
 * S_RETRY_MS before it connects again, and says so in the log once per
 * outage, not once per attempt. */
#include "reader/wake.h"
#include "store/mailbox.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define S_RETRY_MS 1000

struct pf_wake {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* CLOCK_MONOTONIC */
    bool pending;
    bool stop;
    pthread_t thread;
    /* the thread's own */
    char *conninfo;
    pf_store_t *st;
    bool failing;
};

/* Waits until ms have passed or stop is set; called with the mutex held. */
static void s_pause(pf_wake_t *w, long ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
        ;
}

/* One NOTIFY; false when it could not be sent (the connection is then
 * closed, to be opened afresh next time). */
static bool s_notify(pf_wake_t *w)
{
    const char *err = NULL;
    if (w->st != NULL && pf_store_broken(w->st))
        pf_store_destroy(&w->st);
    if ((w->st != NULL || pf_store_open_as(w->conninfo, "wake", &w->st, &err) == 0) &&
        pf_store_receipts_wake(w->st, &err) == 0) {
        if (w->failing)
            pf_info("event=receipt_wake_restored");
        w->failing = false;
        return true;
    }
    if (!w->failing) {
        char esc[512];
        pf_warn("event=receipt_wake_failed error=\"%s\" note=\"receipts wait for the relay's "
                "poll\"",
                pf_log_escape(err != NULL ? err : "?", esc, sizeof(esc)));
    }
    w->failing = true;
    pf_store_destroy(&w->st);
    return false;
}

static void *s_thread(void *arg)
{
    pf_wake_t *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->pending && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->pending)
            break; /* stopping, nothing owed */
        w->pending = false;
        pthread_mutex_unlock(&w->mu);
        bool sent = s_notify(w);
        pthread_mutex_lock(&w->mu);
        s_pause(w, sent ? PF_WAKE_GAP_MS : S_RETRY_MS);
        if (w->stop && !sent)
            break; /* do not retry a database that is away while stopping */
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

pf_wake_t *pf_wake_new(const char *conninfo)
{
    pf_wake_t *w = xcalloc(1, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->conninfo = xstrdup(conninfo);
    if (pthread_create(&w->thread, NULL, s_thread, w) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w->conninfo);
        free(w);
        return NULL;
    }
    return w;
}

void pf_wake_poke(pf_wake_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    if (!w->pending) {
        w->pending = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
}

void pf_wake_destroy(pf_wake_t **wp)
{
    pf_wake_t *w = *wp;
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pf_store_destroy(&w->st);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->conninfo);
    free(w);
    *wp = NULL;
}
