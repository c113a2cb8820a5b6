/* The shared part of the C test programs: see testlib.h. */
#define _POSIX_C_SOURCE 200809L

#include "testlib.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- checks */

int checks_run;
int checks_failed;

/* Checks run on the library's threads as well as the tests': one lock keeps
 * the counts exact and each failure's lines together. */
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

void count_check(void) {
    pthread_mutex_lock(&check_mu);
    checks_run++;
    pthread_mutex_unlock(&check_mu);
}

void report_failure(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    pthread_mutex_lock(&check_mu);
    checks_failed++;
    fprintf(stderr, "%s:%d: FAIL: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&check_mu);
}

/* ---------------------------------------------------------- certificates */

const char *certs_dir;

uint8_t *read_file(const char *name, size_t *len) {
    char path[4096];
    FILE *f;
    uint8_t *buf;
    long n;
    snprintf(path, sizeof path, "%s/%s", certs_dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "cannot size %s\n", path);
        exit(2);
    }
    /* One byte more so that an empty file still gets a buffer of its own. */
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

identity load_identity(const char *name) {
    identity id;
    char file[256];
    snprintf(file, sizeof file, "%s.crt", name);
    id.cert = read_file(file, &id.cert_len);
    snprintf(file, sizeof file, "%s.key", name);
    id.key = read_file(file, &id.key_len);
    id.ca = read_file("ca.pem", &id.ca_len);
    return id;
}

void free_identity(identity *id) {
    free(id->cert);
    free(id->key);
    free(id->ca);
}

void base_config(aranya_quic_config *cfg, const identity *id) {
    aranya_quic_config_init(cfg);
    cfg->bind_addr = "127.0.0.1:0";
    cfg->cert_pem = id->cert;
    cfg->cert_pem_len = id->cert_len;
    cfg->key_pem = id->key;
    cfg->key_pem_len = id->key_len;
    cfg->ca_pem = id->ca;
    cfg->ca_pem_len = id->ca_len;
}

/* ------------------------------------------------------------------ time */

void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long long mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int wait_readable(int fd, int timeout_ms) {
    struct pollfd pfd;
    long long deadline = mono_ms() + timeout_ms;
    for (;;) {
        long long left = deadline - mono_ms();
        int n;
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        n = poll(&pfd, 1, left > 0 ? (int)left : 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 || (n == 1 && (pfd.revents & POLLNVAL))) {
            return -1;
        }
        if (n == 1 && (pfd.revents & (POLLIN | POLLHUP))) {
            return 1;
        }
        if (n == 1) {
            return -1; /* POLLERR alone */
        }
        return 0;
    }
}

int run_tests(const test_case *tests, size_t n, const char *only) {
    size_t i;
    int ran = 0;
    for (i = 0; i < n; i++) {
        int before;
        if (only != NULL && strcmp(only, tests[i].name) != 0) {
            continue;
        }
        before = checks_failed;
        tests[i].fn();
        ran++;
        printf("%-30s %s\n", tests[i].name, checks_failed == before ? "ok" : "FAILED");
        fflush(stdout);
    }
    printf("%d checks, %d failed\n", checks_run, checks_failed);
    if (ran == 0) {
        fprintf(stderr, "no test named %s\n", only != NULL ? only : "(none)");
        return 2;
    }
    return checks_failed == 0 ? 0 : 1;
}

identity alice_id, bob_id, carol_id, stranger_id;

int test_main(int argc, char **argv, const test_case *tests, size_t n) {
    int rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CERTS_DIR [TEST]\n", argv[0]);
        return 2;
    }
    certs_dir = argv[1];
    alice_id = load_identity("alice");
    bob_id = load_identity("bob");
    carol_id = load_identity("carol");
    stranger_id = load_identity("stranger");
    rc = run_tests(tests, n, argc > 2 ? argv[2] : NULL);
    free_identity(&alice_id);
    free_identity(&bob_id);
    free_identity(&carol_id);
    free_identity(&stranger_id);
    return rc;
}

int32_t recv_on_fd(aranya_quic_t ep, int rfd, uint8_t *buf, size_t cap, aranya_quic_channel *ch, size_t *len,
                   int wait_ms) {
    long long deadline = mono_ms() + wait_ms;
    for (;;) {
        long long left;
        int32_t rc = aranya_quic_receive(ep, buf, cap, ch, len);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK) {
            return rc;
        }
        left = deadline - mono_ms();
        if (left <= 0 || wait_readable(rfd, (int)left) < 0) {
            return ARANYA_QUIC_ERR_TIMEOUT;
        }
    }
}

aranya_quic_t open_ep(const aranya_quic_config *cfg, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_t ep = 0;
    size_t len = 0;
    addr[0] = '\0';
    CHECK_RC(aranya_quic_new(cfg, &ep), ARANYA_QUIC_OK);
    if (ep != 0) {
        CHECK_RC(aranya_quic_local_addr(ep, addr, ARANYA_QUIC_ADDR_MAX, &len), ARANYA_QUIC_OK);
    }
    return ep;
}

aranya_quic_t new_ep(const identity *id, char addr[ARANYA_QUIC_ADDR_MAX]) {
    aranya_quic_config cfg;
    base_config(&cfg, id);
    return open_ep(&cfg, addr);
}
