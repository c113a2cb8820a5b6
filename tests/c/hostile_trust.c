/*
 * Hostile tests of the trust calls through the public header: calls into
 * the library from the callbacks the header allows them from, while a
 * trust change is in progress.
 *
 *   hostile_trust CERTS_DIR [TEST]
 *
 * A call that never returns is reported as a failure after a generous
 * bound (never a check of time); the stuck endpoint is then let go with
 * aranya_quic_free_nowait, since aranya_quic_free would wait for it.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aranya_quic.h"
#include "testlib.h"

#define WAIT_MS 20000
#define LABEL "hostile"
#define LABEL_LEN 7

static void team(uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], uint8_t seed) {
    int i;
    for (i = 0; i < ARANYA_QUIC_TEAM_ID_LEN; i++) {
        tid[i] = (uint8_t)(seed * 41 + i + 1);
    }
}

static void pid_of(const identity *id, uint8_t out[ARANYA_QUIC_PEER_ID_LEN]) {
    CHECK_RC(aranya_quic_peer_id_from_pem(id->cert, id->cert_len, out), ARANYA_QUIC_OK);
}

/* waits for flag to be set, up to WAIT_MS; 1 when it was. */
static int wait_flag(atomic_int *flag) {
    long long deadline = mono_ms() + WAIT_MS;
    while (!atomic_load(flag) && mono_ms() < deadline) {
        sleep_ms(5);
    }
    return atomic_load(flag);
}

/* ------------------------------------------------------------------------
 * log_callback_calls_team_allow: the header says a log callback "may call
 * the library". set_trust logs the connections it closes; a log callback
 * that answers such a record with aranya_quic_team_allow on the same
 * endpoint must not hang set_trust.
 * --------------------------------------------------------------------- */

typedef struct {
    _Atomic aranya_quic_t ep;
    uint8_t carol_pid[ARANYA_QUIC_PEER_ID_LEN];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN];
    atomic_int calls;
    atomic_int done;
    int32_t rc;
    size_t revoked;
} log_rec;

static void allow_on_log(void *user, uint32_t level, const char *msg, size_t len) {
    log_rec *rec = user;
    aranya_quic_t ep = atomic_load(&rec->ep);
    (void)level;
    (void)len;
    if (ep != 0 && strstr(msg, "no longer trusted") != NULL) {
        atomic_fetch_add(&rec->calls, 1);
        (void)aranya_quic_team_allow(ep, rec->carol_pid, rec->tid);
    }
}

static void *set_trust_thread(void *arg) {
    log_rec *rec = arg;
    rec->rc = aranya_quic_set_trust(atomic_load(&rec->ep), alice_id.ca, alice_id.ca_len, rec->carol_pid, 1, NULL, 0,
                                    &rec->revoked);
    atomic_store(&rec->done, 1);
    return NULL;
}

