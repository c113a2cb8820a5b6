/*
 * aranya_quic.h - C API of aranya-quic: Aranya QUIC Channels.
 *
 * This header is hand-written and is the source of truth of the ABI of
 * libaranya_quic.so. The Go exports in capi/ include it, so any drift between
 * this file and the library fails the library's build.
 *
 * Overview
 * --------
 * An endpoint (aranya_quic_t) owns one UDP socket that both listens and
 * dials. It keeps at most one QUIC connection per peer address (at most
 * max_connections at once, least recently used evicted gracefully) and any
 * number of channels on each connection. A channel is (peer address, team
 * id, label); Aranya sync messages travel on their own streams, one per
 * sync type. Every peer authenticates with a certificate from a trusted CA
 * (mutual TLS 1.3).
 *
 *   aranya_quic_config cfg;
 *   aranya_quic_config_init(&cfg);
 *   cfg.bind_addr = "127.0.0.1:4433";
 *   cfg.cert_pem = cert; cfg.cert_pem_len = cert_len;   (likewise key, ca)
 *   aranya_quic_t ep;
 *   if (aranya_quic_new(&cfg, &ep) != ARANYA_QUIC_OK) { ...aranya_quic_last_error()... }
 *   aranya_quic_send(ep, "127.0.0.1:4434", team_id, "chat", 4, msg, msg_len);
 *   aranya_quic_receive_timeout(ep, buf, sizeof buf, &channel, &len, 1000);
 *   aranya_quic_free(ep);
 *
 * Receiving: from the queue, one message per call (aranya_quic_receive,
 * aranya_quic_receive_timeout, or aranya_quic_receive_fd with poll), many
 * per call (aranya_quic_receive_batch), or, for the lowest latency, through
 * a receive callback set in the config (aranya_quic_receive_callback),
 * which the library calls on its own threads so that no thread of the
 * caller waits to be woken. Sending: one message per call, or many to one
 * channel per call (aranya_quic_send_batch).
 *
 * Conventions
 * -----------
 * - Every function except the three returning `const char *` returns an
 *   int32_t: ARANYA_QUIC_OK (0) or a negative ARANYA_QUIC_ERR_* code. Codes
 *   are never renumbered; new codes may be added, so treat unknown negative
 *   values as errors (aranya_quic_strerror() accepts any value).
 * - On every non-OK return the calling thread's detail message is set; read
 *   it with aranya_quic_last_error(). Successful calls leave it unchanged.
 * - Output parameters are written only on the returns that say so.
 * - A pointer parameter documented as "may be NULL only if its length is 0"
 *   gives ARANYA_QUIC_ERR_INVALID_ARGUMENT when NULL with a non-zero length.
 *   Every other pointer parameter must be non-NULL, else
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT.
 * - The library never keeps a pointer the caller passed in after the call
 *   returns: the caller owns all its buffers and may reuse them at once.
 *   The one exception is the config's receive_callback and
 *   receive_callback_user, which the endpoint keeps until
 *   aranya_quic_free returns.
 * - A length is trusted to describe its buffer: the library reads (or
 *   writes) exactly that many bytes, as memcpy would. A msg_len larger than
 *   the buffer behind msg is the caller's bug (undefined behaviour) and
 *   cannot be detected; lengths over a documented limit (label_len over
 *   ARANYA_QUIC_LABEL_MAX, msg_len over max_message_size) are rejected
 *   before any byte is read.
 * - Every function may be called from any thread at any time, on the same
 *   or on different handles, including while another thread frees the
 *   handle (that call then returns ARANYA_QUIC_ERR_CLOSED or
 *   ARANYA_QUIC_ERR_INVALID_HANDLE; it never crashes).
 * - Any function may return ARANYA_QUIC_ERR_INTERNAL: a bug in the library
 *   was caught (a Go panic never reaches the host).
 * - The library never writes to stdout, and to stderr only when
 *   log_level is non-zero.
 *
 * Read docs/EMBEDDING.md before loading the library into a host process
 * (never dlclose it; no fork() without exec; SA_ONSTACK signal handlers).
 */
#ifndef ARANYA_QUIC_H
#define ARANYA_QUIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Version
 * --------------------------------------------------------------------- */

#define ARANYA_QUIC_VERSION_MAJOR 0
#define ARANYA_QUIC_VERSION_MINOR 1
#define ARANYA_QUIC_VERSION_PATCH 0
#define ARANYA_QUIC_VERSION_STRING "0.1.0"
/* MAJOR * 1000000 + MINOR * 1000 + PATCH, for #if comparisons. */
#define ARANYA_QUIC_VERSION_NUMBER 1000

/* ------------------------------------------------------------------------
 * Limits
 * --------------------------------------------------------------------- */

/* Size of an Aranya team id, in bytes. */
#define ARANYA_QUIC_TEAM_ID_LEN 32
/* Longest label, in bytes of UTF-8 (without a terminating NUL). */
#define ARANYA_QUIC_LABEL_MAX 255
/* Size of an address buffer including the terminating NUL: "ip:port" or
 * "[ipv6]:port". Address strings passed in must be shorter than this. */
