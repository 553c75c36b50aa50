/* The key-encryption key (KEK) that wraps mailbox private keys at rest.
 *
 * Callers: the reader (unwraps a mailbox key per request) and postfach-ctl
 * (generates the KEK file, wraps new mailbox keys, exports keys).
 *
 * File format: one line "<kek-id> <64 hex digits>\n" per KEK generation,
 * mode 0600: a keyring.  The first line is the current KEK (new wraps use
 * it); the others stay for unwrapping keys not yet rewrapped after a
 * rotation.  The id names the generation so a database row says which KEK
 * wrapped it.
 * The file is trusted only as far as its permissions go: a KEK readable by
 * group or others is refused, like ssh refuses such private keys.
 *
 * Blob format (version 1):
 *   0x01 | IV (12 random bytes) | AES-256-GCM ciphertext | tag (16 bytes)
 * AAD = 0x01 | kek id | 0x00 | context.  The version byte is authenticated
 * so it cannot be swapped; the id binds the blob to this KEK generation;
 * the context (mailbox id and key version) binds it to one mailbox, so a
 * database writer cannot move a wrapped key to another mailbox.  The NUL
 * separates id from context (ids cannot contain one), keeping the encoding
 * unambiguous.  Random 96-bit IVs are safe here: a KEK wraps at most a few
 * million keys, far below the 2^32 messages NIST SP 800-38D allows.
 *
 * Untrusted input: the blob (from the database).  All unwrap failures give
 * one message. */
#include "crypto/jose_private.h"
#include "util/digits.h"
#include "util/fileio.h"
#include "util/xalloc.h"

#include <openssl/evp.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_VERSION 1
#define S_ID_MAX 64
#define S_HDR (1 + 12)
#define S_OVERHEAD (S_HDR + 16)
/* PKCS#8 keys are a few KiB; the bound keeps lengths far inside int */
#define S_DATA_MAX (1024 * 1024)

#define S_RING_MAX 16

struct pf_kek {
    char id[S_ID_MAX + 1];
    unsigned char key[32];
    struct pf_kek *next; /* older generations */
};

static bool s_valid_id(const char *id, size_t len)
{
    if (len == 0 || len > S_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* "<id> <64 hex>\n" for a fresh random key; caller wipes and frees. */
static char *s_new_line(const char *kek_id, size_t *len_r)
{
    unsigned char key[32];
    pf_random_bytes(key, sizeof(key));
    size_t idlen = strlen(kek_id);
    size_t len = idlen + 1 + 64 + 1;
    char *line = xmalloc(len + 1);
    memcpy(line, kek_id, idlen);
    line[idlen] = ' ';
    pf_hex_encode(key, sizeof(key), line + idlen + 1);
    line[len - 1] = '\n';
    line[len] = '\0';
    pf_wipe(key, sizeof(key));
    *len_r = len;
    return line;
}

static int s_generate_locked(const char *path, const char *kek_id, const char **error_r)
{
    /* never replace a KEK: every key wrapped under it would be lost */
    struct stat st;
    if (lstat(path, &st) == 0 || errno != ENOENT) {
        *error_r = "KEK file exists already";
        return -1;
    }
    size_t len;
    char *line = s_new_line(kek_id, &len);
    int rc = pf_file_write(path, line, len, 0600, error_r);
    pf_wipe(line, len);
    free(line);
    return rc;
}

/* Parses one "<id> <64 hex>" line of n bytes into kek. */
static int s_parse_line(const char *data, size_t n, pf_kek_t *kek)
{
    const char *sp = memchr(data, ' ', n);
    if (sp == NULL || !s_valid_id(data, (size_t)(sp - data)) || n - (size_t)(sp - data) - 1 != 64)
        return -1;
    if (pf_hex_decode(sp + 1, sizeof(kek->key), kek->key) != 0)
        return -1;
    memcpy(kek->id, data, (size_t)(sp - data));
    kek->id[sp - data] = '\0';
    return 0;
}

/* Reads the keyring file, checking its permissions. */
static int s_read_ring(const char *path, char **data_r, size_t *len_r, const char **error_r)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        *error_r = errno == ENOENT ? "KEK file does not exist" : "cannot access KEK file";
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        *error_r = "KEK file is accessible by group or others (use mode 0600)";
        return -1;
    }
    return pf_file_read(path, S_RING_MAX * 140, data_r, len_r, error_r);
}

