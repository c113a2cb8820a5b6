/* Prints the C compiler's view of include/aranya_quic.h as "name value"
 * lines: struct sizes, alignments, field offsets and sizes, and every
 * constant. tests/layout.rs compiles and runs it and compares with Rust. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "aranya_quic.h"

#define SIZE(T) printf("size %s %zu\nalign %s %zu\n", #T, sizeof(T), #T, _Alignof(T))
#define FIELD(T, F) printf("offset %s.%s %zu\nfsize %s.%s %zu\n", #T, #F, offsetof(T, F), #T, #F, sizeof(((T *)0)->F))
/* A field whose Rust name differs (a Rust keyword gets a trailing '_'). */
#define FIELD_AS(T, F, R) printf("offset %s.%s %zu\nfsize %s.%s %zu\n", #T, R, offsetof(T, F), #T, R, sizeof(((T *)0)->F))
#define CONST(C) printf("const %s %lld\n", #C, (long long)(C))

/* The offsets above cannot see a changed parameter list, so the trust
 * calls' lists, as src/lib.rs declares them, are pinned here: a header
 * change that src/lib.rs has not followed stops this file compiling. */
#define SIGNATURE(F, T) _Static_assert(__builtin_types_compatible_p(__typeof__(&F), T), #F ": update src/lib.rs, then this line")
SIGNATURE(aranya_quic_set_trust, int32_t (*)(aranya_quic_t, const uint8_t *, size_t, const uint8_t *, size_t,
                                             uint8_t *, size_t, size_t *));
SIGNATURE(aranya_quic_set_identity, int32_t (*)(aranya_quic_t, const uint8_t *, size_t, const uint8_t *, size_t));
SIGNATURE(aranya_quic_team_allow, int32_t (*)(aranya_quic_t, const uint8_t *, const uint8_t *));
SIGNATURE(aranya_quic_team_revoke, int32_t (*)(aranya_quic_t, const uint8_t *, const uint8_t *, uint32_t *));
SIGNATURE(aranya_quic_connections, int32_t (*)(aranya_quic_t, aranya_quic_connection_info *, size_t, size_t, size_t *));
SIGNATURE(aranya_quic_peer_id_from_pem, int32_t (*)(const uint8_t *, size_t, uint8_t *));