#define ARANYA_QUIC_ADDR_MAX 64
/* Size of a peer id: the SHA-256 of the peer's leaf certificate (DER). */
#define ARANYA_QUIC_PEER_ID_LEN 32
/* Size of one pinned peer fingerprint (SHA-256), see pinned_peers. */
#define ARANYA_QUIC_FINGERPRINT_LEN 32
/* Size of a stateless reset key, see stateless_reset_key. */
#define ARANYA_QUIC_RESET_KEY_LEN 32

/* ------------------------------------------------------------------------
 * Return codes (int32_t). Never renumbered.
 * --------------------------------------------------------------------- */

/* Success. */
#define ARANYA_QUIC_OK 0
/* receive: the queue is empty. Not a failure: try again later (poll the
 * fd from aranya_quic_receive_fd, or use aranya_quic_receive_timeout). */
#define ARANYA_QUIC_ERR_WOULD_BLOCK (-1)
/* An output buffer is too small. *out_len holds the size needed; for
 * receive the message stays queued, so retry with a bigger buffer. */
#define ARANYA_QUIC_ERR_BUFFER_TOO_SMALL (-2)
/* A parameter is invalid: a NULL pointer, a NULL buffer with a non-zero
 * length, a label over ARANYA_QUIC_LABEL_MAX bytes or not UTF-8, a config
 * field out of range, struct_size too small, a PEM input that does not
 * parse (the detail names the bad CA block), an encrypted private key, or
 * our own certificate outside its validity period. */
#define ARANYA_QUIC_ERR_INVALID_ARGUMENT (-3)
/* The handle is 0, was never returned by aranya_quic_new, or was freed. */
#define ARANYA_QUIC_ERR_INVALID_HANDLE (-4)
/* The endpoint is being freed: the call raced with aranya_quic_free (for
 * example a receive_timeout blocked while another thread frees it). */
#define ARANYA_QUIC_ERR_CLOSED (-5)
/* A time limit passed: the send timeout (dial, handshake, peer
 * confirmation, backpressure) or receive_timeout's timeout. */
#define ARANYA_QUIC_ERR_TIMEOUT (-6)
/* The message is larger than max_message_size, or than the limit the peer
 * announced when the connection was set up (the detail names it). */
#define ARANYA_QUIC_ERR_TOO_LARGE (-7)
/* The connection to the peer could not be made, or died while sending
 * (unreachable peer, connection refused, peer closed it, idle timeout).
 * The next send dials again. */
#define ARANYA_QUIC_ERR_CONNECTION (-8)
/* TLS authentication failed: we rejected the peer's certificate, or the
 * peer rejected ours (not from a CA it trusts, or not pinned). */
#define ARANYA_QUIC_ERR_TLS (-9)
/* A bug in the library was caught (for example a Go panic). The handle
 * stays valid, but the call's effect is unknown. */
#define ARANYA_QUIC_ERR_INTERNAL (-10)
/* An address string is malformed: not "ip:port" or "[ipv6]:port" with the
 * port in plain decimal (no sign, no leading zeros), not NUL terminated
 * within ARANYA_QUIC_ADDR_MAX bytes, port 0 for a peer, a peer address that
 * is not unicast, a bind address that is multicast or broadcast, or a peer
 * address that is this endpoint's own. */
#define ARANYA_QUIC_ERR_BAD_ADDRESS (-11)
/* An operating-system call failed, for example the UDP socket could not be
 * bound (address in use) or the notification pipe could not be made. */
#define ARANYA_QUIC_ERR_IO (-12)
/* Messages that send accepted were not confirmed by the peer before the
 * library gave up on them: aranya_quic_close or aranya_quic_free whose
 * drain did not finish within drain_timeout_ms, or a connection that died
 * while draining. They may or may not have been delivered. The detail
 * message (aranya_quic_last_error) says how many; stats'
 * messages_unconfirmed counts them too. */
#define ARANYA_QUIC_ERR_UNCONFIRMED (-13)

/* ------------------------------------------------------------------------
 * Message kinds (aranya_quic_channel.kind)
 * --------------------------------------------------------------------- */

/* An application message on a (peer, team id, label) channel. */
#define ARANYA_QUIC_KIND_CHANNEL 1
/* An Aranya sync message; sync_type says which. */
#define ARANYA_QUIC_KIND_SYNC 2

/* ------------------------------------------------------------------------
 * Congestion control (aranya_quic_config.congestion_control)
 * --------------------------------------------------------------------- */

/* The library's default: BBRv2 when the library was built with its
 * congestion-control hook (make lib), else NewReno. aranya_quic_get_stats
 * reports which one connections use. */
#define ARANYA_QUIC_CC_DEFAULT 0
/* NewReno. */
#define ARANYA_QUIC_CC_RENO 1
/* BBRv2. aranya_quic_new returns ARANYA_QUIC_ERR_INVALID_ARGUMENT when this
 * build of the library lacks it. */
#define ARANYA_QUIC_CC_BBR2 2

/* ------------------------------------------------------------------------
 * Log levels (aranya_quic_config.log_level). Logs go to stderr.
 * --------------------------------------------------------------------- */

