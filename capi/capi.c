// The functions of the C API that need no Go: config_init, strerror,
// last_error, version, and the thread-local last-error buffer that the Go
// exports fill through aq_set_last_error.

#include <string.h>

#include "aranya_quic.h"
#include "capi.h"

static __thread char aq_last_error_buf[AQ_LAST_ERROR_MAX];

void aq_set_last_error(const char *msg, size_t len) {
    if (len >= sizeof aq_last_error_buf) {
        len = sizeof aq_last_error_buf - 1;
    }
    if (len > 0) {
        memcpy(aq_last_error_buf, msg, len);
    }
    aq_last_error_buf[len] = '\0';
}

const char *aranya_quic_last_error(void) {
    return aq_last_error_buf;
}

int32_t aranya_quic_config_init_sized(aranya_quic_config *cfg, size_t size) {
    static const char null_msg[] = "aranya_quic_config_init: cfg is NULL";
    static const char size_msg[] = "aranya_quic_config_init_sized: size is smaller than the 0.1 struct";
    if (cfg == NULL) {
        aq_set_last_error(null_msg, sizeof null_msg - 1);
        return ARANYA_QUIC_ERR_INVALID_ARGUMENT;
    }
    if (size < AQ_CONFIG_V01_SIZE) {
        aq_set_last_error(size_msg, sizeof size_msg - 1);
        return ARANYA_QUIC_ERR_INVALID_ARGUMENT;
    }
    if (size > sizeof *cfg) {
        size = sizeof *cfg;
    }
    memset(cfg, 0, size);
    cfg->struct_size = (uint32_t)size;
    return ARANYA_QUIC_OK;
}

// The symbol programs built against older headers call: it writes no more
// than the struct had before the fields of the non-blocking calls. The
// parentheses keep the header's macro of the same name from expanding.
int32_t(aranya_quic_config_init)(aranya_quic_config *cfg) {
    return aranya_quic_config_init_sized(cfg, AQ_CONFIG_V02_SIZE);
}

const char *aranya_quic_strerror(int32_t code) {
    switch (code) {
    case ARANYA_QUIC_OK:
        return "success";
    case ARANYA_QUIC_ERR_WOULD_BLOCK:
        return "would block (no message or event queued, or the outbound queue is full)";
    case ARANYA_QUIC_ERR_BUFFER_TOO_SMALL:
        return "buffer too small";
    case ARANYA_QUIC_ERR_INVALID_ARGUMENT:
        return "invalid argument";
    case ARANYA_QUIC_ERR_INVALID_HANDLE:
        return "invalid handle";
    case ARANYA_QUIC_ERR_CLOSED:
        return "endpoint closed";
    case ARANYA_QUIC_ERR_TIMEOUT:
        return "timed out";
    case ARANYA_QUIC_ERR_TOO_LARGE:
        return "message too large";
    case ARANYA_QUIC_ERR_CONNECTION:
        return "connection failed";
    case ARANYA_QUIC_ERR_TLS:
        return "TLS authentication failed";
    case ARANYA_QUIC_ERR_INTERNAL:
        return "internal error";
    case ARANYA_QUIC_ERR_BAD_ADDRESS:
        return "bad address";
    case ARANYA_QUIC_ERR_IO:
        return "I/O error";
    case ARANYA_QUIC_ERR_UNCONFIRMED:
        return "accepted messages not confirmed by the peer";
    case ARANYA_QUIC_ERR_RESOLVE:
        return "host name not resolved";
    case ARANYA_QUIC_ERR_NOT_AUTHORIZED:
        return "not authorized by the peer for this team";
    default:
        return "unknown error code";
    }
}

const char *aranya_quic_version(void) {
    return ARANYA_QUIC_VERSION_STRING;
}

// The handle whose receive callback runs on this thread, so that
// aranya_quic_free can refuse to free it from inside its own callback
// (which would wait for that very call to return).
static __thread aranya_quic_t aq_callback_handle_tls;

void aq_deliver(aranya_quic_receive_callback fn, void *user, aranya_quic_t ep,
                const aranya_quic_channel *channel, const uint8_t *msg, size_t len) {
    aranya_quic_t outer = aq_callback_handle_tls;
    aq_callback_handle_tls = ep;
    fn(user, channel, msg, len);
    aq_callback_handle_tls = outer;
}

aranya_quic_t aq_callback_handle(void) {
    return aq_callback_handle_tls;
}

void aq_log(aranya_quic_log_callback fn, void *user, aranya_quic_t ep, uint32_t level, const char *msg,
            size_t len) {
    aranya_quic_t outer = aq_callback_handle_tls;
    aq_callback_handle_tls = ep;
    fn(user, level, msg, len);
    aq_callback_handle_tls = outer;
}