int main(void) {
    SIZE(aranya_quic_t);

    SIZE(aranya_quic_config);
    FIELD(aranya_quic_config, struct_size);
    FIELD(aranya_quic_config, bind_addr);
    FIELD(aranya_quic_config, cert_pem);
    FIELD(aranya_quic_config, cert_pem_len);
    FIELD(aranya_quic_config, key_pem);
    FIELD(aranya_quic_config, key_pem_len);
    FIELD(aranya_quic_config, ca_pem);
    FIELD(aranya_quic_config, ca_pem_len);
    FIELD(aranya_quic_config, max_connections);
    FIELD(aranya_quic_config, idle_timeout_ms);
    FIELD(aranya_quic_config, send_timeout_ms);
    FIELD(aranya_quic_config, max_message_size);
    FIELD(aranya_quic_config, max_queue_bytes);
    FIELD(aranya_quic_config, pinned_peers);
    FIELD(aranya_quic_config, pinned_peers_len);
    FIELD(aranya_quic_config, keep_alive_ms);
    FIELD(aranya_quic_config, drain_timeout_ms);
    FIELD(aranya_quic_config, handshake_timeout_ms);
    FIELD(aranya_quic_config, max_queue_messages);
    FIELD(aranya_quic_config, max_channels_per_peer);
    FIELD(aranya_quic_config, congestion_control);
    FIELD(aranya_quic_config, log_level);
    FIELD(aranya_quic_config, send_buffer_bytes);
    FIELD(aranya_quic_config, stateless_reset_key);
    FIELD(aranya_quic_config, connect_timeout_ms);
    FIELD(aranya_quic_config, receive_callback);
    FIELD(aranya_quic_config, receive_callback_user);
    FIELD(aranya_quic_config, max_outbound_bytes_per_peer);
    FIELD(aranya_quic_config, max_outbound_bytes);
    FIELD(aranya_quic_config, max_events);
    FIELD(aranya_quic_config, resolve_timeout_ms);
    FIELD(aranya_quic_config, log_callback);
    FIELD(aranya_quic_config, log_callback_user);
    FIELD(aranya_quic_config, team_authorization);

    SIZE(aranya_quic_channel);
    FIELD(aranya_quic_channel, addr);
    FIELD(aranya_quic_channel, kind);
    FIELD(aranya_quic_channel, sync_type);
    FIELD(aranya_quic_channel, team_id);
    FIELD(aranya_quic_channel, label);
    FIELD(aranya_quic_channel, label_len);
    FIELD(aranya_quic_channel, peer_id);

    SIZE(aranya_quic_stats);
    FIELD(aranya_quic_stats, struct_size);
    FIELD(aranya_quic_stats, open_connections);
    FIELD(aranya_quic_stats, dials);
    FIELD(aranya_quic_stats, accepts);
    FIELD(aranya_quic_stats, evictions);
    FIELD(aranya_quic_stats, handshake_failures);
    FIELD(aranya_quic_stats, open_streams);
    FIELD(aranya_quic_stats, messages_sent);
    FIELD(aranya_quic_stats, bytes_sent);
    FIELD(aranya_quic_stats, messages_received);
    FIELD(aranya_quic_stats, bytes_received);
    FIELD(aranya_quic_stats, queue_messages);
    FIELD(aranya_quic_stats, queue_bytes);
    FIELD(aranya_quic_stats, streams_reset);
    FIELD(aranya_quic_stats, connections_lost);
    FIELD(aranya_quic_stats, congestion_control);
    FIELD(aranya_quic_stats, messages_unconfirmed);
    FIELD(aranya_quic_stats, outbound_messages);
    FIELD(aranya_quic_stats, outbound_bytes);
    FIELD(aranya_quic_stats, sends_failed);
    FIELD(aranya_quic_stats, events_dropped);
    FIELD(aranya_quic_stats, connections_revoked);
    FIELD(aranya_quic_stats, messages_revoked);
    FIELD(aranya_quic_stats, streams_refused);

    SIZE(aranya_quic_message);
    FIELD(aranya_quic_message, channel);
    FIELD(aranya_quic_message, offset);
    FIELD(aranya_quic_message, len);

    SIZE(aranya_quic_buf);
    FIELD(aranya_quic_buf, data);
    FIELD(aranya_quic_buf, len);

    SIZE(aranya_quic_event);
    FIELD(aranya_quic_event, struct_size);
    FIELD_AS(aranya_quic_event, type, "type_");
    FIELD(aranya_quic_event, error_code);
    FIELD(aranya_quic_event, id);
    FIELD(aranya_quic_event, addr);
    FIELD(aranya_quic_event, peer_id);
    FIELD(aranya_quic_event, channel);
    FIELD(aranya_quic_event, unconfirmed);
    FIELD(aranya_quic_event, dropped_before);
    FIELD(aranya_quic_event, reason);

    SIZE(aranya_quic_connection_info);
    FIELD(aranya_quic_connection_info, struct_size);
    FIELD(aranya_quic_connection_info, dialed);
    FIELD(aranya_quic_connection_info, draining);
    FIELD(aranya_quic_connection_info, addr);
    FIELD(aranya_quic_connection_info, peer_id);
    FIELD(aranya_quic_connection_info, connected_unix_ms);
    FIELD(aranya_quic_connection_info, connected_ms);
    FIELD(aranya_quic_connection_info, smoothed_rtt_us);
    FIELD(aranya_quic_connection_info, min_rtt_us);
    FIELD(aranya_quic_connection_info, latest_rtt_us);
    FIELD(aranya_quic_connection_info, congestion_window);
    FIELD(aranya_quic_connection_info, bytes_in_flight);
    FIELD(aranya_quic_connection_info, packets_sent);
    FIELD(aranya_quic_connection_info, packets_received);
    FIELD(aranya_quic_connection_info, packets_lost);
    FIELD(aranya_quic_connection_info, messages_sent);
    FIELD(aranya_quic_connection_info, bytes_sent);
    FIELD(aranya_quic_connection_info, messages_received);
    FIELD(aranya_quic_connection_info, bytes_received);
    FIELD(aranya_quic_connection_info, congestion_control);

    CONST(ARANYA_QUIC_VERSION_MAJOR);
    CONST(ARANYA_QUIC_VERSION_MINOR);
    CONST(ARANYA_QUIC_VERSION_PATCH);
    CONST(ARANYA_QUIC_VERSION_NUMBER);
    printf("str ARANYA_QUIC_VERSION_STRING %s\n", ARANYA_QUIC_VERSION_STRING);
    CONST(ARANYA_QUIC_TEAM_ID_LEN);
    CONST(ARANYA_QUIC_LABEL_MAX);
    CONST(ARANYA_QUIC_ADDR_MAX);
    CONST(ARANYA_QUIC_PEER_ID_LEN);
    CONST(ARANYA_QUIC_PEER_ADDR_MAX);
    CONST(ARANYA_QUIC_FINGERPRINT_LEN);
    CONST(ARANYA_QUIC_RESET_KEY_LEN);
    CONST(ARANYA_QUIC_OK);
    CONST(ARANYA_QUIC_ERR_WOULD_BLOCK);
    CONST(ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    CONST(ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    CONST(ARANYA_QUIC_ERR_INVALID_HANDLE);
    CONST(ARANYA_QUIC_ERR_CLOSED);
    CONST(ARANYA_QUIC_ERR_TIMEOUT);
    CONST(ARANYA_QUIC_ERR_TOO_LARGE);
    CONST(ARANYA_QUIC_ERR_CONNECTION);
    CONST(ARANYA_QUIC_ERR_TLS);
    CONST(ARANYA_QUIC_ERR_INTERNAL);
    CONST(ARANYA_QUIC_ERR_BAD_ADDRESS);
    CONST(ARANYA_QUIC_ERR_IO);
    CONST(ARANYA_QUIC_ERR_UNCONFIRMED);
    CONST(ARANYA_QUIC_ERR_RESOLVE);
    CONST(ARANYA_QUIC_ERR_NOT_AUTHORIZED);
    CONST(ARANYA_QUIC_KIND_CHANNEL);
    CONST(ARANYA_QUIC_KIND_SYNC);
    CONST(ARANYA_QUIC_CC_DEFAULT);
    CONST(ARANYA_QUIC_CC_RENO);
    CONST(ARANYA_QUIC_CC_BBR2);
    CONST(ARANYA_QUIC_LOG_OFF);
    CONST(ARANYA_QUIC_LOG_ERROR);
    CONST(ARANYA_QUIC_LOG_WARN);
    CONST(ARANYA_QUIC_LOG_INFO);
    CONST(ARANYA_QUIC_LOG_DEBUG);
    CONST(ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS);
    CONST(ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS);
    CONST(ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS);
    CONST(ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS);
    CONST(ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS);
    CONST(ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS);
    CONST(ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE);
    CONST(ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES);
    CONST(ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES);
    CONST(ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER);
    CONST(ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES);
    CONST(ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT);
    CONST(ARANYA_QUIC_DISABLED);
    CONST(ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER);
    CONST(ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES);
    CONST(ARANYA_QUIC_DEFAULT_MAX_EVENTS);
    CONST(ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS);
    CONST(ARANYA_QUIC_EVENT_PEER_CONNECTED);
    CONST(ARANYA_QUIC_EVENT_PEER_DISCONNECTED);
    CONST(ARANYA_QUIC_EVENT_SEND_FAILED);
    CONST(ARANYA_QUIC_EVENT_CLOSE_FINISHED);
    CONST(ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED);
    CONST(ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED);
    /* UINT64_MAX: printed through long long as -1, as Rust's `as i64`. */
    CONST(ARANYA_QUIC_UNKNOWN);
    CONST(ARANYA_QUIC_KNOWN_PEERS_MAX);
    return 0;
}
