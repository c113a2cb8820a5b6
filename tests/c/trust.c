/*
 * Tests of trust at runtime, team authorization and the connection list
 * (the header's "Trust at runtime, team authorization and the connection
 * list"), through the public header only.
 *
 *   trust CERTS_DIR [TEST]
 *
 * CERTS_DIR holds ca.pem, alice, bob and carol's .crt/.key, other-ca.pem
 * and stranger.crt/.key (from that other CA), as written by
 *   go run ./examples/certgen -other-ca -out CERTS_DIR alice bob carol
 *
 * Revocations are checked while the revoked peer keeps sending from a
 * thread of its own, since what a user relies on is what happens to
 * traffic already on its way. Every wait is bounded so that a lost message
 * fails a check instead of hanging; no check asserts how long anything
 * took.
 */
#define _POSIX_C_SOURCE 200809L

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

/* Bound on every wait for something that should happen: generous, only so
 * that a lost message or a missing failure fails instead of hanging. */
#define WAIT_MS 20000

/* How long a test keeps receiving to see that nothing more arrives. Not a
 * check of time: the longer, the more chance a broken promise has to
 * show. */
#define QUIET_MS 1500

#define LABEL "trust"
#define LABEL_LEN 5

/* team_ep: an endpoint that runs per-team authorization. */
static aranya_quic_t team_ep(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_config cfg;
    base_config(&cfg, id);
    cfg.team_authorization = 1;
    return open_ep(&cfg, addr);
}

static void team(uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], uint8_t seed) {
    int i;
    for (i = 0; i < ARANYA_QUIC_TEAM_ID_LEN; i++) {
        tid[i] = (uint8_t)(seed * 37 + i + 1);
    }
}

static void stats_of(aranya_quic_t ep, aranya_quic_stats *st) {
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    CHECK_RC(aranya_quic_get_stats(ep, st), ARANYA_QUIC_OK);
}

/* pid_of: the peer id of an identity's certificate. */
static void pid_of(const identity *id, uint8_t out[ARANYA_QUIC_PEER_ID_LEN]) {
    memset(out, 0, ARANYA_QUIC_PEER_ID_LEN);
    CHECK_RC(aranya_quic_peer_id_from_pem(id->cert, id->cert_len, out), ARANYA_QUIC_OK);
}

static int same_id(const uint8_t *a, const uint8_t *b) {
    return memcmp(a, b, ARANYA_QUIC_PEER_ID_LEN) == 0;
}

static long long wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint8_t rx[1 << 16];

/* recv_text receives until the message text from the peer pid arrives
 * (messages from others are skipped), bounded by WAIT_MS. 1 when it came,
 * with its channel in *ch (may be NULL); 0 otherwise (not reported). */
static int recv_text(aranya_quic_t ep, const uint8_t *pid, const char *text, aranya_quic_channel *ch) {
    long long deadline = mono_ms() + WAIT_MS;
    size_t tl = strlen(text);
    for (;;) {
        aranya_quic_channel c;
        size_t len = 0;
        long long left = deadline - mono_ms();
        int32_t rc;
        if (left <= 0) {
            return 0;
        }
        rc = aranya_quic_receive_timeout(ep, rx, sizeof rx, &c, &len, (int32_t)(left > 200 ? 200 : left));
        if (rc == ARANYA_QUIC_ERR_TIMEOUT) {
            continue;
        }
        if (rc != ARANYA_QUIC_OK) {
            return 0;
        }
        if (same_id(c.peer_id, pid) && len == tl && memcmp(rx, text, tl) == 0) {
            if (ch != NULL) {
                *ch = c;
            }
            return 1;
        }
    }
}

/* send_and_see: from sends text to to_addr on (tid, LABEL) and to receives
 * it with from's peer id. Returns the channel to receives it on (zeroed
 * when it did not come). Both outcomes are checks. */
static aranya_quic_channel send_and_see(aranya_quic_t from, const char *to_addr, aranya_quic_t to,
                                        const uint8_t *from_pid, const uint8_t *tid, const char *text) {
    aranya_quic_channel ch;
    int got;
    memset(&ch, 0, sizeof ch);
    CHECK_RC(aranya_quic_send(from, to_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)text, strlen(text)),
             ARANYA_QUIC_OK);
    got = recv_text(to, from_pid, text, &ch);
    count_check();
    if (!got) {
        report_failure(__FILE__, __LINE__, "message '%s' to %s never arrived with the sender's peer id", text,
                       to_addr);
    }
    return ch;
}

/* What quiet_from saw. */
typedef struct {
    int from_peer; /* messages whose peer id is the watched peer's */
    int after;     /* of those, sent after the revocation (payload "after ...") */
    int on_team;   /* of those, on the watched team (when one is given) */
    int others;    /* messages from anyone else */
} quiet_seen;

/* quiet_from keeps receiving for QUIET_MS and counts what arrives. */
static quiet_seen quiet_from(aranya_quic_t ep, const uint8_t *pid, const uint8_t *tid) {
    quiet_seen q = {0, 0, 0, 0};
    long long deadline = mono_ms() + QUIET_MS;
    for (;;) {
        aranya_quic_channel c;
        size_t len = 0;
        long long left = deadline - mono_ms();
        int32_t rc;
        if (left <= 0) {
            return q;
        }
        rc = aranya_quic_receive_timeout(ep, rx, sizeof rx, &c, &len, (int32_t)left);
        if (rc != ARANYA_QUIC_OK) {
            continue;
        }
        if (!same_id(c.peer_id, pid)) {
            q.others++;
            continue;
        }
        q.from_peer++;
        if (len >= 5 && memcmp(rx, "after", 5) == 0) {
            q.after++;
        }
        if (tid != NULL && c.kind == ARANYA_QUIC_KIND_CHANNEL && memcmp(c.team_id, tid, ARANYA_QUIC_TEAM_ID_LEN) == 0) {
            q.on_team++;
        }
    }
}

/* list_conns lists ep's connections into out (cap entries) and returns
 * how many there are; -1 on failure (reported). */
static int list_conns(aranya_quic_t ep, aranya_quic_connection_info *out, size_t cap) {
    size_t n = 0;
    int32_t rc;
    memset(out, 0, cap * sizeof *out);
    rc = aranya_quic_connections(ep, out, cap, sizeof *out, &n);
    CHECK_RC(rc, ARANYA_QUIC_OK);
    return rc == ARANYA_QUIC_OK ? (int)n : -1;
}

/* conn_of: ep's connection to peer id pid, copied to *out; 1 if there is
 * exactly one, else 0 (not reported). */
static int conn_of(aranya_quic_t ep, const uint8_t *pid, aranya_quic_connection_info *out) {
    aranya_quic_connection_info list[16];
    int n = list_conns(ep, list, 16), i, found = 0;
    for (i = 0; i < n && i < 16; i++) {
        if (same_id(list[i].peer_id, pid)) {
            *out = list[i];
            found++;
        }
    }
    return found == 1;
}

