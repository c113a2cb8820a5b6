/*
 * Tests of the receive callback (aranya_quic_config.receive_callback)
 * through the public header only: every promise of the comment on
 * aranya_quic_receive_callback and of the config fields that set it.
 *
 *   callback CERTS_DIR [TEST]
 *
 * CERTS_DIR holds ca.pem and alice, bob and carol's .crt/.key, as written by
 *   go run ./examples/certgen -other-ca -out CERTS_DIR alice bob carol
 *
 * Most checks about a callback's calls are made by the callback itself
 * (counters and flags that the test reads afterwards), since it runs on the
 * library's threads. Waits are bounded so that a lost message fails a check
 * instead of hanging, but no check asserts how long anything took.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aranya_quic.h"
#include "testlib.h"

/* ------------------------------------------------------------- helpers */


/* open_endpoint makes an endpoint from cfg and writes its address; 0 on
 * failure (already reported). */
static aranya_quic_t open_endpoint(const aranya_quic_config *cfg, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_t ep = 0;
    size_t len = 0;
    CHECK_RC(aranya_quic_new(cfg, &ep), ARANYA_QUIC_OK);
    if (ep == 0) {
        addr[0] = '\0';
        return 0;
    }
    CHECK_RC(aranya_quic_local_addr(ep, addr, ARANYA_QUIC_ADDR_MAX, &len), ARANYA_QUIC_OK);
    return ep;
}

/* queue_endpoint: an endpoint that receives through the queue. */
static aranya_quic_t queue_endpoint(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_config cfg;
    base_config(&cfg, id);
    return open_endpoint(&cfg, addr);
}

/* callback_endpoint: an endpoint that receives through fn. */
static aranya_quic_t callback_endpoint(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX],
                                       aranya_quic_receive_callback fn, void *user) {
    aranya_quic_config cfg;
    base_config(&cfg, id);
    cfg.receive_callback = fn;
    cfg.receive_callback_user = user;
    return open_endpoint(&cfg, addr);
}

static void fill_team(uint8_t id[ARANYA_QUIC_TEAM_ID_LEN], uint8_t seed) {
    int i;
    for (i = 0; i < ARANYA_QUIC_TEAM_ID_LEN; i++) {
        id[i] = (uint8_t)(seed * 17 + i);
    }
}

static int all_zero(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static void sleep_us(long us) {
    struct timespec ts;
    ts.tv_sec = 0;
    ts.tv_nsec = us * 1000L;
    nanosleep(&ts, NULL);
}

/* Bound on every wait for something that should happen: generous, only so
 * that a lost message fails instead of hanging. */
#define WAIT_MS 30000

/* wait_at_least polls until *v >= want or WAIT_MS passed; returns whether
 * it got there. */
static int wait_at_least(atomic_int *v, int want) {
    int waited;
    for (waited = 0; waited < WAIT_MS; waited += 2) {
        if (atomic_load(v) >= want) {
            return 1;
        }
        sleep_ms(2);
    }
    return atomic_load(v) >= want;
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A gate that callbacks wait at until the test opens it. The wait is
 * bounded so that a test that fails to open it cannot hang the run. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int open;
} gate;

static void gate_init(gate *g) {
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    g->open = 0;
}

static void gate_destroy(gate *g) {
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cond);
}

