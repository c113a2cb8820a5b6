/*
 * C peer of the three-language interop test (see run.py; the plan is in
 * peer.py's docstring, and this file implements the same one).
 *
 *   peer_c NAME RUNDIR CERTDIR
 *
 * Exits 0 only if it received exactly the expected messages from both other
 * peers (content, order per channel, team id, label, kind, sync type,
 * sender address, peer id) before the deadline.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aranya_quic.h"

#define NPEERS 3
#define N 16
#define SYNC_TYPE 7u
#define NSTREAMS 3

static const char *const PEERS[NPEERS] = {"c", "py", "rs"};
static const char *const STREAM_NAMES[NSTREAMS] = {"a", "b", "s"};
/* "interop/β": β is U+03B2, UTF-8 CE B2. */
static const char *const LABELS[2] = {"interop-a", "interop/\xce\xb2"};
static uint8_t TEAMS[2][ARANYA_QUIC_TEAM_ID_LEN];

static const char *me_name = "c";
static double deadline;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

static int fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "peer %s: FAIL: ", me_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    return 1;
}

/* Message i of stream s from peer f to peer r; returns its length. *out is
 * malloc'd. */
static size_t payload(int f, int r, int s, int i, uint8_t **out) {
    char head[64];
    size_t hl, n, k, total;
    unsigned seed;
    uint8_t *p;
    if (s == 2 && i == 0) { /* an empty sync message */
        *out = malloc(1);
        return 0;
    }
    hl = (size_t)snprintf(head, sizeof head, "%s>%s/%s#%d|", PEERS[f], PEERS[r], STREAM_NAMES[s], i);
    n = (size_t)((i * 997 + s * 131 + f * 17) % 1500);
    if (s == 0 && i == N - 1) n += 200000; /* one large message, many packets */
    seed = (unsigned)(i * 7 + s * 3 + f * 11 + r);
    total = hl + n;
    p = malloc(total);
    if (p == NULL) { fprintf(stderr, "out of memory\n"); exit(2); }
    memcpy(p, head, hl);
    for (k = 0; k < n; k++) p[hl + k] = (uint8_t)((k * 31u + seed) & 0xFFu);
    *out = p;
    return total;
}

static int path_of(char *buf, size_t size, const char *dir, const char *name, const char *ext) {
    int n = snprintf(buf, size, "%s/%s%s", dir, name, ext);
    return n > 0 && (size_t)n < size;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    fclose(f);
    return 1;
}

/* Waits for RUNDIR/NAME.EXT and returns its first line (trimmed) in out. */
static int wait_line(const char *dir, const char *name, const char *ext, char *out, size_t size) {
    char path[4096];
    if (!path_of(path, sizeof path, dir, name, ext)) return fail("path too long");
    for (;;) {
        size_t len;
        uint8_t *b = read_file(path, &len);
        if (b != NULL) {
            size_t n = strcspn((char *)b, "\r\n");
            if (n >= size) { free(b); return fail("%s: line too long", path); }
            memcpy(out, b, n);
            out[n] = 0;
            free(b);
            return 0;
        }
        if (now() > deadline) return fail("timed out waiting for %s", path);
        sleep_ms(20);
    }
}

static int write_file_atomic(const char *dir, const char *name, const char *ext, const char *text) {
    char path[4096], tmp[4096];
    FILE *f;
    if (!path_of(path, sizeof path, dir, name, ext) || !path_of(tmp, sizeof tmp, dir, name, ".tmp"))
        return fail("path too long");
    f = fopen(tmp, "wb");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) return fail("cannot write %s", tmp);
    if (rename(tmp, path) != 0) return fail("cannot rename %s", tmp);
    return 0;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void hex(const uint8_t *b, size_t n, char *out) {
    size_t k;
    for (k = 0; k < n; k++) sprintf(out + 2 * k, "%02x", b[k]);
    out[2 * n] = 0;
}

static uint8_t *load(const char *dir, const char *name, const char *ext, size_t *len) {
    char path[4096];
    uint8_t *b;
    if (!path_of(path, sizeof path, dir, name, ext)) return NULL;
    b = read_file(path, len);
    if (b == NULL) fail("cannot read %s", path);
    return b;
}

