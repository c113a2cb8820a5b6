/*
 * Hostile tests of the non-blocking calls, events, host names and the log
 * callback (the header's "non-blocking calls and events, added in 0.2"),
 * through the public header only.
 *
 *   hostile_nowait CERTS_DIR [TEST]
 *
 * CERTS_DIR as for tests/c/nowait.c (alice, bob, carol, stranger, ca.pem).
 * Built and run by ctest (target aranya_quic_hostile_test, test c_hostile).
 *
 * Every wait is bounded so that a hang fails a check instead of hanging
 * the run; the bounds are fail-safes, never checks of how long anything
 * took. A test that finds a deadlock leaves the stuck threads behind and
 * goes on.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "aranya_quic.h"
#include "testlib.h"


#define WAIT_MS 20000

/* ------------------------------------------------------------- helpers */

static aranya_quic_t plain_ep(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_config cfg;
    base_config(&cfg, id);
    return open_ep(&cfg, addr);
}

static const uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {7, 7, 7};

/* blackhole: a UDP socket on 127.0.0.1 that is never read (no answer at
 * all to a dial). */
static int blackhole(char addr[ARANYA_QUIC_ADDR_MAX]) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    snprintf(addr, ARANYA_QUIC_ADDR_MAX, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

static const char *port_of(const char *addr) {
    const char *c = strrchr(addr, ':');
    return c != NULL ? c + 1 : "";
}

static int32_t take_event(aranya_quic_t ep, aranya_quic_event *e) {
    memset(e, 0, sizeof *e);
    e->struct_size = sizeof *e;
    return aranya_quic_next_event(ep, e);
}

/* await_event waits for an event of type (and id, when not 0), taking the
 * others; 1 when it came (in *out). */
static int await_event(aranya_quic_t ep, int efd, uint32_t type, uint64_t id, aranya_quic_event *out) {
    long long deadline = mono_ms() + WAIT_MS;
    for (;;) {
        aranya_quic_event e;
        long long left;
        if (take_event(ep, &e) == ARANYA_QUIC_OK) {
            if (e.type == type && (id == 0 || e.id == id)) {
                *out = e;
                return 1;
            }
            continue;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(efd, (int)left) < 0) {
            return 0;
        }
    }
}


/* A flag with a bounded wait. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int v;
} flag;

#define FLAG_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static void flag_add(flag *f, int d) {
    pthread_mutex_lock(&f->mu);
    f->v += d;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static int flag_get(flag *f) {
    int v;
    pthread_mutex_lock(&f->mu);
    v = f->v;
    pthread_mutex_unlock(&f->mu);
    return v;
}

/* flag_wait waits until the flag is at least want, up to ms; 1 if it is. */
static int flag_wait(flag *f, int want, long ms) {
    struct timespec ts;
    int ok;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&f->mu);
    while (f->v < want) {
        if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT) {
            break;
        }
    }
    ok = f->v >= want;
    pthread_mutex_unlock(&f->mu);
    return ok;
}

/* ------------------------------------------- free_nowait and log callbacks */

/* free_nowait "never blocks; may be called from any callback". Here bob's
 * log callback is in progress (it waits, bounded, for the main thread to
 * say that free_nowait returned) while the main thread calls
 * free_nowait(bob): free_nowait must return without waiting for it. */
static struct {
    flag armed, inside, returned;
    int timed_out;
} held = {FLAG_INIT, FLAG_INIT, FLAG_INIT, 0};

static void held_log(void *user, uint32_t level, const char *msg, size_t len) {
    (void)user;
    (void)level;
    (void)msg;
    (void)len;
    if (flag_get(&held.armed) == 0 || flag_get(&held.inside) != 0) {
        return;
    }
    flag_add(&held.inside, 1);
    if (!flag_wait(&held.returned, 1, 8000)) {
        held.timed_out = 1;
    }
}

static void test_free_nowait_during_log_callback(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    uint64_t id;

    base_config(&cfg, &bob_id);
    cfg.log_callback = held_log;
    bob = open_ep(&cfg, b_addr);
    alice = plain_ep(&alice_id, a_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    flag_add(&held.armed, 1);
    /* bob logs the connection coming up (INFO). */
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "h", 1, (const uint8_t *)"x", 1, &id), ARANYA_QUIC_OK);
    CHECK(flag_wait(&held.inside, 1, WAIT_MS));
    CHECK_RC(aranya_quic_free_nowait(bob), ARANYA_QUIC_OK);
    flag_add(&held.returned, 1);
    /* The callback gave up waiting: free_nowait returned only after it. */
    count_check();
    if (held.timed_out) {
        report_failure(__FILE__, __LINE__,
                       "aranya_quic_free_nowait waited for bob's log callback in progress to return (it never blocks)");
    }
    /* bob went away while its callback held up its side: alice's message
     * may be confirmed or not, and free says which. */
    {
        int32_t rc = aranya_quic_free(alice);
        CHECK(rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_UNCONFIRMED);
    }
}

/* Two endpoints whose log callbacks free each other at the same time:
 * free_nowait "may be called from any callback", and free is refused only
 * for the callback's own endpoint or one with a receive_callback. Each
 * call must return (free_nowait OK; free OK or INVALID_ARGUMENT). */
typedef struct {
    flag armed, inside, done;
    aranya_quic_t ep[2];
    int32_t rc[2];
    int fired[2];
    int use_free;
} cross_state;

static cross_state cross_nowait = {FLAG_INIT, FLAG_INIT, FLAG_INIT, {0, 0}, {0, 0}, {0, 0}, 0};
static cross_state cross_free = {FLAG_INIT, FLAG_INIT, FLAG_INIT, {0, 0}, {0, 0}, {0, 0}, 1};

static void cross_log(void *user, uint32_t level, const char *msg, size_t len) {
    cross_state *c = (cross_state *)((uintptr_t)user & ~(uintptr_t)1);
    int me = (int)((uintptr_t)user & 1);
    (void)level;
    (void)msg;
    (void)len;
    if (flag_get(&c->armed) == 0) {
        return;
    }
    pthread_mutex_lock(&c->inside.mu);
    if (c->fired[me]) {
        pthread_mutex_unlock(&c->inside.mu);
        return;
    }
    c->fired[me] = 1;
    pthread_mutex_unlock(&c->inside.mu);
    flag_add(&c->inside, 1);
    flag_wait(&c->inside, 2, 5000);
    c->rc[me] = c->use_free ? aranya_quic_free(c->ep[1 - me]) : aranya_quic_free_nowait(c->ep[1 - me]);
    flag_add(&c->done, 1);
}

