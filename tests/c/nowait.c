/*
 * Tests of the non-blocking calls and events (the header's "non-blocking
 * calls and events, added in 0.2"), host:port peer addresses and the log
 * callback, through the public header only.
 *
 *   nowait CERTS_DIR [TEST]
 *
 * CERTS_DIR holds ca.pem, alice, bob and carol's .crt/.key and
 * stranger.crt/.key (from a CA nobody trusts), as written by
 *   go run ./examples/certgen -other-ca -out CERTS_DIR alice bob carol
 *
 * Every wait is bounded, by poll(2) on the library's fds or a deadline, so
 * that a lost message or event fails a check instead of hanging; no check
 * asserts how long anything took.
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
#include <unistd.h>

#include "aranya_quic.h"
#include "testlib.h"

/* ------------------------------------------------------------- helpers */


/* Bound on every wait for something that should happen: generous, only so
 * that a lost message or event fails instead of hanging. */
#define WAIT_MS 20000

/* An address nobody answers from and nobody resolves. */
#define NO_SUCH_HOST "no-such-host.invalid"

/* open_ep makes an endpoint from cfg and writes its address; 0 on failure
 * (already reported). */
static void team(uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], uint8_t seed) {
    int i;
    for (i = 0; i < ARANYA_QUIC_TEAM_ID_LEN; i++) {
        tid[i] = (uint8_t)(seed * 29 + i);
    }
}

static int all_bytes(const void *p, size_t n, uint8_t v) {
    const uint8_t *b = p;
    size_t i;
    for (i = 0; i < n; i++) {
        if (b[i] != v) {
            return 0;
        }
    }
    return 1;
}

static void stats_of(aranya_quic_t ep, aranya_quic_stats *st) {
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    CHECK_RC(aranya_quic_get_stats(ep, st), ARANYA_QUIC_OK);
}

/* The three fds of the header's event loop. */
typedef struct {
    int rfd, sfd, efd;
} ep_fds;