/* wait_queued waits until ep's receive queue holds at least want
 * messages; returns how many it holds then (bounded by WAIT_MS). */
static uint64_t wait_queued(aranya_quic_t ep, uint64_t want) {
    long long deadline = mono_ms() + WAIT_MS;
    aranya_quic_stats st;
    for (;;) {
        stats_of(ep, &st);
        if (st.queue_messages >= want || mono_ms() > deadline) {
            return st.queue_messages;
        }
        sleep_ms(5);
    }
}

/* A PEM that looks like a certificate but whose DER is not one. */
static const char BAD_CERT_PEM[] = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";

/* cat2 returns a (malloc'd) followed by b, and writes the length. */
static uint8_t *cat2(const uint8_t *a, size_t al, const uint8_t *b, size_t bl, size_t *len) {
    uint8_t *p = malloc(al + bl + 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(p, a, al);
    memcpy(p + al, b, bl);
    *len = al + bl;
    return p;
}

/* --------------------------------------------------------- the streamer */

/* A peer that keeps sending on one channel from a thread of its own,
 * while the receiver revokes it. The test sets revoking just before the
 * revoking call and revoked once it returned; each send is judged by
 * where it falls:
 *   returned before revoking was set: must be OK;
 *   overlapping the call: anything (the revocation may catch it midway);
 *   started after revoked was set: OK or CONNECTION (messages the transport
 *     took before the peer's close arrived) until the first want, then
 *     want every time. */
typedef struct {
    aranya_quic_t ep;
    char dst[ARANYA_QUIC_ADDR_MAX];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    int32_t want;
    atomic_int stop, revoking, revoked, reached, finished;
    atomic_int sent_before;
    /* Written by the thread, read after the join. */
    int failed_before;
    int32_t first_failure_before;
    int overlapping;
    int32_t unexpected;
    int after_want;
    int after_want_ok;
    int32_t after_want_other;
    pthread_t th;
} streamer;

static void *streamer_main(void *arg) {
    streamer *s = arg;
    int seq = 0;
    while (!atomic_load(&s->stop)) {
        char msg[64];
        int started_after = atomic_load(&s->revoked);
        int n = snprintf(msg, sizeof msg, "%s %06d", started_after ? "after" : "before", seq++);
        int32_t rc = aranya_quic_send(s->ep, s->dst, s->tid, LABEL, LABEL_LEN, (const uint8_t *)msg, (size_t)n);
        if (!atomic_load(&s->revoking)) {
            if (rc == ARANYA_QUIC_OK) {
                atomic_fetch_add(&s->sent_before, 1);
            } else if (s->failed_before++ == 0) {
                s->first_failure_before = rc;
            }
        } else if (!started_after) {
            s->overlapping++;
        } else if (!atomic_load(&s->reached)) {
            if (rc == s->want) {
                atomic_store(&s->reached, 1);
            } else if (rc != ARANYA_QUIC_OK && rc != ARANYA_QUIC_ERR_CONNECTION && s->unexpected == 0) {
                s->unexpected = rc;
            }
        } else {
            s->after_want++;
            if (rc == ARANYA_QUIC_OK) {
                s->after_want_ok++;
            } else if (rc != s->want && s->after_want_other == 0) {
                s->after_want_other = rc;
            }
            if (s->after_want >= 3) {
                break;
            }
        }
        /* Paced, so that the receiver's queue never pushes back. */
        sleep_ms(rc == ARANYA_QUIC_OK ? 1 : 10);
    }
    atomic_store(&s->finished, 1);
    return NULL;
}

static void streamer_start(streamer *s, aranya_quic_t ep, const char *dst, const uint8_t *tid, int32_t want) {
    memset(s, 0, sizeof *s);
    s->ep = ep;
    snprintf(s->dst, sizeof s->dst, "%s", dst);
    memcpy(s->tid, tid, ARANYA_QUIC_TEAM_ID_LEN);
    s->want = want;
    atomic_init(&s->stop, 0);
    atomic_init(&s->revoking, 0);
    atomic_init(&s->revoked, 0);
    atomic_init(&s->reached, 0);
    atomic_init(&s->finished, 0);
    atomic_init(&s->sent_before, 0);
    if (pthread_create(&s->th, NULL, streamer_main, s) != 0) {
        fprintf(stderr, "pthread_create failed\n");
        exit(2);
    }
}

/* streamer_finish waits (bounded) for the streamer to reach want and send
 * a few more, stops and joins it, and checks how its sends went. */
static void streamer_finish(streamer *s, const char *what) {
    long long deadline = mono_ms() + WAIT_MS;
    while (!atomic_load(&s->finished) && mono_ms() < deadline) {
        sleep_ms(10);
    }
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    CHECK_EQ(s->failed_before, 0);
    if (s->failed_before != 0) {
        fprintf(stderr, "  %s: first send failure before the revocation: %s\n", what,
                aranya_quic_strerror(s->first_failure_before));
    }
    count_check();
    if (!atomic_load(&s->reached)) {
        report_failure(__FILE__, __LINE__, "%s: no send after the revocation returned %s", what,
                       aranya_quic_strerror(s->want));
    }
    count_check();
    if (s->unexpected != 0) {
        report_failure(__FILE__, __LINE__, "%s: a send after the revocation returned %s before the first %s", what,
                       aranya_quic_strerror(s->unexpected), aranya_quic_strerror(s->want));
    }
    CHECK_EQ(s->after_want_ok, 0);
    count_check();
    if (s->after_want_other != 0) {
        report_failure(__FILE__, __LINE__, "%s: a send after the first %s returned %s", what,
                       aranya_quic_strerror(s->want), aranya_quic_strerror(s->after_want_other));
    }
}

/* recv_from_streamer receives until want messages from pid came (bounded);
 * returns how many came. */
static int recv_from_streamer(aranya_quic_t ep, const uint8_t *pid, int want) {
    long long deadline = mono_ms() + WAIT_MS;
    int got = 0;
    while (got < want && mono_ms() < deadline) {
        aranya_quic_channel c;
        size_t len = 0;
        if (aranya_quic_receive_timeout(ep, rx, sizeof rx, &c, &len, 200) == ARANYA_QUIC_OK &&
            same_id(c.peer_id, pid)) {
            got++;
        }
    }
    return got;
}

/* -------------------------------------------------------------- tests */

/*
 * revoke_streaming_peer: alice replaces her trust with the same CA and pins
 * listing only carol while bob streams to her. When set_trust returns,
 * bob's connection is closed (out_revoked), his queued messages are
 * dropped (messages_revoked), nothing of his arrives any more, his sends
 * come to fail with TLS, and carol's connection is untouched.
 */
static void test_revoke_streaming_peer(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t carol = new_ep(&carol_id, c_addr);
    uint8_t bob_pid[32], carol_pid[32], tid[32];
    aranya_quic_connection_info carol_before, carol_after, bob_conn;
    aranya_quic_stats st0, st1;
    streamer s;
    size_t revoked = 12345;
    uint64_t queued;
    quiet_seen q;
    aranya_quic_channel ch;
    int got, bob_conns;

    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    team(tid, 1);
    if (alice == 0 || bob == 0 || carol == 0) {
        goto out;
    }
    ch = send_and_see(carol, a_addr, alice, carol_pid, tid, "carol before");
    CHECK(strcmp(ch.addr, c_addr) == 0);

    streamer_start(&s, bob, a_addr, tid, ARANYA_QUIC_ERR_TLS);
    got = recv_from_streamer(alice, bob_pid, 30);
    CHECK_EQ(got, 30);
    /* Let some of bob's messages wait in the queue: set_trust drops them. */
    queued = wait_queued(alice, 3);
    CHECK(queued >= 3);
    CHECK(conn_of(alice, carol_pid, &carol_before));
    bob_conns = conn_of(alice, bob_pid, &bob_conn);
    CHECK(bob_conns);
    stats_of(alice, &st0);

    atomic_store(&s.revoking, 1);
    uint8_t revoked_ids[2][ARANYA_QUIC_PEER_ID_LEN];
    memset(revoked_ids, 0, sizeof revoked_ids);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, carol_pid, 1, &revoked_ids[0][0], 2, &revoked),
             ARANYA_QUIC_OK);
    atomic_store(&s.revoked, 1);
    stats_of(alice, &st1);

    /* Bob, and only he, was revoked; the call names him. */
    CHECK_EQ(revoked, 1);
    CHECK(memcmp(revoked_ids[0], bob_pid, ARANYA_QUIC_PEER_ID_LEN) == 0);
    CHECK(st1.connections_revoked >= st0.connections_revoked + 1);
    /* Only bob was sending: his queued messages are gone, none came since. */
    CHECK_EQ(st1.queue_messages, 0);
    CHECK(st1.messages_revoked >= st0.messages_revoked + queued);

    q = quiet_from(alice, bob_pid, NULL);
    CHECK_EQ(q.from_peer, 0);
    CHECK_EQ(q.after, 0);
    streamer_finish(&s, "bob's stream to alice");
    CHECK(atomic_load(&s.sent_before) >= 30);

    /* Still nothing of bob's, after all his tries. */
    q = quiet_from(alice, bob_pid, NULL);
    CHECK_EQ(q.from_peer, 0);
    stats_of(alice, &st1);
    CHECK(st1.connections_revoked >= 1);

    /* Carol's connection is the same one, and still carries messages. */
    ch = send_and_see(carol, a_addr, alice, carol_pid, tid, "carol after");
    CHECK(strcmp(ch.addr, c_addr) == 0);
    count_check();
    if (!conn_of(alice, carol_pid, &carol_after)) {
        report_failure(__FILE__, __LINE__, "alice has not exactly one connection to carol after set_trust");
    } else {
        CHECK_EQ(carol_after.connected_unix_ms, carol_before.connected_unix_ms);
        CHECK_EQ(carol_after.messages_received, carol_before.messages_received + 1);
    }
    /* And bob is not in alice's list any more. */
    CHECK(!conn_of(alice, bob_pid, &bob_conn));

