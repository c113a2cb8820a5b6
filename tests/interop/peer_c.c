/*
 * C peer of the three-language interop test (see run.py; the plan is in
 * peer.py's docstring, and this file implements the same one).
 *
 *   peer_c NAME RUNDIR CERTDIR
 *
 * Exits 0 only if it received exactly the expected messages from both other
 * peers (content, order per channel, team id, label, kind, sync type,
 * sender address, peer id) before the deadline.
 *
 * This peer drives its endpoint the way an event loop would (the header's
 * "non-blocking calls and events"): it sends mostly with the _nowait calls,
 * blocking sends interleaved on the same streams, retrying after
 * WOULD_BLOCK once send_fd is readable; it addresses the Python peer by
 * "localhost:PORT"; it receives by polling receive_fd and event_fd; it
 * fails on any SEND_FAILED, HANDSHAKE_REJECTED or lost connection, checks
 * each PEER_CONNECTED against the peer's address and id, and ends with
 * aranya_quic_shutdown, waiting for SHUTDOWN_FINISHED before freeing.
 *
 * It also runs with per-team authorization: before anyone can reach it, it
 * allows the two others' peer ids (aranya_quic_peer_id_from_pem of their
 * certificates) on the two teams of the exchange only, so the Python peer's
 * send on a third team is refused (one refused stream, checked at the end).
 * Once it has received everything it checks its connection list.
 */
#define _POSIX_C_SOURCE 200809L

#include <poll.h>
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

/* The endpoint's fds and what the events said, for the helpers below. */
static aranya_quic_t ep;
static int send_fd = -1, event_fd = -1, recv_fd = -1;
static char addrs[NPEERS][ARANYA_QUIC_ADDR_MAX];
static uint8_t ids[NPEERS][ARANYA_QUIC_PEER_ID_LEN];
/* The peer ids of the others' certificates, as the library computes them. */
static uint8_t cert_ids[NPEERS][ARANYA_QUIC_PEER_ID_LEN];
static int connected[NPEERS];
static uint64_t shutdown_id;
static int shutdown_done;
static int nowait_calls, refusals;

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

/* wait_fd polls fd for POLLIN until it is readable (1), ms passes (0) or
 * poll fails (-1). */
static int wait_fd(int fd, int ms) {
    struct pollfd p;
    int n;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    n = poll(&p, 1, ms);
    return n < 0 ? -1 : n;
}

/* pump_events takes every waiting event: 0, or 1 (reported) on an event
 * that means a message may be lost or a peer is not who it should be. */
static int pump_events(void) {
    for (;;) {
        aranya_quic_event ev;
        int32_t rc;
        int k, p = -1;
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        rc = aranya_quic_next_event(ep, &ev);
        if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) return 0;
        if (rc != ARANYA_QUIC_OK) return fail("next_event: %s (%s)", aranya_quic_strerror(rc), aranya_quic_last_error());
        if (memchr(ev.addr, 0, sizeof ev.addr) == NULL) return fail("event %u: address not NUL-terminated", (unsigned)ev.type);
        if (ev.dropped_before != 0) return fail("%lu events dropped", (unsigned long)ev.dropped_before);
        for (k = 0; k < NPEERS; k++) {
            if (strcmp(ev.addr, addrs[k]) == 0) p = k;
        }
        switch (ev.type) {
        case ARANYA_QUIC_EVENT_PEER_CONNECTED:
            if (p < 0) return fail("PEER_CONNECTED from unknown address %s", ev.addr);
            if (memcmp(ev.peer_id, ids[p], ARANYA_QUIC_PEER_ID_LEN) != 0) return fail("PEER_CONNECTED %s: not %s's id", ev.addr, PEERS[p]);
            connected[p]++;
            break;
        case ARANYA_QUIC_EVENT_PEER_DISCONNECTED:
            if (ev.error_code != ARANYA_QUIC_OK || ev.unconfirmed != 0)
                return fail("connection to %s lost: %s, %lu unconfirmed (%s)", ev.addr, aranya_quic_strerror(ev.error_code),
                            (unsigned long)ev.unconfirmed, ev.reason);
            break;
        case ARANYA_QUIC_EVENT_SEND_FAILED:
            return fail("message id %lu to %s failed: %s (%s)", (unsigned long)ev.id, ev.addr,
                        aranya_quic_strerror(ev.error_code), ev.reason);
        case ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED:
            return fail("handshake with %s rejected: %s", ev.addr, ev.reason);
        case ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED:
            if (ev.id != shutdown_id) return fail("SHUTDOWN_FINISHED id %lu, want %lu", (unsigned long)ev.id, (unsigned long)shutdown_id);
            shutdown_done = 1;
            if (ev.error_code != ARANYA_QUIC_OK)
                return fail("shutdown: %s, %lu unconfirmed (%s)", aranya_quic_strerror(ev.error_code),
                            (unsigned long)ev.unconfirmed, ev.reason);
            break;
        default: /* CLOSE_FINISHED is not expected either, but harmless; unknown types are ignored */
            break;
        }
    }
}

