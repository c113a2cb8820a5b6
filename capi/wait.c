// The blocking receives, written in C so that a waiting thread sleeps on a
// futex and is woken by the kernel: a wait inside Go would park a goroutine
// locked to this C thread, and every wake-up would then go through the Go
// scheduler handing its processor to that thread, which costs several
// times the engine's own latency. The non-blocking work (argument checks,
// taking messages, registering as a sleeper) is aq_receive_try in Go.

#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "_cgo_export.h"
#include "aranya_quic.h"
#include "capi.h"

aq_waiter *aq_waiter_new(void) {
    aq_waiter *w = calloc(1, sizeof *w);
    if (w != NULL) {
        w->refs = 1;
    }
    return w;
}

void aq_waiter_release(aq_waiter *w) {
    if (__atomic_sub_fetch(&w->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(w);
    }
}

static void aq_fail(const char *fn, const char *what) {
    char msg[160];
    int n = snprintf(msg, sizeof msg, "%s: %s", fn, what);
    if (n < 0) {
        n = 0;
    }
    aq_set_last_error(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
}

// aq_sleep waits until w->seq differs from seq, a wake, or the absolute
// CLOCK_MONOTONIC deadline (NULL: none). It returns 0 or ETIMEDOUT.
static int aq_sleep(aq_waiter *w, uint32_t seq, const struct timespec *deadline) {
    long r = syscall(SYS_futex, &w->seq, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seq, deadline,
                     NULL, FUTEX_BITSET_MATCH_ANY);
    if (r == -1 && errno == ETIMEDOUT) {
        return ETIMEDOUT;
    }
    return 0; // woken, seq changed (EAGAIN), or a signal (EINTR): look again
}

// aq_receive_wait runs aq_receive_try until it takes a message, fails, or
// the wait ends. batch selects aranya_quic_receive_batch's behaviour.
static int32_t aq_receive_wait(aranya_quic_t ep, int batch, uint8_t *buf, size_t buf_len,
                               aranya_quic_message *msgs, size_t max_msgs, size_t *out_count,
                               aranya_quic_channel *one, size_t *one_len, int32_t timeout_ms) {
    const char *fn = batch ? "aranya_quic_receive_batch" : "aranya_quic_receive_timeout";
    int fn_id = batch ? AQ_FN_RECEIVE_BATCH : AQ_FN_RECEIVE_TIMEOUT;
    if (timeout_ms == 0) {
        int32_t rc = aq_receive_try(ep, fn_id, buf, buf_len, msgs, max_msgs, out_count, one,
                                    one_len, NULL, NULL);
        if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK && !batch) {
            aq_fail(fn, "no message queued (timeout 0)");
            return ARANYA_QUIC_ERR_TIMEOUT;
        }
        return rc;
    }
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    aq_waiter *w = NULL; // set, with a reference of ours, by the first park
    int32_t rc;
    for (;;) {
        uint32_t seq = 0;
        rc = aq_receive_try(ep, fn_id, buf, buf_len, msgs, max_msgs, out_count, one, one_len, &w,
                            &seq);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK) {
            break;
        }
        // Registered as a sleeper: a message queued from here on changes
        // seq, so the futex wait cannot miss it.
        int timed_out = 0;
        if (!__atomic_load_n(&w->closed, __ATOMIC_ACQUIRE)) {
            timed_out = aq_sleep(w, seq, timeout_ms > 0 ? &deadline : NULL) == ETIMEDOUT;
        }
        __atomic_sub_fetch(&w->sleepers, 1, __ATOMIC_ACQ_REL);
        if (__atomic_load_n(&w->closed, __ATOMIC_ACQUIRE)) {
            aq_fail(fn, "the endpoint was freed while waiting");
            rc = ARANYA_QUIC_ERR_CLOSED;
            break;
        }
        if (timed_out) {
            // A message may have come with the deadline: take it rather
            // than report a timeout with a message queued.
            rc = aq_receive_try(ep, fn_id, buf, buf_len, msgs, max_msgs, out_count, one, one_len,
                                NULL, NULL);
            if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) {
                char what[64];
                snprintf(what, sizeof what, "no message within %d ms", (int)timeout_ms);
                aq_fail(fn, what);
                rc = ARANYA_QUIC_ERR_TIMEOUT;
            }
            break;
        }
    }
    if (w != NULL) {
        aq_waiter_release(w);
    }
    return rc;
}

int32_t aranya_quic_receive_timeout(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
                                    aranya_quic_channel *out_channel, size_t *out_len,
                                    int32_t timeout_ms) {
    return aq_receive_wait(ep, 0, buf, buf_len, NULL, 0, NULL, out_channel, out_len, timeout_ms);
}

int32_t aranya_quic_receive_batch(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
                                  aranya_quic_message *msgs, size_t max_msgs, size_t *out_count,
                                  int32_t timeout_ms) {
    return aq_receive_wait(ep, 1, buf, buf_len, msgs, max_msgs, out_count, NULL, NULL, timeout_ms);
}
