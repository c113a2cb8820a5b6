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
// The config struct before the fields of the non-blocking calls: what the
// aranya_quic_config_init symbol writes, for callers built before them.
#define AQ_CONFIG_V02_SIZE offsetof(aranya_quic_config, max_outbound_bytes_per_peer)

// aq_deliver calls a receive callback for endpoint ep, marking the calling
// thread as inside ep's callback for the length of the call.
void aq_deliver(aranya_quic_receive_callback fn, void *user, aranya_quic_t ep,
                const aranya_quic_channel *channel, const uint8_t *msg, size_t len);
// aq_callback_handle is the handle whose receive callback the calling
// thread is running, or 0.
aranya_quic_t aq_callback_handle(void);

// aq_log calls a log callback of endpoint ep (0 while it is being
// created), marking the thread as inside ep's callbacks as aq_deliver
// does; msg is NUL-terminated after len bytes.
void aq_log(aranya_quic_log_callback fn, void *user, aranya_quic_t ep, uint32_t level, const char *msg,
            size_t len);

#endif
