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
 *   The exceptions are the config's receive_callback, log_callback and
 *   their user pointers, which the endpoint keeps until aranya_quic_free
 *   (or aranya_quic_free_nowait) returns.
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
 *   log_level is non-zero and no log_callback is set.
 * - Blocking: which calls block and for how long is listed in
 *   docs/EMBEDDING.md; every blocking call has a counterpart that never
 *   blocks (see "non-blocking calls and events" at the end).
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
/* Size of a buffer that holds any peer address argument with its NUL: a
 * host name of up to 253 bytes, or an IP literal, with brackets and port.
 * (Added in 0.2.) */
#define ARANYA_QUIC_PEER_ADDR_MAX 264
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
/* An address string is malformed: not "ip:port", "[ipv6]:port" or (for a
 * peer) "host:port" with a valid DNS name, the port in plain decimal (no
 * sign, no leading zeros); not NUL terminated within
 * ARANYA_QUIC_PEER_ADDR_MAX bytes (ARANYA_QUIC_ADDR_MAX for a bind
 * address); port 0 for a peer, a peer address that is not unicast, a bind
 * address that is multicast or broadcast, or a peer address that is this
 * endpoint's own. */
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
/* A peer's host name could not be resolved to an address within
 * resolve_timeout_ms (no such name, no address of a family the endpoint's
 * socket can reach, or no answer). The detail names the host. (Added in
 * 0.2.) */
#define ARANYA_QUIC_ERR_RESOLVE (-14)
/* The peer refused the channel: it runs per-team authorization and does
 * not allow this endpoint's peer id on the channel's team (for a sync
 * message: on any team). The refused message was not delivered and is not
 * counted as accepted; messages accepted earlier on the channel that the
 * peer did not confirm are counted in messages_unconfirmed. (Added in
 * 0.2.) */
#define ARANYA_QUIC_ERR_NOT_AUTHORIZED (-15)

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
 * Log levels (aranya_quic_config.log_level). Logs go to the config's
 * log_callback when it is set, else to stderr (never to stdout).
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
/* Added in 0.2. */
#define ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER (4u * 1024u * 1024u) /* 4 MiB */
#define ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES (64u * 1024u * 1024u)         /* 64 MiB */
#define ARANYA_QUIC_DEFAULT_MAX_EVENTS 4096
#define ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS 5000

/* ------------------------------------------------------------------------
 * Event types (aranya_quic_event.type). Added in 0.2; new types may be
 * added, so ignore types you do not know.
 * --------------------------------------------------------------------- */

/* A connection to a peer is up (dialed or accepted, handshake and HELLO
 * done): addr and peer_id say who. Reported once per peer address while
 * it has a connection, not again when a connection replaces another. */
#define ARANYA_QUIC_EVENT_PEER_CONNECTED 1
/* The last connection to a peer address ended: addr, peer_id, reason,
 * error_code (ARANYA_QUIC_OK for a graceful close by either side, else
 * why: ARANYA_QUIC_ERR_CONNECTION for a lost connection or an idle
 * timeout), and unconfirmed: how many accepted messages to that peer the
 * library gave up on while connected (also counted in the stats'
 * messages_unconfirmed). */
#define ARANYA_QUIC_EVENT_PEER_DISCONNECTED 2
/* A message that aranya_quic_send_nowait accepted (id) could not be handed
 * to the peer's connection: error_code says why (the codes of
 * aranya_quic_send), channel says where it was going, addr is the address
 * as given to the send. It was not sent. */
#define ARANYA_QUIC_EVENT_SEND_FAILED 3
/* A close started by aranya_quic_close_nowait (id) finished: error_code
 * is ARANYA_QUIC_OK (the peer confirmed every accepted message) or
 * ARANYA_QUIC_ERR_UNCONFIRMED with the count in unconfirmed (or another
 * code of aranya_quic_close). */
#define ARANYA_QUIC_EVENT_CLOSE_FINISHED 4
/* A handshake was refused: we rejected the peer's certificate, or the
 * peer rejected ours. addr is the peer's address, reason says why;
 * error_code is ARANYA_QUIC_ERR_TLS. */
#define ARANYA_QUIC_EVENT_HANDSHAKE_REJECTED 5
/* The drain started by aranya_quic_shutdown (id) finished: error_code
 * ARANYA_QUIC_OK or ARANYA_QUIC_ERR_UNCONFIRMED with the count in
 * unconfirmed, which counts also the messages queued by the _nowait calls
 * that were never sent (each had its SEND_FAILED event). The last event
 * of an endpoint; addr is the endpoint's own address. */
#define ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED 6

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
 * working. Initialize with aranya_quic_config_init, which this header
 * makes a macro passing the caller's own sizeof to
 * aranya_quic_config_init_sized, so that the library writes no byte past
 * the caller's struct. (Bindings that call the library by symbol call
 * aranya_quic_config_init_sized with their struct's size, or zero their
 * struct and set struct_size themselves.)
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