#define ARANYA_QUIC_LOG_OFF 0
#define ARANYA_QUIC_LOG_ERROR 1
#define ARANYA_QUIC_LOG_WARN 2
#define ARANYA_QUIC_LOG_INFO 3
#define ARANYA_QUIC_LOG_DEBUG 4

/* ------------------------------------------------------------------------
 * Defaults, used for config fields left 0
 * --------------------------------------------------------------------- */

#define ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS 32
#define ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS 30000
/* keep_alive_ms 0: idle_timeout_ms / 3. */
#define ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS 10000
#define ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS 5000
#define ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE (16u * 1024u * 1024u) /* 16 MiB */
#define ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES (64u * 1024u * 1024u)  /* 64 MiB */
#define ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES 65536
#define ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER 1024
#define ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES (256u * 1024u)       /* 256 KiB */
/* Largest accepted max_message_size: 1 GiB. */
#define ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT (1024u * 1024u * 1024u)
/* For send_timeout_ms and keep_alive_ms: no send timeout / no keep-alives. */
#define ARANYA_QUIC_DISABLED UINT32_MAX

/* ------------------------------------------------------------------------
 * Types
 * --------------------------------------------------------------------- */

/* An endpoint handle. 0 is never a valid handle; handles are never reused
 * within a process. */
typedef uint64_t aranya_quic_t;

/*
 * Endpoint configuration. Initialize with aranya_quic_config_init (which
 * sets struct_size and zeroes the rest), then set fields. Zero fields take
 * the defaults above. aranya_quic_new reads the struct and every buffer it
 * points to only during the call; the caller keeps ownership.
 *
 * Versioning: fields are only ever appended. aranya_quic_new requires
 * struct_size to be at least the size of the 0.1 struct (up to and
 * including stateless_reset_key), reads no byte past struct_size, and reads
 * a field appended later only when struct_size covers it (otherwise the
 * field takes its default), so callers built against an older header keep
 * working. aranya_quic_config_init writes sizeof the struct of
 * the library it is called in: a caller built against an older header than
 * the library must instead zero its struct itself and set struct_size to
 * its own sizeof(aranya_quic_config).
 */
struct aranya_quic_channel;

/*
 * aranya_quic_receive_callback: what aranya_quic_config.receive_callback
 * points to (added in 0.2). Called once per received message, on a thread
 * of the library, instead of queueing the message: the lowest-latency way
 * to receive, since no thread of the caller has to be woken.
 *
 * user: cfg->receive_callback_user.
 * channel: where the message came from (as aranya_quic_receive reports
 *     it); valid only during the call.
 * msg, len: the message; msg is valid only during the call (copy what
 *     you keep), and NULL when len is 0.
 *
 * Order and threads: the messages of one channel come one call at a time,
 * in the order sent; calls for different channels may run at the same
 * time on different threads. While a call runs, its channel is not read
 * further, so a slow callback pushes back on that channel's sender
 * (nothing is dropped). A message counts as received once the call
 * returns; the library confirms it to its sender with the next receipt
 * (docs/PROTOCOL.md, "Receipts").
 * The callback may call any function of this library, including
 * aranya_quic_send on the same handle (to reply), except aranya_quic_free
 * of an endpoint that has a receive_callback (its own or another's): that
 * returns ARANYA_QUIC_ERR_INVALID_ARGUMENT and frees nothing. An
 * aranya_quic_close of the sending peer's address may wait until
 * drain_timeout_ms, since that peer's stream cannot finish while its
 * callback runs. aranya_quic_free waits for the calls in progress to
 * return and makes no more once it started.
 */
typedef void (*aranya_quic_receive_callback)(void *user, const struct aranya_quic_channel *channel,
                                             const uint8_t *msg, size_t len);