static ep_fds fds_of(aranya_quic_t ep) {
    ep_fds f = {-1, -1, -1};
    int again = -1;
    CHECK_RC(aranya_quic_receive_fd(ep, &f.rfd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send_fd(ep, &f.sfd), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_event_fd(ep, &f.efd), ARANYA_QUIC_OK);
    CHECK(f.rfd >= 0 && f.sfd >= 0 && f.efd >= 0);
    CHECK(f.rfd != f.sfd && f.sfd != f.efd && f.rfd != f.efd);
    /* Every call returns the same fd. */
    CHECK_RC(aranya_quic_send_fd(ep, &again), ARANYA_QUIC_OK);
    CHECK_EQ(again, f.sfd);
    CHECK_RC(aranya_quic_event_fd(ep, &again), ARANYA_QUIC_OK);
    CHECK_EQ(again, f.efd);
    return f;
}

/* blackhole binds a UDP socket on 127.0.0.1 that is never read, so that a
 * dial to it gets no answer at all (not even a port-unreachable), and
 * writes its address. Returns the socket, -1 on failure (reported). */
static int blackhole(char addr[ARANYA_QUIC_ADDR_MAX]) {
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    count_check();
    if (fd < 0) {
        report_failure(__FILE__, __LINE__, "socket: %s", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        report_failure(__FILE__, __LINE__, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    snprintf(addr, ARANYA_QUIC_ADDR_MAX, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

/* port_of: the port of "ip:port". */
static const char *port_of(const char *addr) {
    const char *c = strrchr(addr, ':');
    return c != NULL ? c + 1 : "";
}

/* ------------------------------------------------------------ payloads */

/* make_msg writes message seq of a stream tagged tag: a readable head
 * ("tag 000042|") and extra bytes that depend on seq and position, so that
 * a message shifted, cut or swapped with another does not match. Returns
 * its length (at most cap). */
static size_t make_msg(uint8_t *buf, size_t cap, const char *tag, int seq, size_t extra) {
    int hl = snprintf((char *)buf, cap, "%s %06d|", tag, seq);
    size_t k, n = (size_t)hl + extra;
    if (hl < 0 || n > cap) {
        fprintf(stderr, "make_msg: buffer too small\n");
        exit(2);
    }
    for (k = (size_t)hl; k < n; k++) {
        buf[k] = (uint8_t)(seq * 31 + (int)(k % 241) * 7 + 3);
    }
    return n;
}

/* msg_is says whether buf (len bytes) is message seq of tag with extra
 * bytes after the head. */
static int msg_is(const uint8_t *buf, size_t len, const char *tag, int seq, size_t extra) {
    static uint8_t want[1 << 17];
    size_t n = make_msg(want, sizeof want, tag, seq, extra);
    return len == n && memcmp(buf, want, n) == 0;
}

/* seq_of reads the seq of a message of tag; -1 if it is not one. */
static int seq_of(const uint8_t *buf, size_t len, const char *tag) {
    char head[32];
    size_t tl = strlen(tag), n = len < sizeof head - 1 ? len : sizeof head - 1;
    memcpy(head, buf, n);
    head[n] = '\0';
    if (n < tl + 8 || memcmp(head, tag, tl) != 0 || head[tl] != ' ' || head[tl + 7] != '|') {
        return -1;
    }
    return atoi(head + tl + 1);
}

/* A channel message from addr on (tid, label). */
static int is_channel(const aranya_quic_channel *ch, const char *addr, const uint8_t *tid, const char *label) {
    size_t ll = strlen(label);
    return memchr(ch->addr, '\0', sizeof ch->addr) != NULL && strcmp(ch->addr, addr) == 0 &&
           ch->kind == ARANYA_QUIC_KIND_CHANNEL && ch->sync_type == 0 &&
           memcmp(ch->team_id, tid, ARANYA_QUIC_TEAM_ID_LEN) == 0 && ch->label_len == ll &&
           memcmp(ch->label, label, ll) == 0 && ch->label[ll] == '\0';
}

static int is_sync(const aranya_quic_channel *ch, const char *addr, uint32_t sync_type) {
    return memchr(ch->addr, '\0', sizeof ch->addr) != NULL && strcmp(ch->addr, addr) == 0 &&
           ch->kind == ARANYA_QUIC_KIND_SYNC && ch->sync_type == sync_type &&
           all_bytes(ch->team_id, sizeof ch->team_id, 0) && ch->label_len == 0 && ch->label[0] == '\0';
}


/* -------------------------------------------------------------- events */

/* The events a test took, in the order taken. */
typedef struct {
    aranya_quic_event *ev;
    size_t n, cap;
} event_log;

static event_log *log_new(void) {
    event_log *l = calloc(1, sizeof *l);
    if (l == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return l;
}

static void log_free(event_log *l) {
    if (l != NULL) {
        free(l->ev);
        free(l);
    }
}

static const char *event_name(uint32_t type) {
    switch (type) {
    case ARANYA_QUIC_EVENT_PEER_CONNECTED:
        return "PEER_CONNECTED";
    case ARANYA_QUIC_EVENT_PEER_DISCONNECTED:
        return "PEER_DISCONNECTED";
    case ARANYA_QUIC_EVENT_SEND_FAILED:
        return "SEND_FAILED";
    case ARANYA_QUIC_EVENT_CLOSE_FINISHED:
        return "CLOSE_FINISHED";
    case ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED:
        return "HANDSHAKE_REJECTED";
    case ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED:
        return "SHUTDOWN_FINISHED";
    default:
        return "unknown";
    }
}

static void print_log(const char *who, const event_log *l) {
    size_t i;
    fprintf(stderr, "  events of %s (%zu):\n", who, l->n);
    for (i = 0; i < l->n; i++) {
        const aranya_quic_event *e = &l->ev[i];
        fprintf(stderr, "    %s id=%llu code=%d addr=%.*s unconfirmed=%llu dropped_before=%llu reason=%.*s\n",
                event_name(e->type), (unsigned long long)e->id, (int)e->error_code, (int)sizeof e->addr, e->addr,
                (unsigned long long)e->unconfirmed, (unsigned long long)e->dropped_before, (int)sizeof e->reason,
                e->reason);
    }
}

static int is_zero_channel(const aranya_quic_channel *ch) {
    return all_bytes(ch, sizeof *ch, 0);
}

/* check_event: what every event promises, whatever its type: the size it
 * filled, NUL-terminated strings, and zero in the fields its type does
 * not use. */
static void check_event(const aranya_quic_event *e) {
    int has_id = e->type == ARANYA_QUIC_EVENT_SEND_FAILED || e->type == ARANYA_QUIC_EVENT_CLOSE_FINISHED ||
                 e->type == ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED;
    int has_peer = e->type == ARANYA_QUIC_EVENT_PEER_CONNECTED || e->type == ARANYA_QUIC_EVENT_PEER_DISCONNECTED;
    int has_unconfirmed = e->type == ARANYA_QUIC_EVENT_PEER_DISCONNECTED ||
                          e->type == ARANYA_QUIC_EVENT_CLOSE_FINISHED ||
                          e->type == ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED;
    CHECK_EQ(e->struct_size, sizeof *e);
    CHECK(memchr(e->addr, '\0', sizeof e->addr) != NULL);
    CHECK(memchr(e->reason, '\0', sizeof e->reason) != NULL);
    CHECK(memchr(e->channel.addr, '\0', sizeof e->channel.addr) != NULL);
    CHECK(e->type >= ARANYA_QUIC_EVENT_PEER_CONNECTED && e->type <= ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED);
    if (has_id) {
        CHECK(e->id != 0);
    } else {
        CHECK_EQ(e->id, 0);
    }
    if (!has_peer) {
        CHECK(all_bytes(e->peer_id, sizeof e->peer_id, 0));
    } else {
        CHECK(!all_bytes(e->peer_id, sizeof e->peer_id, 0));
    }
    if (!has_unconfirmed) {
        CHECK_EQ(e->unconfirmed, 0);
    }
    if (e->type != ARANYA_QUIC_EVENT_SEND_FAILED) {
        CHECK(is_zero_channel(&e->channel));
    } else {
        CHECK(all_bytes(e->channel.peer_id, sizeof e->channel.peer_id, 0));
    }
    switch (e->type) {
    case ARANYA_QUIC_EVENT_PEER_CONNECTED:
        CHECK_RC(e->error_code, ARANYA_QUIC_OK);
        break;
    case ARANYA_QUIC_EVENT_SEND_FAILED:
    case ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED:
        CHECK(e->error_code < 0);
        break;
    case ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED:
        /* No peer: the address is the endpoint's own bound address. */
        CHECK(e->addr[0] != '\0');
        break;
    default:
        break;
    }
}

/* take_event takes one waiting event into *e: OK or WOULD_BLOCK. */
static int32_t take_event(aranya_quic_t ep, aranya_quic_event *e) {
    int32_t rc;
    memset(e, 0xA5, sizeof *e);
    e->struct_size = sizeof *e;
    rc = aranya_quic_next_event(ep, e);
    if (rc == ARANYA_QUIC_OK) {
        check_event(e);
    } else {
        CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
    }
    return rc;
}

/* pull takes every waiting event into l; returns how many. */
static size_t pull(aranya_quic_t ep, event_log *l) {
    size_t got = 0;
    for (;;) {
        aranya_quic_event e;
        if (take_event(ep, &e) != ARANYA_QUIC_OK) {
            return got;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 16;
            aranya_quic_event *ev = realloc(l->ev, cap * sizeof *ev);
            if (ev == NULL) {
                fprintf(stderr, "out of memory\n");
                exit(2);
            }
            l->ev = ev;
            l->cap = cap;
        }
        l->ev[l->n++] = e;
        got++;
    }
}

/* find_event: the index of the first event of type at or after from (with
 * the id, when id is not 0); -1 if none. */
static long find_event(const event_log *l, size_t from, uint32_t type, uint64_t id) {
    size_t i;
    for (i = from; i < l->n; i++) {
        if (l->ev[i].type == type && (id == 0 || l->ev[i].id == id)) {
            return (long)i;
        }
    }
    return -1;
}

static size_t count_events(const event_log *l, uint32_t type) {
    size_t i, n = 0;
    for (i = 0; i < l->n; i++) {
        n += l->ev[i].type == type;
    }
    return n;
}

/* await_event waits (poll on efd, bounded) until an event of type (with
 * the id, when not 0) is in l at or after from; returns its index, or -1
 * (reported, with every event taken). */
static long await_event(aranya_quic_t ep, int efd, event_log *l, size_t from, uint32_t type, uint64_t id,
                        const char *who) {
    long long deadline = mono_ms() + WAIT_MS;
    for (;;) {
        long at = find_event(l, from, type, id);
        long long left;
        if (at >= 0) {
            return at;
        }
        if (pull(ep, l) > 0) {
            continue;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(efd, (int)left) < 0) {
            count_check();
            report_failure(__FILE__, __LINE__, "%s: no %s event (id %llu) came", who, event_name(type),
                           (unsigned long long)id);
            print_log(who, l);
            return -1;
        }
    }
}

/* await_count waits until l holds at least n events of type. */
static int await_count(aranya_quic_t ep, int efd, event_log *l, uint32_t type, size_t n, const char *who) {
    long long deadline = mono_ms() + WAIT_MS;
    while (count_events(l, type) < n) {
        long long left;
        if (pull(ep, l) > 0) {
            continue;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(efd, (int)left) < 0) {
            count_check();
            report_failure(__FILE__, __LINE__, "%s: %zu %s events came, want %zu", who, count_events(l, type),
                           event_name(type), n);
            print_log(who, l);
            return 0;
        }
    }
    return 1;
}

/* shutdown_and_free: the header's orderly end without a blocking call
 * before free: shutdown, wait for SHUTDOWN_FINISHED (which must be the last
 * event, with want_code), then free, which returns at once. */
static void shutdown_and_free(aranya_quic_t ep, int efd, event_log *l, int32_t want_code, const char *who) {
    uint64_t id = 0, again = 0;
    long at;
    if (ep == 0) {
        return;
    }
    CHECK_RC(aranya_quic_shutdown(ep, &id), ARANYA_QUIC_OK);
    CHECK(id != 0);
    CHECK_RC(aranya_quic_shutdown(ep, &again), ARANYA_QUIC_OK);
    CHECK_EQ(again, id);
    at = await_event(ep, efd, l, 0, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, id, who);
    if (at >= 0) {
        aranya_quic_event e;
        CHECK_RC(l->ev[at].error_code, want_code);
        if (want_code == ARANYA_QUIC_OK) {
            CHECK_EQ(l->ev[at].unconfirmed, 0);
        }
        /* The last event of an endpoint. */
        pull(ep, l);
        CHECK_EQ(l->n, (size_t)at + 1);
        if (l->n != (size_t)at + 1) {
            print_log(who, l);
        }
        CHECK_RC(take_event(ep, &e), ARANYA_QUIC_ERR_WOULD_BLOCK);
        CHECK_EQ(wait_readable(efd, 0), 0);
    }
    CHECK_RC(aranya_quic_free(ep), ARANYA_QUIC_OK);
}

/* nowait_retry: send_nowait, waiting for send_fd while refused. */
static int32_t nowait_retry(aranya_quic_t ep, int sfd, const char *to, const uint8_t *tid, const char *label,
                            const uint8_t *msg, size_t len, uint64_t *id) {
    long long deadline = mono_ms() + WAIT_MS;
    for (;;) {
        long long left;
        int32_t rc = aranya_quic_send_nowait(ep, to, tid, label, strlen(label), msg, len, id);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK) {
            return rc;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(sfd, (int)left) < 0) {
            return rc;
        }
    }
}

static int32_t sync_nowait_retry(aranya_quic_t ep, int sfd, const char *to, uint32_t sync_type, const uint8_t *msg,
                                 size_t len, uint64_t *id) {
    long long deadline = mono_ms() + WAIT_MS;
    for (;;) {
        long long left;
        int32_t rc = aranya_quic_send_sync_nowait(ep, to, sync_type, msg, len, id);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK) {
            return rc;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(sfd, (int)left) < 0) {
            return rc;
        }
    }
}

/* ------------------------------------------------------- echo loop */

enum { ECHO_N = 400 };

static size_t echo_extra(int seq) {
    return (size_t)((seq * 37) % 1200);
}

/* An echo loop driven only by the non-blocking calls and poll(2): alice
 * sends ECHO_N messages on one channel, bob sends each back as it comes,
 * alice checks every echo in order. Small outbound bounds so that both
 * sides meet WOULD_BLOCK and wait for send_fd. */
static void test_echo_loop_poll(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t buf[4096];
    static uint8_t *pending[ECHO_N];
    static size_t pending_len[ECHO_N];
    static char pending_to[ARANYA_QUIC_ADDR_MAX];
    size_t head = 0, tail = 0;
    int sent = 0, bob_got = 0, got = 0, alice_blocked = 0, bob_blocked = 0, broken = 0;
    int alice_refusals = 0, bob_refusals = 0;
    uint64_t last_id = 0, bob_last_id = 0;
    event_log *al = log_new(), *bl = log_new();
    long long hard_deadline = mono_ms() + 6 * WAIT_MS;
    size_t i;

    team(tid, 1);
    base_config(&cfg, &alice_id);
    cfg.max_outbound_bytes_per_peer = 8 * 1024;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    cfg.max_outbound_bytes_per_peer = 8 * 1024;
    bob = open_ep(&cfg, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    /* Nothing to take yet. */
    CHECK_EQ(wait_readable(af.rfd, 0), 0);
    CHECK_EQ(wait_readable(af.efd, 0), 0);
    CHECK_EQ(wait_readable(af.sfd, 0), 1); /* no send is being refused */

    while (got < ECHO_N && !broken) {
        struct pollfd p[6];
        int np = 0, n, a_s = -1, b_s = -1;
        int32_t rc;
        aranya_quic_channel ch;
        size_t len;

        /* alice sends while her queue takes it. */
        while (!alice_blocked && sent < ECHO_N) {
            uint64_t id = 0;
            size_t ml = make_msg(buf, sizeof buf, "echo", sent, echo_extra(sent));
            rc = aranya_quic_send_nowait(alice, b_addr, tid, "echo", 4, buf, ml, &id);
            if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) {
                alice_blocked = 1;
                alice_refusals++;
                break;
            }
            CHECK_RC(rc, ARANYA_QUIC_OK);
            if (rc != ARANYA_QUIC_OK) {
                broken = 1;
                break;
            }
            if (last_id == 0) {
                CHECK_EQ(id, 1); /* ids start at 1 on a new endpoint */
            }
            CHECK(id > last_id);
            last_id = id;
            sent++;
        }
        /* bob takes what came and queues its echo. */
        while ((rc = aranya_quic_receive(bob, buf, sizeof buf, &ch, &len)) == ARANYA_QUIC_OK) {
            count_check();
            if (!is_channel(&ch, a_addr, tid, "echo") || !msg_is(buf, len, "echo", bob_got, echo_extra(bob_got))) {
                report_failure(__FILE__, __LINE__, "bob: message %d is not the next one (seq %d, %zu bytes, from %s)",
                               bob_got, seq_of(buf, len, "echo"), len, ch.addr);
                broken = 1;
                break;
            }
            if (tail >= ECHO_N) {
                report_failure(__FILE__, __LINE__, "bob: more than %d messages", ECHO_N);
                broken = 1;
                break;
            }
            memcpy(pending_to, ch.addr, sizeof pending_to);
            pending[tail] = malloc(len ? len : 1);
            if (pending[tail] == NULL) {
                fprintf(stderr, "out of memory\n");
                exit(2);
            }
            memcpy(pending[tail], buf, len);
            pending_len[tail] = len;
            tail++;
            bob_got++;
        }
        if (!broken) {
            CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
        }
        while (!bob_blocked && head < tail) {
            uint64_t id = 0;
            rc = aranya_quic_send_nowait(bob, pending_to, tid, "echo", 4, pending[head], pending_len[head], &id);
            if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) {
                bob_blocked = 1;
                bob_refusals++;
                break;
            }
            CHECK_RC(rc, ARANYA_QUIC_OK);
            if (rc != ARANYA_QUIC_OK) {
                broken = 1;
                break;
            }
            CHECK(id > bob_last_id);
            bob_last_id = id;
            free(pending[head]);
            pending[head] = NULL;
            head++;
        }
        /* alice checks the echoes. */
        while ((rc = aranya_quic_receive(alice, buf, sizeof buf, &ch, &len)) == ARANYA_QUIC_OK) {
            count_check();
            if (!is_channel(&ch, b_addr, tid, "echo") || !msg_is(buf, len, "echo", got, echo_extra(got))) {
                report_failure(__FILE__, __LINE__, "alice: echo %d is not the next one (seq %d, %zu bytes, from %s)",
                               got, seq_of(buf, len, "echo"), len, ch.addr);
                broken = 1;
                break;
            }
            got++;
        }
        if (!broken) {
            CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
        }
        /* Events: no send may fail. */
        pull(alice, al);
        pull(bob, bl);
        if (count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED) + count_events(bl, ARANYA_QUIC_EVENT_SEND_FAILED) > 0) {
            count_check();
            report_failure(__FILE__, __LINE__, "a send failed in the echo loop");
            print_log("alice", al);
            print_log("bob", bl);
            broken = 1;
        }
        if (got == ECHO_N || broken) {
            break;
        }
        if (mono_ms() > hard_deadline) {
            count_check();
            report_failure(__FILE__, __LINE__, "echo loop: deadline passed: sent %d, bob got %d, echoed %zu, got %d",
                           sent, bob_got, head, got);
            break;
        }

        p[np].fd = af.rfd, p[np].events = POLLIN, np++;
        p[np].fd = bf.rfd, p[np].events = POLLIN, np++;
        p[np].fd = af.efd, p[np].events = POLLIN, np++;
        p[np].fd = bf.efd, p[np].events = POLLIN, np++;
        if (alice_blocked) {
            a_s = np;
            p[np].fd = af.sfd, p[np].events = POLLIN, np++;
        }
        if (bob_blocked) {
            b_s = np;
            p[np].fd = bf.sfd, p[np].events = POLLIN, np++;
        }
        for (i = 0; i < (size_t)np; i++) {
            p[i].revents = 0;
        }
        n = poll(p, (nfds_t)np, WAIT_MS);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        count_check();
        if (n <= 0) {
            report_failure(__FILE__, __LINE__, "echo loop: nothing became ready: sent %d, bob got %d, echoed %zu, got %d",
                           sent, bob_got, head, got);
            break;
        }
        for (i = 0; i < (size_t)np; i++) {
            CHECK((p[i].revents & (POLLNVAL | POLLERR)) == 0);
        }
        if (a_s >= 0 && (p[a_s].revents & POLLIN)) {
            alice_blocked = 0;
        }
        if (b_s >= 0 && (p[b_s].revents & POLLIN)) {
            bob_blocked = 0;
        }
    }
    CHECK_EQ(got, ECHO_N);
    CHECK_EQ(bob_got, ECHO_N);
    for (i = head; i < tail; i++) {
        free(pending[i]);
        pending[i] = NULL;
    }
    if (alice_refusals == 0) {
        /* Not a failure: the dial may have been quick enough. */
        fprintf(stderr, "  note: echo_loop_poll: alice's queue never refused a message\n");
    }

    /* Each saw the other connect, once, under its IP address. */
    pull(alice, al);
    pull(bob, bl);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_PEER_CONNECTED), 1);
    CHECK_EQ(count_events(bl, ARANYA_QUIC_EVENT_PEER_CONNECTED), 1);
    if (find_event(al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0) >= 0) {
        CHECK(strcmp(al->ev[find_event(al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0)].addr, b_addr) == 0);
    }
    if (find_event(bl, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0) >= 0) {
        CHECK(strcmp(bl->ev[find_event(bl, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0)].addr, a_addr) == 0);
    }
    {
        aranya_quic_stats st;
        stats_of(alice, &st);
        CHECK_EQ(st.sends_failed, 0);
        CHECK_EQ(st.messages_sent, ECHO_N);
        CHECK_EQ(st.messages_received, ECHO_N);
    }
    /* Every echo was taken, so both drains finish with everything
     * confirmed. */
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(al);
    log_free(bl);
}

/* ---------------------------------------------- refusals and send_fd */

/* A peer that never answers: the queue fills to its bound, send_nowait
 * refuses with WOULD_BLOCK and send_fd stops being readable; when the dial
 * fails every queued message gets its SEND_FAILED event, the stats count
 * them, and send_fd is readable again. */
static void test_would_block_and_send_fd(void) {
    enum { SIZE = 300, MAX_TRIES = 10000 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], hole[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_stats st;
    ep_fds af;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], msg[SIZE];
    uint64_t ids[MAX_TRIES], id;
    int k = 0, i, sock, readable;
    int32_t rc = ARANYA_QUIC_OK;
    event_log *al = log_new();
    aranya_quic_buf one[1];
    size_t sent = 99;

    team(tid, 2);
    sock = blackhole(hole);
    base_config(&cfg, &alice_id);
    cfg.max_outbound_bytes_per_peer = 1024;
    cfg.connect_timeout_ms = 1500;
    cfg.send_timeout_ms = 60000; /* only the dial may fail these */
    alice = open_ep(&cfg, a_addr);
    if (alice == 0 || sock < 0) {
        log_free(al);
        if (sock >= 0) {
            close(sock);
        }
        return;
    }
    af = fds_of(alice);
    CHECK_EQ(wait_readable(af.sfd, 0), 1);

    memset(msg, 'q', sizeof msg);
    for (k = 0; k < MAX_TRIES; k++) {
        id = 0xDEADBEEF;
        rc = aranya_quic_send_nowait(alice, hole, tid, "hole", 4, msg, sizeof msg, &id);
        if (rc != ARANYA_QUIC_OK) {
            CHECK_EQ(id, 0xDEADBEEF); /* written only on OK */
            break;
        }
        ids[k] = id;
        if (k == 0) {
            CHECK_EQ(id, 1);
        } else {
            CHECK(id > ids[k - 1]);
        }
    }
    CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK(aranya_quic_last_error()[0] != '\0');
    /* An empty queue takes one message, and 1024 bytes hold at most four
     * of 300. */
    CHECK(k >= 1 && k <= 1024 / SIZE + 1);
    /* Refused: send_fd is not readable, unless the queue already drained
     * (the dial failed meanwhile), which the stats read after it show. */
    readable = wait_readable(af.sfd, 0);
    stats_of(alice, &st);
    count_check();
    if (readable != 0 && st.sends_failed == 0) {
        report_failure(__FILE__, __LINE__, "send_fd readable (%d) right after WOULD_BLOCK, with nothing failed yet",
                       readable);
    }
    CHECK(st.outbound_messages <= (uint64_t)k);
    CHECK(st.outbound_bytes <= (uint64_t)k * SIZE);
    if (st.sends_failed == 0) {
        CHECK_EQ(st.outbound_messages, k);
        CHECK_EQ(st.outbound_bytes, (uint64_t)k * SIZE);
    }
    /* The other non-blocking sends to that peer are refused the same way
     * and accept nothing. */
    if (st.sends_failed == 0) {
        one[0].data = msg;
        one[0].len = sizeof msg;
        id = 0xDEADBEEF;
        rc = aranya_quic_send_batch_nowait(alice, hole, tid, "hole", 4, one, 1, &sent, &id);
        if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) {
            CHECK_EQ(sent, 0);
            CHECK_EQ(id, 0xDEADBEEF);
        } else {
            /* Only if the dial failed in between and emptied the queue. */
            CHECK_RC(rc, ARANYA_QUIC_OK);
            CHECK_EQ(sent, 1);
            ids[k++] = id;
        }
    }

    /* The dial fails: one SEND_FAILED per queued message, with its id,
     * CONNECTION, the channel and the address as given. */
    if (await_count(alice, af.efd, al, ARANYA_QUIC_EVENT_SEND_FAILED, (size_t)k, "alice")) {
        for (i = 0; i < k; i++) {
            long at = find_event(al, 0, ARANYA_QUIC_EVENT_SEND_FAILED, ids[i]);
            count_check();
            if (at < 0) {
                report_failure(__FILE__, __LINE__, "no SEND_FAILED for message id %llu", (unsigned long long)ids[i]);
                continue;
            }
            CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_ERR_CONNECTION);
            CHECK(strcmp(al->ev[at].addr, hole) == 0);
            CHECK_EQ(al->ev[at].channel.kind, ARANYA_QUIC_KIND_CHANNEL);
            CHECK_EQ(al->ev[at].channel.label_len, 4);
            CHECK(memcmp(al->ev[at].channel.label, "hole", 5) == 0);
            CHECK(memcmp(al->ev[at].channel.team_id, tid, sizeof tid) == 0);
            CHECK(al->ev[at].channel.addr[0] == '\0' || strcmp(al->ev[at].channel.addr, hole) == 0);
        }
        CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), k);
        CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_PEER_CONNECTED), 0);
    }
    /* The queue drained: send_fd readable again, and a send is taken. */
    CHECK_EQ(wait_readable(af.sfd, WAIT_MS), 1);
    stats_of(alice, &st);
    CHECK_EQ(st.sends_failed, k);
    CHECK_EQ(st.outbound_messages, 0);
    CHECK_EQ(st.outbound_bytes, 0);
    CHECK_EQ(st.messages_sent, 0);
    CHECK_EQ(st.messages_unconfirmed, 0);
    CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "hole", 4, msg, sizeof msg, &id), ARANYA_QUIC_OK);
    CHECK(k == 0 || id > ids[k - 1]);
    CHECK(await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_SEND_FAILED, id, "alice") >= 0);
    /* A blocking send to the same address fails the same way. */
    CHECK_RC(aranya_quic_send(alice, hole, tid, "hole", 4, msg, sizeof msg), ARANYA_QUIC_ERR_CONNECTION);
    /* Nothing was ever accepted by a stream: nothing is unconfirmed. */
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    close(sock);
    log_free(al);
}