out:
    CHECK_RC(aranya_quic_free(carol), ARANYA_QUIC_OK);
    aranya_quic_free(bob); /* bob's messages on the revoked connection were never confirmed */
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* revoke_bob: set_trust with the CA and pins listing only carol; checks
 * that bob's sends come to fail with TLS. For the tests that start from a
 * revoked bob. */
static void revoke_bob(aranya_quic_t alice, aranya_quic_t bob, const char *a_addr, const uint8_t *tid) {
    uint8_t carol_pid[32];
    size_t revoked = 0;
    int tries, tls = 0;
    pid_of(&carol_id, carol_pid);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, carol_pid, 1, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 1);
    for (tries = 0; tries < 50 && !tls; tries++) {
        int32_t rc = aranya_quic_send(bob, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"after x", 7);
        tls = rc == ARANYA_QUIC_ERR_TLS;
        if (!tls) {
            sleep_ms(20);
        }
    }
    count_check();
    if (!tls) {
        report_failure(__FILE__, __LINE__, "bob's sends to alice never failed with TLS after the revocation");
    }
}

/*
 * readmit: after a revocation, set_trust with the CA and no pins lets bob
 * in again: his next send connects and arrives, and alice can dial him.
 */
static void test_readmit(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    uint8_t alice_pid[32], bob_pid[32], tid[32];
    size_t revoked = 12345;
    aranya_quic_channel ch;
    aranya_quic_connection_info ci;

    pid_of(&alice_id, alice_pid);
    pid_of(&bob_id, bob_pid);
    team(tid, 2);
    if (alice == 0 || bob == 0) {
        goto out;
    }
    send_and_see(bob, a_addr, alice, bob_pid, tid, "before");
    revoke_bob(alice, bob, a_addr, tid);

    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, NULL, 0, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 0);
    ch = send_and_see(bob, a_addr, alice, bob_pid, tid, "readmitted");
    CHECK(strcmp(ch.addr, b_addr) == 0);
    CHECK(conn_of(alice, bob_pid, &ci));
    /* Either side may connect again: alice's reply arrives. */
    send_and_see(alice, b_addr, bob, alice_pid, tid, "welcome back");

out:
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/*
 * replace_ca: set_trust with another CA closes the connections of every
 * peer from the old one and lets peers of the new one in; a PEM with both
 * CAs trusts both; back to the old CA closes the stranger's connection.
 */