typedef struct aranya_quic_config {
    /* sizeof(aranya_quic_config), set by aranya_quic_config_init. */
    uint32_t struct_size;
    /* Local UDP address, NUL-terminated, e.g. "127.0.0.1:0" (port 0: any
     * free port, see aranya_quic_local_addr) or "[::]:4433". Required. A
     * unicast or unspecified IP literal; multicast and broadcast addresses
     * are ARANYA_QUIC_ERR_BAD_ADDRESS. The socket is never shared
     * (no SO_REUSEADDR): a port in use is ARANYA_QUIC_ERR_IO. */
    const char *bind_addr;
    /* This endpoint's certificate chain (leaf first), PEM. Required. */
    const uint8_t *cert_pem;
    size_t cert_pem_len;
    /* The private key of the leaf certificate, PEM. Required. */
    const uint8_t *key_pem;
    size_t key_pem_len;
    /* Certificates of the CAs whose peers are trusted, PEM. Required. */
    const uint8_t *ca_pem;
    size_t ca_pem_len;
    /* Most connections kept at once; when full, the least recently used is
     * drained and closed. 0: ARANYA_QUIC_DEFAULT_MAX_CONNECTIONS. */
    uint32_t max_connections;
    /* A connection that heard nothing from its peer for this long is
     * closed. 0: ARANYA_QUIC_DEFAULT_IDLE_TIMEOUT_MS. */
    uint32_t idle_timeout_ms;
    /* Bounds one send, including a dial, the handshake, the peer's
     * confirmation and waiting under backpressure. 0:
     * ARANYA_QUIC_DEFAULT_SEND_TIMEOUT_MS; ARANYA_QUIC_DISABLED: none. */
    uint32_t send_timeout_ms;
    /* Largest message sent or accepted, in bytes, at most
     * ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT. 0:
     * ARANYA_QUIC_DEFAULT_MAX_MESSAGE_SIZE. */
    uint64_t max_message_size;
    /* Bound of the receive queue in bytes; when full, the library stops
     * reading and QUIC flow control pushes back on senders. Must be at
     * least max_message_size (else ARANYA_QUIC_ERR_INVALID_ARGUMENT). 0:
     * ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES, raised to max_message_size if
     * that is larger. */
    uint64_t max_queue_bytes;

    /* --- fields added after the contract's first draft (still v0.1) --- */

    /* SHA-256 fingerprints of the DER leaf certificates of the only peers
     * accepted, in addition to the CA check: pinned_peers_len fingerprints
     * of ARANYA_QUIC_FINGERPRINT_LEN bytes each, concatenated.
     * pinned_peers_len is a COUNT of fingerprints, not a byte length (the
     * buffer holds pinned_peers_len * 32 bytes). NULL/0: no pinning. May be
     * NULL only if pinned_peers_len is 0. */
    const uint8_t *pinned_peers;
    size_t pinned_peers_len;
    /* Keep-alive period. 0: idle_timeout_ms / 3; ARANYA_QUIC_DISABLED:
     * none (idle connections then time out). */
    uint32_t keep_alive_ms;
    /* Bounds the graceful close of one connection (close, eviction, free).
     * 0: ARANYA_QUIC_DEFAULT_DRAIN_TIMEOUT_MS. */
    uint32_t drain_timeout_ms;
    /* Bounds a dial, the TLS handshake and the peer's confirmation. 0:
     * ARANYA_QUIC_DEFAULT_HANDSHAKE_TIMEOUT_MS. */
    uint32_t handshake_timeout_ms;
    /* Bound of the receive queue in messages. 0:
     * ARANYA_QUIC_DEFAULT_MAX_QUEUE_MESSAGES. */
    uint32_t max_queue_messages;
    /* Most channel streams a peer may have open on one connection at once.
     * 0: ARANYA_QUIC_DEFAULT_MAX_CHANNELS_PER_PEER. */
    uint32_t max_channels_per_peer;
    /* ARANYA_QUIC_CC_DEFAULT, ARANYA_QUIC_CC_RENO or ARANYA_QUIC_CC_BBR2.
     * aranya_quic_get_stats reports the algorithm in use. */
    uint32_t congestion_control;
    /* ARANYA_QUIC_LOG_OFF (0) .. ARANYA_QUIC_LOG_DEBUG; logs go to stderr. */
    uint32_t log_level;
    /* Bytes one channel buffers before send blocks; buffering lets small
     * messages share packets. 0: ARANYA_QUIC_DEFAULT_SEND_BUFFER_BYTES. */
    uint32_t send_buffer_bytes;
    /* Exactly ARANYA_QUIC_RESET_KEY_LEN (32) bytes, read during
     * aranya_quic_new, used as the QUIC stateless reset key; a shorter
     * buffer is the caller's bug (there is no length field to check).
     * NULL: derived from the private key, so that an endpoint restarted
     * with the same identity resets its peers' stale connections at once. */
    const uint8_t *stateless_reset_key;

    /* --- fields added in 0.2; read only when struct_size covers them --- */

    /* Bounds one outgoing dial: the handshake and the peer's confirmation.
     * A peer that does not answer within it fails the send with
     * ARANYA_QUIC_ERR_CONNECTION (a send whose own timeout ends first gets
     * ARANYA_QUIC_ERR_TIMEOUT, and the dial goes on for the sends after
     * it). When set, must be shorter than send_timeout_ms (else
     * ARANYA_QUIC_ERR_INVALID_ARGUMENT). 0:
     * ARANYA_QUIC_DEFAULT_CONNECT_TIMEOUT_MS. */
    uint32_t connect_timeout_ms;
    /* When set, every received message is passed to receive_callback
     * instead of the receive queue, and the receive functions and
     * aranya_quic_receive_fd return ARANYA_QUIC_ERR_INVALID_ARGUMENT. See
     * aranya_quic_receive_callback for when and where it runs. NULL: the
     * receive queue. */
    aranya_quic_receive_callback receive_callback;
    /* Passed unchanged as the first argument of every receive_callback
     * call; the library never reads it. */
    void *receive_callback_user;
} aranya_quic_config;