/* max_outbound_bytes bounds all queues together: once it is reached, a
 * send to another peer, whose own queue is empty, is refused too, and
 * send_fd is readable again only when the total drained. */
static void test_total_budget(void) {
    enum { SIZE = 300, MAX_TRIES = 100 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], h1[ARANYA_QUIC_ADDR_MAX], h2[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_stats st;
    ep_fds af;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], msg[SIZE];
    uint64_t id = 0;
    int k, s1, s2, readable;
    int32_t rc = ARANYA_QUIC_OK;
    event_log *al = log_new();

    team(tid, 11);
    s1 = blackhole(h1);
    s2 = blackhole(h2);
    base_config(&cfg, &alice_id);
    cfg.max_outbound_bytes = 1000;
    cfg.connect_timeout_ms = 1500;
    cfg.send_timeout_ms = 60000;
    alice = open_ep(&cfg, a_addr);
    if (alice != 0 && s1 >= 0 && s2 >= 0) {
        af = fds_of(alice);
        memset(msg, 't', sizeof msg);
        for (k = 0; k < MAX_TRIES; k++) {
            rc = aranya_quic_send_nowait(alice, h1, tid, "sum", 3, msg, sizeof msg, &id);
            if (rc != ARANYA_QUIC_OK) {
                break;
            }
        }
        CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
        CHECK(k >= 1 && k <= 1000 / SIZE + 1);
        rc = aranya_quic_send_nowait(alice, h2, tid, "sum", 3, msg, sizeof msg, &id);
        readable = wait_readable(af.sfd, 0);
        stats_of(alice, &st);
        if (st.sends_failed == 0) { /* else the first dial already failed: nothing left to see */
            CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
            CHECK_EQ(readable, 0);
            CHECK_EQ(st.outbound_bytes, (uint64_t)k * SIZE);
        }
        CHECK(await_count(alice, af.efd, al, ARANYA_QUIC_EVENT_SEND_FAILED, (size_t)k + (rc == ARANYA_QUIC_OK),
                          "alice"));
        CHECK_EQ(wait_readable(af.sfd, WAIT_MS), 1);
        CHECK_RC(aranya_quic_send_nowait(alice, h2, tid, "sum", 3, msg, sizeof msg, &id), ARANYA_QUIC_OK);
        CHECK(await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_SEND_FAILED, id, "alice") >= 0);
        shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    }
    if (s1 >= 0) {
        close(s1);
    }
    if (s2 >= 0) {
        close(s2);
    }
    log_free(al);
}

/* ----------------------------------------------------- mixed order */

enum { MIX_N = 240, BIG = 40000 };

typedef struct {
    aranya_quic_t ep;
    int sfd;
    const char *to;
    const uint8_t *tid;
    uint64_t last_id;
    size_t extra[2][MIX_N + 8]; /* [channel 0 / sync 1][seq]: what make_msg added */
    int next[2];
} mixer;

static size_t mix_extra(int kind, int seq, int big) {
    return big ? (size_t)BIG + (size_t)seq : (size_t)((seq * 13 + kind * 5) % 300);
}

static void mix_id(mixer *m, uint64_t id) {
    CHECK(id > m->last_id);
    m->last_id = id;
}

/* One operation of the cycle on stream kind (0: the channel, 1: the sync
 * type): the non-blocking and the blocking sends, one message or a batch,
 * interleaved on the same stream. */
static void mix_op(mixer *m, int kind, int op) {
    static uint8_t bufs[3][BIG + 1024];
    const char *tag = kind == 0 ? "c" : "s";
    aranya_quic_buf b[3];
    int32_t rc;
    uint64_t id = 0;
    int seq = m->next[kind], n, j, big = 0;
    size_t sent = 0, done = 0;
    long long deadline;

    switch (op % 7) {
    case 0:
    case 1:
    case 5: /* one message, non-blocking (sometimes a big one) */
        big = op % 7 == 5 && (op / 7) % 4 == 0;
        m->extra[kind][seq] = mix_extra(kind, seq, big);
        b[0].len = make_msg(bufs[0], sizeof bufs[0], tag, seq, m->extra[kind][seq]);
        rc = kind == 0 ? nowait_retry(m->ep, m->sfd, m->to, m->tid, "mixed", bufs[0], b[0].len, &id)
                       : sync_nowait_retry(m->ep, m->sfd, m->to, 5, bufs[0], b[0].len, &id);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        mix_id(m, id);
        m->next[kind]++;
        break;
    case 2:
    case 6: /* one message, blocking */
        m->extra[kind][seq] = mix_extra(kind, seq, 0);
        b[0].len = make_msg(bufs[0], sizeof bufs[0], tag, seq, m->extra[kind][seq]);
        rc = kind == 0 ? aranya_quic_send(m->ep, m->to, m->tid, "mixed", 5, bufs[0], b[0].len)
                       : aranya_quic_send_sync(m->ep, m->to, 5, bufs[0], b[0].len);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        m->next[kind]++;
        break;
    case 3: /* a non-blocking batch of three, the rest again after a refusal */
    case 4: /* a blocking batch of two */
        n = op % 7 == 3 ? 3 : 2;
        for (j = 0; j < n; j++) {
            m->extra[kind][seq + j] = mix_extra(kind, seq + j, 0);
            b[j].data = bufs[j];
            b[j].len = make_msg(bufs[j], sizeof bufs[j], tag, seq + j, m->extra[kind][seq + j]);
        }
        if (n == 2) {
            rc = kind == 0 ? aranya_quic_send_batch(m->ep, m->to, m->tid, "mixed", 5, b, 2, &sent)
                           : aranya_quic_send_sync_batch(m->ep, m->to, 5, b, 2, &sent);
            CHECK_RC(rc, ARANYA_QUIC_OK);
            CHECK_EQ(sent, 2);
            m->next[kind] += 2;
            break;
        }
        deadline = mono_ms() + WAIT_MS;
        while (done < 3) {
            uint64_t first = 0;
            sent = 99;
            rc = kind == 0 ? aranya_quic_send_batch_nowait(m->ep, m->to, m->tid, "mixed", 5, b + done, 3 - done,
                                                           &sent, &first)
                           : aranya_quic_send_sync_batch_nowait(m->ep, m->to, 5, b + done, 3 - done, &sent, &first);
            CHECK(sent <= 3 - done);
            if (sent > 0) {
                mix_id(m, first);
                m->last_id = first + sent - 1;
            }
            done += sent;
            if (rc == ARANYA_QUIC_OK) {
                CHECK_EQ(done, 3);
                break;
            }
            CHECK_RC(rc, ARANYA_QUIC_ERR_WOULD_BLOCK);
            if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK || mono_ms() > deadline ||
                wait_readable(m->sfd, WAIT_MS) != 1) {
                count_check();
                report_failure(__FILE__, __LINE__, "batch_nowait never took all three (%zu)", done);
                break;
            }
        }
        m->next[kind] += 3;
        break;
    }
}

/* Per-channel order holds when the non-blocking and the blocking sends
 * take turns on one channel, from the first message on (sent while the
 * first dial is in progress, so queued) and across big messages that the
 * queue refuses while others wait. */