/*
 * aranya_quic_log_callback: what aranya_quic_config.log_callback points to
 * (added in 0.2). Called for every log record at or above the config's
 * log_level, on a thread of the library, possibly on several threads at
 * once: it must be thread-safe and should return quickly (the engine's
 * work on that connection waits for it). A call may also log on the
 * caller's own thread before it returns (aranya_quic_close,
 * aranya_quic_set_trust, _set_identity and _team_revoke report what they
 * did): a caller must not hold, across a call, a lock its log_callback
 * takes. It may call the library, but
 * aranya_quic_free of its own endpoint, or of any endpoint that has a
 * receive_callback or a log_callback, returns
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (free waits for the callbacks in
 * progress, which could be waiting for this one); aranya_quic_free_nowait
 * works. Once aranya_quic_free_nowait returned no further call starts;
 * once aranya_quic_free returned, none is still running either.
 *
 * user: cfg->log_callback_user.
 * level: ARANYA_QUIC_LOG_ERROR, _WARN, _INFO or _DEBUG.
 * msg, len: the record, UTF-8 text of len bytes followed by a NUL; valid
 *     only during the call.
 */
typedef void (*aranya_quic_log_callback)(void *user, uint32_t level, const char *msg, size_t len);

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

    /* --- fields added in 0.2 (non-blocking sends, events, logging) --- */

    /* Bytes of messages that aranya_quic_send_nowait may hold queued for
     * one peer address before it refuses with ARANYA_QUIC_ERR_WOULD_BLOCK.
     * An empty queue always takes one message, so a message larger than
     * this is refused only while others wait. 0:
     * ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES_PER_PEER. */
    uint64_t max_outbound_bytes_per_peer;
    /* The same bound across all peers. 0:
     * ARANYA_QUIC_DEFAULT_MAX_OUTBOUND_BYTES. */
    uint64_t max_outbound_bytes;
    /* Events held until aranya_quic_next_event takes them; further events
     * are dropped and counted (events_dropped in the stats and
     * dropped_before of the next event taken). 0:
     * ARANYA_QUIC_DEFAULT_MAX_EVENTS. */
    uint32_t max_events;
    /* Bounds resolving a peer's host name (also within a send's own
     * timeout). Resolved addresses are cached for 30 s. 0:
     * ARANYA_QUIC_DEFAULT_RESOLVE_TIMEOUT_MS. */
    uint32_t resolve_timeout_ms;
    /* When set, log records go to it instead of stderr. log_level still
     * filters them; with a log_callback, ARANYA_QUIC_LOG_OFF (0) means
     * ARANYA_QUIC_LOG_INFO. NULL: stderr when log_level is non-zero. */
    aranya_quic_log_callback log_callback;
    /* Passed unchanged as the first argument of every log_callback call. */
    void *log_callback_user;

    /* --- fields added with runtime trust and team authorization --- */

    /* Non-zero turns per-team authorization on: a peer may then open a
     * channel only on a team aranya_quic_team_allow allowed its peer id
     * on, and send sync messages only when allowed on at least one team;
     * other streams are refused (the sender gets
     * ARANYA_QUIC_ERR_NOT_AUTHORIZED) and counted in streams_refused. 0
     * (default): every trusted peer may use every team. */
    uint32_t team_authorization;
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

    /* --- fields added with non-blocking sends and events --- */

    uint64_t outbound_messages;  /* gauge: messages queued by send_nowait, not yet handed to a stream */
    uint64_t outbound_bytes;     /* gauge: their payload bytes */
    uint64_t sends_failed;       /* queued messages given up before they were sent (one SEND_FAILED event each) */
    uint64_t events_dropped;     /* events dropped because max_events were waiting */

    /* --- fields added with runtime trust and team authorization --- */

    uint64_t connections_revoked; /* connections closed because aranya_quic_set_trust no longer trusts their peer */
    uint64_t messages_revoked;    /* received messages dropped, not delivered, because their peer or its team was revoked first */
    uint64_t streams_refused;     /* incoming streams refused by team authorization */
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

/* One event, as aranya_quic_next_event returns it. (Added in 0.2.)
 * Fields that do not apply to the event's type are zero. */
typedef struct aranya_quic_event {
    /* Set by the caller to sizeof(aranya_quic_event); the library fills
     * no more than that and sets it to the number of bytes it filled. */
    uint32_t struct_size;
    /* One of ARANYA_QUIC_EVENT_*. */
    uint32_t type;
    /* What happened, as a return code (see each event type). */
    int32_t error_code;
    /* The id aranya_quic_send_nowait, aranya_quic_close_nowait or
     * aranya_quic_shutdown returned, for SEND_FAILED, CLOSE_FINISHED and
     * SHUTDOWN_FINISHED. */
    uint64_t id;
    /* The peer's address, NUL-terminated. For SEND_FAILED and
     * CLOSE_FINISHED, the address as the call was given it (a host name
     * stays a host name); for SHUTDOWN_FINISHED the endpoint's own bound
     * address; otherwise the peer's IP address and port. */
    char addr[ARANYA_QUIC_PEER_ADDR_MAX];
    /* PEER_CONNECTED, PEER_DISCONNECTED: SHA-256 of the peer's DER leaf
     * certificate. */
    uint8_t peer_id[ARANYA_QUIC_PEER_ID_LEN];
    /* SEND_FAILED: the message's channel (kind, team_id, label, sync_type;
     * channel.addr is the resolved address when resolution got that far,
     * else empty; channel.peer_id is zero). */
    aranya_quic_channel channel;
    /* PEER_DISCONNECTED, CLOSE_FINISHED, SHUTDOWN_FINISHED: accepted
     * messages the peer(s) did not confirm. */
    uint64_t unconfirmed;
    /* Events dropped for lack of room just before this one. */
    uint64_t dropped_before;
    /* Why, in words, NUL-terminated (cut to fit). */
    char reason[256];
} aranya_quic_event;

