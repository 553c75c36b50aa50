#ifndef PF_UTIL_JSONWIPE_H
#define PF_UTIL_JSONWIPE_H
/* Makes jansson wipe every block it frees.  Notice subjects, bodies and
 * private JWKs pass through jansson objects; without this their text would
 * stay in freed heap memory.  Call once at the start of main(), before any
 * JSON is parsed (jansson requires the allocator to be set first). */
void pf_json_wipe_init(void);

#endif