int main(int argc, char **argv) {
    const char *rundir, *certdir;
    int me = -1, k, p, s, i, r;
    int others[2], no = 0;
    char addrs[NPEERS][ARANYA_QUIC_ADDR_MAX];
    uint8_t ids[NPEERS][ARANYA_QUIC_PEER_ID_LEN];
    int next[NPEERS][NSTREAMS];
    int received = 0, want = 2 * NSTREAMS * N, done = 0, rc = 1;
    uint8_t *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
    aranya_quic_config cfg;
    aranya_quic_t ep = 0;
    char local[ARANYA_QUIC_ADDR_MAX + 1];
    size_t local_len;
    size_t cap = 64 * 1024;
    uint8_t *buf;
    const char *env;
    double limit = 30;

    if (argc != 4) {
        fprintf(stderr, "usage: %s NAME RUNDIR CERTDIR\n", argv[0]);
        return 2;
    }
    me_name = argv[1];
    rundir = argv[2];
    certdir = argv[3];
    env = getenv("INTEROP_DEADLINE");
    if (env != NULL) limit = atof(env);
    deadline = now() + limit;
    for (k = 0; k < NPEERS; k++) {
        if (strcmp(PEERS[k], me_name) == 0) me = k;
    }
    if (me < 0) return fail("unknown peer name");
    for (k = 0; k < NPEERS; k++) {
        if (k != me) others[no++] = k;
    }
    for (k = 0; k < ARANYA_QUIC_TEAM_ID_LEN; k++) {
        TEAMS[0][k] = (uint8_t)((0xA0 + k) & 0xFF);
        TEAMS[1][k] = (uint8_t)((0x5B ^ (k * 13)) & 0xFF);
    }
    memset(next, 0, sizeof next);

    cert = load(certdir, me_name, ".crt", &cert_len);
    key = load(certdir, me_name, ".key", &key_len);
    ca = load(certdir, "ca", ".pem", &ca_len);
    if (cert == NULL || key == NULL || ca == NULL) return 1;
    aranya_quic_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1:0";
    cfg.cert_pem = cert;
    cfg.cert_pem_len = cert_len;
    cfg.key_pem = key;
    cfg.key_pem_len = key_len;
    cfg.ca_pem = ca;
    cfg.ca_pem_len = ca_len;
    if (aranya_quic_new(&cfg, &ep) != ARANYA_QUIC_OK) return fail("aranya_quic_new: %s", aranya_quic_last_error());
    free(cert);
    free(key);
    free(ca);
    buf = malloc(cap);
    if (buf == NULL) return fail("out of memory");

    if (aranya_quic_local_addr(ep, local, sizeof local - 1, &local_len) != ARANYA_QUIC_OK) {
        fail("aranya_quic_local_addr: %s", aranya_quic_last_error());
        goto out;
    }
    strcat(local, "\n");
    if (write_file_atomic(rundir, me_name, ".addr", local)) goto out;

    for (k = 0; k < 2; k++) {
        char line[128];
        p = others[k];
        if (wait_line(rundir, PEERS[p], ".addr", addrs[p], sizeof addrs[p])) goto out;
        if (wait_line(rundir, PEERS[p], ".id", line, sizeof line)) goto out;
        if (strlen(line) != 2 * ARANYA_QUIC_PEER_ID_LEN) { fail("bad id for %s", PEERS[p]); goto out; }
        for (i = 0; i < ARANYA_QUIC_PEER_ID_LEN; i++) {
            int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);
            if (hi < 0 || lo < 0) { fail("bad id for %s", PEERS[p]); goto out; }
            ids[p][i] = (uint8_t)(hi * 16 + lo);
        }
    }

    for (i = 0; i < N; i++) {
        for (k = 0; k < 2; k++) {
            r = others[k];
            for (s = 0; s < NSTREAMS; s++) {
                uint8_t *msg;
                size_t len = payload(me, r, s, i, &msg);
                int32_t src = s < 2
                    ? aranya_quic_send(ep, addrs[r], TEAMS[s], LABELS[s], strlen(LABELS[s]), len ? msg : NULL, len)
                    : aranya_quic_send_sync(ep, addrs[r], SYNC_TYPE, len ? msg : NULL, len);
                free(msg);
                if (src != ARANYA_QUIC_OK) {
                    fail("send to %s stream %s message %d: %s (%s)", PEERS[r], STREAM_NAMES[s], i,
                         aranya_quic_strerror(src), aranya_quic_last_error());
                    goto out;
                }
            }
        }
    }

    for (;;) {
        aranya_quic_channel ch;
        size_t len = 0;
        int32_t got;
        int f = -1;
        uint8_t *exp;
        size_t exp_len;
        char h1[2 * ARANYA_QUIC_PEER_ID_LEN + 1], h2[2 * ARANYA_QUIC_PEER_ID_LEN + 1];
        static const uint8_t zero[ARANYA_QUIC_TEAM_ID_LEN];

        if (now() > deadline) {
            if (done) {
                fail("received all %d messages, but the others did not finish before the deadline", want);
                goto out;
            }
            fail("deadline passed; received %d/%d", received, want);
            for (k = 0; k < 2; k++)
                for (s = 0; s < NSTREAMS; s++)
                    if (next[others[k]][s] < N)
                        fprintf(stderr, "  from %s stream %s: %d of %d\n", PEERS[others[k]], STREAM_NAMES[s],
                                next[others[k]][s], N);
            goto out;
        }
        got = aranya_quic_receive_timeout(ep, buf, cap, &ch, &len, 50);
        if (got == ARANYA_QUIC_ERR_BUFFER_TOO_SMALL) {
            uint8_t *nb = realloc(buf, len);
            if (nb == NULL) { fail("out of memory"); goto out; }
            buf = nb;
            cap = len;
            continue;
        }
        if (got == ARANYA_QUIC_ERR_TIMEOUT) {
            char path[4096];
            int all = done;
            for (k = 0; k < 2 && all; k++) {
                if (!path_of(path, sizeof path, rundir, PEERS[others[k]], ".done") || !file_exists(path)) all = 0;
            }
            if (all) break;
            continue;
        }
        if (got != ARANYA_QUIC_OK) {
            fail("receive: %s (%s)", aranya_quic_strerror(got), aranya_quic_last_error());
            goto out;
        }
        for (k = 0; k < 2; k++) {
            if (strcmp(ch.addr, addrs[others[k]]) == 0) f = others[k];
        }
        if (f < 0) { fail("message from unknown address %s", ch.addr); goto out; }
        if (memcmp(ch.peer_id, ids[f], ARANYA_QUIC_PEER_ID_LEN) != 0) {
            hex(ch.peer_id, ARANYA_QUIC_PEER_ID_LEN, h1);
            hex(ids[f], ARANYA_QUIC_PEER_ID_LEN, h2);
            fail("message from %s: peer id %s, want %s", ch.addr, h1, h2);
            goto out;
        }
        if (ch.kind == ARANYA_QUIC_KIND_CHANNEL) {
            s = -1;
            for (k = 0; k < 2; k++) {
                if (ch.label_len == strlen(LABELS[k]) && memcmp(ch.label, LABELS[k], ch.label_len) == 0) s = k;
            }
            if (s < 0) { fail("message from %s: unknown label '%.*s'", PEERS[f], (int)ch.label_len, ch.label); goto out; }
            if (memcmp(ch.team_id, TEAMS[s], ARANYA_QUIC_TEAM_ID_LEN) != 0) {
                hex(ch.team_id, ARANYA_QUIC_TEAM_ID_LEN, h1);
                hex(TEAMS[s], ARANYA_QUIC_TEAM_ID_LEN, h2);
                fail("message from %s label %s: team id %s, want %s", PEERS[f], LABELS[s], h1, h2);
                goto out;
            }
            if (ch.sync_type != 0) { fail("channel message from %s with sync type %u", PEERS[f], (unsigned)ch.sync_type); goto out; }
        } else if (ch.kind == ARANYA_QUIC_KIND_SYNC) {
            s = 2;
            if (ch.sync_type != SYNC_TYPE) { fail("sync message from %s: type %u", PEERS[f], (unsigned)ch.sync_type); goto out; }
            if (ch.label_len != 0 || ch.label[0] != 0 || memcmp(ch.team_id, zero, sizeof zero) != 0) {
                fail("sync message from %s: label or team id not empty", PEERS[f]);
                goto out;
            }
        } else {
            fail("message from %s: unknown kind %u", PEERS[f], (unsigned)ch.kind);
            goto out;
        }
        i = next[f][s];
        if (done || i >= N) {
            fail("extra message from %s on stream %s (%lu bytes)", PEERS[f], STREAM_NAMES[s], (unsigned long)len);
            goto out;
        }
        exp_len = payload(f, me, s, i, &exp);
        if (len != exp_len || (len > 0 && memcmp(buf, exp, len) != 0)) {
            size_t at = 0;
            while (at < len && at < exp_len && buf[at] == exp[at]) at++;
            fail("from %s stream %s message %d: got %lu bytes '%.*s', want %lu bytes '%.*s' (first difference at byte %lu)",
                 PEERS[f], STREAM_NAMES[s], i, (unsigned long)len, (int)(len < 24 ? len : 24), (const char *)buf,
                 (unsigned long)exp_len, (int)(exp_len < 24 ? exp_len : 24), (const char *)exp, (unsigned long)at);
            free(exp);
            goto out;
        }
        free(exp);
        next[f][s] = i + 1;
        if (++received == want) {
            done = 1;
            if (write_file_atomic(rundir, me_name, ".done", "ok\n")) goto out;
        }
    }
    {
        aranya_quic_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        aranya_quic_get_stats(ep, &st);
        printf("peer %s: ok: received %d messages from %s and %s, sent %lu\n", me_name, received,
               PEERS[others[0]], PEERS[others[1]], (unsigned long)st.messages_sent);
    }
    rc = 0;
out:
    free(buf);
    aranya_quic_free(ep);
    return rc;
}