static void test_order_mixed(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t buf[BIG + 1024];
    static mixer m;
    int op = 0, want[2] = {0, 0}, total = 0, ok = 1;
    event_log *al = log_new(), *bl = log_new();

    team(tid, 3);
    base_config(&cfg, &alice_id);
    cfg.max_outbound_bytes_per_peer = 16 * 1024; /* under BIG: refused while others wait */
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    memset(&m, 0, sizeof m);
    m.ep = alice;
    m.sfd = af.sfd;
    m.to = b_addr;
    m.tid = tid;
    /* The cycle starts with non-blocking sends on both streams, so the
     * blocking ones that follow must wait behind the queue. */
    while (m.next[0] < MIX_N || m.next[1] < MIX_N) {
        if (m.next[0] < MIX_N) {
            mix_op(&m, 0, op);
        }
        if (m.next[1] < MIX_N) {
            mix_op(&m, 1, op);
        }
        op++;
    }
    /* bob checks each stream's order. */
    while (ok && total < m.next[0] + m.next[1]) {
        aranya_quic_channel ch;
        size_t len = 0;
        int32_t rc = recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS);
        int kind, seq;
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            fprintf(stderr, "  order_mixed: got %d of %d channel, %d of %d sync messages\n", want[0], m.next[0],
                    want[1], m.next[1]);
            break;
        }
        kind = ch.kind == ARANYA_QUIC_KIND_SYNC ? 1 : 0;
        seq = want[kind];
        count_check();
        if (!(kind == 0 ? is_channel(&ch, a_addr, tid, "mixed") : is_sync(&ch, a_addr, 5)) ||
            !msg_is(buf, len, kind == 0 ? "c" : "s", seq, m.extra[kind][seq])) {
            report_failure(__FILE__, __LINE__, "%s message %d is not the next one: seq %d, %zu bytes",
                           kind == 0 ? "channel" : "sync", seq, seq_of(buf, len, kind == 0 ? "c" : "s"), len);
            ok = 0;
        }
        want[kind]++;
        total++;
    }
    CHECK_EQ(want[0], m.next[0]);
    CHECK_EQ(want[1], m.next[1]);
    pull(alice, al);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), 0);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_PEER_CONNECTED), 1);
    if (count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED) > 0) {
        print_log("alice", al);
    }
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(al);
    log_free(bl);
}

/* ------------------------------------------------ close and shutdown */

/* close_nowait: its CLOSE_FINISHED comes with its id after the messages
 * queued before it were delivered; messages sent after it arrive after
 * them, on a new connection; a close with no connection finishes too. */
static void test_close_nowait_event(void) {
    enum { N = 50 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr), bob = new_ep(&bob_id, b_addr);
    aranya_quic_t carol = new_ep(&carol_id, c_addr);
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t buf[2048];
    uint64_t id = 0, cid = 0, cid2 = 0, last = 0;
    int i;
    long at, c1, d1, c2;
    event_log *al = log_new(), *bl = log_new();
    aranya_quic_stats st;

    team(tid, 4);
    if (alice == 0 || bob == 0 || carol == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    for (i = 0; i < N; i++) {
        size_t len = make_msg(buf, sizeof buf, "close", i, (size_t)(i * 11));
        CHECK_RC(nowait_retry(alice, af.sfd, b_addr, tid, "close", buf, len, &id), ARANYA_QUIC_OK);
        CHECK(id > last);
        last = id;
    }
    CHECK_RC(aranya_quic_close_nowait(alice, b_addr, &cid), ARANYA_QUIC_OK);
    CHECK(cid != 0);
    for (i = N; i < 2 * N; i++) {
        size_t len = make_msg(buf, sizeof buf, "close", i, (size_t)(i * 11));
        CHECK_RC(nowait_retry(alice, af.sfd, b_addr, tid, "close", buf, len, &id), ARANYA_QUIC_OK);
    }
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_CLOSE_FINISHED, cid, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(al->ev[at].addr, b_addr) == 0);
        CHECK_EQ(al->ev[at].unconfirmed, 0);
    }
    for (i = 0; i < 2 * N; i++) {
        aranya_quic_channel ch;
        size_t len = 0;
        int32_t rc = recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        count_check();
        if (!is_channel(&ch, a_addr, tid, "close") || !msg_is(buf, len, "close", i, (size_t)(i * 11))) {
            report_failure(__FILE__, __LINE__, "message %d is not the next one: seq %d", i, seq_of(buf, len, "close"));
            break;
        }
    }
    /* alice saw the connection come, go with the close, and come again
     * for the messages after it. */
    CHECK(await_count(alice, af.efd, al, ARANYA_QUIC_EVENT_PEER_CONNECTED, 2, "alice"));
    c1 = find_event(al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0);
    d1 = find_event(al, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0);
    c2 = c1 >= 0 ? find_event(al, (size_t)c1 + 1, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0) : -1;
    CHECK(c1 >= 0 && d1 > c1 && c2 > d1);
    if (d1 >= 0) {
        CHECK_RC(al->ev[d1].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(al->ev[d1].addr, b_addr) == 0);
        CHECK_EQ(al->ev[d1].unconfirmed, 0);
    }
    if (!(c1 >= 0 && d1 > c1 && c2 > d1)) {
        print_log("alice", al);
    }

    /* No connection to carol: the close finishes all the same. */
    CHECK_RC(aranya_quic_close_nowait(alice, c_addr, &cid2), ARANYA_QUIC_OK);
    CHECK(cid2 != 0 && cid2 != cid);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_CLOSE_FINISHED, cid2, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(al->ev[at].addr, c_addr) == 0);
        CHECK_EQ(al->ev[at].unconfirmed, 0);
    }
    /* A NULL out_id is allowed. */
    CHECK_RC(aranya_quic_close_nowait(alice, c_addr, NULL), ARANYA_QUIC_OK);
    CHECK(await_count(alice, af.efd, al, ARANYA_QUIC_EVENT_CLOSE_FINISHED, 3, "alice"));
    pull(alice, al);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), 0);
    stats_of(alice, &st);
    CHECK_EQ(st.messages_sent, 2 * N);
    CHECK_EQ(st.outbound_messages, 0);
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    log_free(al);
    log_free(bl);
}

/* shutdown: queued messages are handed over first, sends are CLOSED from
 * the call on, the receive queue and the events stay readable, the
 * SHUTDOWN_FINISHED event (the last) carries the id, free then returns OK. */
static void test_shutdown_event(void) {
    enum { N = 100 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], hole[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob, carol;
    ep_fds af, bf, cf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t buf[2048];
    uint64_t id = 0, sid = 0, again = 0, ids[3];
    int i, sock;
    long at;
    size_t sent = 99;
    aranya_quic_buf one[1];
    aranya_quic_channel ch;
    size_t len;
    event_log *al = log_new(), *bl = log_new(), *cl = log_new();

    team(tid, 5);
    /* bob reads nothing until alice's shutdown was checked: with his queue
     * full, alice's drain cannot finish before that (the receive queue is
     * readable only until it does). */
    base_config(&cfg, &alice_id);
    cfg.drain_timeout_ms = 60000;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    cfg.max_queue_messages = 2;
    bob = open_ep(&cfg, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    /* A message for alice that she reads only after her shutdown. */
    CHECK_RC(aranya_quic_send(bob, a_addr, tid, "down", 4, (const uint8_t *)"before", 6), ARANYA_QUIC_OK);
    CHECK_EQ(wait_readable(af.rfd, WAIT_MS), 1);
    for (i = 0; i < N; i++) {
        size_t ml = make_msg(buf, sizeof buf, "down", i, (size_t)(i * 17));
        CHECK_RC(nowait_retry(alice, af.sfd, b_addr, tid, "down", buf, ml, &id), ARANYA_QUIC_OK);
    }
    CHECK_RC(aranya_quic_shutdown(alice, &sid), ARANYA_QUIC_OK);
    CHECK(sid != 0);
    CHECK_RC(aranya_quic_shutdown(alice, &again), ARANYA_QUIC_OK);
    CHECK_EQ(again, sid);
    CHECK_RC(aranya_quic_shutdown(alice, NULL), ARANYA_QUIC_OK);
    /* Sends are CLOSED from the call on. */
    one[0].data = buf;
    one[0].len = 3;
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "down", 4, buf, 3, &id), ARANYA_QUIC_ERR_CLOSED);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, b_addr, 1, buf, 3, &id), ARANYA_QUIC_ERR_CLOSED);
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "down", 4, one, 1, &sent, &id), ARANYA_QUIC_ERR_CLOSED);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, b_addr, 1, one, 1, &sent, &id), ARANYA_QUIC_ERR_CLOSED);
    CHECK_EQ(sent, 0);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "down", 4, buf, 3), ARANYA_QUIC_ERR_CLOSED);
    CHECK_RC(aranya_quic_send_sync(alice, b_addr, 1, buf, 3), ARANYA_QUIC_ERR_CLOSED);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch(alice, b_addr, tid, "down", 4, one, 1, &sent), ARANYA_QUIC_ERR_CLOSED);
    CHECK_EQ(sent, 0);
    CHECK_RC(aranya_quic_close_nowait(alice, b_addr, &id), ARANYA_QUIC_ERR_CLOSED);
    /* The receive queue stays readable while the drain goes on. */
    CHECK_RC(aranya_quic_receive(alice, buf, sizeof buf, &ch, &len), ARANYA_QUIC_OK);
    CHECK(len == 6 && memcmp(buf, "before", 6) == 0);
    CHECK(is_channel(&ch, b_addr, tid, "down"));

    /* bob got every message alice had queued before her shutdown. */
    for (i = 0; i < N; i++) {
        int32_t rc = recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            fprintf(stderr, "  shutdown_event: bob got %d of %d\n", i, N);
            break;
        }
        count_check();
        if (!is_channel(&ch, a_addr, tid, "down") || !msg_is(buf, len, "down", i, (size_t)(i * 17))) {
            report_failure(__FILE__, __LINE__, "message %d is not the next one: seq %d", i, seq_of(buf, len, "down"));
            break;
        }
    }
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, sid, "alice");
    if (at >= 0) {
        aranya_quic_event e;
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK_EQ(al->ev[at].unconfirmed, 0);
        pull(alice, al);
        CHECK_EQ(al->n, (size_t)at + 1); /* the last event */
        CHECK_RC(take_event(alice, &e), ARANYA_QUIC_ERR_WOULD_BLOCK);
    }
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), 0);
    /* After it: shutdown still answers with the first id, sends are
     * still CLOSED, and free returns OK. */
    CHECK_RC(aranya_quic_shutdown(alice, &again), ARANYA_QUIC_OK);
    CHECK_EQ(again, sid);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "down", 4, buf, 3, &id), ARANYA_QUIC_ERR_CLOSED);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "down", 4, buf, 3), ARANYA_QUIC_ERR_CLOSED);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_shutdown(alice, &again), ARANYA_QUIC_ERR_INVALID_HANDLE);

    /* bob saw alice go, gracefully. */
    at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "bob");
    if (at >= 0) {
        CHECK_RC(bl->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(bl->ev[at].addr, a_addr) == 0);
    }
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");

    /* Messages that cannot be handed over get their SEND_FAILED before
     * the SHUTDOWN_FINISHED; nothing was accepted, so nothing is
     * unconfirmed. */
    sock = blackhole(hole);
    base_config(&cfg, &carol_id);
    cfg.connect_timeout_ms = 500;
    cfg.drain_timeout_ms = 5000;
    carol = open_ep(&cfg, a_addr);
    if (carol != 0 && sock >= 0) {
        cf = fds_of(carol);
        for (i = 0; i < 3; i++) {
            CHECK_RC(aranya_quic_send_nowait(carol, hole, tid, "hole", 4, (const uint8_t *)"x", 1, &ids[i]),
                     ARANYA_QUIC_OK);
        }
        CHECK_RC(aranya_quic_shutdown(carol, &sid), ARANYA_QUIC_OK);
        at = await_event(carol, cf.efd, cl, 0, ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED, sid, "carol");
        if (at >= 0) {
            pull(carol, cl);
            CHECK_EQ(cl->n, (size_t)at + 1);
            CHECK_RC(cl->ev[at].error_code, ARANYA_QUIC_OK);
            for (i = 0; i < 3; i++) {
                long f = find_event(cl, 0, ARANYA_QUIC_EVENT_SEND_FAILED, ids[i]);
                CHECK(f >= 0 && f < at);
                if (f >= 0) {
                    CHECK(cl->ev[f].error_code < 0);
                    CHECK(strcmp(cl->ev[f].addr, hole) == 0);
                }
            }
        }
        CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    }
    if (sock >= 0) {
        close(sock);
    }
    log_free(al);
    log_free(bl);
    log_free(cl);
}

