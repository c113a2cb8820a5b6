/*
 * C harness for libaranya_quic: exercises the whole C contract through the
 * public header only.
 *
 *   harness CERTS_DIR
 *
 * CERTS_DIR holds ca.pem, alice.crt/.key, bob.crt/.key, carol.crt/.key and
 * stranger.crt/.key (from an untrusted CA), as written by
 *   go run ./examples/certgen -other-ca -out CERTS_DIR alice bob carol
 *
 * Every check counts; the exit status is non-zero if any check failed. Waits
 * are bounded (a lost message fails the check instead of hanging), but no
 * check asserts how long anything took.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aranya_quic.h"

/* ---------------------------------------------------------------- checks */

static int checks_run;
static int checks_failed;
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

static void check_failed(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&check_mu);
    checks_failed++;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    pthread_mutex_unlock(&check_mu);
}

static void check_ran(void) {
    pthread_mutex_lock(&check_mu);
    checks_run++;
    pthread_mutex_unlock(&check_mu);
}

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        check_ran();                                                                      \
        if (!(cond)) {                                                                    \
            check_failed(__FILE__, __LINE__, "%s (last_error: %s)", #cond,               \
                         aranya_quic_last_error());                                       \
        }                                                                                 \
    } while (0)

/* CHECK_RC: call returns exactly want. */
#define CHECK_RC(call, want)                                                              \
    do {                                                                                  \
        int32_t rc_ = (call);                                                             \
        int32_t want_ = (want);                                                           \
        check_ran();                                                                      \
        if (rc_ != want_) {                                                               \
            check_failed(__FILE__, __LINE__, "%s returned %d (%s), want %d (%s); last_error: %s", \
                         #call, (int)rc_, aranya_quic_strerror(rc_), (int)want_,         \
                         aranya_quic_strerror(want_), aranya_quic_last_error());          \
        }                                                                                 \
    } while (0)

/* ------------------------------------------------------------- helpers */

static const char *certs_dir;