static void cross_run(cross_state *c) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    uint64_t id;
    int i;

    for (i = 0; i < 2; i++) {
        base_config(&cfg, i == 0 ? &alice_id : &bob_id);
        cfg.log_callback = cross_log;
        cfg.log_callback_user = (void *)((uintptr_t)c | (uintptr_t)i);
        cfg.drain_timeout_ms = 1000;
        c->ep[i] = open_ep(&cfg, i == 0 ? a_addr : b_addr);
        if (c->ep[i] == 0) {
            return;
        }
    }
    flag_add(&c->armed, 1);
    /* Both log the connection coming up: alice dialed, bob accepted. */
    CHECK_RC(aranya_quic_send_nowait(c->ep[0], b_addr, tid, "x", 1, (const uint8_t *)"x", 1, &id), ARANYA_QUIC_OK);
    if (!flag_wait(&c->inside, 2, WAIT_MS)) {
        fprintf(stderr, "  cross free: only %d callback(s) ran; inconclusive\n", flag_get(&c->inside));
    }
    count_check();
    if (!flag_wait(&c->done, flag_get(&c->inside), WAIT_MS)) {
        report_failure(__FILE__, __LINE__,
                       "deadlock: the log callbacks of alice and bob called %s on each other's endpoint and %d of %d "
                       "calls returned",
                       c->use_free ? "aranya_quic_free" : "aranya_quic_free_nowait", flag_get(&c->done),
                       flag_get(&c->inside));
        return; /* the stuck threads stay stuck */
    }
    for (i = 0; i < 2; i++) {
        if (c->use_free) {
            CHECK(c->rc[i] == ARANYA_QUIC_OK || c->rc[i] == ARANYA_QUIC_ERR_INVALID_ARGUMENT);
        } else {
            CHECK_RC(c->rc[i], ARANYA_QUIC_OK);
        }
    }
}

static void test_cross_free_nowait_in_log_callbacks(void) {
    cross_run(&cross_nowait);
}

static void test_cross_free_in_log_callbacks(void) {
    cross_run(&cross_free);
}

/* The log callback "may call the library". Here alice's log callback
 * closes the connection to bob (a blocking call; bob's receive callback is
 * stuck, so the drain times out with messages unconfirmed, which alice
 * logs) while another thread calls free_nowait(alice). Both must return. */
static struct {
    flag recv_release, armed, closing, closed, freed;
    char b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice;
    int32_t close_rc, free_rc;
} nest = {FLAG_INIT, FLAG_INIT, FLAG_INIT, FLAG_INIT, FLAG_INIT, "", "", 0, 0, 0};

static void nest_recv(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    (void)user;
    (void)ch;
    (void)msg;
    (void)len;
    flag_wait(&nest.recv_release, 1, 60000);
}

static void nest_log(void *user, uint32_t level, const char *msg, size_t len) {
    (void)user;
    (void)level;
    (void)len;
    if (flag_get(&nest.armed) == 0 || strstr(msg, nest.c_addr) == NULL || flag_get(&nest.closing) != 0) {
        return;
    }
    flag_add(&nest.closing, 1);
    nest.close_rc = aranya_quic_close(nest.alice, nest.b_addr);
    flag_add(&nest.closed, 1);
}

static void *nest_free(void *arg) {
    (void)arg;
    nest.free_rc = aranya_quic_free_nowait(nest.alice);
    flag_add(&nest.freed, 1);
    return NULL;
}

static void test_free_nowait_while_log_callback_calls_library(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t bob, carol;
    pthread_t th;
    uint64_t id;

    base_config(&cfg, &bob_id);
    cfg.receive_callback = nest_recv;
    bob = open_ep(&cfg, nest.b_addr);
    base_config(&cfg, &alice_id);
    cfg.log_callback = nest_log;
    cfg.drain_timeout_ms = 1500;
    nest.alice = open_ep(&cfg, a_addr);
    carol = plain_ep(&carol_id, nest.c_addr);
    if (bob == 0 || nest.alice == 0 || carol == 0) {
        return;
    }
    /* bob's callback holds the first message: neither is confirmed. */
    CHECK_RC(aranya_quic_send(nest.alice, nest.b_addr, tid, "n", 1, (const uint8_t *)"1", 1), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(nest.alice, nest.b_addr, tid, "n", 1, (const uint8_t *)"2", 1), ARANYA_QUIC_OK);
    flag_add(&nest.armed, 1);
    /* carol connecting makes alice log a record naming her. */
    CHECK_RC(aranya_quic_send_nowait(carol, a_addr, tid, "n", 1, (const uint8_t *)"c", 1, &id), ARANYA_QUIC_OK);
    CHECK(flag_wait(&nest.closing, 1, WAIT_MS));
    sleep_ms(300); /* let the close get into its drain */
    CHECK(pthread_create(&th, NULL, nest_free, NULL) == 0);
    pthread_detach(th);
    count_check();
    if (!flag_wait(&nest.freed, 1, WAIT_MS) || !flag_wait(&nest.closed, 1, WAIT_MS)) {
        report_failure(__FILE__, __LINE__,
                       "deadlock: free_nowait(alice) returned: %d; aranya_quic_close called from alice's log callback "
                       "returned: %d",
                       flag_get(&nest.freed), flag_get(&nest.closed));
    } else {
        CHECK_RC(nest.free_rc, ARANYA_QUIC_OK);
        CHECK(nest.close_rc == ARANYA_QUIC_ERR_UNCONFIRMED || nest.close_rc == ARANYA_QUIC_ERR_CLOSED);
    }
    flag_add(&nest.recv_release, 1);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
}

/* A log callback that calls other functions of the library on its own
 * endpoint: free is refused (INVALID_ARGUMENT, no deadlock), the calls
 * that never block work, free_nowait works; once the callback that called
 * free_nowait returned, no further call starts. */
