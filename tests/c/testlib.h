/*
 * What the C test programs share: counted checks, the test certificates and
 * the endpoint config made from them.
 *
 * Checks never stop a test: a failed one is reported and counted, so one run
 * shows every broken promise. They are safe to make from any thread, the
 * library's callback threads included. C99, so that the C99 harness can use
 * it too.
 */
#ifndef ARANYA_QUIC_TESTLIB_H
#define ARANYA_QUIC_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "aranya_quic.h"

#if defined(__GNUC__)
#define TESTLIB_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define TESTLIB_PRINTF(fmt, args)
#endif

/* ---------------------------------------------------------------- checks */

/* Totals for the whole run. Read them only while no other thread checks. */
extern int checks_run;
extern int checks_failed;

/* count_check counts one check; every check counts, failed or not. */
void count_check(void);

/* report_failure prints "file:line: FAIL: " and the message, and counts a
 * failure. For checks the macros below cannot express: call count_check
 * too, once per check. */
void report_failure(const char *file, int line, const char *fmt, ...) TESTLIB_PRINTF(3, 4);

/* CHECK: cond holds. The library's last error on this thread is printed on
 * failure, since it often says why. */
#define CHECK(cond)                                                                       \
    do {                                                                                  \
        count_check();                                                                    \
        if (!(cond)) {                                                                    \
            report_failure(__FILE__, __LINE__, "%s (last_error: %s)", #cond,             \
                           aranya_quic_last_error());                                     \
        }                                                                                 \
    } while (0)

/* CHECK_EQ: two integers that must be equal; both are printed on failure. */
#define CHECK_EQ(got, want)                                                               \
    do {                                                                                  \
        long long got_ = (long long)(got), want_ = (long long)(want);                     \
        count_check();                                                                    \
        if (got_ != want_) {                                                              \
            report_failure(__FILE__, __LINE__, "%s is %lld, want %lld (%s)", #got, got_,  \
                           want_, #want);                                                 \
        }                                                                                 \
    } while (0)

/* CHECK_RC: a call returns exactly want. */
#define CHECK_RC(call, want)                                                              \
    do {                                                                                  \
        int32_t rc_ = (call), want_ = (want);                                             \
        count_check();                                                                    \
        if (rc_ != want_) {                                                               \
            report_failure(__FILE__, __LINE__, "%s returned %d (%s), want %d (%s); last_error: %s", \
                           #call, (int)rc_, aranya_quic_strerror(rc_), (int)want_,       \
                           aranya_quic_strerror(want_), aranya_quic_last_error());        \
        }                                                                                 \
    } while (0)

/* ---------------------------------------------------------- certificates */

/* The directory the certificates are in (the programs' first argument);
 * set before loading any. */
extern const char *certs_dir;

/* read_file returns the whole of certs_dir/name (malloc'd; the caller
 * frees it) and writes its length. A test cannot run without its
 * certificates, so any failure exits with status 2. */
uint8_t *read_file(const char *name, size_t *len);

/* An identity: one peer's PEM buffers. */
typedef struct {
    uint8_t *cert, *key, *ca;
    size_t cert_len, key_len, ca_len;
} identity;

/* load_identity reads name.crt, name.key and the CA every peer trusts,
 * ca.pem. */
identity load_identity(const char *name);

void free_identity(identity *id);

/* base_config: a default config for id, bound to 127.0.0.1:0. */
void base_config(aranya_quic_config *cfg, const identity *id);

/* open_ep makes an endpoint from cfg and writes its bound address to addr;
 * 0 on failure (already reported as a failed check). new_ep does it with
 * base_config(id). */
aranya_quic_t open_ep(const aranya_quic_config *cfg, char addr[ARANYA_QUIC_ADDR_MAX]);
aranya_quic_t new_ep(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]);

/* ------------------------------------------------------------------ time */

/* sleep_ms sleeps for ms milliseconds, all of them even if a signal
 * interrupts the sleep. */
void sleep_ms(long ms);

/* mono_ms: milliseconds on the monotonic clock, for the deadlines that keep
 * a lost message or event from hanging a test (never for a check). */
long long mono_ms(void);

/* wait_readable waits up to timeout_ms (0: not at all) for fd to be
 * readable: 1 when it is, 0 when the time passed, -1 when poll failed or
 * reported the fd closed or invalid. */
int wait_readable(int fd, int timeout_ms);

/* ----------------------------------------------------------------- running */

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

/* run_tests runs the n tests (only the one named only, when not NULL),
 * printing a line per test and the totals. It returns the exit status: 0
 * when every check passed, 1 when one failed, 2 when only names no test. */
int run_tests(const test_case *tests, size_t n, const char *only);

/* The identities every test program uses, loaded by test_main from the
 * certificates directory. */
extern identity alice_id, bob_id, carol_id, stranger_id;

/* recv_on_fd receives one message with aranya_quic_receive, waiting on
 * the receive fd rfd while the queue is empty; ARANYA_QUIC_ERR_TIMEOUT
 * after wait_ms (a bound against hangs, not a check of time). */
int32_t recv_on_fd(aranya_quic_t ep, int rfd, uint8_t *buf, size_t cap, aranya_quic_channel *ch, size_t *len,
                   int wait_ms);

/* test_main is a test program's main: argv[1] is the certificates
 * directory, argv[2] (optional) the one test to run. It loads the
 * identities, runs the tests and returns run_tests's exit status (2 for a
 * usage error). */
int test_main(int argc, char **argv, const test_case *tests, size_t n);

#endif