/* How many distinct peers an endpoint remembers after their connections
 * ended, for aranya_quic_set_trust to revoke (see there). (Added in 0.2.) */
#define ARANYA_QUIC_KNOWN_PEERS_MAX 4096

/* bytes_in_flight of a connection whose congestion controller does not
 * report it (quic-go's NewReno). (Added in 0.2.) */
#define ARANYA_QUIC_UNKNOWN UINT64_MAX

/* One connection, as aranya_quic_connections lists it. (Added in 0.2.) */
typedef struct aranya_quic_connection_info {
    /* Set by the library to the number of bytes of the struct it filled
     * (the info_size passed to aranya_quic_connections, at most this
     * struct's size). */
    uint32_t struct_size;
    /* 1 if this endpoint dialed the connection, 0 if it accepted it. */
    uint32_t dialed;
    /* 1 while the connection closes gracefully (no new streams). */
    uint32_t draining;
    /* The peer's IP address and port, NUL-terminated. */
    char addr[ARANYA_QUIC_ADDR_MAX];
    /* SHA-256 of the peer's DER leaf certificate. */
    uint8_t peer_id[ARANYA_QUIC_PEER_ID_LEN];
    /* When the connection was set up (ms since the Unix epoch) and for
     * how long it has been up (ms). */
    uint64_t connected_unix_ms;
    uint64_t connected_ms;
    /* Round-trip times in microseconds: smoothed (RFC 9002), minimum and
     * latest sample. 0 before the first sample. */
    uint64_t smoothed_rtt_us;
    uint64_t min_rtt_us;
    uint64_t latest_rtt_us;
    /* The congestion window and the bytes in flight, in bytes of QUIC
     * packets. bytes_in_flight is ARANYA_QUIC_UNKNOWN when the
     * connection's controller does not report it (NewReno). */
    uint64_t congestion_window;
    uint64_t bytes_in_flight;
    /* QUIC packets sent, received and declared lost on the connection. */
    uint64_t packets_sent;
    uint64_t packets_received;
    uint64_t packets_lost;
    /* Messages and their payload bytes each way on this connection. */
    uint64_t messages_sent;
    uint64_t bytes_sent;
    uint64_t messages_received;
    uint64_t bytes_received;
    /* The congestion control the connection runs, "reno" or "bbr2",
     * NUL-terminated: what was built for it, not only what was
     * configured. */
    char congestion_control[16];
} aranya_quic_connection_info;

/* Layout checks (fail to compile if a type is not what the ABI says). */
typedef char aranya_quic_check_handle_size_[sizeof(aranya_quic_t) == 8 ? 1 : -1];
typedef char aranya_quic_check_team_id_size_[
    sizeof(((aranya_quic_channel *)0)->team_id) == ARANYA_QUIC_TEAM_ID_LEN ? 1 : -1];
typedef char aranya_quic_check_config_first_[
    offsetof(aranya_quic_config, struct_size) == 0 ? 1 : -1];
typedef char aranya_quic_check_stats_first_[
    offsetof(aranya_quic_stats, struct_size) == 0 ? 1 : -1];
typedef char aranya_quic_check_event_first_[
    offsetof(aranya_quic_event, struct_size) == 0 ? 1 : -1];
typedef char aranya_quic_check_connection_info_first_[
    offsetof(aranya_quic_connection_info, struct_size) == 0 ? 1 : -1];

/* ------------------------------------------------------------------------
 * Functions
 * --------------------------------------------------------------------- */