int pf_kek_load(const char *path, pf_kek_t **kek_r, const char **error_r)
{
    char *data = NULL;
    size_t len = 0;
    if (s_read_ring(path, &data, &len, error_r) != 0)
        return -1;
    pf_kek_t *head = NULL, **tail = &head;
    int rc = 0, count = 0;
    size_t pos = 0;
    while (pos < len && rc == 0) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        pf_kek_t *k = xcalloc(1, sizeof(*k));
        if (++count > S_RING_MAX || s_parse_line(data + pos, n, k) != 0 ||
            pf_kek_find(head, k->id) != NULL) {
            pf_kek_destroy(&k);
            rc = -1;
            break;
        }
        *tail = k;
        tail = &k->next;
        pos += n + 1;
    }
    pf_wipe(data, len);
    free(data);
    if (rc != 0 || head == NULL) {
        pf_kek_destroy(&head);
        *error_r = "malformed KEK file (want lines \"<id> <64 hex digits>\", distinct ids)";
        return -1;
    }
    *kek_r = head;
    return 0;
}

const pf_kek_t *pf_kek_find(const pf_kek_t *ring, const char *kek_id)
{
    for (; ring != NULL; ring = ring->next)
        if (strcmp(ring->id, kek_id) == 0)
            return ring;
    return NULL;
}

static int s_rotate_locked(const char *path, const char *new_id, const char **error_r)
{
    pf_kek_t *ring = NULL;
    if (pf_kek_load(path, &ring, error_r) != 0)
        return -1;
    int count = 0;
    for (const pf_kek_t *k = ring; k; k = k->next)
        count++;
    bool dup = pf_kek_find(ring, new_id) != NULL;
    pf_kek_destroy(&ring);
    if (dup || count >= S_RING_MAX) {
        *error_r =
            dup ? "a KEK with that id exists already" : "too many KEKs: retire old ones first";
        return -1;
    }
    char *old = NULL;
    size_t oldlen = 0, len = 0;
    if (s_read_ring(path, &old, &oldlen, error_r) != 0)
        return -1;
    char *line = s_new_line(new_id, &len);
    char *all = xmalloc(len + oldlen + 2);
    memcpy(all, line, len);
    memcpy(all + len, old, oldlen);
    size_t total = len + oldlen;
    if (oldlen > 0 && old[oldlen - 1] != '\n')
        all[total++] = '\n';
    int rc = pf_file_write(path, all, total, 0600, error_r);
    pf_wipe(line, len);
    pf_wipe(old, oldlen);
    pf_wipe(all, total);
    free(line);
    free(old);
    free(all);
    return rc;
}

static int s_retire_locked(const char *path, const char *kek_id, const char **error_r)
{
    char *data = NULL;
    size_t len = 0;
    if (s_read_ring(path, &data, &len, error_r) != 0)
        return -1;
    char *out = xmalloc(len + 1);
    size_t o = 0, pos = 0;
    int found = 0, first = 1;
    while (pos < len) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        const char *sp = memchr(data + pos, ' ', n);
        bool match = sp && (size_t)(sp - (data + pos)) == strlen(kek_id) &&
                     memcmp(data + pos, kek_id, strlen(kek_id)) == 0;
        if (match && first) {
            found = -1; /* the current KEK cannot be retired */
        } else if (match) {
            found = 1;
        } else if (n > 0) {
            memcpy(out + o, data + pos, n);
            o += n;
            out[o++] = '\n';
        }
        first = 0;
        pos += n + 1;
    }
    int rc = -1;
    if (found == 1)
        rc = pf_file_write(path, out, o, 0600, error_r);
    else
        *error_r = found < 0 ? "that is the current KEK" : "no KEK with that id in the file";
    pf_wipe(data, len);
    pf_wipe(out, o);
    free(data);
    free(out);
    return rc;
}

/* The keyring is read, changed and written back whole: two administrators
 * at once would each write their own version and one change would be lost
 * (a new current KEK that wrapped keys PostgreSQL then stored).  So every
 * change holds the lock beside the file; readers need none (rename). */
static int s_locked(const char *path, const char *kek_id,
                    int (*change)(const char *, const char *, const char **), const char **error_r)
{
    int lock;
    if (pf_file_lock(path, &lock, error_r) != 0)
        return -1;
    int rc = change(path, kek_id, error_r);
    pf_file_unlock(&lock);
    return rc;
}

static bool s_id_ok(const char *kek_id, const char **error_r)
{
    if (kek_id != NULL && s_valid_id(kek_id, strlen(kek_id)))
        return true;
    *error_r = "invalid KEK id (1-64 of A-Z a-z 0-9 . _ -)";
    return false;
}