/* free_nowait returns at once and the endpoint still hands over what was
 * queued, in the background; the handle is gone at once. */
static void test_free_nowait_delivers(void) {
    enum { N = 100 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr), bob = new_ep(&bob_id, b_addr);
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    static uint8_t buf[2048];
    uint64_t id;
    int i;
    aranya_quic_channel ch;
    size_t len;
    event_log *bl = log_new();

    team(tid, 6);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    for (i = 0; i < N; i++) {
        size_t ml = make_msg(buf, sizeof buf, "bg", i, (size_t)(i * 5));
        CHECK_RC(nowait_retry(alice, af.sfd, b_addr, tid, "bg", buf, ml, &id), ARANYA_QUIC_OK);
    }
    CHECK_RC(aranya_quic_free_nowait(alice), ARANYA_QUIC_OK);
    /* The fds are closed before it returns. */
    errno = 0;
    CHECK(fcntl(af.rfd, F_GETFD) == -1 && errno == EBADF);
    errno = 0;
    CHECK(fcntl(af.sfd, F_GETFD) == -1 && errno == EBADF);
    errno = 0;
    CHECK(fcntl(af.efd, F_GETFD) == -1 && errno == EBADF);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "bg", 2, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_free_nowait(alice), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
    for (i = 0; i < N; i++) {
        int32_t rc = recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            fprintf(stderr, "  free_nowait_delivers: bob got %d of %d\n", i, N);
            break;
        }
        count_check();
        if (!is_channel(&ch, a_addr, tid, "bg") || !msg_is(buf, len, "bg", i, (size_t)(i * 5))) {
            report_failure(__FILE__, __LINE__, "message %d is not the next one: seq %d", i, seq_of(buf, len, "bg"));
            break;
        }
    }
    /* alice's endpoint closes its connection gracefully behind the scenes. */
    {
        long at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "bob");
        if (at >= 0) {
            CHECK_RC(bl->ev[at].error_code, ARANYA_QUIC_OK);
        }
    }
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(bl);
}

/* ------------------------------------------------------ peer events */

/* learn_ids: alice and bob exchange one message each, which tells each
 * the other's peer id. */
static void learn_ids(aranya_quic_t alice, const char *a_addr, int a_rfd, aranya_quic_t bob, const char *b_addr,
                      int b_rfd, uint8_t alice_pid[ARANYA_QUIC_PEER_ID_LEN],
                      uint8_t bob_pid[ARANYA_QUIC_PEER_ID_LEN]) {
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0}, buf[16];
    aranya_quic_channel ch;
    size_t len;
    memset(alice_pid, 0, ARANYA_QUIC_PEER_ID_LEN);
    memset(bob_pid, 0, ARANYA_QUIC_PEER_ID_LEN);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "id", 2, (const uint8_t *)"a", 1), ARANYA_QUIC_OK);
    if (recv_on_fd(bob, b_rfd, buf, sizeof buf, &ch, &len, WAIT_MS) == ARANYA_QUIC_OK) {
        memcpy(alice_pid, ch.peer_id, ARANYA_QUIC_PEER_ID_LEN);
    }
    CHECK_RC(aranya_quic_send(bob, a_addr, tid, "id", 2, (const uint8_t *)"b", 1), ARANYA_QUIC_OK);
    if (recv_on_fd(alice, a_rfd, buf, sizeof buf, &ch, &len, WAIT_MS) == ARANYA_QUIC_OK) {
        memcpy(bob_pid, ch.peer_id, ARANYA_QUIC_PEER_ID_LEN);
    }
}

/* PEER_CONNECTED once per peer with its address and id; PEER_DISCONNECTED
 * on a close (code OK on both sides) and on an idle timeout (CONNECTION). */
static void test_peer_events(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice = new_ep(&alice_id, a_addr), bob = new_ep(&bob_id, b_addr);
    ep_fds af, bf;
    uint8_t apid[ARANYA_QUIC_PEER_ID_LEN], bpid[ARANYA_QUIC_PEER_ID_LEN], tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    long at;
    int i;
    event_log *al = log_new(), *bl = log_new();

    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    learn_ids(alice, a_addr, af.rfd, bob, b_addr, bf.rfd, apid, bpid);
    for (i = 0; i < 5; i++) { /* more traffic on the same connection: no more events */
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "more", 4, (const uint8_t *)"m", 1), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_send(bob, a_addr, tid, "more", 4, (const uint8_t *)"m", 1), ARANYA_QUIC_OK);
    }
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0, "alice");
    if (at >= 0) {
        CHECK(strcmp(al->ev[at].addr, b_addr) == 0);
        CHECK(memcmp(al->ev[at].peer_id, bpid, sizeof bpid) == 0);
    }
    at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0, "bob");
    if (at >= 0) {
        CHECK(strcmp(bl->ev[at].addr, a_addr) == 0);
        CHECK(memcmp(bl->ev[at].peer_id, apid, sizeof apid) == 0);
    }
    pull(alice, al);
    pull(bob, bl);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_PEER_CONNECTED), 1);
    CHECK_EQ(count_events(bl, ARANYA_QUIC_EVENT_PEER_CONNECTED), 1);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_PEER_DISCONNECTED), 0);

    /* A graceful close: both sides report it with code OK. */
    CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_OK);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(al->ev[at].addr, b_addr) == 0);
        CHECK(memcmp(al->ev[at].peer_id, bpid, sizeof bpid) == 0);
        CHECK_EQ(al->ev[at].unconfirmed, 0);
    }
    at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "bob");
    if (at >= 0) {
        CHECK_RC(bl->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(bl->ev[at].addr, a_addr) == 0);
        CHECK(memcmp(bl->ev[at].peer_id, apid, sizeof apid) == 0);
        CHECK_EQ(bl->ev[at].unconfirmed, 0);
    }
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(al);
    log_free(bl);

    /* An idle timeout (no keep-alives on either side): a lost connection,
     * CONNECTION on both sides. */
    al = log_new();
    bl = log_new();
    base_config(&cfg, &alice_id);
    cfg.idle_timeout_ms = 500;
    cfg.keep_alive_ms = ARANYA_QUIC_DISABLED;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    cfg.idle_timeout_ms = 500;
    cfg.keep_alive_ms = ARANYA_QUIC_DISABLED;
    bob = open_ep(&cfg, b_addr);
    if (alice != 0 && bob != 0) {
        af = fds_of(alice);
        bf = fds_of(bob);
        learn_ids(alice, a_addr, af.rfd, bob, b_addr, bf.rfd, apid, bpid);
        at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "alice (idle)");
        if (at >= 0) {
            CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_ERR_CONNECTION);
            CHECK(strcmp(al->ev[at].addr, b_addr) == 0);
            CHECK(memcmp(al->ev[at].peer_id, bpid, sizeof bpid) == 0);
            CHECK(al->ev[at].reason[0] != '\0');
            CHECK(find_event(al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0) >= 0 &&
                  find_event(al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0) < at);
        }
        at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "bob (idle)");
        if (at >= 0) {
            CHECK_RC(bl->ev[at].error_code, ARANYA_QUIC_ERR_CONNECTION);
            CHECK(strcmp(bl->ev[at].addr, a_addr) == 0);
        }
        {
            aranya_quic_stats st;
            stats_of(alice, &st);
            CHECK(st.connections_lost >= 1);
        }
        shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
        shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    }
    log_free(al);
    log_free(bl);
}

/* HANDSHAKE_REJECTED, with TLS and the peer's address, on the side that
 * rejects a certificate and on the side whose certificate is rejected;
 * a send_nowait that meets the rejection fails with TLS. */