/*
 * aranya_quic_config_init: zero *cfg and set cfg->struct_size. Through
 * this header it is a macro for aranya_quic_config_init_sized(cfg,
 * sizeof *cfg). The function of that name, which programs built against
 * older headers call, writes the struct as it was before the fields added
 * with the non-blocking calls (up to receive_callback_user), so that it
 * never writes past an older caller's struct.
 *
 * cfg: the config to initialize (caller-owned).
 * Returns ARANYA_QUIC_OK, or ARANYA_QUIC_ERR_INVALID_ARGUMENT if cfg is
 * NULL. Never blocks.
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
 * Blocks while messages queued by the _nowait calls are handed over (at
 * most drain_timeout_ms), then for at most drain_timeout_ms + 1 s while
 * the peers confirm what was sent to them, and, on an endpoint with a
 * receive_callback, until the calls in progress return. After an
 * aranya_quic_shutdown whose event arrived, it does not block.
 * Returns ARANYA_QUIC_OK (every message accepted on the connections free
 * closed was confirmed by its peer; messages the library had already given
 * up on, on a connection that died earlier, were counted in the stats'
 * messages_unconfirmed then); ARANYA_QUIC_ERR_UNCONFIRMED (the handle is
 * freed all the same; the detail says how many accepted messages the peers
 * did not confirm); ARANYA_QUIC_ERR_INVALID_ARGUMENT when called from a
 * receive_callback or log_callback on its own handle, or on any handle
 * that has a receive_callback or a log_callback (two callbacks freeing
 * each other's endpoints would wait for each other forever): nothing is
 * freed (aranya_quic_free_nowait works there);
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
 * addr: the peer's address, NUL-terminated, "ip:port", "[ipv6]:port" or
 *     "host:port" (resolved within the send timeout; see "Peer addresses"
 *     at the end).
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
 *   ARANYA_QUIC_ERR_RESOLVE      addr's host name did not resolve.
 *   ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED (also once
 *   aranya_quic_shutdown was called), ARANYA_QUIC_ERR_INTERNAL
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
 * The close takes its turn after messages the _nowait calls queued for
 * addr (see aranya_quic_close_nowait for a close that never blocks).
 * Returns ARANYA_QUIC_OK (the peer confirmed every accepted message),
 * ARANYA_QUIC_ERR_UNCONFIRMED (the drain timed out or the connection died
 * first, or the peer reset a channel's stream with messages on it that it
 * had not confirmed, e.g. when it revoked our team: the detail says how
 * many accepted messages the peer did not confirm; the connection is
 * closed all the same),
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (addr NULL), ARANYA_QUIC_ERR_BAD_ADDRESS,
 * ARANYA_QUIC_ERR_RESOLVE (addr's host name did not resolve: nothing was
 * closed), ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
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

/* --- non-blocking calls and events, added in 0.2 ---
 *
 * Every call that may block has a counterpart here that returns at once;
 * with aranya_quic_receive and aranya_quic_receive_fd they let a host
 * drive the endpoint from one event loop (tokio, asyncio, poll(2)):
 *
 *   int rfd, sfd, efd;
 *   aranya_quic_receive_fd(ep, &rfd);   readable: messages to receive
 *   aranya_quic_send_fd(ep, &sfd);      readable: a refused send may be retried
 *   aranya_quic_event_fd(ep, &efd);     readable: events to take
 *   rc = aranya_quic_send_nowait(ep, "peer.example:4433", team, "chat", 4, msg, len, &id);
 *   if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK) { poll sfd for POLLIN, then retry }
 *   poll rfd/efd; aranya_quic_receive(...) / aranya_quic_next_event(...) until WOULD_BLOCK
 *   aranya_quic_shutdown(ep, &id); wait for ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED;
 *   aranya_quic_free(ep);               returns at once after the shutdown finished
 *
 * Peer addresses: every call that takes a peer address accepts "ip:port",
 * "[ipv6]:port" or "host:port" (added in 0.2), at most
 * ARANYA_QUIC_PEER_ADDR_MAX bytes with the NUL. A host name is resolved
 * (bounded by resolve_timeout_ms; answers cached for 30 s) to an address
 * of a family the endpoint's socket can reach, and the connection is
 * keyed by that address: received messages carry the IP address they
 * came from. Blocking calls resolve in the calling thread; non-blocking
 * calls resolve in the background.
 */

/*
 * aranya_quic_send_nowait: send one message on the channel (addr,
 * team_id, label) without blocking. When the channel's stream can take the
 * message at once it does; otherwise the message is copied into the
 * peer's outbound queue, from which the library dials (or resolves) in the
 * background and hands it to the channel's stream. Either way the call
 * returns at once.
 *
 * Order: messages of one channel are sent in the order of the calls that
 * accepted them, across aranya_quic_send, aranya_quic_send_batch and the
 * _nowait calls mixed (a blocking send made while the peer's queue is not
 * empty waits behind it). An accepted message is then delivered exactly
 * as a message aranya_quic_send accepted, or, when it cannot be handed
 * over (the peer cannot be reached or resolved, rejects us, refuses its
 * size, or send_timeout_ms passes from the call before its turn comes),
 * an ARANYA_QUIC_EVENT_SEND_FAILED event with its id says so and the
 * stats' sends_failed counts it. A blocking call to the same address that
 * fails the same way fails with the code the event carries.
 * A peer named by a host name and by its IP address shares one order once
 * the name's answer is cached (after its first resolution): messages sent
 * by name while the name is still being resolved may be overtaken by
 * messages sent to the IP address meanwhile.
 *
 * addr, team_id, label, label_len, msg, msg_len: as for aranya_quic_send
 *     (addr may be a host name); read only during the call.
 * out_id: may be NULL. Receives the message's id on ARANYA_QUIC_OK;
 *     events about the message carry it. Ids are unique per endpoint and
 *     increase from 1, shared with the ids of close_nowait and shutdown.
 * Never blocks: no network wait, no resolution, no wait for another
 * thread's send beyond a short lock.
 * Returns:
 *   ARANYA_QUIC_OK              accepted (sent to the stream or queued).
 *   ARANYA_QUIC_ERR_WOULD_BLOCK the peer's queue holds
 *       max_outbound_bytes_per_peer, or all queues max_outbound_bytes:
 *       nothing was accepted; wait until aranya_quic_send_fd is readable
 *       and try again.
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT, ARANYA_QUIC_ERR_BAD_ADDRESS,
 *   ARANYA_QUIC_ERR_TOO_LARGE (over max_message_size; over the peer's own
 *       limit is found later and reported by a SEND_FAILED event),
 *   ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED (also once
 *   aranya_quic_shutdown was called), ARANYA_QUIC_ERR_INTERNAL.
 * Thread safety: as aranya_quic_send.
 */