static uint8_t *read_file(const char *name, size_t *len) {
    char path[4096];
    FILE *f;
    uint8_t *buf;
    long n;
    snprintf(path, sizeof path, "%s/%s", certs_dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* An identity: PEM buffers for one peer. */
typedef struct {
    uint8_t *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
} identity;

static identity load_identity(const char *name, const char *ca_file) {
    identity id;
    char file[256];
    snprintf(file, sizeof file, "%s.crt", name);
    id.cert = read_file(file, &id.cert_len);
    snprintf(file, sizeof file, "%s.key", name);
    id.key = read_file(file, &id.key_len);
    id.ca = read_file(ca_file, &id.ca_len);
    return id;
}

static void free_identity(identity *id) {
    free(id->cert);
    free(id->key);
    free(id->ca);
}

static identity alice_id, bob_id, carol_id, stranger_id;

static void base_config(aranya_quic_config *cfg, const identity *id) {
    aranya_quic_config_init(cfg);
    cfg->bind_addr = "127.0.0.1:0";
    cfg->cert_pem = id->cert;
    cfg->cert_pem_len = id->cert_len;
    cfg->key_pem = id->key;
    cfg->key_pem_len = id->key_len;
    cfg->ca_pem = id->ca;
    cfg->ca_pem_len = id->ca_len;
}

/* new_endpoint makes an endpoint on 127.0.0.1:0 and writes its address. */
static aranya_quic_t new_endpoint(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_config cfg;
    aranya_quic_t ep = 0;
    size_t len = 0;
    base_config(&cfg, id);
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_OK);
    CHECK(ep != 0);
    CHECK_RC(aranya_quic_local_addr(ep, addr, ARANYA_QUIC_ADDR_MAX, &len), ARANYA_QUIC_OK);
    CHECK(len == strlen(addr));
    return ep;
}

static void team(uint8_t id[ARANYA_QUIC_TEAM_ID_LEN], uint8_t seed) {
    int i;
    for (i = 0; i < ARANYA_QUIC_TEAM_ID_LEN; i++) {
        id[i] = (uint8_t)(seed + i);
    }
}

static int is_zero(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* Bound on every wait for a message that should arrive: generous, only so
 * that a lost message fails instead of hanging. */
#define WAIT_MS 20000

static int32_t recv_wait(aranya_quic_t ep, uint8_t *buf, size_t cap, aranya_quic_channel *ch,
                         size_t *len) {
    return aranya_quic_receive_timeout(ep, buf, cap, ch, len, WAIT_MS);
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* --------------------------------------------------------------- tests */

static void test_version_and_strings(void) {
    static const int32_t codes[] = {
        ARANYA_QUIC_OK,
        ARANYA_QUIC_ERR_WOULD_BLOCK,
        ARANYA_QUIC_ERR_BUFFER_TOO_SMALL,
        ARANYA_QUIC_ERR_INVALID_ARGUMENT,
        ARANYA_QUIC_ERR_INVALID_HANDLE,
        ARANYA_QUIC_ERR_CLOSED,
        ARANYA_QUIC_ERR_TIMEOUT,
        ARANYA_QUIC_ERR_TOO_LARGE,
        ARANYA_QUIC_ERR_CONNECTION,
        ARANYA_QUIC_ERR_TLS,
        ARANYA_QUIC_ERR_INTERNAL,
        ARANYA_QUIC_ERR_BAD_ADDRESS,
        ARANYA_QUIC_ERR_IO,
    };
    size_t i, j;
    const char *unknown = aranya_quic_strerror(-1000);
    char version[32];

    CHECK(aranya_quic_version() != NULL);
    CHECK(strcmp(aranya_quic_version(), ARANYA_QUIC_VERSION_STRING) == 0);
    snprintf(version, sizeof version, "%d.%d.%d", ARANYA_QUIC_VERSION_MAJOR,
             ARANYA_QUIC_VERSION_MINOR, ARANYA_QUIC_VERSION_PATCH);
    CHECK(strcmp(version, ARANYA_QUIC_VERSION_STRING) == 0);
    CHECK(ARANYA_QUIC_VERSION_NUMBER == ARANYA_QUIC_VERSION_MAJOR * 1000000 +
                                            ARANYA_QUIC_VERSION_MINOR * 1000 +
                                            ARANYA_QUIC_VERSION_PATCH);

    CHECK(unknown != NULL && strcmp(unknown, "unknown error code") == 0);
    CHECK(strcmp(aranya_quic_strerror(1), unknown) == 0);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = aranya_quic_strerror(codes[i]);
        CHECK(s != NULL && s[0] != '\0' && strcmp(s, unknown) != 0);
        for (j = 0; j < i; j++) {
            CHECK(strcmp(s, aranya_quic_strerror(codes[j])) != 0);
        }
    }

    /* last_error: set by a failing call, with a useful detail. */
    CHECK(aranya_quic_last_error() != NULL);
    CHECK_RC(aranya_quic_config_init(NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(aranya_quic_last_error(), "aranya_quic_config_init") != NULL);
    CHECK_RC(aranya_quic_send(0, "127.0.0.1:1", (const uint8_t *)"", "", 0, NULL, 0),
             ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK(strstr(aranya_quic_last_error(), "aranya_quic_send") != NULL);
    CHECK(strstr(aranya_quic_last_error(), "handle") != NULL);
}

/* last_error is per thread: a failure on another thread leaves ours. */
static void *other_thread_error(void *arg) {
    (void)arg;
    aranya_quic_free(7); /* never issued: INVALID_HANDLE */
    return NULL;
}

static void test_last_error_thread_local(void) {
    pthread_t t;
    CHECK_RC(aranya_quic_receive_fd(0, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(aranya_quic_last_error(), "aranya_quic_receive_fd") != NULL);
    pthread_create(&t, NULL, other_thread_error, NULL);
    pthread_join(t, NULL);
    CHECK(strstr(aranya_quic_last_error(), "aranya_quic_receive_fd") != NULL);
}

static void test_config(void) {
    aranya_quic_config cfg;
    aranya_quic_t ep = 0;
    static const uint8_t garbage[] = "not a PEM file";

    memset(&cfg, 0xAB, sizeof cfg);
    CHECK_RC(aranya_quic_config_init(&cfg), ARANYA_QUIC_OK);
    CHECK(cfg.struct_size == sizeof cfg);
    CHECK(cfg.bind_addr == NULL && cfg.cert_pem == NULL && cfg.cert_pem_len == 0);
    CHECK(cfg.max_connections == 0 && cfg.max_message_size == 0 && cfg.log_level == 0);
    CHECK(cfg.stateless_reset_key == NULL && cfg.pinned_peers == NULL);

    CHECK_RC(aranya_quic_new(NULL, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    CHECK_RC(aranya_quic_new(&cfg, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);

    base_config(&cfg, &alice_id);
    cfg.struct_size = 8;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(aranya_quic_last_error(), "struct_size") != NULL);

    base_config(&cfg, &alice_id);
    cfg.bind_addr = NULL;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    cfg.bind_addr = "nonsense";
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_BAD_ADDRESS);
    cfg.bind_addr = "127.0.0.1";
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_BAD_ADDRESS);

    base_config(&cfg, &alice_id);
    cfg.cert_pem = NULL;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.key_pem = NULL;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.ca_pem = NULL;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.ca_pem_len = 0;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.cert_pem = garbage;
    cfg.cert_pem_len = sizeof garbage - 1;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.key_pem = bob_id.key; /* does not match the certificate */
    cfg.key_pem_len = bob_id.key_len;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);

    base_config(&cfg, &alice_id);
    cfg.max_message_size = 4096;
    cfg.max_queue_bytes = 1024; /* below the message limit */
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.max_message_size = (uint64_t)ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT + 1;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.congestion_control = 77;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.log_level = 99;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.pinned_peers_len = 1; /* with a NULL list */
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(ep == 0); /* never written on failure */

    /* A valid one, with explicit values and the reno algorithm. */
    base_config(&cfg, &alice_id);
    cfg.congestion_control = ARANYA_QUIC_CC_RENO;
    cfg.max_connections = 4;
    cfg.keep_alive_ms = ARANYA_QUIC_DISABLED;
    cfg.send_timeout_ms = 5000;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_OK);
    CHECK(ep != 0);
    CHECK_RC(aranya_quic_free(ep), ARANYA_QUIC_OK);

    /* Two endpoints cannot bind the same port. */
    {
        aranya_quic_t a = 0, b = 0;
        char addr[ARANYA_QUIC_ADDR_MAX];
        a = new_endpoint(&alice_id, addr);
        base_config(&cfg, &bob_id);
        cfg.bind_addr = addr;
        CHECK_RC(aranya_quic_new(&cfg, &b), ARANYA_QUIC_ERR_IO);
        CHECK_RC(aranya_quic_free(a), ARANYA_QUIC_OK);
    }
}

static void test_local_addr(void) {
    char addr[ARANYA_QUIC_ADDR_MAX];
    char small[4];
    size_t len = 0, len2 = 0;
    aranya_quic_t ep = new_endpoint(&alice_id, addr);

    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0);
    CHECK(strcmp(addr, "127.0.0.1:0") != 0);
    CHECK_RC(aranya_quic_local_addr(ep, NULL, 0, &len), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(addr));
    CHECK_RC(aranya_quic_local_addr(ep, small, sizeof small, &len2), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len2 == strlen(addr));
    {
        char exact[ARANYA_QUIC_ADDR_MAX];
        CHECK_RC(aranya_quic_local_addr(ep, exact, len + 1, &len2), ARANYA_QUIC_OK);
        CHECK(strcmp(exact, addr) == 0);
        CHECK_RC(aranya_quic_local_addr(ep, exact, len, &len2), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    }
    CHECK_RC(aranya_quic_local_addr(ep, NULL, 10, &len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_local_addr(ep, addr, sizeof addr, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_free(ep), ARANYA_QUIC_OK);
}

/* Messages on several channels, checked for content, order and origin; then
 * replies, sync messages, an empty message, a label with a NUL. */
#define CHANNELS 4
#define PER_CHANNEL 25

static void test_channels_and_replies(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    static const char *labels[CHANNELS] = {"alpha", "beta", "gamma", "\xc3\xa9t\xc3\xa9"};
    uint8_t teams[CHANNELS][ARANYA_QUIC_TEAM_ID_LEN];
    int next[CHANNELS] = {0};
    uint8_t alice_peer_id[ARANYA_QUIC_PEER_ID_LEN];
    uint8_t buf[256];
    char msg[64];
    aranya_quic_channel ch;
    size_t len;
    int c, i, got;

    for (c = 0; c < CHANNELS; c++) {
        team(teams[c], (uint8_t)(c * 40));
    }
    /* Interleave the channels' sends. */
    for (i = 0; i < PER_CHANNEL; i++) {
        for (c = 0; c < CHANNELS; c++) {
            int n = snprintf(msg, sizeof msg, "ch%d msg %d", c, i);
            CHECK_RC(aranya_quic_send(alice, b_addr, teams[c], labels[c], strlen(labels[c]),
                                      (const uint8_t *)msg, (size_t)n),
                     ARANYA_QUIC_OK);
        }
    }
    for (got = 0; got < CHANNELS * PER_CHANNEL; got++) {
        int32_t rc = recv_wait(bob, buf, sizeof buf - 1, &ch, &len);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        buf[len] = '\0';
        CHECK(ch.kind == ARANYA_QUIC_KIND_CHANNEL);
        CHECK(ch.sync_type == 0);
        CHECK(strcmp(ch.addr, a_addr) == 0);
        if (got == 0) {
            memcpy(alice_peer_id, ch.peer_id, sizeof alice_peer_id);
            CHECK(!is_zero(alice_peer_id, sizeof alice_peer_id));
        } else {
            CHECK(memcmp(alice_peer_id, ch.peer_id, sizeof alice_peer_id) == 0);
        }
        for (c = 0; c < CHANNELS; c++) {
            if (ch.label_len == strlen(labels[c]) && memcmp(ch.label, labels[c], ch.label_len) == 0) {
                break;
            }
        }
        CHECK(c < CHANNELS);
        if (c == CHANNELS) {
            continue;
        }
        CHECK(ch.label[ch.label_len] == '\0');
        CHECK(memcmp(ch.team_id, teams[c], ARANYA_QUIC_TEAM_ID_LEN) == 0);
        snprintf(msg, sizeof msg, "ch%d msg %d", c, next[c]);
        CHECK(len == strlen(msg) && strcmp((char *)buf, msg) == 0); /* in order per channel */
        next[c]++;
    }
    for (c = 0; c < CHANNELS; c++) {
        CHECK(next[c] == PER_CHANNEL);
    }
    CHECK_RC(aranya_quic_receive(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);

    /* Reply on the same channel to the address the message came from. */
    CHECK_RC(aranya_quic_send(bob, a_addr, teams[1], labels[1], strlen(labels[1]),
                              (const uint8_t *)"reply", 5),
             ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 5 && memcmp(buf, "reply", 5) == 0);
    CHECK(strcmp(ch.addr, b_addr) == 0);
    CHECK(ch.kind == ARANYA_QUIC_KIND_CHANNEL);
    CHECK(ch.label_len == strlen(labels[1]) && strcmp(ch.label, labels[1]) == 0);
    CHECK(memcmp(ch.team_id, teams[1], ARANYA_QUIC_TEAM_ID_LEN) == 0);
    CHECK(!is_zero(ch.peer_id, sizeof ch.peer_id));
    CHECK(memcmp(ch.peer_id, alice_peer_id, sizeof alice_peer_id) != 0);

    /* Sync messages of two types. */
    CHECK_RC(aranya_quic_send_sync(alice, b_addr, 7, (const uint8_t *)"sync-7", 6), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send_sync(alice, b_addr, 0xFFFFFFFFu, (const uint8_t *)"sync-max", 8),
             ARANYA_QUIC_OK);
    for (i = 0; i < 2; i++) {
        CHECK_RC(recv_wait(bob, buf, sizeof buf - 1, &ch, &len), ARANYA_QUIC_OK);
        buf[len] = '\0';
        CHECK(ch.kind == ARANYA_QUIC_KIND_SYNC);
        CHECK(ch.label_len == 0 && ch.label[0] == '\0');
        CHECK(is_zero(ch.team_id, sizeof ch.team_id));
        CHECK(strcmp(ch.addr, a_addr) == 0);
        if (ch.sync_type == 7) {
            CHECK(strcmp((char *)buf, "sync-7") == 0);
        } else {
            CHECK(ch.sync_type == 0xFFFFFFFFu);
            CHECK(strcmp((char *)buf, "sync-max") == 0);
        }
    }
    /* A sync reply. */
    CHECK_RC(aranya_quic_send_sync(bob, a_addr, 7, (const uint8_t *)"sync-reply", 10), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(ch.kind == ARANYA_QUIC_KIND_SYNC && ch.sync_type == 7);
    CHECK(len == 10 && memcmp(buf, "sync-reply", 10) == 0);

    /* An empty message (msg NULL, length 0), on the empty label. */
    CHECK_RC(aranya_quic_send(alice, b_addr, teams[0], NULL, 0, NULL, 0), ARANYA_QUIC_OK);
    len = 99;
    CHECK_RC(recv_wait(bob, NULL, 0, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 0);
    CHECK(ch.kind == ARANYA_QUIC_KIND_CHANNEL && ch.label_len == 0);

    /* A label with a NUL byte inside: label_len, not strlen, counts. */
    CHECK_RC(aranya_quic_send(alice, b_addr, teams[0], "a\0b", 3, (const uint8_t *)"x", 1),
             ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(ch.label_len == 3 && memcmp(ch.label, "a\0b", 4) == 0);

    /* A label of exactly ARANYA_QUIC_LABEL_MAX bytes. */
    {
        char label[ARANYA_QUIC_LABEL_MAX];
        memset(label, 'L', sizeof label);
        CHECK_RC(aranya_quic_send(alice, b_addr, teams[0], label, sizeof label,
                                  (const uint8_t *)"max", 3),
                 ARANYA_QUIC_OK);
        CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
        CHECK(ch.label_len == ARANYA_QUIC_LABEL_MAX);
        CHECK(memcmp(ch.label, label, sizeof label) == 0 && ch.label[ARANYA_QUIC_LABEL_MAX] == '\0');
    }

    /* Stats reflect the traffic. */
    {
        aranya_quic_stats st;
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(aranya_quic_get_stats(bob, &st), ARANYA_QUIC_OK);
        CHECK(st.struct_size == sizeof st);
        CHECK(st.messages_received == CHANNELS * PER_CHANNEL + 5);
        CHECK(st.messages_sent == 2);
        CHECK(st.open_connections == 1);
        CHECK(st.queue_messages == 0 && st.queue_bytes == 0);
        CHECK(st.congestion_control[0] != '\0');
        CHECK(memchr(st.congestion_control, '\0', sizeof st.congestion_control) != NULL);
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
        CHECK(st.messages_sent == CHANNELS * PER_CHANNEL + 5);
        CHECK(st.dials >= 1);
        CHECK(st.handshake_failures == 0);
    }

    /* Graceful close, then a send dials again. */
    CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_OK); /* no connection: no-op */
    CHECK_RC(aranya_quic_send(alice, b_addr, teams[2], "after-close", 11, (const uint8_t *)"again", 5),
             ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 5 && memcmp(buf, "again", 5) == 0);

    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

static void test_buffer_too_small(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t big[1000], small[10], *buf;
    aranya_quic_channel ch;
    size_t len = 0;
    int fd = -1, i;
    struct pollfd pfd;

    team(tid, 1);
    for (i = 0; i < (int)sizeof big; i++) {
        big[i] = (uint8_t)(i * 7);
    }
    CHECK_RC(aranya_quic_receive_fd(bob, &fd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "big", 3, big, sizeof big), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "big", 3, (const uint8_t *)"next", 4), ARANYA_QUIC_OK);

    CHECK_RC(recv_wait(bob, small, sizeof small, &ch, &len), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof big);
    /* Query the size with no buffer; the message is still the oldest. */
    len = 0;
    CHECK_RC(aranya_quic_receive(bob, NULL, 0, &ch, &len), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof big);
    len = 0;
    CHECK_RC(aranya_quic_receive_timeout(bob, small, sizeof small, &ch, &len, -1),
             ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof big);
    /* The fd stays readable while the message waits. */
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN));
    /* One byte short is still too small. */
    buf = malloc(sizeof big);
    CHECK_RC(aranya_quic_receive(bob, buf, sizeof big - 1, &ch, &len), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK(len == sizeof big);
    CHECK_RC(aranya_quic_receive(bob, buf, len, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == sizeof big && memcmp(buf, big, sizeof big) == 0);
    CHECK(ch.label_len == 3 && strcmp(ch.label, "big") == 0);
    /* The next message is the one sent after it. */
    CHECK_RC(recv_wait(bob, small, sizeof small, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 4 && memcmp(small, "next", 4) == 0);
    free(buf);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

static void test_bad_arguments(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t buf[64];
    char long_label[ARANYA_QUIC_LABEL_MAX + 1];
    char unterminated[ARANYA_QUIC_ADDR_MAX + 8];
    aranya_quic_channel ch;
    aranya_quic_stats st;
    size_t len;
    int fd;
    static const char *bad_addrs[] = {
        "", "nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "[::1:5",
        "::1:5", "localhost:4433", "0.0.0.0:4433", "224.0.0.1:4433", "1.2.3.4:-1",
        "[fe80::1%eth0]:4433", " 127.0.0.1:4433",
    };
    size_t i;

    team(tid, 9);
    snprintf(b_addr, sizeof b_addr, "127.0.0.1:9"); /* never reached */
    memset(long_label, 'x', sizeof long_label);
    memset(unterminated, '1', sizeof unterminated);

    /* send: each pointer NULL. */
    CHECK_RC(aranya_quic_send(alice, NULL, tid, "l", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send(alice, b_addr, NULL, "l", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, NULL, 1, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "l", 1, NULL, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* labels */
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, long_label, sizeof long_label, buf, 1),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(aranya_quic_last_error(), "label") != NULL);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, long_label, (size_t)-1, buf, 1),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "\xff\xfe", 2, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "\xc3", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(strstr(aranya_quic_last_error(), "UTF-8") != NULL);
    /* addresses */
    for (i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        int32_t rc = aranya_quic_send(alice, bad_addrs[i], tid, "l", 1, buf, 1);
        check_ran();
        if (rc != ARANYA_QUIC_ERR_BAD_ADDRESS) {
            check_failed(__FILE__, __LINE__, "send to \"%s\" returned %d, want BAD_ADDRESS", bad_addrs[i],
                         (int)rc);
        }
        CHECK_RC(aranya_quic_send_sync(alice, bad_addrs[i], 1, buf, 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_close(alice, bad_addrs[i]), ARANYA_QUIC_ERR_BAD_ADDRESS);
    }
    CHECK_RC(aranya_quic_send(alice, unterminated, tid, "l", 1, buf, 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK(strstr(aranya_quic_last_error(), "NUL") != NULL);
    /* send_sync: NULLs. */
    CHECK_RC(aranya_quic_send_sync(alice, NULL, 1, buf, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_sync(alice, b_addr, 1, NULL, 1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* receive: NULLs. */
    CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, NULL, &len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, &ch, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive(alice, NULL, 5, &ch, &len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(alice, buf, sizeof buf, NULL, &len, 0), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, NULL, 0), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(alice, NULL, 5, &ch, &len, 0), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* Empty queue. */
    CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(aranya_quic_receive(alice, NULL, 0, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, &len, 0), ARANYA_QUIC_ERR_TIMEOUT);
    CHECK_RC(aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, &len, 20), ARANYA_QUIC_ERR_TIMEOUT);
    /* receive_fd, close, stats: NULLs. */
    CHECK_RC(aranya_quic_receive_fd(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_close(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_close(alice, "127.0.0.1:9"), ARANYA_QUIC_OK); /* no connection */
    CHECK_RC(aranya_quic_get_stats(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    memset(&st, 0, sizeof st);
    st.struct_size = 8;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(st.open_connections == 0); /* not written */

    /* Too large, with a small limit. */
    {
        aranya_quic_config cfg;
        aranya_quic_t small = 0;
        uint8_t *m = calloc(1, 2048);
        base_config(&cfg, &carol_id);
        cfg.max_message_size = 1024;
        CHECK_RC(aranya_quic_new(&cfg, &small), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_send(small, a_addr, tid, "l", 1, m, 1025), ARANYA_QUIC_ERR_TOO_LARGE);
        CHECK_RC(aranya_quic_send_sync(small, a_addr, 1, m, 2048), ARANYA_QUIC_ERR_TOO_LARGE);
        /* A length beyond any buffer is rejected before it is read. */
        CHECK_RC(aranya_quic_send(small, a_addr, tid, "l", 1, m, (size_t)-1), ARANYA_QUIC_ERR_TOO_LARGE);
        CHECK_RC(aranya_quic_free(small), ARANYA_QUIC_OK);
        free(m);
    }

    /* Handles: 0, never issued, freed. */
    {
        static const aranya_quic_t bogus[] = {0, 1, 7, 12345, (aranya_quic_t)-1};
        for (i = 0; i < sizeof bogus / sizeof bogus[0]; i++) {
            aranya_quic_t h = bogus[i];
            CHECK_RC(aranya_quic_send(h, "127.0.0.1:9", tid, "l", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_send_sync(h, "127.0.0.1:9", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_receive(h, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_receive_timeout(h, buf, sizeof buf, &ch, &len, -1),
                     ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_receive_fd(h, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_close(h, "127.0.0.1:9"), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_local_addr(h, (char *)buf, sizeof buf, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
            st.struct_size = sizeof st;
            CHECK_RC(aranya_quic_get_stats(h, &st), ARANYA_QUIC_ERR_INVALID_HANDLE);
        }
        CHECK_RC(aranya_quic_free(0), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_free(7), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_free((aranya_quic_t)-1), ARANYA_QUIC_ERR_INVALID_HANDLE);
    }

    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    /* Freed handle: every call says INVALID_HANDLE; free again is harmless. */
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, "127.0.0.1:9", tid, "l", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_send_sync(alice, "127.0.0.1:9", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, &len, -1), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_receive_fd(alice, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_close(alice, "127.0.0.1:9"), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_local_addr(alice, (char *)buf, sizeof buf, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* Handles are unique and never reused. */
static void test_handles_unique(void) {
    aranya_quic_t seen[6];
    char addr[ARANYA_QUIC_ADDR_MAX];
    int i, j;
    for (i = 0; i < 6; i++) {
        seen[i] = new_endpoint(&carol_id, addr);
        CHECK(seen[i] > 1000); /* never a small integer */
        for (j = 0; j < i; j++) {
            CHECK(seen[i] != seen[j]);
        }
        if (i % 2 == 0) {
            CHECK_RC(aranya_quic_free(seen[i]), ARANYA_QUIC_OK);
        }
    }
    for (i = 1; i < 6; i += 2) {
        CHECK_RC(aranya_quic_free(seen[i]), ARANYA_QUIC_OK);
    }
}

static void test_poll_fd(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t buf[64];
    aranya_quic_channel ch;
    size_t len;
    int fd = -1, fd2 = -1, i, got = 0;
    struct pollfd pfd;

    team(tid, 3);
    CHECK_RC(aranya_quic_receive_fd(bob, &fd), ARANYA_QUIC_OK);
    CHECK(fd >= 0);
    CHECK_RC(aranya_quic_receive_fd(bob, &fd2), ARANYA_QUIC_OK);
    CHECK(fd2 == fd);
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 0); /* empty queue: not readable */

    for (i = 0; i < 3; i++) {
        char m[16];
        int n = snprintf(m, sizeof m, "poll %d", i);
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "poll", 4, (const uint8_t *)m, (size_t)n), ARANYA_QUIC_OK);
    }
    /* An event loop: wait for readability, drain until WOULD_BLOCK. */
    while (got < 3) {
        int32_t rc;
        pfd.revents = 0;
        if (poll(&pfd, 1, WAIT_MS) != 1) {
            check_failed(__FILE__, __LINE__, "fd never became readable (got %d of 3)", got);
            break;
        }
        CHECK(pfd.revents & POLLIN);
        while ((rc = aranya_quic_receive(bob, buf, sizeof buf, &ch, &len)) == ARANYA_QUIC_OK) {
            char want[16];
            snprintf(want, sizeof want, "poll %d", got);
            CHECK(len == strlen(want) && memcmp(buf, want, len) == 0);
            got++;
        }
        CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
    }
    CHECK(got == 3);
    pfd.revents = 0;
    CHECK(poll(&pfd, 1, 0) == 0); /* drained: not readable again */

    /* A message queued before the fd was asked for is seen at once. */
    {
        int afd = -1;
        CHECK_RC(aranya_quic_send(bob, a_addr, tid, "poll", 4, (const uint8_t *)"early", 5), ARANYA_QUIC_OK);
        CHECK_RC(recv_wait(alice, NULL, 0, &ch, &len), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
        CHECK_RC(aranya_quic_receive_fd(alice, &afd), ARANYA_QUIC_OK);
        CHECK(afd >= 0 && afd != fd);
        pfd.fd = afd;
        pfd.revents = 0;
        CHECK(poll(&pfd, 1, 0) == 1);
        CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
        pfd.revents = 0;
        CHECK(poll(&pfd, 1, 0) == 0);
    }
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* free while another thread is blocked in receive_timeout(-1). */
typedef struct {
    aranya_quic_t ep;
    volatile int started;
    int32_t rc;
} blocked_arg;

static void *blocked_receiver(void *p) {
    blocked_arg *a = p;
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    a->started = 1;
    a->rc = aranya_quic_receive_timeout(a->ep, buf, sizeof buf, &ch, &len, -1);
    return NULL;
}

static void test_free_wakes_blocked_receive(void) {
    char addr[ARANYA_QUIC_ADDR_MAX];
    blocked_arg args[3];
    pthread_t t[3];
    int i, fd = -1;
    aranya_quic_t ep = new_endpoint(&alice_id, addr);
    CHECK_RC(aranya_quic_receive_fd(ep, &fd), ARANYA_QUIC_OK); /* closed by free too */
    for (i = 0; i < 3; i++) {
        args[i].ep = ep;
        args[i].started = 0;
        args[i].rc = 12345;
        pthread_create(&t[i], NULL, blocked_receiver, &args[i]);
    }
    /* Give the threads time to block (not a timing assertion: a thread
     * that had not yet entered the call gets INVALID_HANDLE instead). */
    for (i = 0; i < 3; i++) {
        while (!args[i].started) {
            sleep_ms(1);
        }
    }
    sleep_ms(200);
    CHECK_RC(aranya_quic_free(ep), ARANYA_QUIC_OK);
    for (i = 0; i < 3; i++) {
        pthread_join(t[i], NULL); /* a receiver that never wakes hangs here: ctest times out */
        CHECK(args[i].rc == ARANYA_QUIC_ERR_CLOSED || args[i].rc == ARANYA_QUIC_ERR_INVALID_HANDLE);
    }
    CHECK(args[0].rc == ARANYA_QUIC_ERR_CLOSED); /* it had 200 ms to block */
}

/* Many threads sending at once, on a shared channel and on their own. */
#define SENDERS 8
#define PER_SENDER 150

typedef struct {
    aranya_quic_t ep;
    const char *to;
    int id;
    int errors;
} sender_arg;

static void *sender(void *p) {
    sender_arg *a = p;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    char own[16];
    int i;
    team(tid, 77);
    snprintf(own, sizeof own, "own-%d", a->id);
    for (i = 0; i < PER_SENDER; i++) {
        char m[600];
        int n = snprintf(m, sizeof m, "t%d-%d:", a->id, i);
        /* Pad so that frames are long enough to interleave if they could. */
        memset(m + n, 'a' + a->id, (size_t)(i % 500));
        n += i % 500;
        if (i % 2 == 0) {
            if (aranya_quic_send(a->ep, a->to, tid, "shared", 6, (const uint8_t *)m, (size_t)n) != ARANYA_QUIC_OK) {
                a->errors++;
            }
        } else {
            if (aranya_quic_send(a->ep, a->to, tid, own, strlen(own), (const uint8_t *)m, (size_t)n) !=
                ARANYA_QUIC_OK) {
                a->errors++;
            }
        }
    }
    return NULL;
}

static void test_many_senders(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    pthread_t t[SENDERS];
    sender_arg args[SENDERS];
    int next[SENDERS][2];
    uint8_t buf[1024];
    aranya_quic_channel ch;
    size_t len;
    int i, got;

    for (i = 0; i < SENDERS; i++) {
        next[i][0] = 0; /* even sequence numbers go on "shared" */
        next[i][1] = 1; /* odd ones on the sender's own channel */
        args[i].ep = alice;
        args[i].to = b_addr;
        args[i].id = i;
        args[i].errors = 0;
        pthread_create(&t[i], NULL, sender, &args[i]);
    }
    for (got = 0; got < SENDERS * PER_SENDER; got++) {
        int id, seq, prefix, shared, k;
        int32_t rc = recv_wait(bob, buf, sizeof buf - 1, &ch, &len);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        buf[len] = '\0';
        if (sscanf((char *)buf, "t%d-%d:%n", &id, &seq, &prefix) != 2 || id < 0 || id >= SENDERS) {
            check_failed(__FILE__, __LINE__, "malformed message \"%.40s\"", (char *)buf);
            continue;
        }
        /* Content intact: exactly the padding the sender wrote. */
        CHECK((int)len == prefix + seq % 500);
        for (k = prefix; k < (int)len; k++) {
            if (buf[k] != (uint8_t)('a' + id)) {
                check_failed(__FILE__, __LINE__, "message t%d-%d corrupted at byte %d", id, seq, k);
                break;
            }
        }
        shared = ch.label_len == 6 && memcmp(ch.label, "shared", 6) == 0;
        if (!shared) {
            char own[16];
            snprintf(own, sizeof own, "own-%d", id);
            CHECK(ch.label_len == strlen(own) && strcmp(ch.label, own) == 0);
        }
        CHECK(seq % 2 == (shared ? 0 : 1));
        /* Per sender, per channel, in order (each sender sends one at a time). */
        CHECK(seq == next[id][shared ? 0 : 1]);
        next[id][shared ? 0 : 1] = seq + 2;
    }
    for (i = 0; i < SENDERS; i++) {
        pthread_join(t[i], NULL);
        CHECK(args[i].errors == 0);
        CHECK(next[i][0] == PER_SENDER && next[i][1] == PER_SENDER + 1);
    }
    CHECK_RC(aranya_quic_receive(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* Many threads using one handle while another frees it: only OK, CLOSED,
 * INVALID_HANDLE, WOULD_BLOCK, TIMEOUT or CONNECTION come back; no crash. */
typedef struct {
    aranya_quic_t ep;
    const char *to;
    int bad;
} racer_arg;

static void *racer(void *p) {
    racer_arg *a = p;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[64];
    aranya_quic_channel ch;
    size_t len;
    int i, fd;
    for (i = 0; i < 200; i++) {
        int32_t rc[4];
        int k;
        rc[0] = aranya_quic_send(a->ep, a->to, tid, "race", 4, (const uint8_t *)"r", 1);
        rc[1] = aranya_quic_receive(a->ep, buf, sizeof buf, &ch, &len);
        rc[2] = aranya_quic_receive_fd(a->ep, &fd);
        rc[3] = aranya_quic_receive_timeout(a->ep, buf, sizeof buf, &ch, &len, 1);
        for (k = 0; k < 4; k++) {
            switch (rc[k]) {
            case ARANYA_QUIC_OK:
            case ARANYA_QUIC_ERR_CLOSED:
            case ARANYA_QUIC_ERR_INVALID_HANDLE:
            case ARANYA_QUIC_ERR_WOULD_BLOCK:
            case ARANYA_QUIC_ERR_TIMEOUT:
            case ARANYA_QUIC_ERR_CONNECTION:
                break;
            default:
                a->bad++;
            }
        }
        if (rc[0] == ARANYA_QUIC_ERR_INVALID_HANDLE) {
            break;
        }
    }
    return NULL;
}

static void test_free_races(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    pthread_t t[4];
    racer_arg args[4];
    int i;
    for (i = 0; i < 4; i++) {
        args[i].ep = alice;
        args[i].to = b_addr;
        args[i].bad = 0;
        pthread_create(&t[i], NULL, racer, &args[i]);
    }
    sleep_ms(50);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    for (i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(args[i].bad == 0);
    }
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* TLS: an endpoint whose certificate the peer does not trust never gets
 * OK, in either direction. */
static void test_tls_rejection(void) {
    char b_addr[ARANYA_QUIC_ADDR_MAX], s_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    aranya_quic_t stranger = new_endpoint(&stranger_id, s_addr); /* trusts bob's CA; bob does not trust it */
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    aranya_quic_stats st;

    /* stranger -> bob: bob rejects stranger's certificate. */
    CHECK_RC(aranya_quic_send(stranger, b_addr, tid, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
    CHECK_RC(aranya_quic_send_sync(stranger, b_addr, 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
    /* bob -> stranger: bob rejects stranger's certificate. */
    CHECK_RC(aranya_quic_send(bob, s_addr, tid, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
    CHECK_RC(aranya_quic_receive(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(aranya_quic_receive(stranger, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_WOULD_BLOCK);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(aranya_quic_get_stats(bob, &st), ARANYA_QUIC_OK);
    CHECK(st.handshake_failures >= 1);
    CHECK(st.messages_received == 0);
    CHECK_RC(aranya_quic_free(stranger), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* A pin list admits only the pinned peer. */
static void test_pinning(void) {
    /* Pin a fingerprint that matches nobody: alice rejects bob. */
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice = 0, bob = new_endpoint(&bob_id, b_addr);
    uint8_t pins[2 * ARANYA_QUIC_FINGERPRINT_LEN];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;

    memset(pins, 0x5A, sizeof pins);
    base_config(&cfg, &alice_id);
    cfg.pinned_peers = pins;
    cfg.pinned_peers_len = 2;
    CHECK_RC(aranya_quic_new(&cfg, &alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(alice, a_addr, sizeof a_addr, &len), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);

    /* Learn bob's peer id from a message bob sends to an unpinned carol,
     * then pin it: alice now accepts bob. */
    {
        char c_addr[ARANYA_QUIC_ADDR_MAX];
        aranya_quic_t carol = new_endpoint(&carol_id, c_addr);
        aranya_quic_t alice2 = 0;
        CHECK_RC(aranya_quic_send(bob, c_addr, tid, "x", 1, (const uint8_t *)"id", 2), ARANYA_QUIC_OK);
        CHECK_RC(recv_wait(carol, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
        memcpy(pins + ARANYA_QUIC_FINGERPRINT_LEN, ch.peer_id, ARANYA_QUIC_FINGERPRINT_LEN);
        base_config(&cfg, &alice_id);
        cfg.pinned_peers = pins;
        cfg.pinned_peers_len = 2;
        CHECK_RC(aranya_quic_new(&cfg, &alice2), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_send(alice2, b_addr, tid, "x", 1, (const uint8_t *)"pinned", 6), ARANYA_QUIC_OK);
        CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
        CHECK(len == 6 && memcmp(buf, "pinned", 6) == 0);
        CHECK_RC(aranya_quic_free(alice2), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    }
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* A peer that is not there: CONNECTION or TIMEOUT, never OK. */
static void test_unreachable(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], gone[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice = 0, ghost = new_endpoint(&bob_id, gone);
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    size_t len;
    int32_t rc;
    CHECK_RC(aranya_quic_free(ghost), ARANYA_QUIC_OK); /* its port is now closed */
    base_config(&cfg, &alice_id);
    cfg.handshake_timeout_ms = 500;
    cfg.send_timeout_ms = 1000;
    CHECK_RC(aranya_quic_new(&cfg, &alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(alice, a_addr, sizeof a_addr, &len), ARANYA_QUIC_OK);
    rc = aranya_quic_send(alice, gone, tid, "x", 1, (const uint8_t *)"hi", 2);
    CHECK(rc == ARANYA_QUIC_ERR_CONNECTION || rc == ARANYA_QUIC_ERR_TIMEOUT);
    CHECK(aranya_quic_last_error()[0] != '\0');
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* Delivery accounting: close and free return ERR_UNCONFIRMED, with the
 * count, when the peer did not confirm every accepted message before the
 * drain timeout; what was not confirmed is exactly what did not arrive. */
static void accounting_case(int use_free) {
    enum { N = 20, SIZE = 16 * 1024 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice = 0, bob = 0;
    aranya_quic_stats st;
    aranya_quic_channel ch;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t msg[SIZE], buf[SIZE];
    size_t len, delivered = 0;
    int i, last = -1, in_order = 1;
    int32_t rc;
    unsigned long long unconfirmed = 0;
    const char *detail;

    team(tid, 40);
    base_config(&cfg, &bob_id);
    cfg.max_queue_messages = 2; /* bob's application does not read yet */
    cfg.max_message_size = 64 * 1024;
    cfg.max_queue_bytes = 64 * 1024;
    CHECK_RC(aranya_quic_new(&cfg, &bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(bob, b_addr, sizeof b_addr, &len), ARANYA_QUIC_OK);
    base_config(&cfg, &alice_id);
    cfg.drain_timeout_ms = 500;
    CHECK_RC(aranya_quic_new(&cfg, &alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(alice, a_addr, sizeof a_addr, &len), ARANYA_QUIC_OK);
    for (i = 0; i < N; i++) {
        memset(msg, i, sizeof msg);
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "acct", 4, msg, sizeof msg), ARANYA_QUIC_OK);
    }
    if (use_free) {
        rc = aranya_quic_free(alice);
    } else {
        rc = aranya_quic_close(alice, b_addr);
    }
    CHECK_RC(rc, ARANYA_QUIC_ERR_UNCONFIRMED);
    detail = aranya_quic_last_error();
    CHECK(strstr(detail, "message(s)") != NULL);
    sscanf(strstr(detail, "confirmed by the peer: ") ? strstr(detail, "confirmed by the peer: ") + 23 : "", "%llu", &unconfirmed);
    if (!use_free) {
        memset(&st, 0, sizeof st);
        st.struct_size = sizeof st;
        CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
        CHECK(st.messages_unconfirmed == unconfirmed);
    } else {
        /* The handle is gone all the same. */
        CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_ERR_INVALID_HANDLE);
    }
    /* Now bob reads everything it got: what arrived is in order, and no
     * accepted message is missing without being counted. (A message the
     * receiver queued while the sender was giving up is counted as
     * unconfirmed and may still arrive: "not confirmed" is not "lost".) */
    while ((rc = aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, 1000)) == ARANYA_QUIC_OK) {
        if ((int)buf[0] <= last) {
            in_order = 0;
        }
        last = buf[0];
        delivered++;
    }
    CHECK_RC(rc, ARANYA_QUIC_ERR_TIMEOUT);
    CHECK(in_order);
    CHECK(unconfirmed > 0);
    CHECK(delivered + unconfirmed >= N);
    CHECK(delivered <= N);
    if (delivered + unconfirmed != N) {
        fprintf(stderr, "delivered %zu, unconfirmed %llu, sent %d: %s\n", delivered, unconfirmed, N, detail);
    }
    if (!use_free) {
        CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    }
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

static void test_delivery_accounting(void) {
    accounting_case(0);
    accounting_case(1);
}

/* Addresses: bind addresses must be unicast or unspecified; ports are
 * plain decimal; sending to ourselves is refused without dialing. */
static void test_address_rules(void) {
    static const char *bad_binds[] = {"224.0.0.1:0", "255.255.255.255:0", "[ff02::1]:0", "127.0.0.1:0080", "127.0.0.1:+1"};
    char self[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t ep = 0, alice;
    aranya_quic_stats st;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    size_t i;
    for (i = 0; i < sizeof bad_binds / sizeof bad_binds[0]; i++) {
        base_config(&cfg, &alice_id);
        cfg.bind_addr = bad_binds[i];
        CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK(ep == 0);
    }
    alice = new_endpoint(&alice_id, self);
    CHECK_RC(aranya_quic_send(alice, self, tid, "me", 2, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK(strstr(aranya_quic_last_error(), "own address") != NULL);
    CHECK_RC(aranya_quic_send(alice, "127.0.0.1:0080", tid, "me", 2, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
    CHECK(st.dials == 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* A peer's announced message limit is known before sending. */
static void test_peer_limit(void) {
    char b_addr[ARANYA_QUIC_ADDR_MAX], a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob = 0;
    aranya_quic_channel ch;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    static uint8_t msg[1001], buf[2048];
    size_t len;
    base_config(&cfg, &bob_id);
    cfg.max_message_size = 1000;
    CHECK_RC(aranya_quic_new(&cfg, &bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(bob, b_addr, sizeof b_addr, &len), ARANYA_QUIC_OK);
    alice = new_endpoint(&alice_id, a_addr);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "lim", 3, msg, 1001), ARANYA_QUIC_ERR_TOO_LARGE);
    CHECK(strstr(aranya_quic_last_error(), "1000") != NULL);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "lim", 3, msg, 1000), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 1000);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* Callers built against the 0.1 header pass the 0.1 struct sizes: the
 * library accepts them and touches no byte past them. */
static void test_struct_versions(void) {
    const size_t cfg01 = offsetof(aranya_quic_config, connect_timeout_ms);
    const size_t stats01 = offsetof(aranya_quic_stats, messages_unconfirmed);
    char addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_stats st;
    aranya_quic_t ep = 0, alice;
    base_config(&cfg, &alice_id);
    cfg.struct_size = (uint32_t)cfg01;
    cfg.connect_timeout_ms = 1; /* not covered: must be ignored */
    cfg.send_timeout_ms = 1;    /* 1 >= 1 would be refused if it were read */
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(ep), ARANYA_QUIC_OK);
    cfg.struct_size = (uint32_t)cfg01 - 1;
    ep = 0;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    base_config(&cfg, &alice_id);
    cfg.connect_timeout_ms = 2000;
    cfg.send_timeout_ms = 2000;
    CHECK_RC(aranya_quic_new(&cfg, &ep), ARANYA_QUIC_ERR_INVALID_ARGUMENT);

    alice = new_endpoint(&alice_id, addr);
    memset(&st, 0xab, sizeof st);
    st.struct_size = (uint32_t)stats01;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
    CHECK(st.struct_size == stats01);
    CHECK(st.messages_unconfirmed == 0xababababababababULL);
    st.struct_size = (uint32_t)stats01 - 1;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    memset(&st, 0xab, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
    CHECK(st.struct_size == sizeof st);
    CHECK(st.messages_unconfirmed == 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* Several endpoints in one process, each with its own socket. */
static void test_many_endpoints(void) {
    enum { N = 5 };
    aranya_quic_t ep[N];
    char addr[N][ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    int i;
    for (i = 0; i < N; i++) {
        ep[i] = new_endpoint(i % 2 ? &alice_id : &carol_id, addr[i]);
    }
    for (i = 0; i < N; i++) {
        uint8_t m = (uint8_t)i;
        CHECK_RC(aranya_quic_send(ep[i], addr[(i + 1) % N], tid, "ring", 4, &m, 1), ARANYA_QUIC_OK);
    }
    for (i = 0; i < N; i++) {
        int from = (i + N - 1) % N;
        CHECK_RC(recv_wait(ep[i], buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
        CHECK(len == 1 && buf[0] == (uint8_t)from);
        CHECK(strcmp(ch.addr, addr[from]) == 0);
    }
    for (i = 0; i < N; i++) {
        CHECK_RC(aranya_quic_free(ep[i]), ARANYA_QUIC_OK);
    }
}

/* IPv6 addresses, when the host has a loopback for them. */
static void test_ipv6(void) {
    aranya_quic_config cfg;
    aranya_quic_t a = 0, b = 0;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    int32_t rc;

    base_config(&cfg, &alice_id);
    cfg.bind_addr = "[::1]:0";
    rc = aranya_quic_new(&cfg, &a);
    if (rc == ARANYA_QUIC_ERR_IO) {
        printf("(no IPv6 loopback: skipped) ");
        return;
    }
    CHECK_RC(rc, ARANYA_QUIC_OK);
    base_config(&cfg, &bob_id);
    cfg.bind_addr = "[::1]:0";
    CHECK_RC(aranya_quic_new(&cfg, &b), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(a, a_addr, sizeof a_addr, &len), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(b, b_addr, sizeof b_addr, &len), ARANYA_QUIC_OK);
    CHECK(strncmp(a_addr, "[::1]:", 6) == 0);
    CHECK_RC(aranya_quic_send(a, b_addr, tid, "v6", 2, (const uint8_t *)"six", 3), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(b, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 3 && memcmp(buf, "six", 3) == 0);
    CHECK(strcmp(ch.addr, a_addr) == 0);
    CHECK_RC(aranya_quic_send(b, ch.addr, tid, "v6", 2, (const uint8_t *)"back", 4), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(a, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 4 && memcmp(buf, "back", 4) == 0);
    CHECK_RC(aranya_quic_free(a), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(b), ARANYA_QUIC_OK);
}

/* congestion_control: the shipped library carries the quic-go hook, so the
 * default and BBR2 give connections driven by BBRv2, and RENO quic-go's
 * own; stats name what the connections were actually built with. This
 * fails if the library was built without the hook. */
static void cc_endpoint(uint32_t cc, const char *want) {
    aranya_quic_config cfg;
    aranya_quic_t a = 0, b = 0;
    char b_addr[ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    aranya_quic_stats st;
    size_t len;
    int32_t rc;

    base_config(&cfg, &alice_id);
    cfg.congestion_control = cc;
    rc = aranya_quic_new(&cfg, &a);
    CHECK_RC(rc, ARANYA_QUIC_OK);
    b = new_endpoint(&bob_id, b_addr);
    CHECK_RC(aranya_quic_send(a, b_addr, tid, "cc", 2, (const uint8_t *)"cc", 2), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(b, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(aranya_quic_get_stats(a, &st), ARANYA_QUIC_OK);
    CHECK(strcmp(st.congestion_control, want) == 0);
    CHECK_RC(aranya_quic_free(a), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(b), ARANYA_QUIC_OK);
}

static void test_congestion_control(void) {
    cc_endpoint(ARANYA_QUIC_CC_DEFAULT, "bbr2");
    cc_endpoint(ARANYA_QUIC_CC_RENO, "reno");
    cc_endpoint(ARANYA_QUIC_CC_BBR2, "bbr2");
}

/* A Go panic inside a call comes back as ARANYA_QUIC_ERR_INTERNAL with a
 * message, and the endpoint stays usable. A team_id pointer into the first
 * page makes the library fault while reading it, which Go turns into a
 * (recovered) nil-dereference panic. */
static void test_panic_is_caught(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_endpoint(&alice_id, a_addr);
    aranya_quic_t bob = new_endpoint(&bob_id, b_addr);
    const uint8_t *bad_team = (const uint8_t *)(uintptr_t)16;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    CHECK_RC(aranya_quic_send(alice, b_addr, bad_team, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_INTERNAL);
    CHECK(strstr(aranya_quic_last_error(), "panic") != NULL);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "x", 1, (const uint8_t *)"ok", 2), ARANYA_QUIC_OK);
    CHECK_RC(recv_wait(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "ok", 2) == 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

/* ---------------------------------------------------------------- main */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"version_and_strings", test_version_and_strings},
        {"last_error_thread_local", test_last_error_thread_local},
        {"config", test_config},
        {"local_addr", test_local_addr},
        {"channels_and_replies", test_channels_and_replies},
        {"buffer_too_small", test_buffer_too_small},
        {"bad_arguments", test_bad_arguments},
        {"handles_unique", test_handles_unique},
        {"poll_fd", test_poll_fd},
        {"free_wakes_blocked_receive", test_free_wakes_blocked_receive},
        {"many_senders", test_many_senders},
        {"free_races", test_free_races},
        {"tls_rejection", test_tls_rejection},
        {"pinning", test_pinning},
        {"unreachable", test_unreachable},
        {"many_endpoints", test_many_endpoints},
        {"ipv6", test_ipv6},
        {"congestion_control", test_congestion_control},
        {"panic_is_caught", test_panic_is_caught},
        {"delivery_accounting", test_delivery_accounting},
        {"address_rules", test_address_rules},
        {"peer_limit", test_peer_limit},
        {"struct_versions", test_struct_versions},
    };
    size_t i;
    const char *only = argc > 2 ? argv[2] : NULL;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CERTS_DIR [TEST]\n", argv[0]);
        return 2;
    }
    certs_dir = argv[1];
    alice_id = load_identity("alice", "ca.pem");
    bob_id = load_identity("bob", "ca.pem");
    carol_id = load_identity("carol", "ca.pem");
    stranger_id = load_identity("stranger", "ca.pem");

    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int before;
        if (only != NULL && strcmp(only, tests[i].name) != 0) {
            continue;
        }
        before = checks_failed;
        tests[i].fn();
        printf("%-30s %s\n", tests[i].name, checks_failed == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    printf("%d checks, %d failed\n", checks_run, checks_failed);
    free_identity(&alice_id);
    free_identity(&bob_id);
    free_identity(&carol_id);
    free_identity(&stranger_id);
    return checks_failed == 0 ? 0 : 1;
}