/* Where a received message came from. */
typedef struct aranya_quic_channel {
    /* The peer's address, NUL-terminated: its listening address, since
     * peers dial from the socket they listen on. Pass it to
     * aranya_quic_send to reply on the same connection. */
    char addr[ARANYA_QUIC_ADDR_MAX];
    /* ARANYA_QUIC_KIND_CHANNEL or ARANYA_QUIC_KIND_SYNC. */
    uint32_t kind;
    /* For ARANYA_QUIC_KIND_SYNC: the sync type; else 0. */
    uint32_t sync_type;
    /* For ARANYA_QUIC_KIND_CHANNEL: the team id; else zeroes. */
    uint8_t team_id[ARANYA_QUIC_TEAM_ID_LEN];
    /* For ARANYA_QUIC_KIND_CHANNEL: the label, label_len bytes of UTF-8
     * followed by a NUL (a label may itself contain NUL bytes: use
     * label_len). Else empty. */
    char label[ARANYA_QUIC_LABEL_MAX + 1];
    size_t label_len;
    /* SHA-256 of the peer's DER leaf certificate: who sent the message. */
    uint8_t peer_id[ARANYA_QUIC_PEER_ID_LEN];
} aranya_quic_channel;

/* Counters since the endpoint started, and current gauges. */
typedef struct aranya_quic_stats {
    /* Set by the caller to sizeof(aranya_quic_stats) before calling
     * aranya_quic_get_stats; the library fills no more than that. */
    uint32_t struct_size;
    uint64_t open_connections;   /* gauge: connections in the map */
    uint64_t dials;              /* outgoing connections attempted */
    uint64_t accepts;            /* incoming connections that completed the handshake */
    uint64_t evictions;          /* connections evicted because the map was full */
    uint64_t handshake_failures; /* dials or accepts that failed TLS or the confirmation */
    uint64_t open_streams;       /* gauge: channel streams open, both directions */
    uint64_t messages_sent;
    uint64_t bytes_sent;         /* payload bytes */
    uint64_t messages_received;  /* messages queued, or passed to the receive callback */
    uint64_t bytes_received;     /* payload bytes */
    uint64_t queue_messages;     /* gauge: messages queued */
    uint64_t queue_bytes;        /* gauge: payload bytes queued */
    uint64_t streams_reset;      /* incoming streams reset for protocol errors */
    uint64_t connections_lost;   /* connections that ended without a graceful close */
    /* Name of the congestion control algorithm the endpoint's connections
     * use, "reno" or "bbr2", NUL-terminated. */
    char congestion_control[16];

    /* --- fields added in 0.2; filled only when struct_size covers them --- */

    /* Messages send accepted that the library gave up on without the
     * peer's confirmation: a close, free or eviction whose drain timed
     * out, a connection that died, a stream the peer reset. */
    uint64_t messages_unconfirmed;
} aranya_quic_stats;

/* One message taken by aranya_quic_receive_batch. (Added in 0.2.) */
typedef struct aranya_quic_message {
    /* Where the message came from, as aranya_quic_receive reports it. */
    aranya_quic_channel channel;
    /* The payload is buf[offset .. offset + len) of the buffer passed to
     * aranya_quic_receive_batch. */
    size_t offset;
    size_t len;
} aranya_quic_message;

/* One message for aranya_quic_send_batch: len bytes at data; data may be
 * NULL only if len is 0. (Added in 0.2.) */
typedef struct aranya_quic_buf {
    const uint8_t *data;
    size_t len;
} aranya_quic_buf;

/* Layout checks (fail to compile if a type is not what the ABI says). */
typedef char aranya_quic_check_handle_size_[sizeof(aranya_quic_t) == 8 ? 1 : -1];
typedef char aranya_quic_check_team_id_size_[
    sizeof(((aranya_quic_channel *)0)->team_id) == ARANYA_QUIC_TEAM_ID_LEN ? 1 : -1];
typedef char aranya_quic_check_config_first_[
    offsetof(aranya_quic_config, struct_size) == 0 ? 1 : -1];
typedef char aranya_quic_check_stats_first_[
    offsetof(aranya_quic_stats, struct_size) == 0 ? 1 : -1];

/* ------------------------------------------------------------------------
 * Functions
 * --------------------------------------------------------------------- */

/*
 * aranya_quic_config_init: zero *cfg and set cfg->struct_size.
 *
 * cfg: the config to initialize (caller-owned).
 * Returns ARANYA_QUIC_OK, or ARANYA_QUIC_ERR_INVALID_ARGUMENT if cfg is
 * NULL.
 */
int32_t aranya_quic_config_init(aranya_quic_config *cfg);

/*
 * aranya_quic_new: create an endpoint and bind its UDP socket. It accepts
 * connections from trusted peers at once.
 *
 * cfg: the configuration; cfg->struct_size must be at least the size of
 *      this version's struct (use aranya_quic_config_init). Read only during
 *      the call.
 * out: receives the new handle on ARANYA_QUIC_OK; untouched otherwise.
 *      Free it with aranya_quic_free.
 * Returns:
 *   ARANYA_QUIC_OK
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT  cfg or out NULL; struct_size too
 *       small; a required field missing; a PEM buffer NULL with a non-zero
 *       length or not parsing; a field out of range (max_queue_bytes below
 *       max_message_size, max_message_size over the limit, unknown
 *       congestion_control or log_level, ARANYA_QUIC_CC_BBR2 in a build
 *       without it).
 *   ARANYA_QUIC_ERR_BAD_ADDRESS  bind_addr malformed.
 *   ARANYA_QUIC_ERR_IO           the socket could not be bound.
 *   ARANYA_QUIC_ERR_INTERNAL
 */