/* retry_after is called after a WOULD_BLOCK: waits for send_fd, bounded by
 * the deadline. 0 to retry, 1 (reported) to give up. */
static int retry_after(const char *what) {
    refusals++;
    for (;;) {
        int r;
        if (now() > deadline) return fail("%s: send_fd never became readable", what);
        r = wait_fd(send_fd, 50);
        if (r < 0) return fail("%s: poll on send_fd failed", what);
        if (r > 0) return 0;
    }
}

/* send_one sends message msg of stream s to dst: with the non-blocking
 * call unless blocking is set. */
static int send_one(const char *dst, int s, const uint8_t *msg, size_t len, int blocking) {
    for (;;) {
        int32_t rc;
        uint64_t id = 0;
        if (blocking) {
            rc = s < 2 ? aranya_quic_send(ep, dst, TEAMS[s], LABELS[s], strlen(LABELS[s]), msg, len)
                       : aranya_quic_send_sync(ep, dst, SYNC_TYPE, msg, len);
        } else {
            nowait_calls++;
            rc = s < 2 ? aranya_quic_send_nowait(ep, dst, TEAMS[s], LABELS[s], strlen(LABELS[s]), msg, len, &id)
                       : aranya_quic_send_sync_nowait(ep, dst, SYNC_TYPE, msg, len, &id);
        }
        if (rc == ARANYA_QUIC_OK) return 0;
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK || blocking)
            return fail("send to %s stream %s: %s (%s)", dst, STREAM_NAMES[s], aranya_quic_strerror(rc), aranya_quic_last_error());
        if (retry_after("send_nowait")) return 1;
    }
}

/* send_many sends n messages of stream s to dst in order with the batch
 * non-blocking calls, the rest again after each refusal. */
static int send_many(const char *dst, int s, const aranya_quic_buf *msgs, size_t n) {
    size_t done = 0;
    while (done < n) {
        size_t sent = 0;
        uint64_t first = 0;
        int32_t rc;
        nowait_calls++;
        rc = s < 2 ? aranya_quic_send_batch_nowait(ep, dst, TEAMS[s], LABELS[s], strlen(LABELS[s]), msgs + done, n - done,
                                                   &sent, &first)
                   : aranya_quic_send_sync_batch_nowait(ep, dst, SYNC_TYPE, msgs + done, n - done, &sent, &first);
        if (sent > n - done) return fail("batch to %s: %lu sent of %lu", dst, (unsigned long)sent, (unsigned long)(n - done));
        done += sent;
        if (rc == ARANYA_QUIC_OK) {
            if (done != n) return fail("batch to %s: OK with %lu of %lu sent", dst, (unsigned long)done, (unsigned long)n);
            return 0;
        }
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK)
            return fail("batch to %s stream %s: %s (%s)", dst, STREAM_NAMES[s], aranya_quic_strerror(rc), aranya_quic_last_error());
        if (retry_after("batch_nowait")) return 1;
    }
    return 0;
}