int32_t aranya_quic_send_nowait(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
                                const char *label, size_t label_len, const uint8_t *msg,
                                size_t msg_len, uint64_t *out_id);

/*
 * aranya_quic_send_sync_nowait: aranya_quic_send_nowait for an Aranya sync
 * message of type sync_type. Same behaviour, parameters and return codes,
 * with sync_type in place of team_id and label.
 */
int32_t aranya_quic_send_sync_nowait(aranya_quic_t ep, const char *addr, uint32_t sync_type,
                                     const uint8_t *msg, size_t msg_len, uint64_t *out_id);

/*
 * aranya_quic_send_batch_nowait: aranya_quic_send_nowait for count
 * messages of one channel, in order, in one call. Accepts messages until
 * one is refused or fails its checks; that message's code is returned
 * with *out_sent the number accepted before it (so a return of
 * ARANYA_QUIC_ERR_WOULD_BLOCK with *out_sent == k means msgs[0..k) are
 * accepted and msgs[k..) are not). Message i of those accepted has id
 * *out_first_id + i.
 *
 * msgs, count, out_sent: as for aranya_quic_send_batch.
 * out_first_id: may be NULL; receives the first message's id when
 *     *out_sent > 0.
 * Returns the codes of aranya_quic_send_nowait, and
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT for a count over INT32_MAX. Never
 * blocks.
 */
int32_t aranya_quic_send_batch_nowait(aranya_quic_t ep, const char *addr, const uint8_t *team_id,
                                      const char *label, size_t label_len,
                                      const aranya_quic_buf *msgs, size_t count,
                                      size_t *out_sent, uint64_t *out_first_id);

/*
 * aranya_quic_send_sync_batch_nowait: aranya_quic_send_batch_nowait for
 * Aranya sync messages of type sync_type.
 */
int32_t aranya_quic_send_sync_batch_nowait(aranya_quic_t ep, const char *addr, uint32_t sync_type,
                                           const aranya_quic_buf *msgs, size_t count,
                                           size_t *out_sent, uint64_t *out_first_id);

/*
 * aranya_quic_send_fd: a file descriptor that is readable while no
 * non-blocking send is being refused: it stops being readable when
 * aranya_quic_send_nowait returns ARANYA_QUIC_ERR_WOULD_BLOCK and becomes
 * readable again once every queue that refused a message has drained to
 * half its limit (and the total to half of max_outbound_bytes). Poll it
 * for POLLIN after a WOULD_BLOCK, then retry. Every call returns the same
 * fd. Owned by the library like the fd of aranya_quic_receive_fd: never
 * read, write or close it; aranya_quic_free closes it.
 *
 * out_fd: receives the fd on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT,
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_IO, ARANYA_QUIC_ERR_INTERNAL. Never blocks.
 */
int32_t aranya_quic_send_fd(aranya_quic_t ep, int *out_fd);

/*
 * aranya_quic_close_nowait: start closing the connection to addr, as
 * aranya_quic_close does, and return at once. The close takes its turn
 * after the messages already queued for addr; its outcome arrives as an
 * ARANYA_QUIC_EVENT_CLOSE_FINISHED event with the id written to out_id
 * (also when there was no connection to close).
 *
 * addr: the peer's address (a host name is resolved in the background).
 * out_id: may be NULL; receives the close's id on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT,
 * ARANYA_QUIC_ERR_BAD_ADDRESS, ARANYA_QUIC_ERR_INVALID_HANDLE,
 * ARANYA_QUIC_ERR_CLOSED, ARANYA_QUIC_ERR_INTERNAL. Never blocks.
 */
int32_t aranya_quic_close_nowait(aranya_quic_t ep, const char *addr, uint64_t *out_id);

