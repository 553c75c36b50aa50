/* Unit tests for the KEK in lib/crypto/kek.c, and its usage example:
 * postfach-ctl generates the KEK file once; the reader loads it and
 * unwraps a mailbox's PKCS#8 key with the context "<mailbox>:<version>". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/jose.h"
#include "util/fileio.h"
#include "util/xalloc.h"

static char s_dir[256];

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof(s_dir), "/tmp/pf-test-kek-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *s_path(const char *name)
{
    return xasprintf("%s/%s", s_dir, name);
}

/* Writes text to name with mode, returns the path (caller frees). */
static char *s_write(const char *name, const char *text, unsigned mode)
{
    char *p = s_path(name);
    const char *err;
    unlink(p);
    assert_int_equal(pf_file_write(p, text, strlen(text), mode, &err), 0);
    chmod(p, mode);
    return p;
}

static void test_generate_and_load(void **state)
{
    (void)state;
    char *p = s_path("kek");
    const char *err = NULL;
    assert_int_equal(pf_kek_generate_file(p, "kek-2025-01", &err), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* never overwritten */
    assert_int_equal(pf_kek_generate_file(p, "kek-2025-02", &err), -1);
    assert_string_equal(err, "KEK file exists already");
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(pf_file_read(p, 1024, &text, &len, &err), 0);
    assert_int_equal(len, strlen("kek-2025-01 ") + 64 + 1);
    assert_memory_equal(text, "kek-2025-01 ", 12);
    free(text);
    pf_kek_t *kek = NULL;
    assert_int_equal(pf_kek_load(p, &kek, &err), 0);
    assert_string_equal(pf_kek_id(kek), "kek-2025-01");
    pf_kek_destroy(&kek);
    assert_null(kek);
    pf_kek_destroy(&kek);
    /* bad ids */
    char *q = s_path("kek2");
    assert_int_equal(pf_kek_generate_file(q, "", &err), -1);
    assert_int_equal(pf_kek_generate_file(q, "has space", &err), -1);
    assert_int_equal(pf_kek_generate_file(q, NULL, &err), -1);
    assert_int_equal(access(q, F_OK), -1);
    free(q);
    free(p);
}

static void test_load_refuses(void **state)
{
    (void)state;
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    struct {
        const char *text;
        unsigned mode;
    } cases[] = {
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddee\n", 0600},
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00\n", 0600},
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg\n", 0600},
        {"k1  00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600},
        {"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600},
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n", 0600},
        {"k/1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600},
        {"", 0600},
        /* good content, but readable by others */
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0644},
        {"k1 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0640},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p = s_write("bad", cases[i].text, cases[i].mode);
        pf_kek_t *kek = NULL;
        const char *err = NULL;
        if (pf_kek_load(p, &kek, &err) == 0)
            fprintf(stderr, "case %zu accepted\n", i);
        assert_null(kek);
        assert_non_null(err);
        free(p);
    }
    /* the good forms: with and without the final newline */
    char *line = xasprintf("k1 %s\n", hex);
    char *p = s_write("good", line, 0600);
    pf_kek_t *kek = NULL;
    const char *err = NULL;
    assert_int_equal(pf_kek_load(p, &kek, &err), 0);
    pf_kek_destroy(&kek);
    free(p);
    line[strlen(line) - 1] = '\0';
    p = s_write("good", line, 0400);
    assert_int_equal(pf_kek_load(p, &kek, &err), 0);
    pf_kek_destroy(&kek);
    free(p);
    free(line);
    p = s_path("missing");
    assert_int_equal(pf_kek_load(p, &kek, &err), -1);
    assert_string_equal(err, "KEK file does not exist");
    free(p);
}

static pf_kek_t *s_load(const char *id, const char *hex)
{
    char *line = xasprintf("%s %s\n", id, hex);
    char *p = s_write("k", line, 0600);
    pf_kek_t *kek = NULL;
    const char *err;
    assert_int_equal(pf_kek_load(p, &kek, &err), 0);
    free(p);
    free(line);
    return kek;
}

static void test_wrap_unwrap(void **state)
{
    (void)state;
    pf_kek_t *kek =
        s_load("kek-a", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    /* what is wrapped in practice: a PKCS#8 private key */
    pf_key_t *key = NULL;
    const char *err = NULL;
    assert_int_equal(pf_key_generate(PF_KEY_P256, &key, &err), 0);
    unsigned char *der = NULL;
    size_t derlen = 0;
    assert_int_equal(pf_key_to_der(key, &der, &derlen, &err), 0);

    unsigned char *blob = NULL, *out = NULL;
    size_t bloblen = 0, outlen = 0;
    assert_int_equal(pf_kek_wrap(kek, "citizen-1:1", der, derlen, &blob, &bloblen, &err), 0);
    assert_int_equal(bloblen, 1 + 12 + derlen + 16);
    assert_int_equal(blob[0], 1);
    assert_int_equal(pf_kek_unwrap(kek, "citizen-1:1", blob, bloblen, &out, &outlen, &err), 0);
    assert_int_equal(outlen, derlen);
    assert_memory_equal(out, der, derlen);
    pf_key_t *back = NULL;
    assert_int_equal(pf_key_from_der(out, outlen, &back, &err), 0);
    assert_string_equal(pf_key_kid(back), pf_key_kid(key));
    pf_key_destroy(&back);
    pf_wipe(out, outlen);
    free(out);
    out = NULL;

    /* two wraps differ (random IV) */
    unsigned char *blob2 = NULL;
    size_t bloblen2 = 0;
    assert_int_equal(pf_kek_wrap(kek, "citizen-1:1", der, derlen, &blob2, &bloblen2, &err), 0);
    assert_int_not_equal(memcmp(blob, blob2, bloblen), 0);
    free(blob2);

    /* another context (mailbox or version), another KEK id, another key */
    assert_int_equal(pf_kek_unwrap(kek, "citizen-2:1", blob, bloblen, &out, &outlen, &err), -1);
    assert_string_equal(err, "cannot unwrap key");
    assert_int_equal(pf_kek_unwrap(kek, "citizen-1:2", blob, bloblen, &out, &outlen, &err), -1);
    assert_int_equal(pf_kek_unwrap(kek, "", blob, bloblen, &out, &outlen, &err), -1);
    pf_kek_t *renamed =
        s_load("kek-b", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_int_equal(pf_kek_unwrap(renamed, "citizen-1:1", blob, bloblen, &out, &outlen, &err), -1);
    pf_kek_destroy(&renamed);
    /* id and context are separated: "kek-a" + "x:1" is not "kek-ax" + ":1" */
    pf_kek_t *ax =
        s_load("kek-ax", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    unsigned char *b3 = NULL;
    size_t l3 = 0;
    assert_int_equal(pf_kek_wrap(ax, ":1", "abc", 3, &b3, &l3, &err), 0);
    assert_int_equal(pf_kek_unwrap(kek, "x:1", b3, l3, &out, &outlen, &err), -1);
    free(b3);
    pf_kek_destroy(&ax);
    pf_kek_t *other =
        s_load("kek-a", "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_int_equal(pf_kek_unwrap(other, "citizen-1:1", blob, bloblen, &out, &outlen, &err), -1);
    pf_kek_destroy(&other);

    /* every byte changed, every truncation */
    for (size_t i = 0; i < bloblen; i++) {
        blob[i] ^= 0x80;
        assert_int_equal(pf_kek_unwrap(kek, "citizen-1:1", blob, bloblen, &out, &outlen, &err), -1);
        blob[i] ^= 0x80;
    }
    for (size_t n = 0; n < bloblen; n++)
        assert_int_equal(pf_kek_unwrap(kek, "citizen-1:1", blob, n, &out, &outlen, &err), -1);
    assert_null(out);
    /* nothing to wrap */
    assert_int_equal(pf_kek_wrap(kek, "c", der, 0, &blob2, &bloblen2, &err), -1);

    free(blob);
    pf_wipe(der, derlen);
    free(der);
    pf_key_destroy(&key);
    pf_kek_destroy(&kek);
}

/* A keyring: rotation prepends a new current KEK, old wraps still unwrap
 * through pf_kek_find, and retiring drops an old one but never the current. */
static void test_ring_rotate_retire(void **state)
{
    (void)state;
    char *p = s_path("ring");
    const char *err = NULL;
    unlink(p);
    assert_int_equal(pf_kek_generate_file(p, "gen-1", &err), 0);
    pf_kek_t *ring = NULL;
    assert_int_equal(pf_kek_load(p, &ring, &err), 0);
    unsigned char *blob, *out;
    size_t blen, olen;
    assert_int_equal(pf_kek_wrap(ring, "citizen-a:1", "secret key", 10, &blob, &blen, &err), 0);
    pf_kek_destroy(&ring);

    assert_int_equal(pf_kek_rotate_file(p, "gen-2", &err), 0);
    assert_int_equal(pf_kek_rotate_file(p, "gen-2", &err), -1); /* duplicate id */
    assert_int_equal(pf_kek_rotate_file(p, "bad id", &err), -1);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pf_kek_load(p, &ring, &err), 0);
    assert_string_equal(pf_kek_id(ring), "gen-2");
    const pf_kek_t *old = pf_kek_find(ring, "gen-1");
    assert_non_null(old);
    assert_null(pf_kek_find(ring, "gen-3"));
    /* the old blob unwraps with the old generation only */
    assert_int_equal(pf_kek_unwrap(old, "citizen-a:1", blob, blen, &out, &olen, &err), 0);
    assert_memory_equal(out, "secret key", 10);
    free(out);
    assert_int_equal(pf_kek_unwrap(ring, "citizen-a:1", blob, blen, &out, &olen, &err), -1);
    pf_kek_destroy(&ring);

    assert_int_equal(pf_kek_retire_file(p, "gen-2", &err), -1); /* current */
    assert_int_equal(pf_kek_retire_file(p, "gen-9", &err), -1); /* unknown */
    assert_int_equal(pf_kek_retire_file(p, "gen-1", &err), 0);
    assert_int_equal(pf_kek_load(p, &ring, &err), 0);
    assert_string_equal(pf_kek_id(ring), "gen-2");
    assert_null(pf_kek_find(ring, "gen-1"));
    pf_kek_destroy(&ring);
    free(blob);
    free(p);
}

#define S_ROUNDS 10
#define S_ROTATIONS 7

/* Two administrators rotating at once: every rotation that reported
 * success is in the keyring afterwards (no lost update), and the file
 * stays well-formed. */
static void test_concurrent_rotations(void **state)
{
    (void)state;
    char *p = s_path("ring-race");
    const char *err = NULL;
    for (int round = 0; round < S_ROUNDS; round++) {
        unlink(p);
        assert_int_equal(pf_kek_generate_file(p, "base", &err), 0);
        int go[2];
        assert_int_equal(pipe(go), 0);
        pid_t pid[2];
        for (int c = 0; c < 2; c++) {
            pid[c] = fork();
            assert_true(pid[c] >= 0);
            if (pid[c] == 0) {
                char b;
                close(go[1]);
                if (read(go[0], &b, 1) < 0)
                    _exit(255);
                int ok = 0;
                for (int k = 0; k < S_ROTATIONS; k++) {
                    char id[48];
                    const char *e;
                    snprintf(id, sizeof(id), "r%d-p%d-%d", round, c, k);
                    if (pf_kek_rotate_file(p, id, &e) == 0)
                        ok |= 1 << k;
                }
                _exit(ok);
            }
        }
        close(go[0]);
        close(go[1]); /* both start now */
        int ok[2];
        for (int c = 0; c < 2; c++) {
            int status;
            assert_int_equal(waitpid(pid[c], &status, 0), pid[c]);
            assert_true(WIFEXITED(status));
            ok[c] = WEXITSTATUS(status);
        }
        pf_kek_t *ring = NULL;
        assert_int_equal(pf_kek_load(p, &ring, &err), 0);
        for (int c = 0; c < 2; c++) {
            for (int k = 0; k < S_ROTATIONS; k++) {
                if (!(ok[c] & 1 << k))
                    continue;
                char id[48];
                snprintf(id, sizeof(id), "r%d-p%d-%d", round, c, k);
                if (pf_kek_find(ring, id) == NULL)
                    fail_msg("round %d: rotation to %s succeeded but is not in the keyring", round,
                             id);
            }
        }
        assert_non_null(pf_kek_find(ring, "base"));
        pf_kek_destroy(&ring);
    }
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_and_load),    cmocka_unit_test(test_load_refuses),
        cmocka_unit_test(test_wrap_unwrap),          cmocka_unit_test(test_ring_rotate_retire),
        cmocka_unit_test(test_concurrent_rotations),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