static uint8_t *load(const char *dir, const char *name, const char *ext, size_t *len) {
    char path[4096];
    uint8_t *b;
    if (!path_of(path, sizeof path, dir, name, ext)) return NULL;
    b = read_file(path, len);
    if (b == NULL) fail("cannot read %s", path);
    return b;
}

/* allow_others allows each other peer's certificate on both teams of the
 * exchange: 0, or 1 (reported). */
static int allow_others(const char *certdir, const int others[2]) {
    int k, t;
    for (k = 0; k < 2; k++) {
        int p = others[k];
        size_t len = 0;
        uint8_t *crt = load(certdir, PEERS[p], ".crt", &len);
        int32_t rc;
        if (crt == NULL) return 1;
        rc = aranya_quic_peer_id_from_pem(crt, len, cert_ids[p]);
        free(crt);
        if (rc != ARANYA_QUIC_OK) return fail("peer_id_from_pem of %s.crt: %s (%s)", PEERS[p], aranya_quic_strerror(rc), aranya_quic_last_error());
        for (t = 0; t < 2; t++) {
            rc = aranya_quic_team_allow(ep, cert_ids[p], TEAMS[t]);
            if (rc != ARANYA_QUIC_OK) return fail("team_allow %s on team %d: %s (%s)", PEERS[p], t, aranya_quic_strerror(rc), aranya_quic_last_error());
        }
    }
    return 0;
}

/* check_connections: the connection list holds a connection to each other
 * peer, with its address and id, and no other. 0, or 1 (reported). */
