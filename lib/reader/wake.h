#ifndef PF_READER_WAKE_H
#define PF_READER_WAKE_H
/* Waking the broker's receipt relay after first retrievals.
 *
 * The reader's sessions store read receipts without the trigger's NOTIFY
 * (postfach.receipt_wake = 'caller', sql/0012): a NOTIFY in each of those
 * transactions would serialise their commits.  Instead, a worker that has
 * committed a read receipt pokes this object, and one thread of its own
 * sends a single NOTIFY for everything poked since its last one, at most
 * every PF_WAKE_GAP_MS (the relay does not claim more often than every
 * 50 ms anyway, lib/broker/broker.c S_RELAY_GAP_MS).  A wake-up lost to a
 * database outage or a crash delays a receipt until the relay's next poll;
 * the receipt itself is committed. */

/* at most one NOTIFY per this many milliseconds */
#define PF_WAKE_GAP_MS 50

typedef struct pf_wake pf_wake_t;

/* Starts the thread; its connection is opened on the first poke.  NULL
 * only when the thread cannot be started. */
pf_wake_t *pf_wake_new(const char *conninfo);
/* After the COMMIT of a read receipt; never blocks on the database.  A
 * NULL w does nothing (handlers run without one in unit tests). */
void pf_wake_poke(pf_wake_t *w);
/* Stops and joins the thread (a pending wake-up is sent first, if the
 * database answers). */
void pf_wake_destroy(pf_wake_t **w);

#endif