static void gate_open(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

/* gate_wait returns whether the gate was opened (0: the bound passed). */
static int gate_wait(gate *g) {
    struct timespec until;
    int opened;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 2 * WAIT_MS / 1000;
    pthread_mutex_lock(&g->mu);
    while (!g->open) {
        if (pthread_cond_timedwait(&g->cond, &g->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    opened = g->open;
    pthread_mutex_unlock(&g->mu);
    return opened;
}

/* ------------------------------------------------- ordered delivery */

/* Several channels (different teams, labels, an empty label, a label with
 * a NUL, a sync type), each sent by its own thread: the callback checks
 * that every message of a channel comes exactly once, in order, with the
 * bytes sent and the channel's fields, that zero-length messages come as
 * (NULL, 0), and that no two calls of one channel overlap. */

typedef struct {
    uint32_t kind;
    uint8_t team_seed;
    const char *label;
    size_t label_len;
    uint32_t sync_type;
    int batch; /* sent with the batch functions, in chunks */
} chan_spec;

static const chan_spec order_chans[] = {
    {ARANYA_QUIC_KIND_CHANNEL, 1, "alpha", 5, 0, 0},
    {ARANYA_QUIC_KIND_CHANNEL, 1, "beta", 4, 0, 1},
    {ARANYA_QUIC_KIND_CHANNEL, 2, "alpha", 5, 0, 0}, /* same label, other team */
    {ARANYA_QUIC_KIND_CHANNEL, 2, NULL, 0, 0, 0},    /* the empty label */
    {ARANYA_QUIC_KIND_CHANNEL, 3, "n\0l", 3, 0, 0},  /* a NUL inside the label */
    {ARANYA_QUIC_KIND_SYNC, 0, NULL, 0, 7, 0},
    {ARANYA_QUIC_KIND_SYNC, 0, NULL, 0, 8, 1},
};
#define ORDER_NCH ((int)(sizeof order_chans / sizeof order_chans[0]))
#define ORDER_N 600 /* messages per channel */
#define ORDER_MAX_LEN 8192

/* The message i of channel c: its length, and its bytes (the index first,
 * then a pattern of both). Every tenth is empty; some are larger than a
 * small read buffer, so that both ways a payload can reach the callback
 * (straight from the reader's buffer, or read in full first) are used. */
static size_t order_len(int c, uint32_t i) {
    if (i % 10 == 9) {
        return 0;
    }
    if (i % 37 == 0) {
        return 5000 + (size_t)c * 100;
    }
    return 4 + (i * 7u + (uint32_t)c) % 300u;
}

static void order_fill(uint8_t *buf, int c, uint32_t i, size_t len) {
    size_t k;
    for (k = 0; k < len; k++) {
        buf[k] = (uint8_t)((uint32_t)c * 31u + i + (uint32_t)k);
    }
    if (len >= 4) {
        put_u32(buf, i);
    }
}

typedef struct {
    char sender_addr[ARANYA_QUIC_ADDR_MAX];
    atomic_int inside[ORDER_NCH];
    uint32_t next[ORDER_NCH]; /* touched only by the channel's own calls */
    atomic_int delivered;
    atomic_int overlaps;
    atomic_int mismatches;
    atomic_int bad_channel;
    atomic_int null_rule;
    atomic_int concurrent, max_concurrent;
    pthread_mutex_t mu;
    int have_peer;
    uint8_t peer[ARANYA_QUIC_PEER_ID_LEN];
    int peer_changed;
} order_state;

/* order_channel_index maps a received channel to its index in
 * order_chans, checking the fields that do not identify it; -1 if none. */
static int order_channel_index(const order_state *st, const aranya_quic_channel *ch) {
    int c;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    if (strcmp(ch->addr, st->sender_addr) != 0) {
        return -1;
    }
    if (ch->label_len > ARANYA_QUIC_LABEL_MAX || ch->label[ch->label_len] != '\0') {
        return -1;
    }
    if (ch->kind == ARANYA_QUIC_KIND_SYNC) {
        if (ch->label_len != 0 || !all_zero(ch->team_id, sizeof ch->team_id)) {
            return -1;
        }
    } else if (ch->kind != ARANYA_QUIC_KIND_CHANNEL || ch->sync_type != 0) {
        return -1;
    }
    for (c = 0; c < ORDER_NCH; c++) {
        const chan_spec *s = &order_chans[c];
        if (s->kind != ch->kind) {
            continue;
        }
        if (s->kind == ARANYA_QUIC_KIND_SYNC) {
            if (s->sync_type == ch->sync_type) {
                return c;
            }
            continue;
        }
        fill_team(tid, s->team_seed);
        if (memcmp(tid, ch->team_id, sizeof tid) == 0 && s->label_len == ch->label_len &&
            (s->label_len == 0 || memcmp(s->label, ch->label, s->label_len) == 0)) {
            return c;
        }
    }
    return -1;
}

static void order_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    order_state *st = user;
    uint8_t want[ORDER_MAX_LEN];
    size_t want_len;
    uint32_t i;
    int c, now, max;

    now = atomic_fetch_add(&st->concurrent, 1) + 1;
    max = atomic_load(&st->max_concurrent);
    while (now > max && !atomic_compare_exchange_weak(&st->max_concurrent, &max, now)) {
    }
    c = order_channel_index(st, ch);
    if (c < 0) {
        atomic_fetch_add(&st->bad_channel, 1);
        atomic_fetch_sub(&st->concurrent, 1);
        return;
    }
    if (atomic_fetch_add(&st->inside[c], 1) != 0) {
        atomic_fetch_add(&st->overlaps, 1);
    }
    pthread_mutex_lock(&st->mu);
    if (!st->have_peer) {
        memcpy(st->peer, ch->peer_id, sizeof st->peer);
        st->have_peer = 1;
    } else if (memcmp(st->peer, ch->peer_id, sizeof st->peer) != 0) {
        st->peer_changed = 1;
    }
    pthread_mutex_unlock(&st->mu);

    if ((len == 0) != (msg == NULL)) {
        atomic_fetch_add(&st->null_rule, 1);
    }
    i = st->next[c];
    want_len = order_len(c, i);
    order_fill(want, c, i, want_len);
    if (len != want_len || (len > 0 && msg != NULL && memcmp(msg, want, len) != 0)) {
        if (atomic_fetch_add(&st->mismatches, 1) < 5) {
            fprintf(stderr, "channel %d: message %u: got %zu bytes (index %u), want %zu bytes\n", c,
                    (unsigned)i, len, len >= 4 && msg != NULL ? (unsigned)get_u32(msg) : 0u, want_len);
        }
    }
    st->next[c] = i + 1;
    /* Now and then stay a little, so that a second call of this channel,
     * if the library made one, would find this one still running. */
    if (i % 50 == 0) {
        sleep_us(200);
    }
    atomic_fetch_sub(&st->inside[c], 1);
    atomic_fetch_sub(&st->concurrent, 1);
    atomic_fetch_add(&st->delivered, 1);
}

typedef struct {
    aranya_quic_t ep;
    const char *to;
    int c;
    int failures;
} order_sender;

static void *order_send_thread(void *arg) {
    order_sender *s = arg;
    const chan_spec *spec = &order_chans[s->c];
    enum { chunk = 25 };
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t *bufs = malloc((size_t)chunk * ORDER_MAX_LEN);
    aranya_quic_buf batch[chunk];
    uint32_t i = 0;
    if (bufs == NULL) {
        s->failures++;
        return NULL;
    }
    fill_team(tid, spec->team_seed);
    while (i < ORDER_N) {
        int32_t rc;
        if (spec->batch) {
            size_t sent = 0, n = 0;
            for (; n < (size_t)chunk && i + n < ORDER_N; n++) {
                uint8_t *b = bufs + n * ORDER_MAX_LEN;
                size_t len = order_len(s->c, i + (uint32_t)n);
                order_fill(b, s->c, i + (uint32_t)n, len);
                batch[n].data = len > 0 ? b : NULL;
                batch[n].len = len;
            }
            if (spec->kind == ARANYA_QUIC_KIND_SYNC) {
                rc = aranya_quic_send_sync_batch(s->ep, s->to, spec->sync_type, batch, n, &sent);
            } else {
                rc = aranya_quic_send_batch(s->ep, s->to, tid, spec->label, spec->label_len, batch, n, &sent);
            }
            if (rc != ARANYA_QUIC_OK || sent != n) {
                report_failure(__FILE__, __LINE__, "channel %d: batch from %u: rc %d (%s), %zu of %zu sent: %s",
                               s->c, (unsigned)i, (int)rc, aranya_quic_strerror(rc), sent, n,
                               aranya_quic_last_error());
                s->failures++;
                break;
            }
            i += (uint32_t)n;
            continue;
        }
        {
            size_t len = order_len(s->c, i);
            order_fill(bufs, s->c, i, len);
            if (spec->kind == ARANYA_QUIC_KIND_SYNC) {
                rc = aranya_quic_send_sync(s->ep, s->to, spec->sync_type, len > 0 ? bufs : NULL, len);
            } else {
                rc = aranya_quic_send(s->ep, s->to, tid, spec->label, spec->label_len, len > 0 ? bufs : NULL, len);
            }
        }
        if (rc != ARANYA_QUIC_OK) {
            report_failure(__FILE__, __LINE__, "channel %d: message %u: rc %d (%s): %s", s->c, (unsigned)i,
                           (int)rc, aranya_quic_strerror(rc), aranya_quic_last_error());
            s->failures++;
            break;
        }
        i++;
    }
    free(bufs);
    return NULL;
}

static void test_ordered_delivery(void) {
    static order_state st;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    order_sender senders[ORDER_NCH];
    pthread_t threads[ORDER_NCH];
    aranya_quic_t alice, bob;
    int c;

    memset(&st, 0, sizeof st);
    pthread_mutex_init(&st.mu, NULL);
    bob = callback_endpoint(&bob_id, b_addr, order_callback, &st);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    memcpy(st.sender_addr, a_addr, sizeof a_addr);
    for (c = 0; c < ORDER_NCH; c++) {
        senders[c].ep = alice;
        senders[c].to = b_addr;
        senders[c].c = c;
        senders[c].failures = 0;
        pthread_create(&threads[c], NULL, order_send_thread, &senders[c]);
    }
    for (c = 0; c < ORDER_NCH; c++) {
        pthread_join(threads[c], NULL);
        CHECK_EQ(senders[c].failures, 0);
    }
    CHECK(wait_at_least(&st.delivered, ORDER_NCH * ORDER_N));
    /* Anything delivered twice would show up here, or as a mismatch. */
    sleep_ms(100);
    CHECK_EQ(atomic_load(&st.delivered), ORDER_NCH * ORDER_N);
    for (c = 0; c < ORDER_NCH; c++) {
        CHECK_EQ(st.next[c], ORDER_N);
    }
    CHECK_EQ(atomic_load(&st.mismatches), 0);
    CHECK_EQ(atomic_load(&st.overlaps), 0);
    CHECK_EQ(atomic_load(&st.bad_channel), 0);
    CHECK_EQ(atomic_load(&st.null_rule), 0);
    CHECK(st.have_peer && !all_zero(st.peer, sizeof st.peer));
    CHECK_EQ(st.peer_changed, 0);
    /* Not a promise, only a note: different channels' calls may overlap. */
    printf("  (at most %d calls ran at once across channels)\n", atomic_load(&st.max_concurrent));
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    pthread_mutex_destroy(&st.mu);
}

/* ---------------------------------------------------- backpressure */

/* The callback blocks in its first call; the sender keeps sending until a
 * send times out (the channel is not read while the call runs, so flow
 * control fills up); nothing is dropped: after the callback is released
 * every message that send accepted arrives, in order. */

#define BP_MSG 65536
#define BP_MAX_SENDS 4000 /* 256 MiB: far beyond any window */

typedef struct {
    gate release;
    atomic_int calls_started;
    atomic_int delivered;
    atomic_int disorder;
    atomic_int gate_timeout;
    uint32_t next;
} bp_state;

static void bp_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    bp_state *st = user;
    (void)ch;
    if (atomic_fetch_add(&st->calls_started, 1) == 0 && !gate_wait(&st->release)) {
        atomic_store(&st->gate_timeout, 1);
    }
    if (len != BP_MSG || msg == NULL || get_u32(msg) != st->next || msg[len - 1] != (uint8_t)st->next) {
        atomic_fetch_add(&st->disorder, 1);
    }
    st->next++;
    atomic_fetch_add(&st->delivered, 1);
}

static void test_backpressure(void) {
    static bp_state st;
    static uint8_t msg[BP_MSG];
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    aranya_quic_stats stats;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    int sent_ok = 0, timeouts = 0, i;
    int32_t rc = ARANYA_QUIC_OK;

    memset(&st, 0, sizeof st);
    gate_init(&st.release);
    fill_team(tid, 5);
    bob = callback_endpoint(&bob_id, b_addr, bp_callback, &st);
    base_config(&cfg, &alice_id);
    cfg.send_timeout_ms = 500;
    alice = open_endpoint(&cfg, a_addr);
    if (alice == 0 || bob == 0) {
        gate_open(&st.release);
        return;
    }
    for (i = 0; i < BP_MAX_SENDS; i++) {
        put_u32(msg, (uint32_t)i);
        msg[BP_MSG - 1] = (uint8_t)i;
        rc = aranya_quic_send(alice, b_addr, tid, "slow", 4, msg, sizeof msg);
        if (rc == ARANYA_QUIC_OK) {
            sent_ok++;
            continue;
        }
        if (rc == ARANYA_QUIC_ERR_TIMEOUT) {
            timeouts++;
        }
        break;
    }
    /* The sends blocked and timed out rather than anything being dropped. */
    CHECK_EQ(rc, ARANYA_QUIC_ERR_TIMEOUT);
    CHECK_EQ(timeouts, 1);
    CHECK(sent_ok > 0);
    /* Only the first call started: the channel was not read past it. */
    CHECK_EQ(atomic_load(&st.calls_started), 1);
    CHECK_EQ(atomic_load(&st.delivered), 0);
    printf("  (%d messages of %d bytes accepted before a send timed out)\n", sent_ok, BP_MSG);

    gate_open(&st.release);
    CHECK(wait_at_least(&st.delivered, sent_ok));
    /* Afterwards the channel works as before. */
    put_u32(msg, (uint32_t)sent_ok);
    msg[BP_MSG - 1] = (uint8_t)sent_ok;
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "slow", 4, msg, sizeof msg), ARANYA_QUIC_OK);
    CHECK(wait_at_least(&st.delivered, sent_ok + 1));
    /* Every accepted message was confirmed, none more arrived. */
    CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_OK);
    CHECK_EQ(atomic_load(&st.delivered), sent_ok + 1);
    CHECK_EQ(atomic_load(&st.disorder), 0);
    CHECK_EQ(atomic_load(&st.gate_timeout), 0);
    memset(&stats, 0, sizeof stats);
    stats.struct_size = sizeof stats;
    CHECK_RC(aranya_quic_get_stats(alice, &stats), ARANYA_QUIC_OK);
    CHECK_EQ(stats.messages_unconfirmed, 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    gate_destroy(&st.release);
}