static void test_replace_ca(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX],
        s_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t carol = new_ep(&carol_id, c_addr);
    /* The stranger trusts alice's CA, so only alice's trust decides. */
    aranya_quic_t stranger = new_ep(&stranger_id, s_addr);
    uint8_t bob_pid[32], carol_pid[32], stranger_pid[32], tid[32];
    uint8_t *other_ca, *both;
    size_t other_len, both_len, revoked = 12345;
    int tries, tls = 0;

    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    pid_of(&stranger_id, stranger_pid);
    team(tid, 3);
    other_ca = read_file("other-ca.pem", &other_len);
    both = cat2(alice_id.ca, alice_id.ca_len, other_ca, other_len, &both_len);
    if (alice == 0 || bob == 0 || carol == 0 || stranger == 0) {
        goto out;
    }
    CHECK_RC(aranya_quic_send(stranger, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"x", 1), ARANYA_QUIC_ERR_TLS);
    send_and_see(bob, a_addr, alice, bob_pid, tid, "bob 1");
    send_and_see(carol, a_addr, alice, carol_pid, tid, "carol 1");

    CHECK_RC(aranya_quic_set_trust(alice, other_ca, other_len, NULL, 0, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 2);
    send_and_see(stranger, a_addr, alice, stranger_pid, tid, "stranger 1");
    for (tries = 0; tries < 50 && !tls; tries++) {
        tls = aranya_quic_send(carol, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"after", 5) == ARANYA_QUIC_ERR_TLS;
        if (!tls) {
            sleep_ms(20);
        }
    }
    CHECK(tls);

    CHECK_RC(aranya_quic_set_trust(alice, both, both_len, NULL, 0, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 0);
    send_and_see(bob, a_addr, alice, bob_pid, tid, "bob 2");
    send_and_see(stranger, a_addr, alice, stranger_pid, tid, "stranger 2");

    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, NULL, 0, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 1);
    send_and_see(bob, a_addr, alice, bob_pid, tid, "bob 3");
    send_and_see(carol, a_addr, alice, carol_pid, tid, "carol 2");

out:
    free(other_ca);
    free(both);
    aranya_quic_free(stranger);
    aranya_quic_free(carol);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* What alice's receive callback records. */
typedef struct {
    uint8_t bob_pid[32];
    atomic_int bob_calls;   /* callbacks with bob's peer id */
    atomic_int in_flight;   /* of those, running now */
    atomic_int returned;    /* set by the test once set_trust returned */
    atomic_int late;        /* bob's callbacks that started after that */
    atomic_int other_calls; /* callbacks of anyone else */
} cb_record;

static void record_cb(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    cb_record *r = user;
    (void)msg;
    (void)len;
    if (!same_id(ch->peer_id, r->bob_pid)) {
        atomic_fetch_add(&r->other_calls, 1);
        return;
    }
    atomic_fetch_add(&r->in_flight, 1);
    if (atomic_load(&r->returned)) {
        atomic_fetch_add(&r->late, 1);
    }
    atomic_fetch_add(&r->bob_calls, 1);
    /* A slow callback, so that set_trust often finds one running. */
    sleep_ms(2);
    atomic_fetch_sub(&r->in_flight, 1);
}

/*
 * revoke_callback: the same revocation on an endpoint with a receive
 * callback, set_trust called from the main thread: when it returns no
 * callback of bob's is running, and none starts afterwards.
 */
static void test_revoke_callback(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    static cb_record rec;
    aranya_quic_config cfg;
    aranya_quic_t alice, bob, carol;
    uint8_t carol_pid[32], tid[32];
    size_t revoked = 12345;
    streamer s;
    long long deadline;
    int others;

    memset(&rec, 0, sizeof rec);
    pid_of(&bob_id, rec.bob_pid);
    pid_of(&carol_id, carol_pid);
    atomic_init(&rec.bob_calls, 0);
    atomic_init(&rec.in_flight, 0);
    atomic_init(&rec.returned, 0);
    atomic_init(&rec.late, 0);
    atomic_init(&rec.other_calls, 0);
    team(tid, 4);
    base_config(&cfg, &alice_id);
    cfg.receive_callback = record_cb;
    cfg.receive_callback_user = &rec;
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    carol = new_ep(&carol_id, c_addr);
    if (alice == 0 || bob == 0 || carol == 0) {
        goto out;
    }

    streamer_start(&s, bob, a_addr, tid, ARANYA_QUIC_ERR_TLS);
    deadline = mono_ms() + WAIT_MS;
    while (atomic_load(&rec.bob_calls) < 30 && mono_ms() < deadline) {
        sleep_ms(2);
    }
    CHECK(atomic_load(&rec.bob_calls) >= 30);

    atomic_store(&s.revoking, 1);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, carol_pid, 1, NULL, 0, &revoked), ARANYA_QUIC_OK);
    /* Callbacks already running for bob have returned. */
    CHECK_EQ(atomic_load(&rec.in_flight), 0);
    atomic_store(&rec.returned, 1);
    atomic_store(&s.revoked, 1);
    CHECK_EQ(revoked, 1);

    streamer_finish(&s, "bob's stream to alice's callback");
    sleep_ms(QUIET_MS);
    CHECK_EQ(atomic_load(&rec.late), 0);

    /* The endpoint still delivers to its callback. */
    others = atomic_load(&rec.other_calls);
    CHECK_RC(aranya_quic_send(carol, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"carol", 5), ARANYA_QUIC_OK);
    deadline = mono_ms() + WAIT_MS;
    while (atomic_load(&rec.other_calls) == others && mono_ms() < deadline) {
        sleep_ms(2);
    }
    CHECK_EQ(atomic_load(&rec.other_calls), others + 1);
    CHECK_EQ(atomic_load(&rec.late), 0);

out:
    aranya_quic_free(carol);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}


/* What the callback that revokes its own sender records. */
typedef struct {
    _Atomic uint64_t ep;
    uint8_t bob_pid[32], carol_pid[32];
    atomic_int started, done, carol_calls;
    int32_t rc;
    size_t revoked;
} self_revoke;

static void self_revoke_cb(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    self_revoke *r = user;
    (void)msg;
    (void)len;
    if (same_id(ch->peer_id, r->carol_pid)) {
        atomic_fetch_add(&r->carol_calls, 1);
        return;
    }
    if (!same_id(ch->peer_id, r->bob_pid) || atomic_exchange(&r->started, 1)) {
        return;
    }
    r->revoked = 12345;
    r->rc = aranya_quic_set_trust(atomic_load(&r->ep), alice_id.ca, alice_id.ca_len, r->carol_pid, 1, NULL, 0, &r->revoked);
    atomic_store(&r->done, 1);
}

/*
 * set_trust_in_callback: a receive callback revokes the peer whose message
 * it is handling. set_trust must return (it does not wait for callbacks
 * from there, its own included) with OK, and the peer is revoked.
 */