/*
 * aranya_quic_shutdown: start closing the whole endpoint and return at
 * once. From the call on, sends return ARANYA_QUIC_ERR_CLOSED and nothing
 * more is received (as for aranya_quic_free); messages already queued by
 * the _nowait calls are handed over first, for up to drain_timeout_ms
 * (those that cannot be get SEND_FAILED events), then every connection
 * drains (up to drain_timeout_ms more). Messages already in the receive
 * queue can be taken until the drain finishes; then the rest are dropped,
 * as aranya_quic_free drops them. When all is done an ARANYA_QUIC_EVENT_SHUTDOWN_FINISHED
 * event with the id written to out_id reports how many accepted messages
 * the peers did not confirm; after it aranya_quic_free returns at once,
 * with the same outcome (ARANYA_QUIC_OK or ARANYA_QUIC_ERR_UNCONFIRMED).
 * Calling it again (or after a shutdown finished) returns OK and the first
 * call's id.
 *
 * out_id: may be NULL; receives the shutdown's id on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_HANDLE,
 * ARANYA_QUIC_ERR_INTERNAL. Never blocks (on an endpoint with a
 * receive_callback, the wait for callbacks in progress also happens in
 * the background).
 */
int32_t aranya_quic_shutdown(aranya_quic_t ep, uint64_t *out_id);

/*
 * aranya_quic_free_nowait: invalidate the handle at once and let the
 * endpoint close in the background (what aranya_quic_free waits for:
 * queued messages handed over, connections drained, socket closed).
 * Nobody is left to read the outcome: accepted messages the peers did not
 * confirm are logged at WARN with their count on stderr when log_level is
 * set without a log_callback (a log_callback is called no more once this
 * returns, though a call already running may still be finishing). To
 * learn the outcome, call aranya_quic_shutdown, wait for its event, then
 * aranya_quic_free. The fds
 * of aranya_quic_receive_fd, aranya_quic_send_fd and aranya_quic_event_fd
 * are closed before this returns. Calls on other threads using the handle
 * return ARANYA_QUIC_ERR_CLOSED; unlike aranya_quic_free this does not wait
 * for them, and the endpoint's resources are released when the last of
 * them returned.
 *
 * ep: as for aranya_quic_free (0 or an already freed handle: OK).
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_HANDLE,
 * ARANYA_QUIC_ERR_INTERNAL. Never blocks; may be called from any callback.
 */
int32_t aranya_quic_free_nowait(aranya_quic_t ep);

/*
 * aranya_quic_event_fd: a file descriptor that is readable while events
 * are waiting to be taken with aranya_quic_next_event. Every call returns
 * the same fd; owned by the library (never read, write or close it);
 * aranya_quic_free closes it.
 *
 * out_fd: receives the fd on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT,
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_IO, ARANYA_QUIC_ERR_INTERNAL. Never blocks.
 */
int32_t aranya_quic_event_fd(aranya_quic_t ep, int *out_fd);

/*
 * aranya_quic_next_event: take the oldest waiting event. Events are kept
 * in the order they happened, up to max_events; the engine never waits
 * for the caller to take them (overflow drops new events and counts
 * them). CLOSE_FINISHED and SHUTDOWN_FINISHED, the outcomes of calls the
 * application made, are kept even beyond max_events. Several threads may take events; each goes to one of them.
 *
 * out: the caller sets out->struct_size = sizeof(aranya_quic_event); the
 *     library writes the event (at most struct_size bytes) on
 *     ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_WOULD_BLOCK (no event waiting),
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (out NULL or struct_size smaller than
 * the 0.2 struct), ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_INTERNAL.
 * Events stay readable after aranya_quic_shutdown, until free. Never
 * blocks.
 */
int32_t aranya_quic_next_event(aranya_quic_t ep, aranya_quic_event *out);

/*
 * aranya_quic_config_init_sized: zero the first size bytes of *cfg (at
 * most sizeof(aranya_quic_config) of this library) and set struct_size to
 * what was zeroed. (Added in 0.2.)
 *
 * cfg: the config to initialize (caller-owned).
 * size: the caller's sizeof(aranya_quic_config).
 * Returns ARANYA_QUIC_OK, or ARANYA_QUIC_ERR_INVALID_ARGUMENT if cfg is
 * NULL or size is smaller than the 0.1 struct (nothing is written). Never
 * blocks.
 */
int32_t aranya_quic_config_init_sized(aranya_quic_config *cfg, size_t size);

/* Callers built against this header pass their own struct's size. */
#define aranya_quic_config_init(cfg) aranya_quic_config_init_sized((cfg), sizeof *(cfg))

/* ------------------------------------------------------------------------
 * Trust at runtime, team authorization and the connection list, added in
 * 0.2. docs/SECURITY.md says what is verified and when each change takes
 * effect.
 *
 * Revocation, in short: when aranya_quic_set_trust (or
 * aranya_quic_team_revoke) returns, no message of a revoked peer (or of
 * the revoked team from that peer) reaches the receive queue any more;
 * those it had queued and the application had not taken are dropped and
 * counted in messages_revoked; no receive callback for them starts any
 * more (see aranya_quic_set_trust for callbacks already running); and
 * sends to a peer whose certificate is no longer trusted fail with
 * ARANYA_QUIC_ERR_TLS.
 * --------------------------------------------------------------------- */