static void test_log_callback_calls_team_allow(void) {
    static log_rec rec;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    uint8_t bob_pid[ARANYA_QUIC_PEER_ID_LEN];
    pthread_t th;

    memset(&rec, 0, sizeof rec);
    atomic_init(&rec.ep, 0);
    atomic_init(&rec.calls, 0);
    atomic_init(&rec.done, 0);
    pid_of(&carol_id, rec.carol_pid);
    pid_of(&bob_id, bob_pid);
    team(rec.tid, 3);
    base_config(&cfg, &alice_id);
    cfg.team_authorization = 1;
    cfg.log_level = ARANYA_QUIC_LOG_WARN;
    cfg.log_callback = allow_on_log;
    cfg.log_callback_user = &rec;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    bob = open_ep(&cfg, b_addr);
    if (alice == 0 || bob == 0) {
        aranya_quic_free(bob);
        aranya_quic_free(alice);
        return;
    }
    atomic_store(&rec.ep, alice);
    CHECK_RC(aranya_quic_team_allow(alice, bob_pid, rec.tid), ARANYA_QUIC_OK);
    /* Accepted: alice gave her verdict, so the connection is up at her. */
    CHECK_RC(aranya_quic_send(bob, a_addr, rec.tid, LABEL, LABEL_LEN, (const uint8_t *)"hi", 2), ARANYA_QUIC_OK);

    if (pthread_create(&th, NULL, set_trust_thread, &rec) != 0) {
        report_failure(__FILE__, __LINE__, "pthread_create failed");
        aranya_quic_free(bob);
        aranya_quic_free(alice);
        return;
    }
    count_check();
    if (!wait_flag(&rec.done)) {
        report_failure(__FILE__, __LINE__,
                       "set_trust did not return: the log callback's team_allow (%d call(s)) waits for the trust "
                       "lock set_trust holds while it logs",
                       atomic_load(&rec.calls));
        pthread_detach(th);
        aranya_quic_free_nowait(alice);
        aranya_quic_free(bob);
        return;
    }
    pthread_join(th, NULL);
    CHECK_RC(rec.rc, ARANYA_QUIC_OK);
    CHECK_EQ(rec.revoked, 1);
    CHECK(atomic_load(&rec.calls) > 0);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

/* ------------------------------------------------------------------------
 * receive_callback_calls_team_allow: team_revoke, called outside a
 * callback, waits for bob's receive callback in progress. That callback
 * calls aranya_quic_team_allow (documented: never blocks beyond a short
 * lock); both calls must return.
 * --------------------------------------------------------------------- */

typedef struct {
    _Atomic aranya_quic_t ep;
    uint8_t bob_pid[ARANYA_QUIC_PEER_ID_LEN], carol_pid[ARANYA_QUIC_PEER_ID_LEN];
    uint8_t tid[ARANYA_QUIC_TEAM_ID_LEN], other_tid[ARANYA_QUIC_TEAM_ID_LEN];
    atomic_int entered, release, allowed, revoked;
    int32_t allow_rc, revoke_rc;
} cb_rec;

static void allow_in_callback(void *user, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    cb_rec *rec = user;
    (void)ch;
    (void)msg;
    (void)len;
    if (atomic_exchange(&rec->entered, 1) != 0) {
        return;
    }
    while (!atomic_load(&rec->release)) {
        sleep_ms(1);
    }
    rec->allow_rc = aranya_quic_team_allow(atomic_load(&rec->ep), rec->carol_pid, rec->other_tid);
    atomic_store(&rec->allowed, 1);
}

static void *team_revoke_thread(void *arg) {
    cb_rec *rec = arg;
    rec->revoke_rc = aranya_quic_team_revoke(atomic_load(&rec->ep), rec->bob_pid, rec->tid, NULL);
    atomic_store(&rec->revoked, 1);
    return NULL;
}

static void test_receive_callback_calls_team_allow(void) {
    static cb_rec rec;
    char a_addr[ARANYA_QUIC_ADDR_MAX], b_addr[ARANYA_QUIC_ADDR_MAX];
    aranya_quic_config cfg;
    aranya_quic_t alice, bob;
    pthread_t th;

    memset(&rec, 0, sizeof rec);
    atomic_init(&rec.ep, 0);
    atomic_init(&rec.entered, 0);
    atomic_init(&rec.release, 0);
    atomic_init(&rec.allowed, 0);
    atomic_init(&rec.revoked, 0);
    pid_of(&bob_id, rec.bob_pid);
    pid_of(&carol_id, rec.carol_pid);
    team(rec.tid, 1);
    team(rec.other_tid, 2);
    base_config(&cfg, &alice_id);
    cfg.team_authorization = 1;
    cfg.receive_callback = allow_in_callback;
    cfg.receive_callback_user = &rec;
    alice = open_ep(&cfg, a_addr);
    base_config(&cfg, &bob_id);
    bob = open_ep(&cfg, b_addr);
    if (alice == 0 || bob == 0) {
        aranya_quic_free(bob);
        aranya_quic_free(alice);
        return;
    }
    atomic_store(&rec.ep, alice);
    CHECK_RC(aranya_quic_team_allow(alice, rec.bob_pid, rec.tid), ARANYA_QUIC_OK);
    CHECK_RC(aranya_quic_send(bob, a_addr, rec.tid, LABEL, LABEL_LEN, (const uint8_t *)"grant", 5), ARANYA_QUIC_OK);
    CHECK(wait_flag(&rec.entered));

    if (pthread_create(&th, NULL, team_revoke_thread, &rec) != 0) {
        report_failure(__FILE__, __LINE__, "pthread_create failed");
        atomic_store(&rec.release, 1);
        aranya_quic_free(bob);
        aranya_quic_free(alice);
        return;
    }
    sleep_ms(200); /* lets team_revoke reach its wait: an ordering aid only */
    atomic_store(&rec.release, 1);
    count_check();
    if (!wait_flag(&rec.allowed) || !wait_flag(&rec.revoked)) {
        report_failure(__FILE__, __LINE__,
                       "deadlock: team_revoke waits for bob's receive callback while holding the trust lock, and "
                       "the callback's team_allow waits for that lock (allowed %d, revoked %d)",
                       atomic_load(&rec.allowed), atomic_load(&rec.revoked));
        pthread_detach(th);
        aranya_quic_free_nowait(alice);
        aranya_quic_free(bob);
        return;
    }
    pthread_join(th, NULL);
    CHECK_RC(rec.allow_rc, ARANYA_QUIC_OK);
    CHECK_RC(rec.revoke_rc, ARANYA_QUIC_OK);
    aranya_quic_free(bob);
    CHECK_RC(aranya_quic_free(alice), ARANYA_QUIC_OK);
}

int main(int argc, char **argv) {
    static const test_case tests[] = {
        {"log_callback_calls_team_allow", test_log_callback_calls_team_allow},
        {"receive_callback_calls_team_allow", test_receive_callback_calls_team_allow},
    };
    return test_main(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