static void test_set_trust_in_callback(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    static self_revoke rec;
    aranya_quic_config cfg;
    aranya_quic_t alice, bob, carol;
    uint8_t tid[32];
    long long deadline;
    int tries, tls = 0;

    memset(&rec, 0, sizeof rec);
    atomic_init(&rec.ep, 0);
    atomic_init(&rec.started, 0);
    atomic_init(&rec.done, 0);
    atomic_init(&rec.carol_calls, 0);
    pid_of(&bob_id, rec.bob_pid);
    pid_of(&carol_id, rec.carol_pid);
    team(tid, 5);
    base_config(&cfg, &alice_id);
    cfg.receive_callback = self_revoke_cb;
    cfg.receive_callback_user = &rec;
    alice = open_ep(&cfg, a_addr);
    bob = new_ep(&bob_id, b_addr);
    carol = new_ep(&carol_id, c_addr);
    if (alice == 0 || bob == 0 || carol == 0) {
        aranya_quic_free(carol);
        aranya_quic_free(bob);
        aranya_quic_free(alice);
        return;
    }
    atomic_store(&rec.ep, alice);

    CHECK_RC(aranya_quic_send(bob, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"revoke me", 9), ARANYA_QUIC_OK);
    deadline = mono_ms() + WAIT_MS;
    while (!atomic_load(&rec.done) && mono_ms() < deadline) {
        sleep_ms(5);
    }
    count_check();
    if (!atomic_load(&rec.done)) {
        report_failure(__FILE__, __LINE__, "set_trust called from a receive callback did not return (%s)",
                       atomic_load(&rec.started) ? "deadlock?" : "the callback never ran");
        /* free would wait for the stuck callback: let it go in the background. */
        aranya_quic_free_nowait(alice);
        aranya_quic_free(carol);
        aranya_quic_free(bob);
        return;
    }
    CHECK_RC(rec.rc, ARANYA_QUIC_OK);
    CHECK_EQ(rec.revoked, 1);

    for (tries = 0; tries < 50 && !tls; tries++) {
        tls = aranya_quic_send(bob, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"after", 5) == ARANYA_QUIC_ERR_TLS;
        if (!tls) {
            sleep_ms(20);
        }
    }
    CHECK(tls);

    /* The endpoint goes on: carol's message reaches the callback. */
    CHECK_RC(aranya_quic_send(carol, a_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"carol", 5), ARANYA_QUIC_OK);
    deadline = mono_ms() + WAIT_MS;
    while (atomic_load(&rec.carol_calls) == 0 && mono_ms() < deadline) {
        sleep_ms(2);
    }
    CHECK_EQ(atomic_load(&rec.carol_calls), 1);

    aranya_quic_free(carol);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/*
 * rotate_identity: alice takes carol's certificate and key. The existing
 * alice<->bob connection goes on with alice's old identity; endpoints
 * that connect afterwards, dialing alice or dialed by her, see carol's
 * peer id on alice's messages.
 */
static void test_rotate_identity(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], x_addr[ARANYA_QUIC_ADDR_MAX],
        y_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t x = 0, y = 0;
    uint8_t alice_pid[32], bob_pid[32], carol_pid[32], tid[32];
    aranya_quic_connection_info before, after;
    aranya_quic_channel ch;

    pid_of(&alice_id, alice_pid);
    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    team(tid, 6);
    if (alice == 0 || bob == 0) {
        goto out;
    }
    send_and_see(bob, a_addr, alice, bob_pid, tid, "hello alice");
    send_and_see(alice, b_addr, bob, alice_pid, tid, "hello bob");
    CHECK(conn_of(bob, alice_pid, &before));

    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, carol_id.cert_len, carol_id.key, carol_id.key_len),
             ARANYA_QUIC_OK);

    /* The existing connection keeps its identity and keeps working. */
    send_and_see(bob, a_addr, alice, bob_pid, tid, "still there?");
    send_and_see(alice, b_addr, bob, alice_pid, tid, "still here");
    count_check();
    if (!conn_of(bob, alice_pid, &after)) {
        report_failure(__FILE__, __LINE__, "bob has no connection to alice's old peer id after set_identity");
    } else {
        CHECK_EQ(after.connected_unix_ms, before.connected_unix_ms);
    }

    /* A fresh endpoint dialing alice: alice accepts with carol's identity. */
    x = new_ep(&bob_id, x_addr);
    if (x == 0) {
        goto out;
    }
    ch = send_and_see(x, a_addr, alice, bob_pid, tid, "I am new");
    CHECK(strcmp(ch.addr, x_addr) == 0);
    ch = send_and_see(alice, x_addr, x, carol_pid, tid, "I am renewed");
    CHECK(strcmp(ch.addr, a_addr) == 0);
    CHECK(conn_of(x, carol_pid, &after));
    CHECK(!conn_of(x, alice_pid, &after));

    /* A fresh endpoint that alice dials: carol's identity too. */
    y = new_ep(&bob_id, y_addr);
    if (y == 0) {
        goto out;
    }
    ch = send_and_see(alice, y_addr, y, carol_pid, tid, "I dial you");
    CHECK(strcmp(ch.addr, a_addr) == 0);

out:
    aranya_quic_free(y);
    aranya_quic_free(x);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* send_until: sends on (tid, LABEL) (or a sync message when tid is NULL)
 * until a send returns want, at most 50 tries; whether it did. */
static int send_until(aranya_quic_t ep, const char *dst, const uint8_t *tid, int32_t want) {
    int tries;
    for (tries = 0; tries < 50; tries++) {
        int32_t rc = tid != NULL ? aranya_quic_send(ep, dst, tid, LABEL, LABEL_LEN, (const uint8_t *)"after", 5)
                                 : aranya_quic_send_sync(ep, dst, 3, (const uint8_t *)"after", 5);
        if (rc == want) {
            return 1;
        }
        sleep_ms(20);
    }
    return 0;
}

/*
 * team_authorization: alice runs per-team authorization and allows bob on
 * team A only. Bob's channels on A are accepted, on B refused with
 * NOT_AUTHORIZED (nothing arrives); his sync messages are accepted (he is
 * allowed on a team); carol, allowed on none, is refused everything.
 * Revoking bob on A while he streams on it: nothing more of his arrives
 * on A, his sends there come to fail with NOT_AUTHORIZED, and so do his
 * sync messages (A was his last team). Allowing him again lets him in.
 */