/*
 * aranya_quic_set_trust: replace the trusted CA certificates and the pins
 * at once. New handshakes use the new set from the moment the call
 * starts. Every connection whose peer's certificate no longer verifies
 * (chain to a new CA, within validity, pinned if pins are given) is closed
 * with the NOT_AUTHORIZED connection code (0x205) before the call returns:
 * its queued messages are dropped (messages_revoked), its accepted but
 * unconfirmed messages are counted in messages_unconfirmed, its queued
 * non-blocking sends fail with SEND_FAILED events, and a later send to the
 * peer dials again and fails with ARANYA_QUIC_ERR_TLS. Connections whose
 * peer still verifies are not touched. (The revoked peer learns of it when
 * the close reaches it; until then its own sends may still be accepted on
 * its side, and are counted there as unconfirmed: none is delivered.) A peer re-admitted by a later call
 * connects again on the next send (by either side).
 *
 * ca_pem, ca_pem_len: PEM with at least one CA certificate; every block
 * must parse (a damaged one is refused, as in aranya_quic_new). At most
 *     16 MiB.
 * pinned_peers, pinned_peers_len: as the config's fields (a COUNT of
 *     32-byte fingerprints; NULL only with a count of 0, which removes
 *     pinning).
 * Revoked peers are the peers the endpoint knows that the new set no
 * longer trusts: those with a connection, and the last
 * ARANYA_QUIC_KNOWN_PEERS_MAX distinct peers admitted and not revoked
 * since. A peer whose connections are
 * already gone is revoked too, and its messages still queued are dropped;
 * each revocation names a peer once.
 *
 * revoked_peer_ids: may be NULL only if revoked_peer_ids_cap is 0;
 *     receives the peer ids (32 bytes each) of the revoked peers, each
 *     once, up to revoked_peer_ids_cap of them: a binding or application
 *     that holds messages it already took from the library drops theirs
 *     too.
 * revoked_peer_ids_cap: how many ids revoked_peer_ids holds (a COUNT, at
 *     most 2^20).
 * out_revoked: may be NULL; receives the number of peers revoked, at
 *     most ARANYA_QUIC_KNOWN_PEERS_MAX plus the number of connections; it may exceed
 *     revoked_peer_ids_cap (the ids beyond it are not written; the
 *     revocation happened all the same).
 * Returns:
 *   ARANYA_QUIC_OK
 *   ARANYA_QUIC_ERR_INVALID_ARGUMENT  ca_pem NULL or empty, a PEM block
 *       that does not parse, no certificate, pinned_peers NULL with a
 *       non-zero count, revoked_peer_ids NULL with a non-zero
 *       capacity, a length over its limit. Nothing changed.
 *   ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 *   ARANYA_QUIC_ERR_INTERNAL.
 * Blocks: for as long as closing the revoked connections takes locally
 * (no network round trip), and, when called outside a receive callback,
 * until receive callbacks already running for revoked peers return.
 * Called from inside a receive callback it does not wait for callbacks
 * (its own included), so a callback of a revoked peer running on another
 * thread may still be running, or just starting, when it returns.
 * Thread safety: any thread; calls are applied one at a time, in the
 * order they take the endpoint's trust lock.
 */
int32_t aranya_quic_set_trust(aranya_quic_t ep, const uint8_t *ca_pem, size_t ca_pem_len,
                              const uint8_t *pinned_peers, size_t pinned_peers_len,
                              uint8_t *revoked_peer_ids, size_t revoked_peer_ids_cap,
                              size_t *out_revoked);

/*
 * aranya_quic_set_identity: replace this endpoint's certificate chain and
 * private key for new handshakes, both those it dials and those it
 * accepts, e.g. to renew a certificate without a restart. Existing
 * connections keep working with the identity they were set up with. The
 * stateless reset key stays the one derived at start (or configured).
 * Peers learn the new peer id (SHA-256 of the new leaf) with the next
 * connection; pins on the peers must list it first.
 *
 * cert_pem, cert_pem_len, key_pem, key_pem_len: as the config's fields
 *     (the key must match the certificate, not be encrypted, and the
 *     certificate must be within its validity period). At most 16 MiB
 *     each.
 * Returns ARANYA_QUIC_OK; ARANYA_QUIC_ERR_INVALID_ARGUMENT (NULL or empty
 * input, a length over 16 MiB, a PEM that does not parse, a key that does
 * not match, an expired or not yet valid certificate: nothing changed);
 * ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_INTERNAL. Never blocks beyond parsing the PEM.
 * Thread safety: any thread; concurrent calls leave one of the
 * identities.
 */
int32_t aranya_quic_set_identity(aranya_quic_t ep, const uint8_t *cert_pem, size_t cert_pem_len,
                                 const uint8_t *key_pem, size_t key_pem_len);

