// Private declarations shared by the cgo preambles and capi.c. Not installed.
#ifndef ARANYA_QUIC_CAPI_H
#define ARANYA_QUIC_CAPI_H

#include <stddef.h>

#include "aranya_quic.h"

// Size of the thread-local last-error buffer, NUL included.
#define AQ_LAST_ERROR_MAX 1024

// aq_set_last_error copies len bytes of msg (truncated to fit) into the
// calling thread's last-error buffer.
void aq_set_last_error(const char *msg, size_t len);

// cgo writes its own prototypes of the exports without const; these
// typedefs give the Go exports the header's const-qualified types, so the
// generated prototypes match include/aranya_quic.h exactly.
typedef const char aq_cchar;
typedef const uint8_t aq_cbytes;
typedef const aranya_quic_config aq_cconfig;
typedef const aranya_quic_buf aq_cbuf;

// The struct sizes of version 0.1, the smallest struct_size accepted:
// fields appended since are read or written only when struct_size covers
// them.
#define AQ_CONFIG_V01_SIZE offsetof(aranya_quic_config, connect_timeout_ms)
#define AQ_STATS_V01_SIZE offsetof(aranya_quic_stats, messages_unconfirmed)

// aq_waiter is where C threads wait for received messages without the Go
// scheduler: aranya_quic_receive_timeout and aranya_quic_receive_batch
// sleep on seq (a futex) in C, and the engine, which sees sleepers under the
// receive queue's lock, bumps seq and wakes one of them per message. The
// struct lives in C memory, reference counted: the endpoint holds one
// reference and every waiting thread one, so a thread still waking up when
// the handle is freed touches valid memory. Fields are accessed atomically
// from both languages.
typedef struct aq_waiter {
    uint32_t seq;      // futex word: changes on every wake
    uint32_t sleepers; // threads registered to wait (a push wakes one)
    uint32_t refs;
    uint32_t closed; // set when free starts: waits end with ERR_CLOSED
} aq_waiter;

// aq_waiter_new returns a waiter with one reference, or NULL when out of
// memory.
aq_waiter *aq_waiter_new(void);
// aq_waiter_release drops a reference, freeing the waiter with the last.
void aq_waiter_release(aq_waiter *w);

// How aq_receive_try reports errors: the public function it runs for.
#define AQ_FN_RECEIVE_TIMEOUT 0
#define AQ_FN_RECEIVE_BATCH 1

#endif