int32_t aranya_quic_new(const aranya_quic_config *cfg, aranya_quic_t *out);

/*
 * aranya_quic_free: close every connection gracefully (bounded by the drain
 * timeout), close the socket and invalidate the handle. From the start of
 * free nothing more is received: what peers send meanwhile is not
 * confirmed to them. Messages still in the receive queue are dropped
 * (logged at WARN: they had been confirmed to their senders); read
 * queue_messages from aranya_quic_get_stats first to know how many. Calls on other threads that are using the
 * handle return ARANYA_QUIC_ERR_CLOSED (a blocked receive_timeout wakes up);
 * free waits for them to return. Afterwards the handle is invalid and the
 * fd from aranya_quic_receive_fd is closed: unregister it from your poller
 * before calling free. Both ends of the fd's pipe are closed by free, so a
 * host that cannot unregister in time (an async runtime with a pending
 * wait) may keep a dup() of the fd: after free the duplicate reads as end of
 * file (readable), which wakes the waiter, and its number cannot be reused
 * until the host closes it.
 *
 * ep: the handle. 0, or a handle already freed (or being freed by another
 *     thread, in which case this returns at once): harmless, returns OK.
 * Blocks for at most drain_timeout_ms + 1 s while the peers confirm what
 * was sent to them, and, on an endpoint with a receive_callback, until the
 * calls in progress return.
 * Returns ARANYA_QUIC_OK (every message accepted on the connections free
 * closed was confirmed by its peer; messages the library had already given
 * up on, on a connection that died earlier, were counted in the stats'
 * messages_unconfirmed then); ARANYA_QUIC_ERR_UNCONFIRMED (the handle is
 * freed all the same; the detail says how many accepted messages the peers
 * did not confirm); ARANYA_QUIC_ERR_INVALID_ARGUMENT when called from a
 * receive_callback on its own handle, or on any handle that has a
 * receive_callback (two callbacks freeing each other's endpoints would wait
 * for each other forever): nothing is freed;
 * ARANYA_QUIC_ERR_INVALID_HANDLE for a number this library never returned;
 * ARANYA_QUIC_ERR_INTERNAL.
 */
int32_t aranya_quic_free(aranya_quic_t ep);

/*
 * aranya_quic_local_addr: the address the endpoint's socket is bound to
 * (useful with port 0), as a NUL-terminated string.
 *
 * buf, buf_len: where to write the string with its NUL. buf may be NULL
 *     only if buf_len is 0 (to query the length).
 *     ARANYA_QUIC_ADDR_MAX bytes are always enough.
 * out_len: receives the string's length without the NUL, on
 *     ARANYA_QUIC_OK and on ARANYA_QUIC_ERR_BUFFER_TOO_SMALL (buf needs
 *     *out_len + 1 bytes).
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_BUFFER_TOO_SMALL,
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT, ARANYA_QUIC_ERR_INVALID_HANDLE,
 * ARANYA_QUIC_ERR_CLOSED, ARANYA_QUIC_ERR_INTERNAL.
 */
int32_t aranya_quic_local_addr(aranya_quic_t ep, char *buf, size_t buf_len, size_t *out_len);

/*
 * aranya_quic_send: send one message on the channel (addr, team_id, label).
 * Reuses the connection to addr or dials it, opens the channel's stream if
 * needed, and returns once the transport accepted the message. An
 * accepted message is delivered exactly once, unless the library gives up
 * on it (a connection that dies, a drain that times out), and then
 * aranya_quic_close or aranya_quic_free returns ARANYA_QUIC_ERR_UNCONFIRMED
 * or the stats' messages_unconfirmed counts it. Blocks while
 * the peer is not reading (backpressure), bounded by send_timeout_ms.
 * Messages of one channel arrive in the order sent; concurrent sends on
 * one channel are never interleaved; sends to different peers never wait
 * on each other. Never returns OK before the peer accepted our certificate.
 *
 * addr: the peer's address, NUL-terminated, "ip:port" or "[ipv6]:port".
 * team_id: ARANYA_QUIC_TEAM_ID_LEN bytes.
 * label, label_len: the label, at most ARANYA_QUIC_LABEL_MAX bytes of
 *     UTF-8 (need not be NUL-terminated). label may be NULL only if
 *     label_len is 0 (the empty label).
 * msg, msg_len: the message, at most max_message_size bytes; may be NULL
 *     only if msg_len is 0.
 * Returns:
 *   ARANYA_QUIC_OK
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT  a NULL pointer; label too long or
 *       not UTF-8.
 *   ARANYA_QUIC_ERR_BAD_ADDRESS  addr malformed, or this endpoint's own
 *       address (refused at once; nothing is dialed).
 *   ARANYA_QUIC_ERR_TOO_LARGE    msg_len over max_message_size, or over
 *       the limit the peer announced (checked once connected, before any
 *       byte is sent; the detail names the peer's limit).
 *   ARANYA_QUIC_ERR_TIMEOUT      the send timeout passed (nothing of the
 *       message was accepted; retrying cannot duplicate it).
 *   ARANYA_QUIC_ERR_CONNECTION   the peer could not be reached (no answer
 *       within connect_timeout_ms) or the connection died (the next send
 *       dials again).
 *   ARANYA_QUIC_ERR_TLS          either side rejected the other's
 *       certificate.
 *   ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 *   ARANYA_QUIC_ERR_INTERNAL
 */