/*
 * aranya_quic_team_allow: allow the peer whose certificate has SHA-256
 * peer_id to use team team_id, when team_authorization is on. Streams it
 * opens afterwards on that team are accepted, and its sync streams too.
 * Allowing a pair that is already allowed does nothing.
 *
 * peer_id: 32 bytes (ARANYA_QUIC_PEER_ID_LEN), not all zero.
 * team_id: 32 bytes (ARANYA_QUIC_TEAM_ID_LEN), not all zero.
 * Returns ARANYA_QUIC_OK; ARANYA_QUIC_ERR_INVALID_ARGUMENT (a NULL or
 * all-zero id, or team_authorization is off in the config: nothing
 * changed); ARANYA_QUIC_ERR_INVALID_HANDLE, ARANYA_QUIC_ERR_CLOSED,
 * ARANYA_QUIC_ERR_INTERNAL. Never blocks beyond a short lock.
 * Thread safety: any thread.
 */
int32_t aranya_quic_team_allow(aranya_quic_t ep, const uint8_t *peer_id, const uint8_t *team_id);

/*
 * aranya_quic_team_revoke: stop allowing peer_id on team_id. It takes
 * effect for streams already open, not only new ones: when it returns,
 * the peer's open streams on the team are reset with the NOT_AUTHORIZED
 * stream code (0x109), nothing more of them reaches the receive queue,
 * their messages queued and not yet taken are dropped (messages_revoked),
 * and no receive callback for them starts (callbacks already running: as
 * for aranya_quic_set_trust). If that was the peer's last team, the same
 * happens to its sync streams (open ones reset, queued sync messages
 * dropped, new ones refused). The peer's sends on the team then fail with
 * ARANYA_QUIC_ERR_NOT_AUTHORIZED (those it makes before the reset reaches
 * it are accepted on its side and counted there as unconfirmed: none is
 * delivered). Revoking a pair that is not allowed does nothing.
 *
 * peer_id, team_id: as for aranya_quic_team_allow.
 * out_last_team: may be NULL; on ARANYA_QUIC_OK receives 1 when the pair
 *     was allowed and was the peer's last team, so its sync streams and
 *     queued sync messages went too (a binding or application holding
 *     messages it already took drops the peer's sync messages then), else
 *     0.
 * Returns the codes of aranya_quic_team_allow.
 * Blocks: as aranya_quic_set_trust (no network wait).
 * Thread safety: any thread.
 */
int32_t aranya_quic_team_revoke(aranya_quic_t ep, const uint8_t *peer_id, const uint8_t *team_id,
                                uint32_t *out_last_team);

/*
 * aranya_quic_connections: list the endpoint's connections (those in the
 * connection map and those still draining), with their peer, age, round
 * trip times, congestion state and traffic.
 *
 * out: an array of capacity structs; may be NULL only if capacity is 0.
 * capacity: how many structs out holds.
 * info_size: the caller's sizeof(aranya_quic_connection_info); at least
 *     the size of the struct as added in 0.2. It is the array's stride:
 *     struct i starts at (char *)out + i * info_size. Each struct written
 *     gets min(info_size, this library's size) bytes and that
 *     struct_size; bytes beyond them are left alone.
 * out_count: receives the number of connections (also when out is too
 *     small).
 * Returns ARANYA_QUIC_OK (out[0 .. *out_count) written);
 * ARANYA_QUIC_ERR_BUFFER_TOO_SMALL (*out_count connections exist and
 * only the first capacity were written: call again with a larger array);
 * ARANYA_QUIC_ERR_INVALID_ARGUMENT (out_count NULL, out NULL with a
 * non-zero capacity, info_size too small); ARANYA_QUIC_ERR_INVALID_HANDLE,
 * ARANYA_QUIC_ERR_CLOSED, ARANYA_QUIC_ERR_INTERNAL.
 * Never blocks beyond short locks. Thread safety: any thread; the list is
 * a snapshot.
 */
int32_t aranya_quic_connections(aranya_quic_t ep, aranya_quic_connection_info *out,
                                size_t capacity, size_t info_size, size_t *out_count);

/*
 * aranya_quic_peer_id_from_pem: the peer id (and pin) of a certificate:
 * SHA-256 of the DER of the first certificate in cert_pem, the value
 * peers see in received messages' peer_id, and the one pins,
 * aranya_quic_team_allow and aranya_quic_team_revoke take.
 *
 * cert_pem, cert_pem_len: PEM whose first block is a certificate (a
 *     chain's leaf comes first). At most 16 MiB.
 * out: receives 32 bytes (ARANYA_QUIC_PEER_ID_LEN) on ARANYA_QUIC_OK.
 * Returns ARANYA_QUIC_OK, ARANYA_QUIC_ERR_INVALID_ARGUMENT (NULL or empty
 * input, a length over 16 MiB, no certificate block that parses),
 * ARANYA_QUIC_ERR_INTERNAL.
 * Needs no endpoint; never blocks. Thread safety: any thread.
 */
int32_t aranya_quic_peer_id_from_pem(const uint8_t *cert_pem, size_t cert_pem_len, uint8_t *out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ARANYA_QUIC_H */