int pf_kek_generate_file(const char *path, const char *kek_id, const char **error_r)
{
    return s_id_ok(kek_id, error_r) ? s_locked(path, kek_id, s_generate_locked, error_r) : -1;
}

int pf_kek_rotate_file(const char *path, const char *new_id, const char **error_r)
{
    return s_id_ok(new_id, error_r) ? s_locked(path, new_id, s_rotate_locked, error_r) : -1;
}

int pf_kek_retire_file(const char *path, const char *kek_id, const char **error_r)
{
    return s_locked(path, kek_id, s_retire_locked, error_r);
}

const char *pf_kek_id(const pf_kek_t *kek)
{
    return kek->id;
}

static unsigned char *s_aad(const pf_kek_t *kek, const char *context, size_t *len_r)
{
    size_t idlen = strlen(kek->id), clen = strlen(context);
    size_t len = 1 + idlen + 1 + clen;
    unsigned char *aad = xmalloc(len);
    aad[0] = S_VERSION;
    memcpy(aad + 1, kek->id, idlen);
    aad[1 + idlen] = 0;
    memcpy(aad + 2 + idlen, context, clen);
    *len_r = len;
    return aad;
}

/* AES-256-GCM; on decryption the tag at tag is checked. */
static int s_gcm(int enc, const pf_kek_t *kek, const unsigned char iv[12], const unsigned char *aad,
                 size_t aadlen, const unsigned char *in, size_t len, unsigned char *out,
                 unsigned char tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n = 0;
    int ok = c != NULL && aadlen <= INT_MAX && len <= S_DATA_MAX &&
             EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, 12, NULL) == 1 &&
             EVP_CipherInit_ex(c, NULL, NULL, kek->key, iv, enc) == 1 &&
             EVP_CipherUpdate(c, NULL, &n, aad, (int)aadlen) == 1 &&
             EVP_CipherUpdate(c, out, &n, in, (int)len) == 1 && (size_t)n == len;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + len, &n) == 1 && n == 0;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c); /* clears the key schedule */
    return ok ? 0 : -1;
}

int pf_kek_wrap(const pf_kek_t *kek, const char *context, const void *data, size_t len,
                unsigned char **out_r, size_t *outlen_r, const char **error_r)
{
    if (kek == NULL || context == NULL || data == NULL || len == 0 || len > S_DATA_MAX) {
        *error_r = "nothing to wrap, or too large";
        return -1;
    }
    size_t aadlen;
    unsigned char *aad = s_aad(kek, context, &aadlen);
    unsigned char *out = xmalloc(S_OVERHEAD + len);
    out[0] = S_VERSION;
    pf_random_bytes(out + 1, 12);
    int rc = s_gcm(1, kek, out + 1, aad, aadlen, data, len, out + S_HDR, out + S_HDR + len);
    free(aad);
    if (rc != 0) {
        free(out);
        *error_r = "cannot wrap key";
        return -1;
    }
    *out_r = out;
    *outlen_r = S_OVERHEAD + len;
    return 0;
}

int pf_kek_unwrap(const pf_kek_t *kek, const char *context, const unsigned char *blob, size_t len,
                  unsigned char **out_r, size_t *outlen_r, const char **error_r)
{
    *error_r = "cannot unwrap key";
    if (kek == NULL || context == NULL || blob == NULL || len <= S_OVERHEAD ||
        len - S_OVERHEAD > S_DATA_MAX || blob[0] != S_VERSION)
        return -1;
    size_t n = len - S_OVERHEAD;
    size_t aadlen;
    unsigned char *aad = s_aad(kek, context, &aadlen);
    unsigned char tag[16];
    memcpy(tag, blob + S_HDR + n, 16);
    unsigned char *out = xmalloc(n + 1);
    int rc = s_gcm(0, kek, blob + 1, aad, aadlen, blob + S_HDR, n, out, tag);
    free(aad);
    if (rc != 0) {
        pf_wipe(out, n);
        free(out);
        return pf_jose_fail();
    }
    out[n] = 0;
    *out_r = out;
    *outlen_r = n;
    return 0;
}

void pf_kek_destroy(pf_kek_t **kek)
{
    if (kek == NULL)
        return;
    pf_kek_t *k = *kek;
    while (k != NULL) {
        pf_kek_t *next = k->next;
        pf_wipe(k, sizeof(*k));
        free(k);
        k = next;
    }
    *kek = NULL;
}