int32_t aranya_quic_send(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
                         const char *label, size_t label_len, const uint8_t *msg,
                         size_t msg_len);

/*
 * aranya_quic_send_sync: send one Aranya sync message of type sync_type to
 * addr. Same behaviour, parameters and return codes as aranya_quic_send,
 * with sync_type in place of team_id and label (no label errors).
 */
int32_t aranya_quic_send_sync(aranya_quic_t ep, const char *addr, uint32_t sync_type,
                              const uint8_t *msg, size_t msg_len);

/*
 * aranya_quic_receive: take the oldest queued message, without blocking.
 *
 * buf, buf_len: where the message is copied; buf may be NULL only if
 *     buf_len is 0 (to query the size of the oldest message).
 * out_channel: receives where the message came from, on ARANYA_QUIC_OK.
 * out_len: receives the message's length on ARANYA_QUIC_OK, and the size
 *     needed on ARANYA_QUIC_ERR_BUFFER_TOO_SMALL.
 * Returns:
 *   ARANYA_QUIC_OK                    a message was taken.
 *   ARANYA_QUIC_ERR_WOULD_BLOCK       the queue is empty.
 *   ARANYA_QUIC_ERR_BUFFER_TOO_SMALL  buf_len < the message's length; the
 *       message stays queued (it is still the oldest).
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT, ARANYA_QUIC_ERR_INVALID_HANDLE,
 *   ARANYA_QUIC_ERR_CLOSED, ARANYA_QUIC_ERR_INTERNAL
 * Several threads may receive at once; each message goes to one of them.
 */
int32_t aranya_quic_receive(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
                            aranya_quic_channel *out_channel, size_t *out_len);

/*
 * aranya_quic_receive_timeout: like aranya_quic_receive, but waits up to
 * timeout_ms milliseconds for a message.
 *
 * timeout_ms: < 0 waits until a message arrives or the handle is freed; 0
 *     does not wait.
 * Returns the codes of aranya_quic_receive, except that an empty queue at
 * the end of the wait gives ARANYA_QUIC_ERR_TIMEOUT (never
 * ARANYA_QUIC_ERR_WOULD_BLOCK), and a wait ended by aranya_quic_free on
 * another thread gives ARANYA_QUIC_ERR_CLOSED.
 */
int32_t aranya_quic_receive_timeout(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
                                    aranya_quic_channel *out_channel, size_t *out_len,
                                    int32_t timeout_ms);

/*
 * aranya_quic_receive_fd: a file descriptor that is readable while the
 * receive queue is non-empty, for poll/epoll/kqueue-style loops (tokio,
 * asyncio). Every call returns the same fd.
 *
 * The fd belongs to the library: never read, write or close it. Wait for
 * readability, then call aranya_quic_receive until it returns
 * ARANYA_QUIC_ERR_WOULD_BLOCK. Readiness is a hint when several threads
 * receive (another thread may take the message first: expect WOULD_BLOCK).
 * The fd stays readable after ARANYA_QUIC_ERR_BUFFER_TOO_SMALL, since the
 * message stays queued. aranya_quic_free closes it: remove it from your
 * poller before freeing.
 *
 * out_fd: receives the fd on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT,
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_IO (the pipe could not be made), ARANYA_QUIC_ERR_INTERNAL.
 */
int32_t aranya_quic_receive_fd(aranya_quic_t ep, int *out_fd);

/*
 * aranya_quic_close: close the connection to addr gracefully: finish its
 * streams, wait until the peer has confirmed every message sent on it,
 * close it and remove it from the map. It also waits for connections to
 * addr that are still draining after an eviction. The next send to addr
 * dials again (its messages arrive after everything sent before, in
 * channel order). No connection to addr: nothing to do, returns OK.
 * Blocks for at most drain_timeout_ms; safe to call from any thread, also
 * while other threads send to addr.
 *
 * addr: the peer's address, NUL-terminated.
 * Returns ARANYA_QUIC_OK (the peer confirmed every accepted message),
 * ARANYA_QUIC_ERR_UNCONFIRMED (the drain timed out or the connection died
 * first: the detail says how many accepted messages the peer did not
 * confirm; the connection is closed all the same),
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (addr NULL), ARANYA_QUIC_ERR_BAD_ADDRESS,
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_INTERNAL.
 */
int32_t aranya_quic_close(aranya_quic_t ep, const char *addr);

/*
 * aranya_quic_get_stats: read the endpoint's counters.
 *
 * out: the caller sets out->struct_size = sizeof(aranya_quic_stats) first;
 *     the library fills the fields that fit and sets out->struct_size to
 *     the number of bytes it filled. A caller built against the 0.1 header
 *     (whose struct ends at congestion_control) gets the 0.1 fields.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT (out NULL or
 * struct_size smaller than the 0.1 struct),
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_INTERNAL.
 */