/* ------------------------------------------- confirmed after return */

/* A message is confirmed to its sender only once the call returns: a
 * close that waits for the confirmation cannot return while the callback
 * still holds the message. */

typedef struct {
    gate release;
    atomic_int entered;
    atomic_int returned;
    atomic_int gate_timeout;
} confirm_state;

static void confirm_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    confirm_state *st = user;
    (void)ch;
    (void)msg;
    (void)len;
    atomic_store(&st->entered, 1);
    if (!gate_wait(&st->release)) {
        atomic_store(&st->gate_timeout, 1);
    }
    atomic_fetch_add(&st->returned, 1);
}

typedef struct {
    aranya_quic_t ep;
    const char *addr;
    int32_t rc;
    atomic_int done;
} close_job;

static void *close_thread(void *arg) {
    close_job *j = arg;
    j->rc = aranya_quic_close(j->ep, j->addr);
    atomic_store(&j->done, 1);
    return NULL;
}

static void test_confirmed_after_return(void) {
    static confirm_state st;
    static close_job job;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    pthread_t t;
    int done_while_held;

    memset(&st, 0, sizeof st);
    gate_init(&st.release);
    fill_team(tid, 6);
    bob = callback_endpoint(&bob_id, b_addr, confirm_callback, &st);
    base_config(&cfg, &alice_id);
    cfg.drain_timeout_ms = 20000;
    alice = open_endpoint(&cfg, a_addr);
    if (alice == 0 || bob == 0) {
        gate_open(&st.release);
        return;
    }
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "c", 1, (const uint8_t *)"held", 4), ARANYA_QUIC_OK);
    CHECK(wait_at_least(&st.entered, 1));
    job.ep = alice;
    job.addr = b_addr;
    atomic_store(&job.done, 0);
    pthread_create(&t, NULL, close_thread, &job);
    /* Give an early confirmation, if there were one, the time to end the
     * close while the message is still held. */
    sleep_ms(300);
    done_while_held = atomic_load(&job.done);
    gate_open(&st.release);
    pthread_join(t, NULL);
    CHECK_EQ(done_while_held, 0);
    CHECK_RC(job.rc, ARANYA_QUIC_OK);
    CHECK_EQ(atomic_load(&st.returned), 1);
    CHECK_EQ(atomic_load(&st.gate_timeout), 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    gate_destroy(&st.release);
}

