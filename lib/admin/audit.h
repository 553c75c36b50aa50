#ifndef PF_ADMIN_AUDIT_H
#define PF_ADMIN_AUDIT_H
/* postfach-ctl audit: the administration's audit (sql/0020, a hash chain
 * since sql/0021) shipped out as JSON lines and checked against its
 * hashes.  Both need a login in postfach_auditor or the owner's.  Same
 * contract as admin.h: results on ctx->out, 0, or -1 with *error_r. */
#include "admin/admin.h"

#include <stdint.h>

/* One JSON object per line for each row with an id above after, oldest
 * first, at most limit of them (0: all): id, time (RFC 3339, UTC), login,
 * program, action, subject, detail (what changed), prev_hash and hash (hex).
 * Rows become visible in id order (the chain's lock is taken before an id
 * is drawn), so "after the last id shipped" misses none. */
int pf_admin_audit_export(pf_admin_ctx_t *ctx, int64_t after, int limit, const char **error_r);
/* The export for an unattended shipper (a systemd timer, its output going
 * to the journal): the rows after the id in the file state (none there:
 * from the start), then that file set to the last id written, atomically
 * and only once every line is out.  At least once: a crash between the two
 * ships some lines again.  One shipper at a time (a lock beside state). */
int pf_admin_audit_ship(pf_admin_ctx_t *ctx, const char *state, int limit, const char **error_r);
/* Recomputes the chain from its start value and prints "audit chain
 * intact: N rows, last id X, last hash H"; -1 naming the first row that
 * does not match (changed, or a row before it removed), or an end of the
 * table that is not where the inserts left it. */
int pf_admin_audit_verify(pf_admin_ctx_t *ctx, const char **error_r);

/* The chain's hash of one row: SHA-256 over prev (32 bytes) and the
 * netstrings of "pf-audit-1", id and fields (at, login, program, action,
 * subject, detail), as sql/0021 computes it (docs/security.md). */
void pf_admin_audit_hash(const unsigned char prev[32], int64_t id, const char *const fields[6],
                         unsigned char out[32]);

#endif