static void test_handshake_rejected(void) {
    char b_addr[ARANYA_QUIC_ADDR_MAX], s_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t stranger = new_ep(&stranger_id, s_addr); /* trusts bob's CA; bob does not trust it */
    ep_fds bf, sf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    uint64_t id = 0;
    long at;
    event_log *bl = log_new(), *sl = log_new();

    if (bob == 0 || stranger == 0) {
        return;
    }
    bf = fds_of(bob);
    sf = fds_of(stranger);
    /* stranger dials bob: bob rejects the certificate. */
    CHECK_RC(aranya_quic_send(stranger, b_addr, tid, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
    at = await_event(bob, bf.efd, bl, 0, ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED, 0, "bob");
    if (at >= 0) {
        CHECK_RC(bl->ev[at].error_code, ARANYA_QUIC_ERR_TLS);
        CHECK(strcmp(bl->ev[at].addr, s_addr) == 0);
        CHECK(bl->ev[at].reason[0] != '\0');
    }
    at = await_event(stranger, sf.efd, sl, 0, ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED, 0, "stranger");
    if (at >= 0) {
        CHECK_RC(sl->ev[at].error_code, ARANYA_QUIC_ERR_TLS);
        CHECK(strcmp(sl->ev[at].addr, b_addr) == 0);
        CHECK(sl->ev[at].reason[0] != '\0');
    }
    /* The same through send_nowait: SEND_FAILED with TLS. */
    CHECK_RC(aranya_quic_send_nowait(stranger, b_addr, tid, "x", 1, (const uint8_t *)"hi", 2, &id), ARANYA_QUIC_OK);
    at = await_event(stranger, sf.efd, sl, 0, ARANYA_QUIC_EVENT_SEND_FAILED, id, "stranger");
    if (at >= 0) {
        CHECK_RC(sl->ev[at].error_code, ARANYA_QUIC_ERR_TLS);
        CHECK(strcmp(sl->ev[at].addr, b_addr) == 0);
    }
    /* bob dials the stranger: bob rejects its certificate again. */
    {
        size_t before = count_events(bl, ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED);
        CHECK_RC(aranya_quic_send(bob, s_addr, tid, "x", 1, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
        if (await_count(bob, bf.efd, bl, ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED, before + 1, "bob")) {
            long last = -1, i;
            for (i = 0; i < (long)bl->n; i++) {
                if (bl->ev[i].type == ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED) {
                    last = i;
                }
            }
            CHECK(last >= 0 && strcmp(bl->ev[last].addr, s_addr) == 0);
            CHECK(last >= 0 && bl->ev[last].error_code == ARANYA_QUIC_ERR_TLS);
        }
    }
    pull(bob, bl);
    pull(stranger, sl);
    CHECK_EQ(count_events(bl, ARANYA_QUIC_EVENT_PEER_CONNECTED), 0);
    CHECK_EQ(count_events(sl, ARANYA_QUIC_EVENT_PEER_CONNECTED), 0);
    shutdown_and_free(stranger, sf.efd, sl, ARANYA_QUIC_OK, "stranger");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(bl);
    log_free(sl);
}

/* ---------------------------------------------------------- host names */

/* "localhost:port" works for the blocking and non-blocking sends and
 * closes; what is received carries the IP address; a name that does not
 * resolve is ERR_RESOLVE (naming the host) or a SEND_FAILED with it; an
 * address longer than ARANYA_QUIC_PEER_ADDR_MAX is BAD_ADDRESS. */
static void test_host_names(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], by_name[ARANYA_QUIC_PEER_ADDR_MAX];
    char too_long[ARANYA_QUIC_PEER_ADDR_MAX + 16], long_name[ARANYA_QUIC_PEER_ADDR_MAX + 16];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t buf[256];
    aranya_quic_channel ch;
    aranya_quic_stats st;
    aranya_quic_buf one[1];
    size_t len, sent;
    uint64_t id = 0, cid = 0, first = 0;
    long at;
    event_log *al = log_new(), *bl = log_new();
    static const char *bad[] = {"localhost", "localhost:0", "localhost:99999", "localhost:080", "localhost:",
                                ":4433"};
    size_t i;

    team(tid, 7);
    base_config(&cfg, &alice_id);
    cfg.resolve_timeout_ms = 3000;
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    snprintf(by_name, sizeof by_name, "localhost:%s", port_of(b_addr));

    /* send_nowait by name: bob sees alice's IP address. */
    CHECK_RC(aranya_quic_send_nowait(alice, by_name, tid, "name", 4, (const uint8_t *)"n1", 2, &id), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "n1", 2) == 0);
    CHECK(is_channel(&ch, a_addr, tid, "name"));
    /* The blocking send by name and by IP use the same connection. */
    CHECK_RC(aranya_quic_send(alice, by_name, tid, "name", 4, (const uint8_t *)"n2", 2), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(alice, b_addr, tid, "name", 4, (const uint8_t *)"n3", 2), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, by_name, 9, (const uint8_t *)"n4", 2, &id), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "n2", 2) == 0);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "n3", 2) == 0);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "n4", 2) == 0);
    CHECK(is_sync(&ch, a_addr, 9));
    /* bob's reply reaches alice from bob's IP address, not the name. */
    CHECK_RC(aranya_quic_send(bob, ch.addr, tid, "name", 4, (const uint8_t *)"r", 1), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(alice, af.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(strcmp(ch.addr, b_addr) == 0);
    stats_of(alice, &st);
    CHECK_EQ(st.dials, 1);
    CHECK_EQ(st.open_connections, 1);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_PEER_CONNECTED, 0, "alice");
    if (at >= 0) {
        CHECK(strcmp(al->ev[at].addr, b_addr) == 0); /* the IP address */
    }
    /* close_nowait by name: the event gives the name as given. */
    CHECK_RC(aranya_quic_close_nowait(alice, by_name, &cid), ARANYA_QUIC_OK);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_CLOSE_FINISHED, cid, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_OK);
        CHECK(strcmp(al->ev[at].addr, by_name) == 0);
    }
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_PEER_DISCONNECTED, 0, "alice");
    if (at >= 0) {
        CHECK(strcmp(al->ev[at].addr, b_addr) == 0);
    }
    /* The blocking close by name too. */
    CHECK_RC(aranya_quic_send(alice, by_name, tid, "name", 4, (const uint8_t *)"n5", 2), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_close(alice, by_name), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "n5", 2) == 0);

    /* A name that does not resolve. */
    CHECK(strcmp(aranya_quic_strerror(ARANYA_QUIC_ERR_RESOLVE), "unknown error code") != 0);
    CHECK_RC(aranya_quic_send(alice, NO_SUCH_HOST ":4433", tid, "name", 4, (const uint8_t *)"x", 1),
             ARANYA_QUIC_ERR_RESOLVE);
    CHECK(strstr(aranya_quic_last_error(), NO_SUCH_HOST) != NULL);
    CHECK_RC(aranya_quic_send_sync(alice, NO_SUCH_HOST ":4433", 1, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_RESOLVE);
    CHECK(strstr(aranya_quic_last_error(), NO_SUCH_HOST) != NULL);
    one[0].data = (const uint8_t *)"x";
    one[0].len = 1;
    sent = 99;
    CHECK_RC(aranya_quic_send_batch(alice, NO_SUCH_HOST ":4433", tid, "name", 4, one, 1, &sent),
             ARANYA_QUIC_ERR_RESOLVE);
    CHECK_EQ(sent, 0);
    CHECK_RC(aranya_quic_send_nowait(alice, NO_SUCH_HOST ":4433", tid, "name", 4, (const uint8_t *)"x", 1, &id),
             ARANYA_QUIC_OK);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_SEND_FAILED, id, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_ERR_RESOLVE);
        CHECK(strcmp(al->ev[at].addr, NO_SUCH_HOST ":4433") == 0);
        CHECK(al->ev[at].channel.addr[0] == '\0'); /* resolution never got that far */
        CHECK_EQ(al->ev[at].channel.kind, ARANYA_QUIC_KIND_CHANNEL);
        CHECK(al->ev[at].channel.label_len == 4 && memcmp(al->ev[at].channel.label, "name", 5) == 0);
        CHECK(memcmp(al->ev[at].channel.team_id, tid, sizeof tid) == 0);
    }
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, NO_SUCH_HOST ":4433", 3, one, 1, &sent, &first),
             ARANYA_QUIC_OK);
    CHECK_EQ(sent, 1);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_SEND_FAILED, first, "alice");
    if (at >= 0) {
        CHECK_RC(al->ev[at].error_code, ARANYA_QUIC_ERR_RESOLVE);
        CHECK_EQ(al->ev[at].channel.kind, ARANYA_QUIC_KIND_SYNC);
        CHECK_EQ(al->ev[at].channel.sync_type, 3);
    }
    /* A close to it finishes (with whatever code the header allows). */
    CHECK_RC(aranya_quic_close_nowait(alice, NO_SUCH_HOST ":4433", &cid), ARANYA_QUIC_OK);
    at = await_event(alice, af.efd, al, 0, ARANYA_QUIC_EVENT_CLOSE_FINISHED, cid, "alice");
    if (at >= 0) {
        CHECK(strcmp(al->ev[at].addr, NO_SUCH_HOST ":4433") == 0);
    }
    stats_of(alice, &st);
    CHECK_EQ(st.sends_failed, 2);

    /* Malformed names and ports. */
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t rc = aranya_quic_send_nowait(alice, bad[i], tid, "name", 4, (const uint8_t *)"x", 1, &id);
        count_check();
        if (rc != ARANYA_QUIC_ERR_BAD_ADDRESS) {
            report_failure(__FILE__, __LINE__, "send_nowait to \"%s\" returned %d, want BAD_ADDRESS", bad[i], (int)rc);
        }
        CHECK_RC(aranya_quic_close_nowait(alice, bad[i], &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    }
    /* No NUL within ARANYA_QUIC_PEER_ADDR_MAX bytes. */
    memset(too_long, 'a', sizeof too_long);
    CHECK_RC(aranya_quic_send(alice, too_long, tid, "name", 4, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_send_nowait(alice, too_long, tid, "name", 4, (const uint8_t *)"x", 1, &id),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, too_long, 1, (const uint8_t *)"x", 1, &id),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, too_long, tid, "name", 4, one, 1, &sent, &first),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_EQ(sent, 0);
    CHECK_RC(aranya_quic_close_nowait(alice, too_long, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_close(alice, too_long), ARANYA_QUIC_ERR_BAD_ADDRESS);
    /* NUL-terminated, but longer than the limit allows. */
    memset(long_name, 'a', sizeof long_name);
    memcpy(long_name + ARANYA_QUIC_PEER_ADDR_MAX - 5, ":4433", 6);
    CHECK_EQ(strlen(long_name), ARANYA_QUIC_PEER_ADDR_MAX);
    CHECK_RC(aranya_quic_send_nowait(alice, long_name, tid, "name", 4, (const uint8_t *)"x", 1, &id),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    pull(alice, al);
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(al);
    log_free(bl);
}

/* One channel named two ways, "localhost:port" and "127.0.0.1:port",
 * is one connection and one stream: once the name's answer is cached,
 * its messages keep the order of the calls that accepted them, also while
 * the first ones wait for the connection. (Before the first resolution the
 * header promises no order between the two forms.) */
static void test_order_name_and_ip(void) {
    enum { N = 60 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], by_name[ARANYA_QUIC_PEER_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr), bob = new_ep(&bob_id, b_addr);
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint8_t buf[512];
    aranya_quic_channel ch;
    size_t len;
    uint64_t id;
    int i;
    event_log *al = log_new(), *bl = log_new();

    team(tid, 10);
    if (alice == 0 || bob == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    snprintf(by_name, sizeof by_name, "localhost:%s", port_of(b_addr));
    /* Resolve the name once, on another channel; then close the
     * connection, so the messages below wait for a new one. */
    CHECK_RC(aranya_quic_send_sync(alice, by_name, 77, buf, 1), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_close(alice, b_addr), ARANYA_QUIC_OK);
    for (i = 0; i < N; i++) {
        const char *to = (i / 3) % 2 == 0 ? by_name : b_addr;
        size_t ml = make_msg(buf, sizeof buf, "two", i, (size_t)(i * 3));
        if (i % 7 == 6) {
            CHECK_RC(aranya_quic_send(alice, to, tid, "two", 3, buf, ml), ARANYA_QUIC_OK);
        } else {
            CHECK_RC(nowait_retry(alice, af.sfd, to, tid, "two", buf, ml, &id), ARANYA_QUIC_OK);
        }
    }
    for (i = 0; i < N; i++) {
        int32_t rc = recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        count_check();
        if (!is_channel(&ch, a_addr, tid, "two") || !msg_is(buf, len, "two", i, (size_t)(i * 3))) {
            report_failure(__FILE__, __LINE__, "message %d is not the next one: seq %d (sent to %s)", i,
                           seq_of(buf, len, "two"), (i / 3) % 2 == 0 ? "the name" : "the IP address");
            break;
        }
    }
    pull(alice, al);
    CHECK(count_events(al, ARANYA_QUIC_EVENT_PEER_CONNECTED) >= 1);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), 0);
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    log_free(al);
    log_free(bl);
}

/* ------------------------------------------------------ log callback */

enum { LOG_KEEP = 512 };

typedef struct {
    pthread_mutex_t mu;
    int n;
    int freed; /* set once aranya_quic_free returned: no call may follow */
    uint32_t levels[LOG_KEEP];
    char *texts[LOG_KEEP];
} log_sink;

static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        size_t k, more;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
        } else {
            return 0;
        }
        for (k = 1; k <= more; k++) {
            if (i + k >= n || (s[i + k] & 0xC0) != 0x80) {
                return 0;
            }
        }
        i += more + 1;
    }
    return 1;
}

/* LCHECK: CHECK for the log callback, which stays out of the library
 * (no last_error) while the engine waits for it. */