/* ------------------------------------------------------------ echo */

/* The callback replies with aranya_quic_send (and send_sync) on its own
 * handle, to the channel the message came from; the replies arrive. */

#define ECHO_N 100
#define ECHO_SYNC_N 20

typedef struct {
    atomic_uint_least64_t self;
    atomic_int replies_ok;
    atomic_int reply_failures;
} echo_state;

static void echo_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    echo_state *st = user;
    uint8_t reply[256];
    int32_t rc;
    if (len + 3 > sizeof reply) {
        atomic_fetch_add(&st->reply_failures, 1);
        return;
    }
    memcpy(reply, "re:", 3);
    if (len > 0) {
        memcpy(reply + 3, msg, len);
    }
    if (ch->kind == ARANYA_QUIC_KIND_SYNC) {
        rc = aranya_quic_send_sync(atomic_load(&st->self), ch->addr, ch->sync_type, reply, len + 3);
    } else {
        rc = aranya_quic_send(atomic_load(&st->self), ch->addr, ch->team_id, ch->label, ch->label_len, reply, len + 3);
    }
    if (rc == ARANYA_QUIC_OK) {
        atomic_fetch_add(&st->replies_ok, 1);
    } else {
        if (atomic_fetch_add(&st->reply_failures, 1) < 3) {
            fprintf(stderr, "echo: reply failed: %d (%s): %s\n", (int)rc, aranya_quic_strerror(rc),
                    aranya_quic_last_error());
        }
    }
}