static void test_team_authorization(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = team_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t carol = new_ep(&carol_id, c_addr);
    uint8_t bob_pid[32], carol_pid[32], ta[32], tb[32];
    aranya_quic_stats st0, st1;
    aranya_quic_channel ch;
    quiet_seen q;
    streamer s;
    uint64_t queued;
    int got;
    uint32_t last_team = 0;

    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    team(ta, 7);
    team(tb, 8);
    if (alice == 0 || bob == 0 || carol == 0) {
        goto out;
    }
    CHECK_RC(aranya_quic_team_allow(alice, bob_pid, ta), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_team_allow(alice, bob_pid, ta), ARANYA_QUIC_OK);
    /* Revoking a pair never allowed does nothing. */
    last_team = 7;
    CHECK_RC(aranya_quic_team_revoke(alice, carol_pid, ta, &last_team), ARANYA_QUIC_OK);
    CHECK_EQ(last_team, 0);

    ch = send_and_see(bob, a_addr, alice, bob_pid, ta, "on A");
    CHECK_EQ(ch.kind, ARANYA_QUIC_KIND_CHANNEL);
    CHECK(memcmp(ch.team_id, ta, 32) == 0);

    CHECK_RC(aranya_quic_send(bob, a_addr, tb, LABEL, LABEL_LEN, (const uint8_t *)"on B", 4),
             ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    stats_of(alice, &st1);
    CHECK(st1.streams_refused >= 1);
    /* The refusal on B leaves A alone. */
    send_and_see(bob, a_addr, alice, bob_pid, ta, "on A again");

    CHECK_RC(aranya_quic_send_sync(bob, a_addr, 3, (const uint8_t *)"bob sync", 8), ARANYA_QUIC_OK);
    count_check();
    if (!recv_text(alice, bob_pid, "bob sync", &ch)) {
        report_failure(__FILE__, __LINE__, "bob's sync message, allowed on team A, never arrived");
    } else {
        CHECK_EQ(ch.kind, ARANYA_QUIC_KIND_SYNC);
        CHECK_EQ(ch.sync_type, 3);
    }

    CHECK_RC(aranya_quic_send_sync(carol, a_addr, 3, (const uint8_t *)"carol sync", 10), ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    CHECK_RC(aranya_quic_send(carol, a_addr, ta, LABEL, LABEL_LEN, (const uint8_t *)"carol A", 7),
             ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    q = quiet_from(alice, bob_pid, tb);
    CHECK_EQ(q.on_team, 0);
    CHECK_EQ(q.from_peer, 0);
    CHECK_EQ(q.others, 0);
    stats_of(alice, &st1);
    CHECK(st1.streams_refused >= 3);

    /* Revoke bob on A while his stream on A is open and busy. */
    streamer_start(&s, bob, a_addr, ta, ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    got = recv_from_streamer(alice, bob_pid, 30);
    CHECK_EQ(got, 30);
    queued = wait_queued(alice, 3);
    CHECK(queued >= 3);
    stats_of(alice, &st0);
    atomic_store(&s.revoking, 1);
    CHECK_RC(aranya_quic_team_revoke(alice, bob_pid, ta, &last_team), ARANYA_QUIC_OK);
    atomic_store(&s.revoked, 1);
    CHECK_EQ(last_team, 1); /* A was bob's only team: his sync streams went too */
    stats_of(alice, &st1);
    CHECK_EQ(st1.queue_messages, 0);
    CHECK(st1.messages_revoked >= st0.messages_revoked + queued);
    q = quiet_from(alice, bob_pid, ta);
    CHECK_EQ(q.on_team, 0);
    CHECK_EQ(q.after, 0);
    streamer_finish(&s, "bob's stream on team A");
    q = quiet_from(alice, bob_pid, ta);
    CHECK_EQ(q.from_peer, 0);

    /* A was bob's last team: his sync messages are refused now. */
    CHECK(send_until(bob, a_addr, NULL, ARANYA_QUIC_ERR_NOT_AUTHORIZED));

    /* Allowed again, he gets in again. */
    CHECK_RC(aranya_quic_team_allow(alice, bob_pid, ta), ARANYA_QUIC_OK);
    send_and_see(bob, a_addr, alice, bob_pid, ta, "back on A");
    CHECK_RC(aranya_quic_send(bob, a_addr, tb, LABEL, LABEL_LEN, (const uint8_t *)"on B", 4),
             ARANYA_QUIC_ERR_NOT_AUTHORIZED);

out:
    aranya_quic_free(carol);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* big_pem: pem followed by newlines up to len bytes (malloc'd), a PEM
 * that parses but is longer than a limit. */
static uint8_t *big_pem(const uint8_t *pem, size_t pem_len, size_t len) {
    uint8_t *p = malloc(len);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, '\n', len);
    memcpy(p, pem, pem_len);
    return p;
}

#define MIB16 ((size_t)16 * 1024 * 1024)

/*
 * bad_input: each new call with a bad argument returns the documented
 * code, writes no output, and changes nothing: exchanges go on as before.
 */
static void test_bad_input(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], t_addr[ARANYA_QUIC_ADDR_MAX],
        x_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t tm = team_ep(&carol_id, t_addr);
    aranya_quic_t x = 0, gone = 0;
    uint8_t alice_pid[32], bob_pid[32], carol_pid[32], tid[32], out[32], untouched[32];
    static const uint8_t zero[32];
    static const char garbage[] = "this is not PEM at all";
    uint8_t *ca_then_bad, *bob_chain, *huge;
    size_t ca_then_bad_len, bob_chain_len, revoked, n;
    aranya_quic_connection_info info[2], before, after;
    aranya_quic_stats st;
    aranya_quic_channel ch;
    char g_addr[ARANYA_QUIC_ADDR_MAX];

    pid_of(&alice_id, alice_pid);
    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    team(tid, 9);
    ca_then_bad = cat2(alice_id.ca, alice_id.ca_len, (const uint8_t *)BAD_CERT_PEM, strlen(BAD_CERT_PEM),
                       &ca_then_bad_len);
    bob_chain = cat2(bob_id.cert, bob_id.cert_len, bob_id.ca, bob_id.ca_len, &bob_chain_len);
    huge = big_pem(alice_id.ca, alice_id.ca_len, MIB16 + 1);

    /* ---- aranya_quic_peer_id_from_pem (needs no endpoint) */
    memset(untouched, 0xA5, sizeof untouched);
    memcpy(out, untouched, sizeof out);
    CHECK_RC(aranya_quic_peer_id_from_pem(NULL, 10, out), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_peer_id_from_pem(bob_id.cert, 0, out), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_peer_id_from_pem((const uint8_t *)BAD_CERT_PEM, strlen(BAD_CERT_PEM), out),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_peer_id_from_pem((const uint8_t *)garbage, strlen(garbage), out),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_peer_id_from_pem(bob_id.key, bob_id.key_len, out), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK(memcmp(out, untouched, sizeof out) == 0);
    CHECK_RC(aranya_quic_peer_id_from_pem(bob_id.cert, bob_id.cert_len, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* A chain: the leaf's id. */
    CHECK_RC(aranya_quic_peer_id_from_pem(bob_chain, bob_chain_len, out), ARANYA_QUIC_OK);
    CHECK(same_id(out, bob_pid));
    CHECK(!same_id(bob_pid, carol_pid));
    if (alice == 0 || bob == 0 || tm == 0) {
        goto out;
    }

    /* ---- aranya_quic_set_trust: every bad call offers pins that would
     * revoke bob, so that a change would show. */
    send_and_see(bob, a_addr, alice, bob_pid, tid, "before");
    CHECK(conn_of(alice, bob_pid, &before));
    revoked = 777;
    CHECK_RC(aranya_quic_set_trust(alice, NULL, 10, carol_pid, 1, NULL, 0, &revoked), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, 0, carol_pid, 1, NULL, 0, &revoked), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, (const uint8_t *)BAD_CERT_PEM, strlen(BAD_CERT_PEM), carol_pid, 1, NULL, 0, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, ca_then_bad, ca_then_bad_len, carol_pid, 1, NULL, 0, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, (const uint8_t *)garbage, strlen(garbage), carol_pid, 1, NULL, 0, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.key, alice_id.key_len, carol_pid, 1, NULL, 0, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, NULL, 1, NULL, 0, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, huge, MIB16 + 1, carol_pid, 1, NULL, 0, &revoked), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, carol_pid, 1, NULL, 1, &revoked),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(revoked, 777);
    stats_of(alice, &st);
    CHECK_EQ(st.connections_revoked, 0);
    /* Bob's connection is the same, and new handshakes still let him in. */
    send_and_see(bob, a_addr, alice, bob_pid, tid, "after bad set_trust");
    count_check();
    if (!conn_of(alice, bob_pid, &after)) {
        report_failure(__FILE__, __LINE__, "alice lost her connection to bob to a refused set_trust");
    } else {
        CHECK_EQ(after.connected_unix_ms, before.connected_unix_ms);
    }
    x = new_ep(&bob_id, x_addr);
    if (x != 0) {
        send_and_see(x, a_addr, alice, bob_pid, tid, "new bob");
    }
    /* Pins with a count of 0 and any pointer: no pinning, nothing closed. */
    revoked = 777;
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, carol_pid, 0, NULL, 0, &revoked), ARANYA_QUIC_OK);
    CHECK_EQ(revoked, 0);
    CHECK_RC(aranya_quic_set_trust(alice, alice_id.ca, alice_id.ca_len, NULL, 0, NULL, 0, NULL), ARANYA_QUIC_OK);

    /* ---- aranya_quic_set_identity */
    CHECK_RC(aranya_quic_set_identity(alice, NULL, 10, carol_id.key, carol_id.key_len), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, 0, carol_id.key, carol_id.key_len),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, carol_id.cert_len, NULL, 10),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, carol_id.cert_len, carol_id.key, 0),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_identity(alice, (const uint8_t *)BAD_CERT_PEM, strlen(BAD_CERT_PEM), carol_id.key,
                                      carol_id.key_len),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, carol_id.cert_len, (const uint8_t *)garbage,
                                      strlen(garbage)),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* A key that is not the certificate's. */
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.cert, carol_id.cert_len, bob_id.key, bob_id.key_len),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* Key and certificate swapped. */
    CHECK_RC(aranya_quic_set_identity(alice, carol_id.key, carol_id.key_len, carol_id.cert, carol_id.cert_len),
             ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* Alice is still alice to endpoints that connect now. */
    if (x != 0) {
        ch = send_and_see(alice, x_addr, x, alice_pid, tid, "still alice");
        CHECK(strcmp(ch.addr, a_addr) == 0);
        CHECK_RC(aranya_quic_close(x, a_addr), ARANYA_QUIC_OK);
        send_and_see(alice, x_addr, x, alice_pid, tid, "still alice, new connection");
    }

    /* ---- aranya_quic_team_allow / aranya_quic_team_revoke */
    CHECK_RC(aranya_quic_team_allow(alice, bob_pid, tid), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_revoke(alice, bob_pid, tid, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_allow(tm, NULL, tid), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_allow(tm, bob_pid, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_allow(tm, zero, tid), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_allow(tm, bob_pid, zero), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* Nothing was allowed. */
    CHECK_RC(aranya_quic_send(bob, t_addr, tid, LABEL, LABEL_LEN, (const uint8_t *)"no", 2),
             ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    CHECK_RC(aranya_quic_team_allow(tm, bob_pid, tid), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_team_revoke(tm, NULL, tid, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_revoke(tm, bob_pid, NULL, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_revoke(tm, zero, tid, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_team_revoke(tm, bob_pid, zero, NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    /* Nothing was revoked. */
    send_and_see(bob, t_addr, tm, bob_pid, tid, "allowed");

    /* ---- aranya_quic_connections */
    n = 99;
    CHECK_RC(aranya_quic_connections(alice, info, 2, sizeof info[0], NULL), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_connections(alice, NULL, 1, sizeof info[0], &n), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_connections(alice, info, 2, sizeof info[0] - 1, &n), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_connections(alice, info, 2, sizeof(uint32_t), &n), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_RC(aranya_quic_connections(alice, info, 2, 0, &n), ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CHECK_EQ(n, 99);

    /* ---- a freed handle, 0, and a number never returned */
    gone = new_ep(&alice_id, g_addr);
    CHECK_RC(aranya_quic_free(gone), ARANYA_QUIC_OK);
    {
        aranya_quic_t handles[3];
        int h;
        handles[0] = gone;
        handles[1] = 0;
        handles[2] = (aranya_quic_t)0x7fffabcd1234ULL;
        for (h = 0; h < 3; h++) {
            aranya_quic_t e = handles[h];
            revoked = 777;
            n = 99;
            CHECK_RC(aranya_quic_set_trust(e, alice_id.ca, alice_id.ca_len, NULL, 0, NULL, 0, &revoked),
                     ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_set_identity(e, carol_id.cert, carol_id.cert_len, carol_id.key, carol_id.key_len),
                     ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_team_allow(e, bob_pid, tid), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_team_revoke(e, bob_pid, tid, NULL), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_RC(aranya_quic_connections(e, info, 2, sizeof info[0], &n), ARANYA_QUIC_ERR_INVALID_HANDLE);
            CHECK_EQ(revoked, 777);
            CHECK_EQ(n, 99);
        }
    }

    /* After all that, the exchange works as before, both ways. */
    send_and_see(bob, a_addr, alice, bob_pid, tid, "at the end");
    send_and_see(alice, b_addr, bob, alice_pid, tid, "at the end too");
    stats_of(alice, &st);
    CHECK_EQ(st.connections_revoked, 0);
    CHECK_EQ(st.messages_revoked, 0);

out:
    free(ca_then_bad);
    free(bob_chain);
    free(huge);
    aranya_quic_free(x);
    aranya_quic_free(tm);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* nul_in: s is NUL-terminated within n bytes. */
static int nul_in(const char *s, size_t n) {
    return memchr(s, '\0', n) != NULL;
}

/* check_conn_info: what a user reads in an entry of a connection that
 * carried the given traffic. */
static void check_conn_info(const aranya_quic_connection_info *ci, const char *what, const char *addr,
                            const uint8_t *pid, uint32_t dialed, uint64_t sent, uint64_t sent_bytes, uint64_t rcvd,
                            uint64_t rcvd_bytes, const aranya_quic_stats *st, long long start_wall) {
    long long now_wall = wall_ms();
    int before = checks_failed;
    CHECK_EQ(ci->struct_size, sizeof *ci);
    CHECK_EQ(ci->dialed, dialed);
    CHECK_EQ(ci->draining, 0);
    CHECK(nul_in(ci->addr, sizeof ci->addr) && strcmp(ci->addr, addr) == 0);
    CHECK(same_id(ci->peer_id, pid));
    /* The wall clock's own granularity is the only slack. */
    CHECK((long long)ci->connected_unix_ms >= start_wall - 1000 && (long long)ci->connected_unix_ms <= now_wall + 1000);
    CHECK(ci->smoothed_rtt_us > 0);
    CHECK(ci->min_rtt_us > 0);
    CHECK(ci->latest_rtt_us > 0);
    CHECK(ci->congestion_window > 0);
    CHECK(ci->packets_sent > 0);
    CHECK(ci->packets_received > 0);
    CHECK_EQ(ci->messages_sent, sent);
    CHECK_EQ(ci->bytes_sent, sent_bytes);
    CHECK_EQ(ci->messages_received, rcvd);
    CHECK_EQ(ci->bytes_received, rcvd_bytes);
    CHECK(nul_in(ci->congestion_control, sizeof ci->congestion_control));
    CHECK(strcmp(ci->congestion_control, st->congestion_control) == 0);
    if (strcmp(ci->congestion_control, "reno") == 0) {
        CHECK(ci->bytes_in_flight == ARANYA_QUIC_UNKNOWN);
    } else {
        CHECK(strcmp(ci->congestion_control, "bbr2") == 0);
        CHECK(ci->bytes_in_flight != ARANYA_QUIC_UNKNOWN);
    }
    if (checks_failed != before) {
        fprintf(stderr, "  in %s's entry (addr %s, cc %s)\n", what, ci->addr, ci->congestion_control);
    }
}

/*
 * connections: after an exchange each side lists one connection to the
 * other, with its address and peer id, which side dialed, the
 * congestion control the stats report and the messages each way.
 * Capacity 0 (or too small) gives BUFFER_TOO_SMALL with the count; a
 * caller with a larger struct gets this library's part of each.
 */
static void test_connections(void) {
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX], c_addr[ARANYA_QUIC_ADDR_MAX],
        r_addr[ARANYA_QUIC_ADDR_MAX];
    long long start_wall = wall_ms();
    aranya_quic_t alice = new_ep(&alice_id, a_addr);
    aranya_quic_t bob = new_ep(&bob_id, b_addr);
    aranya_quic_t carol = 0, reno = 0;
    uint8_t alice_pid[32], bob_pid[32], carol_pid[32], tid[32];
    aranya_quic_connection_info list[4], one[2];
    aranya_quic_stats ast, bst;
    aranya_quic_config cfg;
    size_t n;
    int k;

    pid_of(&alice_id, alice_pid);
    pid_of(&bob_id, bob_pid);
    pid_of(&carol_id, carol_pid);
    team(tid, 10);
    if (alice == 0 || bob == 0) {
        goto out;
    }
    /* Nothing yet. */
    n = 99;
    CHECK_RC(aranya_quic_connections(alice, NULL, 0, sizeof list[0], &n), ARANYA_QUIC_OK);
    CHECK_EQ(n, 0);

    /* Bob dials: 3 messages of 3+4+5 bytes; alice answers 2 of 2+3. */
    send_and_see(bob, a_addr, alice, bob_pid, tid, "one");
    send_and_see(bob, a_addr, alice, bob_pid, tid, "four");
    send_and_see(bob, a_addr, alice, bob_pid, tid, "fives");
    send_and_see(alice, b_addr, bob, alice_pid, tid, "ok");
    send_and_see(alice, b_addr, bob, alice_pid, tid, "bye");
    stats_of(alice, &ast);
    stats_of(bob, &bst);

    k = list_conns(alice, list, 4);
    CHECK_EQ(k, 1);
    if (k == 1) {
        check_conn_info(&list[0], "alice", b_addr, bob_pid, 0, 2, 5, 3, 12, &ast, start_wall);
    }
    k = list_conns(bob, list, 4);
    CHECK_EQ(k, 1);
    if (k == 1) {
        check_conn_info(&list[0], "bob", a_addr, alice_pid, 1, 3, 12, 2, 5, &bst, start_wall);
    }

    /* A second peer: the count outgrows small arrays. */
    carol = new_ep(&carol_id, c_addr);
    if (carol == 0) {
        goto out;
    }
    send_and_see(carol, a_addr, alice, carol_pid, tid, "carol");
    n = 99;
    CHECK_RC(aranya_quic_connections(alice, NULL, 0, sizeof list[0], &n), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(n, 2);
    memset(one, 0xEE, sizeof one);
    n = 99;
    CHECK_RC(aranya_quic_connections(alice, one, 1, sizeof one[0], &n), ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CHECK_EQ(n, 2);
    CHECK_EQ(one[0].struct_size, sizeof one[0]);
    CHECK(same_id(one[0].peer_id, bob_pid) || same_id(one[0].peer_id, carol_pid));
    /* Only capacity entries are written. */
    CHECK_EQ(one[1].struct_size, 0xEEEEEEEEu);
    k = list_conns(alice, list, 4);
    CHECK_EQ(k, 2);
    if (k == 2) {
        CHECK(!same_id(list[0].peer_id, list[1].peer_id));
        CHECK(same_id(list[0].peer_id, bob_pid) || same_id(list[1].peer_id, bob_pid));
        CHECK(same_id(list[0].peer_id, carol_pid) || same_id(list[1].peer_id, carol_pid));
    }

    /* A caller whose struct is larger (a newer header): each entry gets
     * this library's part and its size, the rest of it is left alone. */
    {
        enum { EXTRA = 32 };
        size_t stride = sizeof(aranya_quic_connection_info) + EXTRA;
        uint64_t big[2 * (sizeof(aranya_quic_connection_info) + EXTRA) / sizeof(uint64_t) + 1];
        int e;
        memset(big, 0xEE, sizeof big);
        n = 99;
        CHECK_RC(aranya_quic_connections(alice, (aranya_quic_connection_info *)(void *)big, 2, stride, &n),
                 ARANYA_QUIC_OK);
        CHECK_EQ(n, 2);
        for (e = 0; e < 2; e++) {
            const uint8_t *rec = (const uint8_t *)big + (size_t)e * stride;
            aranya_quic_connection_info ci;
            size_t b;
            int tail_ok = 1;
            memcpy(&ci, rec, sizeof ci);
            CHECK_EQ(ci.struct_size, sizeof ci);
            CHECK(same_id(ci.peer_id, bob_pid) || same_id(ci.peer_id, carol_pid));
            for (b = sizeof ci; b < stride; b++) {
                tail_ok &= rec[b] == 0xEE;
            }
            CHECK(tail_ok);
        }
    }

    /* NewReno does not report bytes in flight. */
    base_config(&cfg, &alice_id);
    cfg.congestion_control = ARANYA_QUIC_CC_RENO;
    reno = open_ep(&cfg, r_addr);
    if (reno == 0) {
        goto out;
    }
    send_and_see(bob, r_addr, reno, bob_pid, tid, "reno?");
    stats_of(reno, &ast);
    CHECK(strcmp(ast.congestion_control, "reno") == 0);
    k = list_conns(reno, list, 4);
    CHECK_EQ(k, 1);
    if (k == 1) {
        check_conn_info(&list[0], "reno", b_addr, bob_pid, 0, 0, 0, 1, 5, &ast, start_wall);
    }

out:
    aranya_quic_free(reno);
    aranya_quic_free(carol);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"revoke_streaming_peer", test_revoke_streaming_peer},
        {"readmit", test_readmit},
        {"replace_ca", test_replace_ca},
        {"revoke_callback", test_revoke_callback},
        {"set_trust_in_callback", test_set_trust_in_callback},
        {"rotate_identity", test_rotate_identity},
        {"team_authorization", test_team_authorization},
        {"bad_input", test_bad_input},
        {"connections", test_connections},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