#define LCHECK(cond)                                                                      \
    do {                                                                                  \
        count_check();                                                                    \
        if (!(cond)) {                                                                    \
            report_failure(__FILE__, __LINE__, "log callback: %s", #cond);                \
        }                                                                                 \
    } while (0)

static void log_record(void *user, uint32_t level, const char *msg, size_t len) {
    log_sink *s = user;
    LCHECK(msg != NULL);
    if (msg == NULL) {
        return;
    }
    LCHECK(level >= ARANYA_QUIC_LOG_ERROR && level <= ARANYA_QUIC_LOG_DEBUG);
    LCHECK(msg[len] == '\0');
    LCHECK(memchr(msg, '\0', len) == NULL);
    LCHECK(valid_utf8((const unsigned char *)msg, len));
    pthread_mutex_lock(&s->mu);
    LCHECK(!s->freed);
    if (s->n < LOG_KEEP) {
        s->levels[s->n] = level;
        s->texts[s->n] = malloc(len + 1);
        if (s->texts[s->n] != NULL) {
            memcpy(s->texts[s->n], msg, len + 1);
        }
    }
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

/* sink_find: whether a record at level (any level when 0) holding needle
 * (anything when NULL) came, at index from or later. */
static int sink_find(log_sink *s, int from, uint32_t level, const char *needle) {
    int i, found = 0;
    pthread_mutex_lock(&s->mu);
    for (i = from; i < s->n && i < LOG_KEEP && !found; i++) {
        found = (level == 0 || s->levels[i] == level) && s->texts[i] != NULL &&
                (needle == NULL || strstr(s->texts[i], needle) != NULL);
    }
    pthread_mutex_unlock(&s->mu);
    return found;
}

static int sink_wait(log_sink *s, int from, uint32_t level, const char *needle) {
    long long deadline = mono_ms() + WAIT_MS;
    while (!sink_find(s, from, level, needle)) {
        if (mono_ms() > deadline) {
            return 0;
        }
        sleep_ms(10);
    }
    return 1;
}

static int sink_count(log_sink *s) {
    int n;
    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static uint32_t sink_max_level(log_sink *s) {
    int i;
    uint32_t m = 0;
    pthread_mutex_lock(&s->mu);
    for (i = 0; i < s->n && i < LOG_KEEP; i++) {
        if (s->levels[i] > m) {
            m = s->levels[i];
        }
    }
    pthread_mutex_unlock(&s->mu);
    return m;
}

static void sink_dump(log_sink *s, const char *who) {
    int i;
    pthread_mutex_lock(&s->mu);
    fprintf(stderr, "  log records of %s (%d):\n", who, s->n);
    for (i = 0; i < s->n && i < LOG_KEEP; i++) {
        fprintf(stderr, "    [%u] %s\n", (unsigned)s->levels[i], s->texts[i] ? s->texts[i] : "(null)");
    }
    pthread_mutex_unlock(&s->mu);
}

static void sink_clear(log_sink *s) {
    int i;
    for (i = 0; i < s->n && i < LOG_KEEP; i++) {
        free(s->texts[i]);
        s->texts[i] = NULL;
    }
    s->n = 0;
    s->freed = 0;
}

/* What fd (stdout or stderr) receives meanwhile goes to a temporary file. */
typedef struct {
    int fd, saved;
    FILE *tmp;
} capture;

static int capture_begin(capture *c, int fd) {
    fflush(stdout);
    fflush(stderr);
    c->fd = fd;
    c->tmp = tmpfile();
    c->saved = dup(fd);
    if (c->tmp == NULL || c->saved < 0 || dup2(fileno(c->tmp), fd) < 0) {
        fprintf(stderr, "capture: %s\n", strerror(errno));
        return 0;
    }
    return 1;
}

/* capture_end restores fd and returns what it received (malloc'd, NUL
 * terminated). */
static char *capture_end(capture *c, size_t *len) {
    char *out;
    long n;
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved, c->fd);
    close(c->saved);
    fflush(c->tmp);
    n = (fseek(c->tmp, 0, SEEK_END) == 0) ? ftell(c->tmp) : -1;
    if (n < 0) {
        n = 0;
    }
    rewind(c->tmp);
    out = malloc((size_t)n + 1);
    if (out == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    *len = fread(out, 1, (size_t)n, c->tmp);
    out[*len] = '\0';
    fclose(c->tmp);
    return out;
}

/* The log callback: records come with their levels (INFO and up by
 * default), an INFO record names the peer when a connection comes up, a
 * WARN record tells of a rejected handshake, log_level still filters, no
 * call after free returned, and nothing goes to stdout or stderr. */
/* A log callback that frees its own endpoint: aranya_quic_free is
 * refused (it would wait for the very callback it runs in), and
 * aranya_quic_free_nowait works from there. */
typedef struct {
    pthread_mutex_t mu;
    aranya_quic_t ep;
    int tried;
    int32_t free_rc, free_nowait_rc;
} self_freeing;

static void log_frees_itself(void *user, uint32_t level, const char *msg, size_t len) {
    self_freeing *f = user;
    aranya_quic_t ep;
    (void)level;
    (void)msg;
    (void)len;
    pthread_mutex_lock(&f->mu);
    ep = f->ep;
    if (ep == 0 || f->tried) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    f->tried = 1;
    pthread_mutex_unlock(&f->mu);
    f->free_rc = aranya_quic_free(ep);
    f->free_nowait_rc = aranya_quic_free_nowait(ep);
}

static void test_log_callback_frees_itself(void) {
    static self_freeing f = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0};
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0};
    int i, tried = 0;

    base_config(&cfg, &alice_id);
    cfg.log_callback = log_frees_itself;
    cfg.log_callback_user = &f;
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    if (alice == 0 || bob == 0) {
        return;
    }
    pthread_mutex_lock(&f.mu);
    f.ep = alice;
    pthread_mutex_unlock(&f.mu);
    /* The connection's INFO record runs the callback, which frees alice
     * while this send may still be in flight: OK or CLOSED. */
    {
        int32_t rc = aranya_quic_send(alice, b_addr, tid, "self", 4, (const uint8_t *)"hi", 2);
        CHECK(rc == ARANYA_QUIC_OK || rc == ARANYA_QUIC_ERR_CLOSED);
    }
    for (i = 0; i < 1000 && !tried; i++) {
        pthread_mutex_lock(&f.mu);
        tried = f.tried;
        pthread_mutex_unlock(&f.mu);
        if (!tried) {
            sleep_ms(10);
        }
    }
    CHECK(tried);
    /* Wait for the handle to go: free_nowait ran after the refused free. */
    for (i = 0; i < 1000; i++) {
        aranya_quic_stats st;
        st.struct_size = sizeof st;
        if (aranya_quic_get_stats(alice, &st) == ARANYA_QUIC_ERR_INVALID_HANDLE) {
            break;
        }
        sleep_ms(10);
    }
    CHECK_RC(f.free_rc, ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(f.free_nowait_rc, ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK); /* already freed: harmless */
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
}

static void test_log_callback(void) {
    static log_sink a_sink = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, {0}};
    static log_sink c_sink = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, {0}};
    static log_sink d_sink = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}, {0}};
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    char s_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob, carol, stranger, dave;
    char d_addr[ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN] = {0}, buf[16];
    aranya_quic_channel ch;
    size_t len, out_len = 0, err_len = 0;
    capture out, err;
    char *out_text, *err_text, *line;
    int before, ok_out, ok_err, failed_before = checks_failed;
    int b_rfd = -1;

    ok_out = capture_begin(&out, 1);
    ok_err = capture_begin(&err, 2);

    base_config(&cfg, &alice_id);
    cfg.log_callback = log_record;
    cfg.log_callback_user = &a_sink; /* log_level 0: INFO with a callback */
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &carol_id);
    cfg.log_callback = log_record;
    cfg.log_callback_user = &c_sink;
    cfg.log_level = ARANYA_QUIC_LOG_WARN;
    carol = open_ep(&cfg, c_addr);
    bob = new_ep(&bob_id, b_addr);
    stranger = new_ep(&stranger_id, s_addr);
    if (alice != 0 && bob != 0 && carol != 0 && stranger != 0) {
        CHECK_RC(aranya_quic_receive_fd(bob, &b_rfd), ARANYA_QUIC_OK);
        /* A connection comes up: an INFO record names the peer. */
        CHECK_RC(aranya_quic_send(alice, b_addr, tid, "log", 3, (const uint8_t *)"hi", 2), ARANYA_QUIC_OK);
        CHECK_RC(recv_on_fd(bob, b_rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
        count_check();
        if (!sink_wait(&a_sink, 0, ARANYA_QUIC_LOG_INFO, b_addr)) {
            report_failure(__FILE__, __LINE__, "no INFO record names %s", b_addr);
        }
        /* A rejected handshake: a WARN record. */
        before = sink_count(&a_sink);
        CHECK_RC(aranya_quic_send(stranger, a_addr, tid, "log", 3, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
        count_check();
        if (!sink_wait(&a_sink, before, ARANYA_QUIC_LOG_WARN, NULL)) {
            report_failure(__FILE__, __LINE__, "no WARN record after a rejected handshake");
        }
        /* log_level 0 with a callback means INFO: no DEBUG records. */
        CHECK(sink_max_level(&a_sink) <= ARANYA_QUIC_LOG_INFO);

        /* carol logs at WARN: her connection's INFO record is filtered,
         * her rejection of the stranger is not. */
        CHECK_RC(aranya_quic_send(carol, b_addr, tid, "log", 3, (const uint8_t *)"hi", 2), ARANYA_QUIC_OK);
        CHECK_RC(recv_on_fd(bob, b_rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_send(stranger, c_addr, tid, "log", 3, (const uint8_t *)"hi", 2), ARANYA_QUIC_ERR_TLS);
        count_check();
        if (!sink_wait(&c_sink, 0, ARANYA_QUIC_LOG_WARN, NULL)) {
            report_failure(__FILE__, __LINE__, "carol (log_level WARN): no WARN record after a rejected handshake");
        }
        CHECK(sink_max_level(&c_sink) <= ARANYA_QUIC_LOG_WARN);

        /* No call once free returned. */
        CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
        pthread_mutex_lock(&a_sink.mu);
        a_sink.freed = 1;
        pthread_mutex_unlock(&a_sink.mu);
        pthread_mutex_lock(&c_sink.mu);
        c_sink.freed = 1;
        pthread_mutex_unlock(&c_sink.mu);
        /* The callback is kept until free_nowait returns, too: the close
         * it leaves to the background must not log through it. */
        base_config(&cfg, &alice_id);
        cfg.log_callback = log_record;
        cfg.log_callback_user = &d_sink;
        dave = open_ep(&cfg, d_addr);
        if (dave != 0) {
            CHECK_RC(aranya_quic_send(dave, b_addr, tid, "log", 3, (const uint8_t *)"hi", 2), ARANYA_QUIC_OK);
            CHECK_RC(recv_on_fd(bob, b_rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
            CHECK_RC(aranya_quic_free_nowait(dave), ARANYA_QUIC_OK);
            pthread_mutex_lock(&d_sink.mu);
            d_sink.freed = 1;
            pthread_mutex_unlock(&d_sink.mu);
        }
        /* A moment for a late call to show itself. */
        sleep_ms(300);
    }
    CHECK_RC(aranya_quic_free(bob), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free(stranger), ARANYA_QUIC_OK);

    err_text = ok_err ? capture_end(&err, &err_len) : NULL;
    out_text = ok_out ? capture_end(&out, &out_len) : NULL;
    /* Show what went to stderr (our own failure reports among it). */
    if (err_text != NULL && err_len > 0) {
        fputs(err_text, stderr);
    }
    CHECK(ok_out && ok_err);
    count_check();
    if (out_text != NULL && out_len != 0) {
        report_failure(__FILE__, __LINE__, "%zu bytes went to stdout: %.200s", out_len, out_text);
    }
    /* Apart from the failure reports of this program, nothing went to
     * stderr: the records went to the callbacks. */
    for (line = err_text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        char keep = line[ll];
        line[ll] = '\0';
        count_check();
        if (strstr(line, ": FAIL: ") == NULL && strncmp(line, "  ", 2) != 0) {
            report_failure(__FILE__, __LINE__, "the library wrote to stderr: %.200s", line);
        }
        line[ll] = keep;
        line = nl ? nl + 1 : line + ll;
    }
    if (checks_failed > failed_before) {
        sink_dump(&a_sink, "alice");
        sink_dump(&c_sink, "carol");
        sink_dump(&d_sink, "dave");
    }
    free(out_text);
    free(err_text);
    sink_clear(&a_sink);
    sink_clear(&c_sink);
    sink_clear(&d_sink);
}

/* ------------------------------------------------------- bad input */

/* Every new function's argument checks; a freed handle; next_event's
 * struct_size; the batch count limit; free_nowait twice and calls after
 * it. */
static void test_bad_input(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    char g_addr[ARANYA_QUIC_ADDR_MAX];
    char long_label[ARANYA_QUIC_LABEL_MAX + 1];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob, gone, carol;
    ep_fds af, bf;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], buf[2048];
    static uint8_t big[1001];
    aranya_quic_buf msgs[2], holes[2];
    aranya_quic_event e;
    struct {
        aranya_quic_event e;
        uint8_t after[64];
    } wide;
    aranya_quic_channel ch;
    size_t sent, len;
    uint64_t id, first, cid = 0;
    int fd;
    const aranya_quic_t never = (aranya_quic_t)0x7F5EED0000001234ull;
    event_log *al = log_new(), *bl = log_new();

    team(tid, 8);
    memset(long_label, 'x', sizeof long_label);
    base_config(&cfg, &alice_id);
    cfg.max_message_size = 1000;
    cfg.max_queue_bytes = 1000;
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    carol = new_ep(&carol_id, c_addr); /* only an address nobody sends to */
    if (alice == 0 || bob == 0 || carol == 0) {
        return;
    }
    af = fds_of(alice);
    bf = fds_of(bob);
    msgs[0].data = (const uint8_t *)"m0";
    msgs[0].len = 2;
    msgs[1].data = (const uint8_t *)"m1";
    msgs[1].len = 2;
    holes[0] = msgs[0];
    holes[1].data = NULL;
    holes[1].len = 3;

    /* send_nowait */
    CHECK_RC(aranya_quic_send_nowait(alice, NULL, tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(aranya_quic_last_error()[0] != '\0');
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, NULL, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, NULL, 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "l", 1, NULL, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, long_label, sizeof long_label, buf, 1, &id),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "\xff\xfe", 2, buf, 1, &id),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_nowait(alice, "nonsense", tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_send_nowait(alice, a_addr, tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, "l", 1, big, sizeof big, &id), ARANYA_QUIC_ERR_TOO_LARGE);
    /* The NULLs the header allows: an empty label, an empty message, no
     * out_id. */
    CHECK_RC(aranya_quic_send_nowait(alice, b_addr, tid, NULL, 0, NULL, 0, NULL), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 0 && ch.label_len == 0 && ch.kind == ARANYA_QUIC_KIND_CHANNEL);

    /* send_sync_nowait */
    CHECK_RC(aranya_quic_send_sync_nowait(alice, NULL, 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, b_addr, 1, NULL, 1, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, "1.2.3.4", 1, buf, 1, &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, b_addr, 1, big, sizeof big, &id), ARANYA_QUIC_ERR_TOO_LARGE);
    CHECK_RC(aranya_quic_send_sync_nowait(alice, b_addr, 1, NULL, 0, NULL), ARANYA_QUIC_OK);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 0 && is_sync(&ch, a_addr, 1));

    /* send_batch_nowait */
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "l", 1, msgs, 2, NULL, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "l", 1, NULL, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, NULL, tid, "l", 1, msgs, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, NULL, "l", 1, msgs, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, NULL, 1, msgs, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    /* A count over INT32_MAX is refused before any msgs[i] is read. */
    sent = 99;
    first = 0xDEADBEEF;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "l", 1, msgs, (size_t)INT32_MAX + 1, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    CHECK_EQ(first, 0xDEADBEEF);
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, b_addr, 1, msgs, (size_t)INT32_MAX + 1, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "l", 1, msgs, SIZE_MAX, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    /* Per-channel arguments are checked also when count is 0. */
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, "nonsense", tid, "l", 1, NULL, 0, &sent, &first),
             ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "\xc3", 1, NULL, 0, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    first = 0xDEADBEEF;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "l", 1, NULL, 0, &sent, &first), ARANYA_QUIC_OK);
    CHECK_EQ(sent, 0);
    CHECK_EQ(first, 0xDEADBEEF); /* written only when something was sent */
    /* A bad msgs[1] fails in its turn, after msgs[0] was accepted. */
    sent = 99;
    first = 0;
    CHECK_RC(aranya_quic_send_batch_nowait(alice, b_addr, tid, "hole", 4, holes, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 1);
    CHECK(first != 0);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "m0", 2) == 0 && is_channel(&ch, a_addr, tid, "hole"));
    holes[1].data = big;
    holes[1].len = sizeof big;
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, b_addr, 2, holes, 2, &sent, NULL), ARANYA_QUIC_ERR_TOO_LARGE);
    CHECK_EQ(sent, 1);
    CHECK_RC(recv_on_fd(bob, bf.rfd, buf, sizeof buf, &ch, &len, WAIT_MS), ARANYA_QUIC_OK);
    CHECK(len == 2 && memcmp(buf, "m0", 2) == 0 && is_sync(&ch, a_addr, 2));
    /* send_sync_batch_nowait: NULLs. */
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, b_addr, 1, msgs, 2, NULL, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, NULL, 1, msgs, 2, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);
    sent = 99;
    CHECK_RC(aranya_quic_send_sync_batch_nowait(alice, b_addr, 1, NULL, 1, &sent, &first),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(sent, 0);

    /* The fds and close_nowait. */
    CHECK_RC(aranya_quic_send_fd(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_event_fd(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_close_nowait(alice, NULL, &id), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_close_nowait(alice, "nonsense", &id), ARANYA_QUIC_ERR_BAD_ADDRESS);
    CHECK_RC(aranya_quic_close_nowait(alice, "127.0.0.1:0", &id), ARANYA_QUIC_ERR_BAD_ADDRESS);

    /* next_event: NULL, and every struct_size below the 0.2 struct. Make
     * an event wait first, to see that a refused call takes nothing. */
    pull(alice, al);
    CHECK_RC(aranya_quic_close_nowait(alice, c_addr, &cid), ARANYA_QUIC_OK);
    CHECK_EQ(wait_readable(af.efd, WAIT_MS), 1);
    CHECK_RC(aranya_quic_next_event(alice, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    {
        static const uint32_t small[] = {0, 4, 8, 24, (uint32_t)offsetof(aranya_quic_event, reason),
                                         (uint32_t)sizeof(aranya_quic_event) - 1};
        size_t i;
        for (i = 0; i < sizeof small / sizeof small[0]; i++) {
            memset(&e, 0xA5, sizeof e);
            e.struct_size = small[i];
            CHECK_RC(aranya_quic_next_event(alice, &e), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
            CHECK_EQ(e.struct_size, small[i]);
            CHECK(all_bytes((uint8_t *)&e + sizeof e.struct_size, sizeof e - sizeof e.struct_size, 0xA5));
        }
    }
    CHECK_EQ(wait_readable(af.efd, 0), 1); /* still waiting */
    /* A bigger struct (a newer header): filled up to what the library
     * knows, struct_size says how much. */
    memset(&wide, 0xA5, sizeof wide);
    wide.e.struct_size = sizeof wide;
    CHECK_RC(aranya_quic_next_event(alice, &wide.e), ARANYA_QUIC_OK);
    CHECK_EQ(wide.e.struct_size, sizeof(aranya_quic_event));
    CHECK(all_bytes(wide.after, sizeof wide.after, 0xA5));
    CHECK_EQ(wide.e.type, ARANYA_QUIC_EVENT_CLOSE_FINISHED);
    CHECK_EQ(wide.e.id, cid);

    /* The handle 0 and a number never returned. */
    e.struct_size = sizeof e;
    CHECK_RC(aranya_quic_send_nowait(0, b_addr, tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_next_event(0, &e), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_shutdown(0, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_free_nowait(0), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_free_nowait(never), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_shutdown(never, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
    CHECK_RC(aranya_quic_send_fd(never, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);

    /* A freed handle: every new call says so (free_nowait: harmless). */
    gone = new_ep(&carol_id, g_addr);
    if (gone != 0) {
        CHECK_RC(aranya_quic_free(gone), ARANYA_QUIC_OK);
        sent = 99;
        e.struct_size = sizeof e;
        fd = -7;
        CHECK_RC(aranya_quic_send_nowait(gone, b_addr, tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK(aranya_quic_last_error()[0] != '\0');
        CHECK_RC(aranya_quic_send_sync_nowait(gone, b_addr, 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_send_batch_nowait(gone, b_addr, tid, "l", 1, msgs, 2, &sent, &first),
                 ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_EQ(sent, 0);
        sent = 99;
        CHECK_RC(aranya_quic_send_sync_batch_nowait(gone, b_addr, 1, msgs, 2, &sent, &first),
                 ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_EQ(sent, 0);
        CHECK_RC(aranya_quic_send_fd(gone, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_event_fd(gone, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_EQ(fd, -7);
        CHECK_RC(aranya_quic_close_nowait(gone, b_addr, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_shutdown(gone, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_next_event(gone, &e), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_free_nowait(gone), ARANYA_QUIC_OK);
    }

    /* free_nowait twice, then every call on the handle. */
    gone = new_ep(&carol_id, g_addr);
    if (gone != 0) {
        CHECK_RC(aranya_quic_free_nowait(gone), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_free_nowait(gone), ARANYA_QUIC_OK);
        e.struct_size = sizeof e;
        sent = 99;
        CHECK_RC(aranya_quic_send_nowait(gone, b_addr, tid, "l", 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_send_sync_nowait(gone, b_addr, 1, buf, 1, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_send_batch_nowait(gone, b_addr, tid, "l", 1, msgs, 2, &sent, &first),
                 ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_send(gone, b_addr, tid, "l", 1, buf, 1), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_receive(gone, buf, sizeof buf, &ch, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_receive_fd(gone, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_send_fd(gone, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_event_fd(gone, &fd), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_close_nowait(gone, b_addr, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_close(gone, b_addr), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_shutdown(gone, &id), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_next_event(gone, &e), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_local_addr(gone, g_addr, sizeof g_addr, &len), ARANYA_QUIC_ERR_INVALID_HANDLE);
        CHECK_RC(aranya_quic_free(gone), ARANYA_QUIC_OK);
    }
    /* free_nowait after shutdown: fine too. */
    gone = new_ep(&carol_id, g_addr);
    if (gone != 0) {
        CHECK_RC(aranya_quic_shutdown(gone, NULL), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_free_nowait(gone), ARANYA_QUIC_OK);
        CHECK_RC(aranya_quic_next_event(gone, &e), ARANYA_QUIC_ERR_INVALID_HANDLE);
    }
    pull(alice, al);
    CHECK_EQ(count_events(al, ARANYA_QUIC_EVENT_SEND_FAILED), 0);
    shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
    shutdown_and_free(bob, bf.efd, bl, ARANYA_QUIC_OK, "bob");
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    log_free(al);
    log_free(bl);
}

/* ------------------------------------------------------ event overflow */

/* More events than max_events: the newest are dropped and counted, in the
 * stats and in dropped_before of the next event taken. */
static void test_event_overflow(void) {
    enum { MAXEV = 4, N = 20 };
    char a_addr[ARANYA_QUIC_ADDR_MAX], hole[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice;
    aranya_quic_stats st;
    aranya_quic_event e;
    ep_fds af;
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    uint64_t id, cid = 0, first_id = 0, last_id = 0;
    int i, sock, taken = 0;
    long long deadline;
    unsigned long long dropped_sum = 0;

    team(tid, 9);
    sock = blackhole(hole);
    base_config(&cfg, &alice_id);
    cfg.max_events = MAXEV;
    cfg.connect_timeout_ms = 500;
    alice = open_ep(&cfg, a_addr);
    if (alice == 0 || sock < 0) {
        if (sock >= 0) {
            close(sock);
        }
        return;
    }
    af = fds_of(alice);
    for (i = 0; i < N; i++) {
        CHECK_RC(aranya_quic_send_nowait(alice, hole, tid, "ov", 2, (const uint8_t *)"x", 1, &id), ARANYA_QUIC_OK);
        if (i == 0) {
            first_id = id;
        }
    }
    /* Wait until all N failed, taking no event meanwhile. */
    deadline = mono_ms() + WAIT_MS;
    do {
        stats_of(alice, &st);
        if (st.sends_failed >= N || mono_ms() > deadline) {
            break;
        }
        sleep_ms(20);
    } while (1);
    CHECK_EQ(st.sends_failed, N);
    CHECK_EQ(st.events_dropped, N - MAXEV);
    /* The MAXEV kept are the oldest, with nothing dropped before them. */
    for (i = 0; i < MAXEV; i++) {
        int32_t rc = take_event(alice, &e);
        CHECK_RC(rc, ARANYA_QUIC_OK);
        if (rc != ARANYA_QUIC_OK) {
            break;
        }
        taken++;
        CHECK_EQ(e.type, ARANYA_QUIC_EVENT_SEND_FAILED);
        CHECK_EQ(e.dropped_before, 0);
        /* Queued messages fail in their queue's order. */
        CHECK(e.id >= first_id && e.id < first_id + N && e.id > last_id);
        last_id = e.id;
    }
    CHECK_RC(take_event(alice, &e), ARANYA_QUIC_ERR_WOULD_BLOCK);
    CHECK_EQ(wait_readable(af.efd, 0), 0);
    /* The next event that fits tells how many were dropped before it. */
    CHECK_RC(aranya_quic_close_nowait(alice, hole, &cid), ARANYA_QUIC_OK);
    CHECK_EQ(wait_readable(af.efd, WAIT_MS), 1);
    if (take_event(alice, &e) == ARANYA_QUIC_OK) {
        CHECK_EQ(e.type, ARANYA_QUIC_EVENT_CLOSE_FINISHED);
        CHECK_EQ(e.id, cid);
        CHECK_EQ(e.dropped_before, N - MAXEV);
        dropped_sum += e.dropped_before;
    } else {
        count_check();
        report_failure(__FILE__, __LINE__, "no event after the overflow");
    }
    stats_of(alice, &st);
    CHECK_EQ(st.events_dropped, N - MAXEV);
    CHECK_EQ(dropped_sum, st.events_dropped);
    CHECK_EQ(taken, MAXEV);
    /* Room again: more events, none dropped. */
    for (i = 0; i < 2; i++) {
        CHECK_RC(aranya_quic_close_nowait(alice, hole, &cid), ARANYA_QUIC_OK);
    }
    for (i = 0; i < 2; i++) {
        CHECK_EQ(wait_readable(af.efd, WAIT_MS), 1);
        if (take_event(alice, &e) == ARANYA_QUIC_OK) {
            CHECK_EQ(e.dropped_before, 0);
        }
    }
    {
        event_log *al = log_new();
        shutdown_and_free(alice, af.efd, al, ARANYA_QUIC_OK, "alice");
        log_free(al);
    }
    close(sock);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"echo_loop_poll", test_echo_loop_poll},
        {"would_block_and_send_fd", test_would_block_and_send_fd},
        {"total_budget", test_total_budget},
        {"order_mixed", test_order_mixed},
        {"close_nowait_event", test_close_nowait_event},
        {"shutdown_event", test_shutdown_event},
        {"free_nowait_delivers", test_free_nowait_delivers},
        {"peer_events", test_peer_events},
        {"handshake_rejected", test_handshake_rejected},
        {"host_names", test_host_names},
        {"order_name_and_ip", test_order_name_and_ip},
        {"log_callback_frees_itself", test_log_callback_frees_itself},
        {"log_callback", test_log_callback},
        {"bad_input", test_bad_input},
        {"event_overflow", test_event_overflow},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
