#ifndef PF_BROKER_EXPIRE_H
#define PF_BROKER_EXPIRE_H
/* The "expired" receipts: a copy not retrieved within expire_after_seconds
 * of its delivery gets exactly one signed "expired" receipt in the outbox.
 * Private to lib/broker; broker.c calls it every expire_poll_ms. */
#include "broker/broker_private.h"

/* Looks at the copies due (a few rounds of at most 256), signs and stores
 * their receipts.  Returns the number of receipts stored, or -1 after a
 * database failure (already reported through pf_broker_db_failed). */
int pf_broker_expire(pf_broker_t *b);

#endif