static struct {
    flag armed, done;
    aranya_quic_t self;
    int32_t free_rc, stats_rc, addr_rc, event_rc, sfd_rc, efd_rc, send_rc, fnw_rc, after_rc;
    int calls_after;
    int finished;
    char peer[ARANYA_QUIC_ADDR_MAX], trigger[ARANYA_QUIC_ADDR_MAX];
} busy = {FLAG_INIT, FLAG_INIT, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", ""};

static void busy_log(void *user, uint32_t level, const char *msg, size_t len) {
    aranya_quic_stats st;
    aranya_quic_event e;
    char addr[ARANYA_QUIC_ADDR_MAX];
    size_t n;
    int fd;
    uint64_t id;
    (void)user;
    (void)level;
    (void)msg;
    (void)len;
    pthread_mutex_lock(&busy.done.mu);
    if (busy.finished) {
        busy.calls_after++;
        pthread_mutex_unlock(&busy.done.mu);
        return;
    }
    pthread_mutex_unlock(&busy.done.mu);
    if (flag_get(&busy.armed) != 1 || strstr(msg, busy.trigger) == NULL) {
        return;
    }
    flag_add(&busy.armed, 1); /* only the first record naming carol */
    busy.free_rc = aranya_quic_free(busy.self);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    busy.stats_rc = aranya_quic_get_stats(busy.self, &st);
    busy.addr_rc = aranya_quic_local_addr(busy.self, addr, sizeof addr, &n);
    e.struct_size = sizeof e;
    busy.event_rc = aranya_quic_next_event(busy.self, &e);
    busy.sfd_rc = aranya_quic_send_fd(busy.self, &fd);
    busy.efd_rc = aranya_quic_event_fd(busy.self, &fd);
    busy.send_rc = aranya_quic_send_nowait(busy.self, busy.peer, tid, "b", 1, (const uint8_t *)"b", 1, &id);
    busy.fnw_rc = aranya_quic_free_nowait(busy.self);
    busy.after_rc = aranya_quic_get_stats(busy.self, &st);
    flag_add(&busy.done, 1);
    /* The last thing before returning: a call that sees this started
     * after the call that called free_nowait returned (or within the few
     * instructions left of it). */
    pthread_mutex_lock(&busy.done.mu);
    busy.finished = 1;
    pthread_mutex_unlock(&busy.done.mu);
}

static void test_log_callback_calls_library(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t bob, carol;
    int rfd;
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;
    uint64_t id;

    bob = plain_ep(&bob_id, busy.peer);
    carol = plain_ep(&carol_id, busy.trigger);
    base_config(&cfg, &alice_id);
    cfg.log_callback = busy_log;
    cfg.log_level = ARANYA_QUIC_LOG_DEBUG;
    busy.self = open_ep(&cfg, a_addr);
    if (bob == 0 || busy.self == 0 || carol == 0) {
        return;
    }
    CHECK_RC(aranya_quic_send(busy.self, busy.peer, tid, "b", 1, (const uint8_t *)"a", 1), ARANYA_QUIC_OK);
    flag_add(&busy.armed, 1);
    /* carol connecting makes alice log records naming her. */
    CHECK_RC(aranya_quic_send_nowait(carol, a_addr, tid, "b", 1, (const uint8_t *)"c", 1, &id), ARANYA_QUIC_OK);
    CHECK(flag_wait(&busy.done, 1, WAIT_MS));
    CHECK_RC(busy.free_rc, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(busy.stats_rc, ARANYA_QUIC_OK);
    CHECK_RC(busy.addr_rc, ARANYA_QUIC_OK);
    CHECK(busy.event_rc == ARANYA_QUIC_OK || busy.event_rc == ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(busy.sfd_rc, ARANYA_QUIC_OK);
    CHECK_RC(busy.efd_rc, ARANYA_QUIC_OK);
    CHECK_RC(busy.send_rc, ARANYA_QUIC_OK);
    CHECK_RC(busy.fnw_rc, ARANYA_QUIC_OK);
    CHECK_RC(busy.after_rc, ARANYA_QUIC_ERR_INVALID_HANDLE);
    /* bob gets both messages: the one from the callback too. */
    CHECK_RC(aranya_quic_receive_fd(bob, &rfd), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    sleep_ms(500); /* time for a late record to show itself */
    CHECK_EQ(busy.calls_after, 0);
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
}

/* free_nowait from a receive callback, of its own endpoint and of the
 * sender's: both return OK at once, the handles are invalid from then on,
 * and the endpoints close in the background (the peer sees them go). */
static struct {
    flag done;
    aranya_quic_t self, other;
    int32_t own_rc, other_rc, after_rc, twice_rc;
} rfree = {FLAG_INIT, 0, 0, 0, 0, 0, 0};

static void rfree_recv(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    uint64_t id;
    (void)user;
    (void)ch;
    (void)msg;
    (void)len;
    if (flag_get(&rfree.done) != 0) {
        return;
    }
    rfree.other_rc = aranya_quic_free_nowait(rfree.other);
    rfree.own_rc = aranya_quic_free_nowait(rfree.self);
    rfree.twice_rc = aranya_quic_free_nowait(rfree.self);
    rfree.after_rc = aranya_quic_send_nowait(rfree.self, "127.0.0.1:9", tid, "r", 1, NULL, 0, &id);
    flag_add(&rfree.done, 1);
}

static void test_free_nowait_in_receive_callback(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t carol;
    aranya_quic_event e;
    int efd;
    uint64_t id;

    base_config(&cfg, &bob_id);
    cfg.receive_callback = rfree_recv;
    cfg.log_callback = NULL;
    rfree.self = open_ep(&cfg, b_addr);
    rfree.other = plain_ep(&alice_id, a_addr);
    carol = plain_ep(&carol_id, c_addr);
    if (rfree.self == 0 || rfree.other == 0 || carol == 0) {
        return;
    }
    CHECK_RC(aranya_quic_event_fd(carol, &efd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(carol, b_addr, tid, "r", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send_nowait(rfree.other, b_addr, tid, "r", 1, (const uint8_t *)"hi", 2, &id),
             ARANYA_QUIC_OK);
    CHECK(flag_wait(&rfree.done, 1, WAIT_MS));
    CHECK_RC(rfree.own_rc, ARANYA_QUIC_OK);
    CHECK_RC(rfree.other_rc, ARANYA_QUIC_OK);
    CHECK_RC(rfree.twice_rc, ARANYA_QUIC_OK);
    CHECK_RC(rfree.after_rc, ARANYA_QUIC_ERR_INVALID_HANDLE);
    /* bob closes in the background: carol hears of it. */
    CHECK(await_event(carol, efd, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, &e));
    CHECK_RC(aranya_quic_free(rfree.self), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
}

/* free_nowait while other threads are blocked in send (behind a dial that
 * never finishes), send_batch, close, receive_timeout and receive_batch:
 * it returns without waiting for them, and each of them returns
 * ARANYA_QUIC_ERR_CLOSED. */
typedef struct {
    aranya_quic_t ep;
    const char *hole;
    int kind;
    int32_t rc;
    flag *started, *done;
} blocked_call;

static void *blocked_run(void *arg) {
    blocked_call *c = arg;
    static uint8_t buf[64];
    aranya_quic_channel ch;
    aranya_quic_message msgs[2];
    aranya_quic_buf one[2] = {{(const uint8_t *)"a", 1}, {(const uint8_t *)"b", 1}};
    size_t len, n;
    flag_add(c->started, 1);
    switch (c->kind) {
    case 0:
        c->rc = aranya_quic_send(c->ep, c->hole, tid, "bl", 2, (const uint8_t *)"x", 1);
        break;
    case 1:
        c->rc = aranya_quic_send_batch(c->ep, c->hole, tid, "bl", 2, one, 2, &n);
        break;
    case 2:
        c->rc = aranya_quic_close(c->ep, c->hole);
        break;
    case 3:
        c->rc = aranya_quic_receive_timeout(c->ep, buf, sizeof buf, &ch, &len, -1);
        break;
    default:
        c->rc = aranya_quic_receive_batch(c->ep, buf, sizeof buf, msgs, 2, &n, -1);
        break;
    }
    flag_add(c->done, 1);
    return NULL;
}

static void test_free_nowait_wakes_blocked_calls(void) {
    enum { K = 5 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], hole[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    blocked_call calls[K];
    pthread_t th[K];
    static flag started = FLAG_INIT, done = FLAG_INIT;
    uint64_t id;
    int i, sock = blackhole(hole);

    base_config(&cfg, &alice_id);
    cfg.connect_timeout_ms = 30000;
    cfg.handshake_timeout_ms = 30000;
    cfg.send_timeout_ms = 60000;
    cfg.drain_timeout_ms = 1000;
    alice = open_ep(&cfg, a_addr);
    if (alice == 0 || sock < 0) {
        return;
    }
    /* Something queued for the hole, so that the blocking close waits
     * behind it. */
    CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "bl", 2, (const uint8_t *)"q", 1, &id), ARANYA_QUIC_OK);
    for (i = 0; i < K; i++) {
        calls[i].ep = alice;
        calls[i].hole = hole;
        calls[i].kind = i;
        calls[i].rc = 99;
        calls[i].started = &started;
        calls[i].done = &done;
        CHECK(pthread_create(&th[i], NULL, blocked_run, &calls[i]) == 0);
    }
    CHECK(flag_wait(&started, K, WAIT_MS));
    sleep_ms(300); /* let them block */
    CHECK_EQ(flag_get(&done), 0);
    CHECK_RC(aranya_quic_free_nowait(alice), ARANYA_QUIC_OK);
    count_check();
    if (!flag_wait(&done, K, 15000)) {
        report_failure(__FILE__, __LINE__, "only %d of %d blocked calls returned after free_nowait", flag_get(&done), K);
        close(sock);
        return;
    }
    for (i = 0; i < K; i++) {
        pthread_join(th[i], NULL);
        count_check();
        if (calls[i].rc != ARANYA_QUIC_ERR_CLOSED && calls[i].rc != ARANYA_QUIC_ERR_INVALID_HANDLE) {
            report_failure(__FILE__, __LINE__, "blocked call %d returned %d, want CLOSED", i, (int)calls[i].rc);
        }
    }
    close(sock);
}

/* -------------------------------------------------------------- hammer */

/* Many threads call every function on one handle at once, on both ends of
 * a connection, then the handles are freed (one with free_nowait, one
 * with free) while the threads go on. Every return code is one the header
 * lists for the call; nothing crashes (run it under ASan). */
typedef struct {
    aranya_quic_t self;
    const char *peer;
    int seed;
    int bad;
    char what[160];
} hammer_arg;

static uint8_t hammer_big[300 << 10];

static int allowed(int32_t rc, int blocking) {
    switch (rc) {
    case ARANYA_QUIC_OK:
    case ARANYA_QUIC_ERR_WOULD_BLOCK:
    case ARANYA_QUIC_ERR_CLOSED:
    case ARANYA_QUIC_ERR_INVALID_HANDLE:
        return 1;
    case ARANYA_QUIC_ERR_CONNECTION:
    case ARANYA_QUIC_ERR_TIMEOUT:
    case ARANYA_QUIC_ERR_UNCONFIRMED:
        return blocking;
    default:
        return 0;
    }
}

static void *hammer_run(void *arg) {
    hammer_arg *h = arg;
    unsigned r = (unsigned)h->seed * 2654435761u;
    int i;
    for (i = 0; i < 400; i++) {
        int32_t rc;
        int blocking = 0;
        uint64_t id;
        size_t n;
        int fd;
        aranya_quic_event e;
        aranya_quic_stats st;
        aranya_quic_channel ch;
        uint8_t buf[64];
        aranya_quic_buf msgs[3] = {{NULL, 0}, {hammer_big, 5}, {hammer_big, sizeof hammer_big}};
        const char *op;
        r = r * 1103515245u + 12345u;
        switch ((r >> 8) % 16) {
        case 0:
        case 1:
        case 2:
            op = "send_nowait";
            rc = aranya_quic_send_nowait(h->self, h->peer, tid, "hm", 2, hammer_big, (r >> 4) % 3 == 0 ? 0 : 100,
                                         &id);
            break;
        case 3:
            op = "send_nowait big";
            rc = aranya_quic_send_nowait(h->self, h->peer, tid, "hm", 2, hammer_big, sizeof hammer_big, &id);
            break;
        case 4:
            op = "send_sync_nowait";
            rc = aranya_quic_send_sync_nowait(h->self, h->peer, 3, hammer_big, 7, NULL);
            break;
        case 5:
            op = "send_batch_nowait";
            rc = aranya_quic_send_batch_nowait(h->self, h->peer, tid, "hm", 2, msgs, 3, &n, &id);
            break;
        case 6:
            op = "send";
            blocking = 1;
            rc = aranya_quic_send(h->self, h->peer, tid, "hm", 2, hammer_big, 1000);
            break;
        case 7:
            op = "close_nowait";
            rc = aranya_quic_close_nowait(h->self, h->peer, &id);
            break;
        case 8:
            op = "close";
            blocking = 1;
            rc = aranya_quic_close(h->self, h->peer);
            break;
        case 9:
            op = "next_event";
            e.struct_size = sizeof e;
            rc = aranya_quic_next_event(h->self, &e);
            break;
        case 10:
            op = "send_fd";
            rc = aranya_quic_send_fd(h->self, &fd);
            break;
        case 11:
            op = "event_fd";
            rc = aranya_quic_event_fd(h->self, &fd);
            break;
        case 12:
            op = "receive_fd";
            rc = aranya_quic_receive_fd(h->self, &fd);
            break;
        case 13:
            op = "receive";
            rc = aranya_quic_receive(h->self, buf, sizeof buf, &ch, &n);
            if (rc == ARANYA_QUIC_ERR_BUFFER_TOO_SMALL) {
                rc = aranya_quic_receive(h->self, hammer_big, sizeof hammer_big, &ch, &n);
            }
            break;
        case 14:
            op = "get_stats";
            st.struct_size = sizeof st;
            rc = aranya_quic_get_stats(h->self, &st);
            break;
        default:
            op = "shutdown";
            /* Rarely: the rest of the run then meets a closing endpoint. */
            rc = (r >> 20) % 50 == 0 ? aranya_quic_shutdown(h->self, &id) : ARANYA_QUIC_OK;
            break;
        }
        if (!allowed(rc, blocking) && h->bad == 0) {
            h->bad = 1;
            snprintf(h->what, sizeof h->what, "%s returned %d (%s): %.100s", op, (int)rc, aranya_quic_strerror(rc),
                     aranya_quic_last_error());
        }
    }
    return NULL;
}

static void test_hammer_both_sides(void) {
    enum { T = 4 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    hammer_arg args[2 * T];
    pthread_t th[2 * T];
    int i;

    base_config(&cfg, &alice_id);
    cfg.send_timeout_ms = 2000;
    cfg.connect_timeout_ms = 1000;
    cfg.drain_timeout_ms = 500;
    cfg.max_outbound_bytes_per_peer = 1 << 20;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    cfg.send_timeout_ms = 2000;
    cfg.connect_timeout_ms = 1000;
    cfg.drain_timeout_ms = 500;
    bob = open_ep(&cfg, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    for (i = 0; i < 2 * T; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].self = i < T ? alice : bob;
        args[i].peer = i < T ? b_addr : a_addr;
        args[i].seed = i + 1;
        CHECK(pthread_create(&th[i], NULL, hammer_run, &args[i]) == 0);
    }
    sleep_ms(1500);
    CHECK_RC(aranya_quic_free_nowait(alice), ARANYA_QUIC_OK);
    sleep_ms(300);
    {
        int32_t rc = aranya_quic_free(bob);
        CHECK(rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_UNCONFIRMED);
    }
    for (i = 0; i < 2 * T; i++) {
        pthread_join(th[i], NULL);
        count_check();
        if (args[i].bad) {
            report_failure(__FILE__, __LINE__, "thread %d: %s", i, args[i].what);
        }
    }
}

/* ------------------------------------------------------- never blocks */

/* The non-blocking calls never wait for the network: one thread makes them
 * in a loop against a peer that never answers and a name that does not
 * resolve, with every network timeout long; the main thread watches its
 * progress. */
static struct {
    aranya_quic_t ep;
    char hole[ARANYA_QUIC_ADDR_MAX];
    flag progress;
    int bad;
    char what[200];
} nb = {0, "", FLAG_INIT, 0, ""};

static void *nb_run(void *arg) {
    int i;
    static const char *name = "never-answers.invalid:4433";
    aranya_quic_buf msgs[2] = {{(const uint8_t *)"ab", 2}, {NULL, 0}};
    (void)arg;
    for (i = 0; i < 400; i++) {
        uint64_t id;
        size_t n;
        int fd;
        aranya_quic_event e;
        int32_t rc[6];
        int k;
        rc[0] = aranya_quic_send_nowait(nb.ep, i % 2 ? nb.hole : name, tid, "nb", 2, (const uint8_t *)"x", 1, &id);
        rc[1] = aranya_quic_send_sync_batch_nowait(nb.ep, i % 2 ? name : nb.hole, 1, msgs, 2, &n, &id);
        rc[2] = aranya_quic_close_nowait(nb.ep, i % 3 ? nb.hole : name, &id);
        e.struct_size = sizeof e;
        rc[3] = aranya_quic_next_event(nb.ep, &e);
        rc[4] = aranya_quic_send_fd(nb.ep, &fd);
        rc[5] = aranya_quic_event_fd(nb.ep, &fd);
        for (k = 0; k < 6; k++) {
            if (rc[k] != ARANYA_QUIC_OK && rc[k] != ARANYA_QUIC_ERR_WOULD_BLOCK && !nb.bad) {
                nb.bad = 1;
                snprintf(nb.what, sizeof nb.what, "call %d of round %d returned %d: %.150s", k, i, (int)rc[k],
                         aranya_quic_last_error());
            }
        }
        flag_add(&nb.progress, 1);
    }
    if (aranya_quic_shutdown(nb.ep, NULL) != ARANYA_QUIC_OK && !nb.bad) {
        nb.bad = 1;
        snprintf(nb.what, sizeof nb.what, "shutdown failed");
    }
    flag_add(&nb.progress, 1);
    if (aranya_quic_free_nowait(nb.ep) != ARANYA_QUIC_OK && !nb.bad) {
        nb.bad = 1;
        snprintf(nb.what, sizeof nb.what, "free_nowait failed");
    }
    flag_add(&nb.progress, 1);
    return NULL;
}

static void test_never_blocks(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    pthread_t th;
    int sock = blackhole(nb.hole);

    base_config(&cfg, &alice_id);
    cfg.connect_timeout_ms = 60000;
    cfg.handshake_timeout_ms = 60000;
    cfg.send_timeout_ms = 120000;
    cfg.resolve_timeout_ms = 60000;
    cfg.drain_timeout_ms = 60000;
    cfg.max_outbound_bytes_per_peer = 1000;
    nb.ep = open_ep(&cfg, a_addr);
    if (nb.ep == 0 || sock < 0) {
        return;
    }
    CHECK(pthread_create(&th, NULL, nb_run, NULL) == 0);
    count_check();
    /* Far below every network timeout above. */
    if (!flag_wait(&nb.progress, 402, 30000)) {
        report_failure(__FILE__, __LINE__, "the loop of non-blocking calls is stuck after %d of 402 steps",
                       flag_get(&nb.progress));
        pthread_detach(th);
        return;
    }
    pthread_join(th, NULL);
    count_check();
    if (nb.bad) {
        report_failure(__FILE__, __LINE__, "%s", nb.what);
    }
    close(sock);
}

/* ---------------------------------------------------------- host names */

/* SEND_FAILED and CLOSE_FINISHED carry "the address as the call was given
 * it (a host name stays a host name)": also in upper case and with a
 * trailing dot, and for the longest name. */
static void test_event_addr_as_given(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    char longest[ARANYA_QUIC_PEER_ADDR_MAX], upper_local[ARANYA_QUIC_PEER_ADDR_MAX];
    static const char *given[] = {"NO-SUCH-HOST.INVALID:4433", "no-such-host.invalid.:4433", "No-Such.Invalid.:9"};
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    aranya_quic_event e;
    int efd, rfd, i;
    uint64_t id;
    uint8_t buf[16];
    aranya_quic_channel ch;
    size_t len;

    base_config(&cfg, &alice_id);
    cfg.resolve_timeout_ms = 500;
    cfg.connect_timeout_ms = 500;
    alice = open_ep(&cfg, a_addr);
    bob = plain_ep(&bob_id, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    CHECK_RC(aranya_quic_event_fd(alice, &efd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_receive_fd(bob, &rfd), ARANYA_QUIC_OK);
    for (i = 0; i < 3; i++) {
        CHECK_RC(aranya_quic_send_nowait(alice, given[i], tid, "n", 1, (const uint8_t *)"x", 1, &id), ARANYA_QUIC_OK);
        if (await_event(alice, efd, ARANYA_QUIC_EVENT_SEND_FAILED, id, &e)) {
            CHECK_RC(e.error_code, ARANYA_QUIC_ERR_RESOLVE);
            count_check();
            if (strcmp(e.addr, given[i]) != 0) {
                report_failure(__FILE__, __LINE__, "SEND_FAILED addr is \"%s\", the call was given \"%s\"", e.addr,
                               given[i]);
            }
        } else {
            CHECK(0);
        }
    }
    /* A 253-byte name: four labels (63, 63, 63, 61) and a port. */
    memset(longest, 'a', 253);
    longest[63] = longest[127] = longest[191] = '.';
    strcpy(longest + 253, ":4433");
    CHECK_RC(aranya_quic_send_nowait(alice, longest, tid, "n", 1, (const uint8_t *)"x", 1, &id), ARANYA_QUIC_OK);
    if (await_event(alice, efd, ARANYA_QUIC_EVENT_SEND_FAILED, id, &e)) {
        CHECK_RC(e.error_code, ARANYA_QUIC_ERR_RESOLVE);
        CHECK(strcmp(e.addr, longest) == 0);
    } else {
        CHECK(0);
    }
    /* 254 bytes: BAD_ADDRESS at once. */
    memset(longest, 'a', 254);
    longest[63] = longest[127] = longest[191] = '.';
    strcpy(longest + 254, ":4433");
    CHECK_RC(aranya_quic_send_nowait(alice, longest, tid, "n", 1, (const uint8_t *)"x", 1, &id),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    /* "LOCALHOST.:port" reaches bob; its close's event names it as given. */
    snprintf(upper_local, sizeof upper_local, "LOCALHOST.:%s", port_of(b_addr));
    CHECK_RC(aranya_quic_send_nowait(alice, upper_local, tid, "n", 1, (const uint8_t *)"u", 1, &id), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 1 && buf[0] == 'u' && strcmp(ch.addr, a_addr) == 0);
    CHECK_RC(aranya_quic_close_nowait(alice, upper_local, &id), ARANYA_QUIC_OK);
    if (await_event(alice, efd, ARANYA_QUIC_EVENT_CLOSE_FINISHED, id, &e)) {
        CHECK_RC(e.error_code, ARANYA_QUIC_OK);
        count_check();
        if (strcmp(e.addr, upper_local) != 0) {
            report_failure(__FILE__, __LINE__, "CLOSE_FINISHED addr is \"%s\", the call was given \"%s\"", e.addr,
                           upper_local);
        }
    } else {
        CHECK(0);
    }
    /* A name whose answer is cached, for a peer that is gone: the failure
     * names it as given, not by the address it resolved to. */
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    snprintf(upper_local, sizeof upper_local, "localhost:%s", port_of(b_addr));
    CHECK_RC(aranya_quic_send_nowait(alice, upper_local, tid, "n", 1, (const uint8_t *)"g", 1, &id), ARANYA_QUIC_OK);
    if (await_event(alice, efd, ARANYA_QUIC_EVENT_SEND_FAILED, id, &e)) {
        count_check();
        if (strcmp(e.addr, upper_local) != 0) {
            report_failure(__FILE__, __LINE__, "SEND_FAILED addr is \"%s\", the call was given \"%s\"", e.addr,
                           upper_local);
        }
    } else {
        CHECK(0);
    }
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* Addresses at the length limit, in buffers of exactly their size (so that
 * ASan sees a read past the end): PEER_ADDR_MAX bytes without a NUL, and
 * PEER_ADDR_MAX - 1 bytes with one. */
static void test_addr_at_limit(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = plain_ep(&alice_id, a_addr);
    char *no_nul = malloc(ARANYA_QUIC_PEER_ADDR_MAX), *with_nul = malloc(ARANYA_QUIC_PEER_ADDR_MAX);
    aranya_quic_buf one[1] = {{(const uint8_t *)"x", 1}};
    size_t n;
    uint64_t id;
    int k;

    if (alice == 0 || no_nul == NULL || with_nul == NULL) {
        free(no_nul);
        free(with_nul);
        return;
    }
    for (k = 0; k < 2; k++) {
        /* k 0: a name; k 1: digits and dots, which looks like an IPv4
         * literal to the parser. */
        memset(no_nul, k == 0 ? 'a' : '1', ARANYA_QUIC_PEER_ADDR_MAX);
        memset(with_nul, k == 0 ? 'a' : '1', ARANYA_QUIC_PEER_ADDR_MAX - 1);
        with_nul[ARANYA_QUIC_PEER_ADDR_MAX - 1] = '\0';
        memcpy(with_nul + ARANYA_QUIC_PEER_ADDR_MAX - 6, ":4433", 5);
        CHECK_RC(aranya_quic_send_nowait(alice, no_nul, tid, "l", 1, (const uint8_t *)"x", 1, &id),
                 ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_send_sync_nowait(alice, no_nul, 1, (const uint8_t *)"x", 1, &id),
                 ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_send_batch_nowait(alice, no_nul, tid, "l", 1, one, 1, &n, &id),
                 ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_close_nowait(alice, no_nul, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_send(alice, no_nul, tid, "l", 1, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_close(alice, no_nul), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_send_nowait(alice, with_nul, tid, "l", 1, (const uint8_t *)"x", 1, &id),
                 ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_close_nowait(alice, with_nul, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
        CHECK_RC(aranya_quic_close(alice, with_nul), ARANYA_QUIC_ERR_BAD_ADDRESS);
    }
    free(no_nul);
    free(with_nul);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* ------------------------------------------------- events and budgets */

/* A refused peer's queue failed by the shutdown gives the send fd back;
 * next_event takes any struct_size from the 0.2 struct up (UINT32_MAX
 * too, writing only what it knows); nothing comes after
 * SHUTDOWN_FINISHED; the gauges are zero. */
static void test_shutdown_fails_refused_queue(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], hole[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_event e;
    aranya_quic_stats st;
    struct {
        aranya_quic_event e;
        uint8_t tail[32];
    } wide;
    int sfd, efd, sock = blackhole(hole), fails = 0, got_shutdown = 0;
    uint64_t id, first_id = 0, sid = 0;
    int accepted = 0;
    long long deadline;

    base_config(&cfg, &alice_id);
    cfg.connect_timeout_ms = 30000;
    cfg.handshake_timeout_ms = 30000;
    cfg.send_timeout_ms = 60000;
    cfg.drain_timeout_ms = 300;
    cfg.max_outbound_bytes_per_peer = 1;
    alice = open_ep(&cfg, a_addr);
    if (alice == 0 || sock < 0) {
        return;
    }
    CHECK_RC(aranya_quic_send_fd(alice, &sfd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_event_fd(alice, &efd), ARANYA_QUIC_OK);
    CHECK_EQ(wait_readable(sfd, 0), 1);
    CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "s", 1, (const uint8_t *)"12", 2, &first_id), ARANYA_QUIC_OK);
    accepted++;
    CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "s", 1, (const uint8_t *)"3", 1, &id),
             ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_EQ(wait_readable(sfd, 0), 0);
    CHECK_RC(aranya_quic_shutdown(alice, &sid), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "s", 1, (const uint8_t *)"3", 1, &id), ARANYA_QUIC_ERR_CLOSED);
    deadline = mono_ms() + WAIT_MS;
    while (!got_shutdown && mono_ms() < deadline) {
        memset(&wide, 0xA5, sizeof wide);
        wide.e.struct_size = UINT32_MAX;
        if (aranya_quic_next_event(alice, &wide.e) != ARANYA_QUIC_OK) {
            wait_readable(efd, 200);
            continue;
        }
        CHECK_EQ(wide.e.struct_size, sizeof(aranya_quic_event));
        if (wide.e.type == ARANYA_QUIC_EVENT_SEND_FAILED) {
            CHECK_EQ(wide.e.id, first_id);
            CHECK_RC(wide.e.error_code, ARANYA_QUIC_ERR_CLOSED);
            fails++;
        } else if (wide.e.type == ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED) {
            CHECK_EQ(wide.e.id, sid);
            CHECK_RC(wide.e.error_code, ARANYA_QUIC_ERR_UNCONFIRMED);
            CHECK_EQ(wide.e.unconfirmed, accepted);
            got_shutdown = 1;
        }
    }
    CHECK(got_shutdown);
    CHECK_EQ(fails, accepted);
    /* The queue that refused is gone: the send fd is readable again. */
    CHECK_EQ(wait_readable(sfd, 0), 1);
    sleep_ms(200);
    CHECK_RC(take_event(alice, &e), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_EQ(wait_readable(efd, 0), 0);
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK_RC(aranya_quic_get_stats(alice, &st), ARANYA_QUIC_OK);
    CHECK_EQ(st.outbound_messages, 0);
    CHECK_EQ(st.outbound_bytes, 0);
    CHECK_EQ(st.sends_failed, accepted);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_ERR_UNCONFIRMED);
    close(sock);
}

/* The codes the header lists for aranya_quic_close (CLOSE_FINISHED
 * carries one of them). A name that does not resolve is RESOLVE, and
 * nothing was closed. */
static int close_code_listed(int32_t rc) {
    return rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_UNCONFIRMED || rc == ARANYA_QUIC_ERR_INVALID_ARGUMENT ||
           rc == ARANYA_QUIC_ERR_BAD_ADDRESS || rc == ARANYA_QUIC_ERR_RESOLVE || rc == ARANYA_QUIC_ERR_INVALID_HANDLE ||
           rc == ARANYA_QUIC_ERR_CLOSED || rc == ARANYA_QUIC_ERR_INTERNAL;
}

static void test_close_unresolvable_name(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_event e;
    int32_t rc;
    uint64_t id;
    int efd;

    base_config(&cfg, &alice_id);
    cfg.resolve_timeout_ms = 500;
    alice = open_ep(&cfg, a_addr);
    if (alice == 0) {
        return;
    }
    CHECK_RC(aranya_quic_event_fd(alice, &efd), ARANYA_QUIC_OK);
    rc = aranya_quic_close(alice, "gone.invalid:4433");
    CHECK_RC(rc, ARANYA_QUIC_ERR_RESOLVE);
    count_check();
    if (!close_code_listed(rc)) {
        report_failure(__FILE__, __LINE__, "aranya_quic_close of an unresolvable name returned %d (%s), not a code "
                       "the header lists for it", (int)rc, aranya_quic_strerror(rc));
    }
    CHECK_RC(aranya_quic_close_nowait(alice, "gone.invalid:4433", &id), ARANYA_QUIC_OK);
    if (await_event(alice, efd, ARANYA_QUIC_EVENT_CLOSE_FINISHED, id, &e)) {
        count_check();
        if (!close_code_listed(e.error_code)) {
            report_failure(__FILE__, __LINE__, "CLOSE_FINISHED of an unresolvable name carries %d (%s)",
                           (int)e.error_code, aranya_quic_strerror(e.error_code));
        }
    } else {
        CHECK(0);
    }
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* aranya_quic_shutdown from the endpoint's own receive callback returns at
 * once (the wait for the callbacks in progress happens in the
 * background); its event comes once the callback returned, after which
 * free returns at once with its outcome. */
static struct {
    flag done;
    aranya_quic_t self;
    int32_t rc, again_rc;
    uint64_t id, again_id;
} sdcb = {FLAG_INIT, 0, 0, 0, 0, 0};

static void sdcb_recv(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    (void)user;
    (void)ch;
    (void)msg;
    (void)len;
    if (flag_get(&sdcb.done) != 0) {
        return;
    }
    sdcb.rc = aranya_quic_shutdown(sdcb.self, &sdcb.id);
    sdcb.again_rc = aranya_quic_shutdown(sdcb.self, &sdcb.again_id);
    flag_add(&sdcb.done, 1);
}

static void test_shutdown_in_receive_callback(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_event e;
    int efd;

    base_config(&cfg, &bob_id);
    cfg.receive_callback = sdcb_recv;
    sdcb.self = open_ep(&cfg, b_addr);
    alice = plain_ep(&alice_id, a_addr);
    if (sdcb.self == 0 || alice == 0) {
        return;
    }
    CHECK_RC(aranya_quic_event_fd(sdcb.self, &efd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "s", 1, (const uint8_t *)"x", 1), ARANYA_QUIC_OK);
    CHECK(flag_wait(&sdcb.done, 1, WAIT_MS));
    CHECK_RC(sdcb.rc, ARANYA_QUIC_OK);
    CHECK_RC(sdcb.again_rc, ARANYA_QUIC_OK);
    CHECK(sdcb.id != 0 && sdcb.id == sdcb.again_id);
    if (await_event(sdcb.self, efd, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, sdcb.id, &e)) {
        CHECK_RC(e.error_code, ARANYA_QUIC_OK);
    } else {
        CHECK(0);
    }
    CHECK_RC(take_event(sdcb.self, &e), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_RC(aranya_quic_free(sdcb.self), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* A receive_timeout waiting for ever and a receive_batch waiting for ever
 * when aranya_quic_shutdown is called (no free): they return once the
 * drain finished (the queue is gone), not never. */
static void test_shutdown_ends_blocked_receives(void) {
    enum { K = 2 };
    char a_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = plain_ep(&alice_id, a_addr);
    blocked_call calls[K];
    pthread_t th[K];
    static flag started = FLAG_INIT, done = FLAG_INIT;
    aranya_quic_event e;
    int i, efd;

    if (alice == 0) {
        return;
    }
    CHECK_RC(aranya_quic_event_fd(alice, &efd), ARANYA_QUIC_OK);
    for (i = 0; i < K; i++) {
        calls[i].ep = alice;
        calls[i].hole = "";
        calls[i].kind = 3 + i;
        calls[i].rc = 99;
        calls[i].started = &started;
        calls[i].done = &done;
        CHECK(pthread_create(&th[i], NULL, blocked_run, &calls[i]) == 0);
    }
    CHECK(flag_wait(&started, K, WAIT_MS));
    sleep_ms(200);
    CHECK_RC(aranya_quic_shutdown(alice, NULL), ARANYA_QUIC_OK);
    CHECK(await_event(alice, efd, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, 0, &e));
    count_check();
    if (!flag_wait(&done, K, WAIT_MS)) {
        report_failure(__FILE__, __LINE__, "%d of %d receives waiting for ever returned after the shutdown finished",
                       flag_get(&done), K);
        CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK); /* wakes them */
    } else {
        CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    }
    for (i = 0; i < K; i++) {
        pthread_join(th[i], NULL);
        CHECK_RC(calls[i].rc, ARANYA_QUIC_ERR_CLOSED);
    }
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"addr_at_limit", test_addr_at_limit},
        {"event_addr_as_given", test_event_addr_as_given},
        {"shutdown_fails_refused_queue", test_shutdown_fails_refused_queue},
        {"never_blocks", test_never_blocks},
        {"free_nowait_wakes_blocked_calls", test_free_nowait_wakes_blocked_calls},
        {"free_nowait_in_receive_callback", test_free_nowait_in_receive_callback},
        {"shutdown_in_receive_callback", test_shutdown_in_receive_callback},
        {"shutdown_ends_blocked_receives", test_shutdown_ends_blocked_receives},
        {"close_unresolvable_name", test_close_unresolvable_name},
        {"log_callback_calls_library", test_log_callback_calls_library},
        {"hammer_both_sides", test_hammer_both_sides},
        {"free_nowait_during_log_callback", test_free_nowait_during_log_callback},
        {"cross_free_nowait_in_log_callbacks", test_cross_free_nowait_in_log_callbacks},
        {"cross_free_in_log_callbacks", test_cross_free_in_log_callbacks},
        {"free_nowait_while_log_callback_calls_library", test_free_nowait_while_log_callback_calls_library},
    };
    int rc = test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
    /* Threads a deadlock left behind must not keep the process alive. */
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}