static int check_connections(const int others[2], char *summary, size_t size) {
    aranya_quic_connection_info info[8];
    size_t n = 0, k, used = 0;
    int live[NPEERS] = {0};
    int32_t rc;
    memset(info, 0, sizeof info);
    rc = aranya_quic_connections(ep, info, 8, sizeof info[0], &n);
    if (rc != ARANYA_QUIC_OK) return fail("connections: %s (%s)", aranya_quic_strerror(rc), aranya_quic_last_error());
    summary[0] = 0;
    for (k = 0; k < n; k++) {
        int p = -1, j;
        char h[2 * ARANYA_QUIC_PEER_ID_LEN + 1];
        if (info[k].struct_size != sizeof info[0]) return fail("connection %lu: struct_size %u", (unsigned long)k, (unsigned)info[k].struct_size);
        if (memchr(info[k].addr, 0, sizeof info[k].addr) == NULL) return fail("connection %lu: address not NUL-terminated", (unsigned long)k);
        for (j = 0; j < 2; j++) {
            if (strcmp(info[k].addr, addrs[others[j]]) == 0) p = others[j];
        }
        hex(info[k].peer_id, ARANYA_QUIC_PEER_ID_LEN, h);
        if (p < 0) return fail("connection to unknown address %s (peer id %s)", info[k].addr, h);
        if (memcmp(info[k].peer_id, ids[p], ARANYA_QUIC_PEER_ID_LEN) != 0) return fail("connection to %s (%s): peer id %s is not its id", info[k].addr, PEERS[p], h);
        if (!info[k].draining) live[p]++;
        if (used < size) {
            int w = snprintf(summary + used, size - used, "%s%s %s", used ? ", " : "", PEERS[p], info[k].dialed ? "dialed" : "accepted");
            if (w > 0) used += (size_t)w;
        }
    }
    for (k = 0; k < 2; k++) {
        if (live[others[k]] == 0) return fail("no connection to %s (%s) in the list of %lu", PEERS[others[k]], addrs[others[k]], (unsigned long)n);
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *rundir, *certdir;
    int me = -1, k, p, s, i, r;
    int others[2], no = 0;
    char dsts[NPEERS][ARANYA_QUIC_PEER_ADDR_MAX];
    int next[NPEERS][NSTREAMS];
    int received = 0, want = 2 * NSTREAMS * N, done = 0, rc = 1;
    uint8_t *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
    aranya_quic_config cfg;
    char local[ARANYA_QUIC_ADDR_MAX + 1];
    char conns[256] = "";
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
    /* The smallest outbound queue: it takes one message at a time, so the
     * second message to a peer whose connection is still being set up is
     * refused, and every refusal waits for send_fd: the WOULD_BLOCK path,
     * across languages. */
    cfg.max_outbound_bytes_per_peer = 1;
    /* Only the peers allowed below, and only on the exchange's two teams. */
    cfg.team_authorization = 1;
    if (aranya_quic_new(&cfg, &ep) != ARANYA_QUIC_OK) return fail("aranya_quic_new: %s", aranya_quic_last_error());
    free(cert);
    free(key);
    free(ca);
    buf = malloc(cap);
    if (buf == NULL) return fail("out of memory");
    if (aranya_quic_receive_fd(ep, &recv_fd) != ARANYA_QUIC_OK || aranya_quic_send_fd(ep, &send_fd) != ARANYA_QUIC_OK ||
        aranya_quic_event_fd(ep, &event_fd) != ARANYA_QUIC_OK) {
        fail("fds: %s", aranya_quic_last_error());
        goto out;
    }

    /* Before the address is published, so that nobody is refused by mistake. */
    if (allow_others(certdir, others)) goto out;

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
        if (memcmp(ids[p], cert_ids[p], ARANYA_QUIC_PEER_ID_LEN) != 0) {
            char h[2 * ARANYA_QUIC_PEER_ID_LEN + 1];
            hex(cert_ids[p], ARANYA_QUIC_PEER_ID_LEN, h);
            fail("aranya_quic_peer_id_from_pem of %s.crt gave %s, the driver's id is %s", PEERS[p], h, line);
            goto out;
        }
        /* The Python peer by name, the Rust peer by IP address. */
        if (strcmp(PEERS[p], "py") == 0) {
            const char *port = strrchr(addrs[p], ':');
            snprintf(dsts[p], sizeof dsts[p], "localhost%s", port != NULL ? port : "");
        } else {
            snprintf(dsts[p], sizeof dsts[p], "%s", addrs[p]);
        }
    }

    /* Each stream mixes the calls, per message i:
     *   stream a: send_nowait, except aranya_quic_send when i % 4 == 1 (so
     *     the 200 kB message, i = N-1, goes through the outbound queue);
     *   stream b: send_batch_nowait of i-3..i when i % 4 == 3;
     *   stream s: send_sync_nowait when i % 4 == 0, aranya_quic_send_sync
     *     when i % 4 == 1, send_sync_batch_nowait of i-1..i when i % 4 == 3.
     * The receivers check the order of each stream. */
    for (i = 0; i < N; i++) {
        for (k = 0; k < 2; k++) {
            static uint8_t *held[NPEERS][NSTREAMS][4];
            static size_t held_len[NPEERS][NSTREAMS][4];
            r = others[k];
            for (s = 0; s < NSTREAMS; s++) {
                uint8_t *msg;
                size_t len = payload(me, r, s, i, &msg);
                int bad = 0, j, from = -1;
                held[r][s][i % 4] = msg;
                held_len[r][s][i % 4] = len;
                if (s == 0) {
                    bad = send_one(dsts[r], s, len ? msg : NULL, len, i % 4 == 1);
                } else if (s == 1) {
                    from = i % 4 == 3 ? 0 : -1;
                } else if (i % 4 == 0 || i % 4 == 1) {
                    bad = send_one(dsts[r], s, len ? msg : NULL, len, i % 4 == 1);
                } else if (i % 4 == 3) {
                    from = 2;
                }
                if (from >= 0) {
                    aranya_quic_buf b[4];
                    for (j = from; j < 4; j++) {
                        b[j - from].data = held_len[r][s][j] ? held[r][s][j] : NULL;
                        b[j - from].len = held_len[r][s][j];
                    }
                    bad = send_many(dsts[r], s, b, (size_t)(4 - from));
                }
                if (s == 0 || (s == 2 && i % 4 < 2)) {
                    free(msg);
                    held[r][s][i % 4] = NULL;
                } else if (i % 4 == 3) {
                    for (j = 0; j < 4; j++) {
                        free(held[r][s][j]);
                        held[r][s][j] = NULL;
                    }
                }
                if (bad || pump_events()) {
                    fail("while sending message %d of stream %s to %s", i, STREAM_NAMES[s], PEERS[r]);
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
        if (pump_events()) goto out;
        got = aranya_quic_receive(ep, buf, cap, &ch, &len);
        if (got == ARANYA_QUIC_ERR_WOULD_BLOCK) {
            struct pollfd pf[2];
            pf[0].fd = recv_fd;
            pf[0].events = POLLIN;
            pf[0].revents = 0;
            pf[1].fd = event_fd;
            pf[1].events = POLLIN;
            pf[1].revents = 0;
            if (poll(pf, 2, 50) > 0) continue;
            got = ARANYA_QUIC_ERR_TIMEOUT; /* quiet for a while: time to look at the .done files */
        }
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
            /* Before .done: the others stay up until every peer wrote it. */
            if (check_connections(others, conns, sizeof conns)) goto out;
            if (write_file_atomic(rundir, me_name, ".done", "ok\n")) goto out;
        }
    }
    {
        aranya_quic_stats st;
        int32_t frc;
        if (pump_events()) goto out;
        for (k = 0; k < 2; k++) {
            if (connected[others[k]] != 1) {
                fail("%d PEER_CONNECTED events for %s, want 1", connected[others[k]], PEERS[others[k]]);
                goto out;
            }
        }
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        if (aranya_quic_get_stats(ep, &st) != ARANYA_QUIC_OK) { fail("get_stats: %s", aranya_quic_last_error()); goto out; }
        if (st.sends_failed != 0 || st.events_dropped != 0 || st.outbound_messages != 0) {
            fail("stats: %lu sends failed, %lu events dropped, %lu still queued", (unsigned long)st.sends_failed,
                 (unsigned long)st.events_dropped, (unsigned long)st.outbound_messages);
            goto out;
        }
        /* The Python peer's one send on a team it is not allowed on, and
         * nothing else, was refused; nothing was revoked. */
        if (st.streams_refused != 1 || st.connections_revoked != 0 || st.messages_revoked != 0) {
            fail("stats: %lu streams refused (want 1), %lu connections revoked, %lu messages revoked",
                 (unsigned long)st.streams_refused, (unsigned long)st.connections_revoked, (unsigned long)st.messages_revoked);
            goto out;
        }
        /* The orderly end: shutdown, its event, then a free that has
         * nothing left to wait for. */
        if (aranya_quic_shutdown(ep, &shutdown_id) != ARANYA_QUIC_OK) { fail("shutdown: %s", aranya_quic_last_error()); goto out; }
        while (!shutdown_done) {
            if (now() > deadline) { fail("no SHUTDOWN_FINISHED event before the deadline"); goto out; }
            if (wait_fd(event_fd, 50) < 0) { fail("poll on event_fd failed"); goto out; }
            if (pump_events()) goto out;
        }
        frc = aranya_quic_free(ep);
        ep = 0;
        if (frc != ARANYA_QUIC_OK) { fail("free after shutdown: %s (%s)", aranya_quic_strerror(frc), aranya_quic_last_error()); goto out; }
        printf("peer %s: ok: received %d messages from %s and %s, sent %lu (%d non-blocking calls, %d refused), "
               "connections: %s; 1 stream refused by team authorization; shut down cleanly\n", me_name, received,
               PEERS[others[0]], PEERS[others[1]], (unsigned long)st.messages_sent, nowait_calls, refusals, conns);
    }
    rc = 0;
out:
    free(buf);
    aranya_quic_free(ep);
    return rc;
}
