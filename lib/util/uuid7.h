#ifndef PF_UTIL_UUID7_H
#define PF_UTIL_UUID7_H
/* UUIDv7 (RFC 9562): 48-bit Unix milliseconds, then a 12-bit sequence and
 * 62 random bits.  Ids made in one process are strictly increasing, even
 * within one millisecond or when the clock steps back, so that the
 * (mailbox, id) index is also the time order.  libuuid has no v7. */
#include <stdint.h>

#define PF_UUID_STRLEN 36

/* Fills out (37 bytes) with the canonical lower-case text form. */
void pf_uuid7_generate(char out[PF_UUID_STRLEN + 1]);
/* Same, from raw bytes. */
void pf_uuid7_generate_bin(uint8_t out[16]);
/* 0 when s is a canonical lower- or upper-case UUID text of 36 characters. */
int pf_uuid_valid(const char *s);
/* Milliseconds since the epoch stored in a v7 UUID text, or -1. */
int64_t pf_uuid7_millis(const char *s);

#endif