int32_t aranya_quic_get_stats(aranya_quic_t ep, aranya_quic_stats *out);

/*
 * aranya_quic_strerror: a short static description of a return code
 * ("unknown error code" for values this version does not define). Never
 * NULL; never freed.
 */
const char *aranya_quic_strerror(int32_t code);

/*
 * aranya_quic_last_error: a detail message about the last non-OK return
 * on the calling thread ("" if there was none). Never NULL. The string is
 * thread-local and valid until the next call into the library on this
 * thread; copy it to keep it. Messages longer than 1023 bytes are cut
 * there (at a UTF-8 boundary is not guaranteed).
 */
const char *aranya_quic_last_error(void);

/*
 * aranya_quic_version: the library's version, e.g. "0.1.0" (compare with
 * ARANYA_QUIC_VERSION_STRING to detect a header/library mismatch). Static;
 * never NULL.
 */
const char *aranya_quic_version(void);

/* --- functions added in 0.2 --- */

/*
 * aranya_quic_receive_batch: take up to max_msgs queued messages at once,
 * oldest first, copying them one after another into buf. Waits up to
 * timeout_ms for the first message; never waits for more once one is
 * taken. Takes messages while both msgs and buf have room: the first
 * message that does not fit in what is left of buf stays queued (it is
 * the oldest for the next call). Messages are taken in the order
 * aranya_quic_receive would return them, so per-channel order holds across
 * calls and threads as it does for aranya_quic_receive.
 *
 * buf, buf_len: where the payloads are copied; buf may be NULL only if
 *     buf_len is 0.
 * msgs, max_msgs: receives one record per message taken (max_msgs >= 1).
 * out_count: receives the number of messages taken (>= 1) on
 *     ARANYA_QUIC_OK, 0 otherwise.
 * timeout_ms: < 0 waits until a message arrives or the handle is freed; 0
 *     does not wait; > 0 waits up to that many milliseconds.
 * Returns:
 *   ARANYA_QUIC_OK                    *out_count messages were taken.
 *   ARANYA_QUIC_ERR_WOULD_BLOCK       timeout_ms is 0 and the queue is
 *       empty.
 *   ARANYA_QUIC_ERR_TIMEOUT           timeout_ms > 0 passed with the queue
 *       empty.
 *   ARANYA_QUIC_ERR_BUFFER_TOO_SMALL  the oldest message alone is longer
 *       than buf_len: it stays queued, and msgs[0].len receives its
 *       length (nothing else in msgs is written).
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT  msgs or out_count NULL, max_msgs 0,
 *       buf NULL with a non-zero buf_len.
 *   ARANYA_QUIC_ERR_CLOSED            the handle was freed while waiting.
 *   ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_INTERNAL
 * Thread safety: as aranya_quic_receive; each message goes to one caller.
 */
int32_t aranya_quic_receive_batch(aranya_quic_t ep, uint8_t *buf, size_t buf_len,
                                  aranya_quic_message *msgs, size_t max_msgs,
                                  size_t *out_count, int32_t timeout_ms);

/*
 * aranya_quic_send_batch: send count messages, in order, on the channel
 * (addr, team_id, label): the same as count calls of aranya_quic_send from
 * one thread, in one call. Messages are accepted one by one; the call
 * stops at the first that fails and returns that message's code, with
 * *out_sent the number accepted before it (each of those is accepted as
 * aranya_quic_send accepts a message: delivered in order or counted as
 * unconfirmed). The time limit send_timeout_ms applies to each message, as
 * for aranya_quic_send, so the call blocks at most count times it.
 *
 * addr, team_id, label, label_len: as for aranya_quic_send.
 * msgs, count: the messages; msgs may be NULL only if count is 0 (then
 *     nothing is sent and the call returns OK). Each msgs[i].data may be
 *     NULL only if msgs[i].len is 0.
 * out_sent: receives the number of messages accepted, on every return
 *     (count on ARANYA_QUIC_OK) except ARANYA_QUIC_ERR_INVALID_ARGUMENT
 *     for a NULL out_sent.
 * Returns the codes of aranya_quic_send, and ARANYA_QUIC_ERR_INVALID_ARGUMENT
 * for a count over INT32_MAX. Arguments that apply to every message (addr,
 * team_id, label) are checked before any message is sent, also when count
 * is 0;
 * a bad msgs[i] (NULL data with a non-zero length, a length over
 * max_message_size) fails when its turn comes, after the ones before it
 * were accepted.
 */
int32_t aranya_quic_send_batch(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
                               const char *label, size_t label_len,
                               const aranya_quic_buf *msgs, size_t count, size_t *out_sent);

/*
 * aranya_quic_send_sync_batch: aranya_quic_send_batch for Aranya sync
 * messages of type sync_type. Same behaviour, parameters and return codes,
 * with sync_type in place of team_id and label.
 */
int32_t aranya_quic_send_sync_batch(aranya_quic_t ep, const char *addr, uint32_t sync_type,
                                    const aranya_quic_buf *msgs, size_t count,
                                    size_t *out_sent);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ARANYA_QUIC_H */