static void test_echo(void) {
    static echo_state st;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice, bob;
    aranya_quic_channel ch;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], buf[256], msg[32];
    size_t len;
    int i, next_chan = 0, next_sync = 0, bad = 0;

    memset(&st, 0, sizeof st);
    fill_team(tid, 9);
    bob = callback_endpoint(&bob_id, b_addr, echo_callback, &st);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    atomic_store(&st.self, bob);
    for (i = 0; i < ECHO_N; i++) {
        int n = snprintf((char *)msg, sizeof msg, "ping %d", i);
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "echo", 4, msg, (size_t)n), ARANYA_QUIC_OK);
        if (i < ECHO_SYNC_N) {
            n = snprintf((char *)msg, sizeof msg, "sync %d", i);
            CHECK_RC(aranya_quic_send_sync(alice, b_addr, 3, msg, (size_t)n), ARANYA_QUIC_OK);
        }
    }
    for (i = 0; i < ECHO_N + ECHO_SYNC_N; i++) {
        char want[64];
        int32_t rc = aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        CHECK(strcmp(ch.addr, b_addr) == 0);
        if (ch.kind == ARANYA_QUIC_KIND_SYNC) {
            CHECK_EQ(ch.sync_type, 3);
            snprintf(want, sizeof want, "re:sync %d", next_sync++);
        } else {
            CHECK(ch.kind == ARANYA_QUIC_KIND_CHANNEL && memcmp(ch.team_id, tid, sizeof tid) == 0 &&
                  ch.label_len == 4 && memcmp(ch.label, "echo", 4) == 0);
            snprintf(want, sizeof want, "re:ping %d", next_chan++);
        }
        if (len != strlen(want) || memcmp(buf, want, len) != 0) {
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK_EQ(next_chan, ECHO_N);
    CHECK_EQ(next_sync, ECHO_SYNC_N);
    CHECK_EQ(atomic_load(&st.replies_ok), ECHO_N + ECHO_SYNC_N);
    CHECK_EQ(atomic_load(&st.reply_failures), 0);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* ------------------------------------------------ free in callback */

/* Freeing the handle a callback serves, from that callback, is refused
 * with ARANYA_QUIC_ERR_INVALID_ARGUMENT and the handle keeps working;
 * freeing another handle from a callback works. */

typedef struct {
    atomic_uint_least64_t self;
    atomic_uint_least64_t other;
    atomic_int calls;
    int32_t rc_free_self;
    char free_self_detail[256];
    int32_t rc_free_other;
    int32_t rc_other_after;
    int32_t rc_self_after;
    atomic_int replies_ok;
    atomic_int reply_failures;
} freecb_state;

static void freecb_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    freecb_state *st = user;
    aranya_quic_t self = atomic_load(&st->self);
    char addr[ARANYA_QUIC_ADDR_MAX];
    size_t alen;
    if (atomic_fetch_add(&st->calls, 1) == 0) {
        aranya_quic_t other = atomic_load(&st->other);
        st->rc_free_self = aranya_quic_free(self);
        snprintf(st->free_self_detail, sizeof st->free_self_detail, "%s", aranya_quic_last_error());
        st->rc_free_other = aranya_quic_free(other);
        st->rc_other_after = aranya_quic_local_addr(other, addr, sizeof addr, &alen);
        st->rc_self_after = aranya_quic_local_addr(self, addr, sizeof addr, &alen);
    }
    /* The handle still works: reply on it. */
    if (aranya_quic_send(self, ch->addr, ch->team_id, ch->label, ch->label_len, msg, len) == ARANYA_QUIC_OK) {
        atomic_fetch_add(&st->replies_ok, 1);
    } else {
        atomic_fetch_add(&st->reply_failures, 1);
    }
}

static void test_free_in_callback(void) {
    static freecb_state st;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice, bob, carol;
    aranya_quic_channel ch;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], buf[64], msg[16];
    size_t len;
    int i, got = 0;
    enum { N = 10 };

    memset(&st, 0, sizeof st);
    fill_team(tid, 11);
    bob = callback_endpoint(&bob_id, b_addr, freecb_callback, &st);
    carol = queue_endpoint(&carol_id, c_addr);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0 || carol == 0) {
        return;
    }
    atomic_store(&st.self, bob);
    atomic_store(&st.other, carol);
    for (i = 0; i < N; i++) {
        msg[0] = (uint8_t)i;
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "f", 1, msg, 1), ARANYA_QUIC_OK);
    }
    for (i = 0; i < N; i++) {
        int32_t rc = aranya_quic_receive_timeout(alice, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        if (len == 1 && buf[0] == (uint8_t)i) {
            got++;
        }
    }
    CHECK_EQ(got, N);
    CHECK_EQ(atomic_load(&st.calls), N);
    CHECK_RC(st.rc_free_self, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(st.free_self_detail[0] != '\0');
    CHECK_RC(st.rc_free_other, ARANYA_QUIC_OK);
    CHECK_RC(st.rc_other_after, ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(st.rc_self_after, ARANYA_QUIC_OK);
    CHECK_EQ(atomic_load(&st.replies_ok), N);
    CHECK_EQ(atomic_load(&st.reply_failures), 0);
    /* carol is gone; freeing her again is harmless. */
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(bob, b_addr, sizeof b_addr, &len), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(bob, b_addr, sizeof b_addr, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* ------------------------------------- cross free between callbacks */

/* Two endpoints with callbacks, each callback freeing the other's
 * endpoint while both calls run: each free is refused with
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (waiting would be a cycle: each free
 * waits for the other's callback), both handles keep working, and both can
 * be freed from outside the callbacks afterwards. */

typedef struct {
    atomic_uint_least64_t other;
    atomic_int *running; /* callbacks inside the crossing section */
    atomic_int done;
    int32_t rc_free_other;
    int32_t rc_other_after;
} crossfree_state;

static void crossfree_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    crossfree_state *st = user;
    char addr[ARANYA_QUIC_ADDR_MAX];
    size_t alen;
    (void)ch, (void)msg, (void)len;
    if (atomic_load(&st->done)) {
        return;
    }
    /* Both callbacks are inside before either frees: the cycle is real. */
    atomic_fetch_add(st->running, 1);
    wait_at_least(st->running, 2);
    aranya_quic_t other = atomic_load(&st->other);
    st->rc_free_other = aranya_quic_free(other);
    st->rc_other_after = aranya_quic_local_addr(other, addr, sizeof addr, &alen);
    atomic_store(&st->done, 1);
}

static void test_cross_free(void) {
    static crossfree_state sa, sb;
    static atomic_int running;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], msg[4] = {1, 2, 3, 4};
    size_t len;

    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    atomic_store(&running, 0);
    sa.running = sb.running = &running;
    fill_team(tid, 12);
    aranya_quic_t a = callback_endpoint(&alice_id, a_addr, crossfree_callback, &sa);
    aranya_quic_t b = callback_endpoint(&bob_id, b_addr, crossfree_callback, &sb);
    aranya_quic_t carol = queue_endpoint(&carol_id, c_addr);
    if (a == 0 || b == 0 || carol == 0) {
        return;
    }
    atomic_store(&sa.other, b);
    atomic_store(&sb.other, a);
    CHECK_RC(aranya_quic_send(carol, a_addr, tid, "x", 1, msg, sizeof msg), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(carol, b_addr, tid, "x", 1, msg, sizeof msg), ARANYA_QUIC_OK);
    /* A hang here is the bug this test is for. */
    CHECK(wait_at_least(&sa.done, 1));
    CHECK(wait_at_least(&sb.done, 1));
    CHECK_RC(sa.rc_free_other, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(sb.rc_free_other, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(sa.rc_other_after, ARANYA_QUIC_OK);
    CHECK_RC(sb.rc_other_after, ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_local_addr(a, a_addr, sizeof a_addr, &len), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(a), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(b), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
}

/* ----------------------------------------------- close in callback */

/* aranya_quic_close on the sending peer's address, from the callback, may
 * wait up to drain_timeout_ms (the peer's stream cannot finish while the
 * call runs) but returns; the peer can send again afterwards. */

typedef struct {
    atomic_uint_least64_t self;
    atomic_int calls;
    atomic_int closed;
    int32_t rc_close;
    atomic_int after_seen;
} closecb_state;

static void closecb_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    closecb_state *st = user;
    if (atomic_fetch_add(&st->calls, 1) == 0) {
        st->rc_close = aranya_quic_close(atomic_load(&st->self), ch->addr);
        atomic_store(&st->closed, 1);
    }
    if (len == 5 && msg != NULL && memcmp(msg, "after", 5) == 0) {
        atomic_store(&st->after_seen, 1);
    }
}

static void test_close_in_callback(void) {
    static closecb_state st;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    int32_t rc;
    int tries;

    memset(&st, 0, sizeof st);
    fill_team(tid, 15);
    base_config(&cfg, &bob_id);
    cfg.receive_callback = closecb_callback;
    cfg.receive_callback_user = &st;
    cfg.drain_timeout_ms = 300;
    bob = open_endpoint(&cfg, b_addr);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    atomic_store(&st.self, bob);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "cl", 2, (const uint8_t *)"first", 5), ARANYA_QUIC_OK);
    CHECK(wait_at_least(&st.closed, 1));
    CHECK(st.rc_close == ARANYA_QUIC_OK || st.rc_close == ARANYA_QUIC_ERR_UNCONFIRMED);
    /* The connection bob closed may fail alice's next send once; the one
     * after dials again. */
    for (tries = 0; tries < 3; tries++) {
        rc = aranya_quic_send(alice, b_addr, tid, "cl", 2, (const uint8_t *)"after", 5);
        if (rc != ARANYA_QUIC_ERR_CONNECTION) {
            break;
        }
    }
    CHECK_RC(rc, ARANYA_QUIC_OK);
    printf("  (close from the callback returned %s; alice's send took %d tries)\n",
           aranya_quic_strerror(st.rc_close), tries + 1);
    CHECK(wait_at_least(&st.after_seen, 1));
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    rc = aranya_quic_free(alice);
    CHECK(rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_UNCONFIRMED);
}

/* --------------------------------------------- receive is refused */

static void count_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    (void)ch;
    (void)msg;
    (void)len;
    atomic_fetch_add((atomic_int *)user, 1);
}

/* Nothing is queued on a callback endpoint: every receive function and
 * receive_fd return ARANYA_QUIC_ERR_INVALID_ARGUMENT, at once (also with
 * an infinite timeout), and write none of their outputs but out_count,
 * which receive_batch sets to 0 on every failure. */
static void test_receive_refused(void) {
    static atomic_int calls;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice, bob;
    aranya_quic_channel ch;
    aranya_quic_message recs[4];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0}, buf[64];
    size_t len, count;
    int fd;

    atomic_store(&calls, 0);
    bob = callback_endpoint(&bob_id, b_addr, count_callback, &calls);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    /* Refused with messages arriving, too. */
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "r", 1, (const uint8_t *)"x", 1), ARANYA_QUIC_OK);
    CHECK(wait_at_least(&calls, 1));

    len = 12345;
    CHECK_RC(aranya_quic_receive(bob, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(aranya_quic_last_error()[0] != '\0');
    CHECK_EQ(len, 12345);
    CHECK_RC(aranya_quic_receive(bob, NULL, 0, &ch, &len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, 0), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, 100), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, -1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(len, 12345);
    count = 99;
    CHECK_RC(aranya_quic_receive_batch(bob, buf, sizeof buf, recs, 4, &count, 0), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(count, 0);
    count = 99;
    CHECK_RC(aranya_quic_receive_batch(bob, buf, sizeof buf, recs, 4, &count, 100), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(count, 0);
    CHECK_RC(aranya_quic_receive_batch(bob, buf, sizeof buf, recs, 4, &count, -1), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    fd = -7;
    CHECK_RC(aranya_quic_receive_fd(bob, &fd), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(aranya_quic_last_error()[0] != '\0');
    CHECK_EQ(fd, -7);
    /* The endpoint is otherwise unaffected. */
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "r", 1, (const uint8_t *)"y", 1), ARANYA_QUIC_OK);
    CHECK(wait_at_least(&calls, 2));
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_EQ(atomic_load(&calls), 2);
}

/* -------------------------------------------------- free stops calls */

/* aranya_quic_free waits for the calls in progress and makes no more once
 * it started: a call held inside the callback when free starts has
 * returned when free returns, and no call starts or runs after that,
 * although a peer keeps sending on two channels throughout. */

#define HOLD_AT 20 /* the message of the "hold" channel the callback holds */

typedef struct {
    atomic_int calls;
    atomic_int inside;
    atomic_int flow_calls;
    atomic_int hold_entered;
    atomic_int hold_done;
    atomic_int free_started;
    atomic_int free_returned;
    atomic_int late;
    atomic_int hold_seen;
} stop_state;

static void stop_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    stop_state *st = user;
    atomic_fetch_add(&st->inside, 1);
    atomic_fetch_add(&st->calls, 1);
    if (atomic_load(&st->free_returned)) {
        atomic_fetch_add(&st->late, 1);
    }
    if (ch->label_len == 4 && memcmp(ch->label, "hold", 4) == 0) {
        if (len >= 4 && msg != NULL && get_u32(msg) == HOLD_AT) {
            int waited;
            atomic_store(&st->hold_seen, 1);
            atomic_store(&st->hold_entered, 1);
            for (waited = 0; waited < 2 * WAIT_MS && !atomic_load(&st->free_started); waited += 1) {
                sleep_ms(1);
            }
            /* Outstay bob's drain (which would otherwise end only once
             * this call returned, since alice's stream cannot finish
             * before), so that only free's wait for the call itself keeps
             * it from returning. */
            sleep_ms(500);
            atomic_store(&st->hold_done, 1);
        }
    } else {
        atomic_fetch_add(&st->flow_calls, 1);
        sleep_us(500);
    }
    if (atomic_load(&st->free_returned)) {
        atomic_fetch_add(&st->late, 1);
    }
    atomic_fetch_sub(&st->inside, 1);
}

typedef struct {
    aranya_quic_t ep;
    const char *to;
    const char *label;
    atomic_int *stop;
    int sent;
} stop_sender;

static void *stop_send_thread(void *arg) {
    stop_sender *s = arg;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], msg[64];
    uint32_t i = 0;
    fill_team(tid, 13);
    memset(msg, 0xee, sizeof msg);
    while (!atomic_load(s->stop)) {
        int32_t rc;
        put_u32(msg, i);
        rc = aranya_quic_send(s->ep, s->to, tid, s->label, strlen(s->label), msg, sizeof msg);
        if (rc == ARANYA_QUIC_OK) {
            s->sent++;
            i++;
        } else if (rc == ARANYA_QUIC_ERR_INVALID_HANDLE || rc == ARANYA_QUIC_ERR_CLOSED) {
            break;
        } else {
            sleep_ms(5); /* the receiver is gone: keep trying, gently */
        }
    }
    return NULL;
}

static void test_free_stops_calls(void) {
    static stop_state st;
    static atomic_int stop;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    stop_sender senders[2];
    pthread_t threads[2];
    int32_t rc;
    int i, inside_at_return, hold_done_at_return, calls_at_return;

    memset(&st, 0, sizeof st);
    atomic_store(&stop, 0);
    base_config(&cfg, &bob_id);
    cfg.receive_callback = stop_callback;
    cfg.receive_callback_user = &st;
    cfg.drain_timeout_ms = 100;
    bob = open_endpoint(&cfg, b_addr);
    base_config(&cfg, &alice_id);
    cfg.send_timeout_ms = 1000;
    cfg.drain_timeout_ms = 500;
    alice = open_endpoint(&cfg, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    for (i = 0; i < 2; i++) {
        senders[i].ep = alice;
        senders[i].to = b_addr;
        senders[i].label = i == 0 ? "hold" : "flow";
        senders[i].stop = &stop;
        senders[i].sent = 0;
        pthread_create(&threads[i], NULL, stop_send_thread, &senders[i]);
    }
    CHECK(wait_at_least(&st.hold_entered, 1));
    CHECK(wait_at_least(&st.flow_calls, 50));

    atomic_store(&st.free_started, 1);
    rc = aranya_quic_free(bob);
    inside_at_return = atomic_load(&st.inside);
    hold_done_at_return = atomic_load(&st.hold_done);
    calls_at_return = atomic_load(&st.calls);
    atomic_store(&st.free_returned, 1);
    CHECK_RC(rc, ARANYA_QUIC_OK);
    /* free waited for the call in progress, and for every other call. */
    CHECK_EQ(hold_done_at_return, 1);
    CHECK_EQ(inside_at_return, 0);

    /* alice keeps sending for a while: nothing may reach the callback. */
    sleep_ms(500);
    atomic_store(&stop, 1);
    for (i = 0; i < 2; i++) {
        pthread_join(threads[i], NULL);
    }
    CHECK_EQ(atomic_load(&st.late), 0);
    CHECK_EQ(atomic_load(&st.calls), calls_at_return);
    CHECK_EQ(atomic_load(&st.inside), 0);
    rc = aranya_quic_free(alice);
    CHECK(rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_UNCONFIRMED);
    CHECK_EQ(atomic_load(&st.calls), calls_at_return);
}

/* ------------------------------------------------- older struct_size */

/* A caller built against the header before receive_callback was added
 * passes a struct_size that ends before it: the fields are ignored (even
 * if the bytes behind struct_size happen to hold a function) and messages
 * are queued as before. */
static void test_older_struct_size(void) {
    static atomic_int calls;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    aranya_quic_channel ch;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], buf[64];
    size_t len;
    int fd = -1;

    atomic_store(&calls, 0);
    fill_team(tid, 21);
    base_config(&cfg, &bob_id);
    cfg.struct_size = (uint32_t)offsetof(aranya_quic_config, receive_callback);
    cfg.receive_callback = count_callback;
    cfg.receive_callback_user = &calls;
    bob = open_endpoint(&cfg, b_addr);
    alice = queue_endpoint(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    CHECK_RC(aranya_quic_receive_fd(bob, &fd), ARANYA_QUIC_OK);
    CHECK(fd >= 0);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "old", 3, (const uint8_t *)"one", 3), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "old", 3, (const uint8_t *)"two", 3), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
    CHECK(strcmp(ch.addr, a_addr) == 0 && ch.label_len == 3 && memcmp(ch.label, "old", 3) == 0);
    CHECK_RC(aranya_quic_receive_timeout(bob, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
    CHECK_EQ(atomic_load(&calls), 0);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_EQ(atomic_load(&calls), 0);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"ordered_delivery", test_ordered_delivery},
        {"backpressure", test_backpressure},
        {"confirmed_after_return", test_confirmed_after_return},
        {"echo", test_echo},
        {"free_in_callback", test_free_in_callback},
        {"cross_free", test_cross_free},
        {"close_in_callback", test_close_in_callback},
        {"receive_refused", test_receive_refused},
        {"free_stops_calls", test_free_stops_calls},
        {"older_struct_size", test_older_struct_size},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
