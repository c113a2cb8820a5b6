/*
 * aqbench.c - benchmarks of libaranya_quic through its C API, the way a
 * daemon uses it: a sender thread and a receiver thread, endpoints in one
 * process (the receive-queue memory scenario uses two).
 *
 *   aqbench SCENARIO [key=value ...]
 *
 * Scenarios: msg, par, pingpong, first, fanin, fanout, churn, memidle,
 * memqueue; info prints the library's version and congestion control.
 * Keys: certs=DIR (examples/certgen output: ca.pem, alice.*, bob.*),
 * size=BYTES, dur=SECONDS, iters=N, peers=N, channels=N, maxconn=N,
 * cc=reno|bbr2 (congestion control of every endpoint; default: the
 * library's), wait=poll (receive through aranya_quic_receive_fd + poll),
 * batch=N (msg, par, fanin, fanout: aranya_quic_send_batch and
 * aranya_quic_receive_batch with N messages per call; 0, the default, is
 * one call per message), load=1 (pingpong: 64 KiB messages on a second
 * channel from the pinging endpoint while the ping-pong runs).
 * Throughput scenarios report cpu_ns_per_msg: CPU time of the whole
 * process (both endpoints, user + system) per message received.
 * Prints one JSON line: {"scenario":..,"impl":"aranya-quic","metrics":{..}}.
 * Exit status 0 on success; on failure a message on stderr and status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aranya_quic.h"

extern char **environ;

/* ---------------------------------------------------------------- util */

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "aqbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void check(int32_t rc, const char *what) {
    if (rc != ARANYA_QUIC_OK)
        die("%s: %s (%d): %s", what, aranya_quic_strerror(rc), rc, aranya_quic_last_error());
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* User + system CPU time of the whole process, in seconds. */
static double cpu_s(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        die("getrusage: %s", strerror(errno));
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint8_t *read_file(const char *dir, const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        die("open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
        die("read %s", path);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* /proc/self/status field in KiB (VmRSS, VmHWM). */
static long proc_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    fclose(f);
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(double *v, size_t n, double p) {
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return v[(size_t)(p * (double)(n - 1))];
}

/* -------------------------------------------------------------- options */

static const char *opt_certs = "build/bench/certs";
static long opt_size = 64;
static double opt_dur = 1.0;
static long opt_iters = 20;
static long opt_peers = 32;
static long opt_channels = 8;
static long opt_maxconn = 32;
/* How receivers wait: 0 aranya_quic_receive_timeout, 1 poll() on the fd of
 * aranya_quic_receive_fd then aranya_quic_receive (no thread parks inside
 * Go). */
static int opt_poll = 0;
static uint32_t opt_cc = ARANYA_QUIC_CC_DEFAULT; /* cc=reno|bbr2 */
static const char *opt_cc_name = NULL;          /* as given, for the memqueue child */
static long opt_batch = 0;
static int opt_load = 0;
static int opt_callback = 0; /* recv=callback: messages arrive through receive_callback */

static void parse_opts(int argc, char **argv) {
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            die("bad option %s (want key=value)", argv[i]);
        *eq = 0;
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "certs"))
            opt_certs = v;
        else if (!strcmp(k, "size"))
            opt_size = atol(v);
        else if (!strcmp(k, "dur"))
            opt_dur = atof(v);
        else if (!strcmp(k, "iters"))
            opt_iters = atol(v);
        else if (!strcmp(k, "peers"))
            opt_peers = atol(v);
        else if (!strcmp(k, "channels"))
            opt_channels = atol(v);
        else if (!strcmp(k, "maxconn"))
            opt_maxconn = atol(v);
        else if (!strcmp(k, "wait"))
            opt_poll = !strcmp(v, "poll");
        else if (!strcmp(k, "cc")) {
            opt_cc = !strcmp(v, "reno") ? ARANYA_QUIC_CC_RENO : !strcmp(v, "bbr2") ? ARANYA_QUIC_CC_BBR2 : (die("cc=reno|bbr2"), 0);
            opt_cc_name = v;
        } else if (!strcmp(k, "batch"))
            opt_batch = atol(v);
        else if (!strcmp(k, "load"))
            opt_load = atoi(v);
        else if (!strcmp(k, "recv"))
            opt_callback = !strcmp(v, "callback") ? 1 : !strcmp(v, "call") ? 0 : (die("recv=call|callback"), 0);
        else
            die("unknown option %s", k);
    }
    if (opt_peers < 1 || opt_channels < 1)
        die("peers and channels want at least 1");
    if (opt_batch < 0 || opt_batch > 65536)
        die("batch=N wants 0..65536");
    if (opt_load != 0 && opt_load != 1)
        die("load=0|1");
    const char *sc = argv[1];
    if (opt_batch && strcmp(sc, "msg") && strcmp(sc, "par") && strcmp(sc, "fanin") && strcmp(sc, "fanout"))
        die("batch=N applies to msg, par, fanin and fanout");
    if (opt_load && strcmp(sc, "pingpong"))
        die("load=1 applies to pingpong");
    if (opt_callback && strcmp(sc, "pingpong") && strcmp(sc, "msg") && strcmp(sc, "par") && strcmp(sc, "fanin") &&
        strcmp(sc, "fanout"))
        die("recv=callback applies to pingpong, msg, par, fanin and fanout");
}

/* ------------------------------------------------------------ endpoints */

static uint8_t *ca_pem, *cert_pem[2], *key_pem[2];
static size_t ca_len, cert_len[2], key_len[2];
static const uint8_t team[ARANYA_QUIC_TEAM_ID_LEN] = {1, 2, 3};

static void load_certs(void) {
    ca_pem = read_file(opt_certs, "ca.pem", &ca_len);
    cert_pem[0] = read_file(opt_certs, "alice.crt", &cert_len[0]);
    key_pem[0] = read_file(opt_certs, "alice.key", &key_len[0]);
    cert_pem[1] = read_file(opt_certs, "bob.crt", &cert_len[1]);
    key_pem[1] = read_file(opt_certs, "bob.key", &key_len[1]);
}

typedef struct {
    aranya_quic_t h;
    char addr[ARANYA_QUIC_ADDR_MAX];
} endpoint;

/* who: 0 alice, 1 bob. maxconn 0: default. send_timeout_ms 0: default.
 * fn: the receive callback, or NULL for the receive queue. */
static endpoint mk_full(int who, uint32_t maxconn, uint32_t send_timeout_ms, aranya_quic_receive_callback fn,
                        void *user) {
    aranya_quic_config cfg;
    endpoint e;
    size_t n;
    check(aranya_quic_config_init(&cfg), "config_init");
    cfg.bind_addr = "127.0.0.1:0";
    cfg.cert_pem = cert_pem[who];
    cfg.cert_pem_len = cert_len[who];
    cfg.key_pem = key_pem[who];
    cfg.key_pem_len = key_len[who];
    cfg.ca_pem = ca_pem;
    cfg.ca_pem_len = ca_len;
    cfg.max_connections = maxconn;
    cfg.send_timeout_ms = send_timeout_ms;
    cfg.congestion_control = opt_cc;
    cfg.receive_callback = fn;
    cfg.receive_callback_user = user;
    check(aranya_quic_new(&cfg, &e.h), "new");
    check(aranya_quic_local_addr(e.h, e.addr, sizeof e.addr, &n), "local_addr");
    return e;
}

static endpoint mk(int who, uint32_t maxconn, uint32_t send_timeout_ms) {
    return mk_full(who, maxconn, send_timeout_ms, NULL, NULL);
}

static void send_msg(endpoint *from, const char *to, const char *label, const uint8_t *msg, size_t len) {
    check(aranya_quic_send(from->h, to, team, label, strlen(label), msg, len), "send");
}

/* receive_timeout, or (wait=poll) its equivalent built on the fd. */
static int32_t wait_receive(aranya_quic_t h, uint8_t *buf, size_t cap, aranya_quic_channel *ch, size_t *len,
                            int32_t timeout_ms) {
    if (!opt_poll)
        return aranya_quic_receive_timeout(h, buf, cap, ch, len, timeout_ms);
    struct pollfd pf = {.events = POLLIN};
    check(aranya_quic_receive_fd(h, &pf.fd), "receive_fd");
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        int32_t rc = aranya_quic_receive(h, buf, cap, ch, len);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK)
            return rc;
        int left = (int)((end - now_s()) * 1000);
        if (left <= 0)
            return ARANYA_QUIC_ERR_TIMEOUT;
        poll(&pf, 1, left);
    }
}

/* Where a receiver takes messages: one at a time (batch=0) or up to
 * opt_batch per call. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    aranya_quic_message *recs;
    size_t nrec;
    int fd; /* receive_fd, fetched on the first wait (wait=poll) */
} rxbuf;

/* A batch of small messages fills N * size bytes; large messages are capped
 * here, since a call per MiB costs nothing next to the copy, but the buffer
 * always holds at least one message. */
#define BATCH_BUF_MAX ((size_t)4 << 20)

static void rx_init(rxbuf *x, size_t size) {
    size_t one = size ? size : 1;
    x->nrec = opt_batch > 0 ? (size_t)opt_batch : 1;
    x->cap = one;
    if (opt_batch > 0) {
        x->cap = x->nrec * one;
        if (x->cap > BATCH_BUF_MAX)
            x->cap = BATCH_BUF_MAX > one ? BATCH_BUF_MAX : one;
    }
    x->buf = malloc(x->cap);
    x->recs = calloc(x->nrec, sizeof *x->recs);
    x->fd = -1;
    if (!x->buf || !x->recs)
        die("out of memory");
}

static void rx_free(rxbuf *x) {
    free(x->buf);
    free(x->recs);
}

/* Takes one message (batch=0) or up to nrec; *count is how many, their
 * lengths in x->recs. Waits up to timeout_ms for the first: in
 * aranya_quic_receive_batch or receive_timeout, or with wait=poll in
 * poll() on the fd, taking without waiting until WOULD_BLOCK. */
static int32_t rx_take(aranya_quic_t h, rxbuf *x, size_t *count, int32_t timeout_ms) {
    if (opt_batch == 0) {
        int32_t rc = wait_receive(h, x->buf, x->cap, &x->recs[0].channel, &x->recs[0].len, timeout_ms);
        x->recs[0].offset = 0;
        *count = rc == ARANYA_QUIC_OK ? 1 : 0;
        return rc;
    }
    if (!opt_poll)
        return aranya_quic_receive_batch(h, x->buf, x->cap, x->recs, x->nrec, count, timeout_ms);
    if (x->fd < 0)
        check(aranya_quic_receive_fd(h, &x->fd), "receive_fd");
    struct pollfd pf = {.fd = x->fd, .events = POLLIN};
    double end = now_s() + timeout_ms / 1000.0;
    for (;;) {
        int32_t rc = aranya_quic_receive_batch(h, x->buf, x->cap, x->recs, x->nrec, count, 0);
        if (rc != ARANYA_QUIC_ERR_WOULD_BLOCK)
            return rc;
        int left = (int)((end - now_s()) * 1000);
        if (left <= 0)
            return ARANYA_QUIC_ERR_TIMEOUT;
        poll(&pf, 1, left);
    }
}

static size_t recv_msg(endpoint *at, uint8_t *buf, size_t cap, aranya_quic_channel *ch) {
    size_t len;
    check(wait_receive(at->h, buf, cap, ch, &len, 10000), "receive");
    return len;
}

static void emit(const char *scenario, const char *metrics_fmt, ...) {
    va_list ap;
    printf("{\"scenario\":\"%s\",\"impl\":\"aranya-quic\",\"metrics\":{", scenario);
    va_start(ap, metrics_fmt);
    vprintf(metrics_fmt, ap);
    va_end(ap);
    printf("}}\n");
    fflush(stdout);
}

/* ------------------------------------------------------ stream receiver */

/* A receiver thread: takes messages from one endpoint until the senders
 * are done and every message they sent has arrived. */
typedef struct {
    endpoint *ep;
    size_t size;         /* message size, for the receive buffer */
    atomic_int done;     /* senders finished; total is final */
    atomic_llong total;  /* messages the senders sent to this endpoint */
    long long msgs, bytes;
    double last;         /* time of the last message */
    /* Process CPU time when the last message was taken, if that was after
     * done; else -1 and the caller's reading when it set done stands. */
    double cpu_last;
    int err;
} receiver;

static void *receiver_main(void *arg) {
    receiver *r = arg;
    rxbuf x;
    rx_init(&x, r->size);
    r->cpu_last = -1;
    r->last = now_s();
    for (;;) {
        if (atomic_load(&r->done) && r->msgs >= atomic_load(&r->total))
            break;
        size_t k;
        int32_t rc = rx_take(r->ep->h, &x, &k, 50);
        if (rc == ARANYA_QUIC_ERR_TIMEOUT) {
            if (atomic_load(&r->done) && now_s() - r->last > 20) {
                r->err = 1; /* messages lost */
                break;
            }
            continue;
        }
        if (rc != ARANYA_QUIC_OK) {
            fprintf(stderr, "aqbench: receive: %s (%d): %s\n", aranya_quic_strerror(rc), rc,
                    aranya_quic_last_error());
            r->err = 1;
            break;
        }
        for (size_t i = 0; i < k; i++)
            r->bytes += (long long)x.recs[i].len;
        r->msgs += (long long)k;
        r->last = now_s();
        if (atomic_load(&r->done) && r->msgs >= atomic_load(&r->total)) {
            r->cpu_last = cpu_s();
            break;
        }
    }
    rx_free(&x);
    return NULL;
}

/* ------------------------------------------------------------ scenarios */

/* n copies of one message, for aranya_quic_send_batch. */
static aranya_quic_buf *batch_bufs(const uint8_t *msg, size_t size, size_t n) {
    aranya_quic_buf *b = calloc(n, sizeof *b);
    if (!b)
        die("out of memory");
    for (size_t i = 0; i < n; i++) {
        b[i].data = msg;
        b[i].len = size;
    }
    return b;
}

/* One send call: one message (batch=0) or opt_batch of them. Returns how
 * many were sent. */
static long long send_some(endpoint *from, const char *to, const char *label, const aranya_quic_buf *bufs) {
    if (opt_batch == 0) {
        send_msg(from, to, label, bufs[0].data, bufs[0].len);
        return 1;
    }
    size_t sent = 0;
    int32_t rc = aranya_quic_send_batch(from->h, to, team, label, strlen(label), bufs, (size_t)opt_batch, &sent);
    if (rc != ARANYA_QUIC_OK)
        die("send_batch: %s (%d) after %zu of %ld: %s", aranya_quic_strerror(rc), rc, sent, opt_batch,
            aranya_quic_last_error());
    return (long long)sent;
}

/* Send calls between looks at the clock: about every 64 small messages,
 * every call once a call carries 4 KiB or more. */
static long long clock_every(size_t size) {
    long long per = opt_batch > 0 ? opt_batch : 1;
    if (size * (size_t)per >= 4096 || per >= 64)
        return 1;
    return 64 / per;
}

typedef struct {
    endpoint *from;
    const char *to;
    char label[32];
    size_t size;
    double deadline;
    long long sent;
} sender;

static void *sender_main(void *arg) {
    sender *s = arg;
    uint8_t *msg = calloc(1, s->size ? s->size : 1);
    aranya_quic_buf *bufs = batch_bufs(msg, s->size, opt_batch > 0 ? (size_t)opt_batch : 1);
    long long every = clock_every(s->size);
    for (long long i = 0;; i++) {
        s->sent += send_some(s->from, s->to, s->label, bufs);
        if (i % every == 0 && now_s() >= s->deadline)
            break;
    }
    free(bufs);
    free(msg);
    return NULL;
}

/* Connects from to `to` before the clock starts, as the baselines dial
 * before theirs, with one message on a channel of its own: the measured
 * channels are still new when timing starts, so their first message is
 * timed like the rest. */
/* recv=callback: the receiving endpoint counts in its receive callback. */
typedef struct {
    atomic_llong msgs, bytes, connects;
    atomic_llong last_ns; /* time of the last counted message */
    atomic_int senders_done; /* from here on every message reads the clock */
} cb_counter;

static int is_label(const aranya_quic_channel *ch, const char *label);

static void count_cb(void *user, const aranya_quic_channel *ch, const uint8_t *m, size_t len) {
    (void)m;
    cb_counter *c = user;
    if (is_label(ch, "connect")) {
        atomic_fetch_add(&c->connects, 1);
        return;
    }
    atomic_fetch_add(&c->bytes, (long long)len);
    long long n = atomic_fetch_add(&c->msgs, 1) + 1;
    /* Only the last message's time counts, and it comes after the senders
     * finished; before that, reading the clock every 1024th message keeps
     * the receiver's cost close to the receive thread's. */
    if ((n & 1023) == 0 || atomic_load(&c->senders_done))
        atomic_store(&c->last_ns, (long long)(now_s() * 1e9));
}

/* Sends one message on a channel of its own and waits for it, so that the
 * handshake stays out of the measurement. */
static void preconnect_to(endpoint *from, endpoint *to, cb_counter *counted) {
    uint8_t msg[64] = {0}, in[64];
    aranya_quic_channel ch;
    long long before = counted ? atomic_load(&counted->connects) : 0;
    send_msg(from, to->addr, "connect", msg, sizeof msg);
    if (!counted) {
        recv_msg(to, in, sizeof in, &ch);
        return;
    }
    double start = now_s();
    while (atomic_load(&counted->connects) == before) {
        if (now_s() - start > 10)
            die("connect message never arrived");
        sleep_ms(1);
    }
}

static void preconnect(endpoint *from, endpoint *to) {
    preconnect_to(from, to, NULL);
}

static void emit_throughput(const char *scenario, long long msgs, long long bytes, double el, double cpu,
                            const char *extra_key, int extra) {
    emit(scenario,
         "\"msgs_per_s\":%.1f,\"gbit_s\":%.4f,\"cpu_ns_per_msg\":%.1f,\"msgs\":%lld,\"seconds\":%.3f,"
         "\"cpu_seconds\":%.3f,\"batch\":%ld,\"%s\":%d",
         (double)msgs / el, (double)bytes * 8 / el / 1e9, cpu * 1e9 / (double)msgs, msgs, el, cpu, opt_batch,
         extra_key, extra);
}

/* n senders (one per channel, or one per sending endpoint) into one
 * receiving endpoint; throughput at the receiver. */
/* run_streams with recv=callback: the same senders, counted by count_cb. */
static void run_streams_callback(const char *scenario, endpoint *froms, int nfrom, int nchan, size_t size);

static void run_streams(const char *scenario, endpoint *froms, int nfrom, int nchan, size_t size) {
    if (opt_callback) {
        run_streams_callback(scenario, froms, nfrom, nchan, size);
        return;
    }
    endpoint b = mk(1, 0, 0);
    int n = nfrom * nchan;
    sender *s = calloc((size_t)n, sizeof *s);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    receiver r = {.ep = &b, .size = size};
    for (int i = 0; i < nfrom; i++)
        preconnect(&froms[i], &b);
    for (int i = 0; i < n; i++) {
        s[i].from = &froms[i / nchan];
        s[i].to = b.addr;
        snprintf(s[i].label, sizeof s[i].label, "bench-%d", i % nchan);
        s[i].size = size;
    }
    pthread_t rt;
    double start = now_s(), cpu0 = cpu_s();
    for (int i = 0; i < n; i++)
        s[i].deadline = start + opt_dur;
    pthread_create(&rt, NULL, receiver_main, &r);
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, sender_main, &s[i]);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += s[i].sent;
    }
    double cpu_done = cpu_s();
    atomic_store(&r.total, total);
    atomic_store(&r.done, 1);
    pthread_join(rt, NULL);
    if (r.err || r.msgs != total)
        die("%s: received %lld of %lld messages", scenario, r.msgs, total);
    double cpu_end = r.cpu_last > cpu_done ? r.cpu_last : cpu_done;
    emit_throughput(scenario, r.msgs, r.bytes, r.last - start, cpu_end - cpu0, "senders", n);
    check(aranya_quic_free(b.h), "free");
    free(s);
    free(th);
}

static void run_streams_callback(const char *scenario, endpoint *froms, int nfrom, int nchan, size_t size) {
    static cb_counter c;
    endpoint b = mk_full(1, 0, 0, count_cb, &c);
    int n = nfrom * nchan;
    sender *s = calloc((size_t)n, sizeof *s);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    for (int i = 0; i < nfrom; i++)
        preconnect_to(&froms[i], &b, &c);
    for (int i = 0; i < n; i++) {
        s[i].from = &froms[i / nchan];
        s[i].to = b.addr;
        snprintf(s[i].label, sizeof s[i].label, "bench-%d", i % nchan);
        s[i].size = size;
    }
    double start = now_s(), cpu0 = cpu_s();
    for (int i = 0; i < n; i++)
        s[i].deadline = start + opt_dur;
    for (int i = 0; i < n; i++)
        pthread_create(&th[i], NULL, sender_main, &s[i]);
    long long total = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        total += s[i].sent;
    }
    atomic_store(&c.senders_done, 1);
    if (atomic_load(&c.msgs) >= total) /* all in before the flag: the last read may be stale */
        atomic_store(&c.last_ns, (long long)(now_s() * 1e9));
    double wait_start = now_s();
    while (atomic_load(&c.msgs) < total) {
        if (now_s() - wait_start > 20)
            die("%s: received %lld of %lld messages", scenario, (long long)atomic_load(&c.msgs), total);
        sleep_ms(1);
    }
    double cpu_end = cpu_s();
    if (atomic_load(&c.msgs) != total)
        die("%s: received %lld of %lld messages", scenario, (long long)atomic_load(&c.msgs), total);
    double last = (double)atomic_load(&c.last_ns) / 1e9;
    emit_throughput(scenario, total, atomic_load(&c.bytes), last - start, cpu_end - cpu0, "senders", n);
    check(aranya_quic_free(b.h), "free");
    free(s);
    free(th);
}

static void sc_msg(void) {
    endpoint a = mk(0, 0, 0);
    run_streams("msg", &a, 1, 1, (size_t)opt_size);
    check(aranya_quic_free(a.h), "free");
}

static void sc_par(void) {
    endpoint a = mk(0, 0, 0);
    run_streams("par", &a, 1, (int)opt_channels, (size_t)opt_size);
    check(aranya_quic_free(a.h), "free");
}

static void sc_fanin(void) {
    int n = (int)opt_peers;
    endpoint *a = calloc((size_t)n, sizeof *a);
    for (int i = 0; i < n; i++)
        a[i] = mk(i & 1, 0, 0);
    run_streams("fanin", a, n, 1, (size_t)opt_size);
    for (int i = 0; i < n; i++)
        check(aranya_quic_free(a[i].h), "free");
    free(a);
}

/* Fan-out: one sending endpoint, `peers` receiving endpoints with a
 * receiver thread each; the sender goes round-robin, one message (or one
 * batch) per peer at a time. Throughput = all messages received / (the
 * last receiver's last message - start). */
static void sc_fanout(void) {
    int n = (int)opt_peers;
    size_t size = (size_t)opt_size;
    endpoint a = mk(0, 0, 0);
    endpoint *e = calloc((size_t)n, sizeof *e);
    receiver *r = calloc((size_t)n, sizeof *r);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    long long *sent = calloc((size_t)n, sizeof *sent);
    /* recv=callback: each receiving endpoint counts in its callback. */
    cb_counter *cnt = calloc((size_t)n, sizeof *cnt);
    for (int i = 0; i < n; i++) {
        e[i] = opt_callback ? mk_full(1, 0, 0, count_cb, &cnt[i]) : mk(1, 0, 0);
        r[i].ep = &e[i];
        r[i].size = size;
    }
    for (int i = 0; i < n; i++)
        preconnect_to(&a, &e[i], opt_callback ? &cnt[i] : NULL);
    uint8_t *msg = calloc(1, size ? size : 1);
    aranya_quic_buf *bufs = batch_bufs(msg, size, opt_batch > 0 ? (size_t)opt_batch : 1);
    double start = now_s(), cpu0 = cpu_s(), deadline = start + opt_dur;
    for (int i = 0; !opt_callback && i < n; i++)
        pthread_create(&th[i], NULL, receiver_main, &r[i]);
    long long every = clock_every(size);
    for (long long i = 0;; i++) {
        int p = (int)(i % n);
        sent[p] += send_some(&a, e[p].addr, "bench-0", bufs);
        if (i % every == 0 && now_s() >= deadline)
            break;
    }
    double cpu_done = cpu_s();
    if (opt_callback) {
        for (int i = 0; i < n; i++) {
            atomic_store(&cnt[i].senders_done, 1);
            if (atomic_load(&cnt[i].msgs) >= sent[i])
                atomic_store(&cnt[i].last_ns, (long long)(now_s() * 1e9));
        }
        double wait_start = now_s();
        for (int i = 0; i < n; i++) {
            while (atomic_load(&cnt[i].msgs) < sent[i] && now_s() - wait_start < 20)
                sleep_ms(1);
            r[i].msgs = atomic_load(&cnt[i].msgs);
            r[i].bytes = atomic_load(&cnt[i].bytes);
            r[i].last = (double)atomic_load(&cnt[i].last_ns) / 1e9;
            r[i].cpu_last = -1;
        }
        cpu_done = cpu_s();
    }
    for (int i = 0; i < n; i++) {
        atomic_store(&r[i].total, sent[i]);
        atomic_store(&r[i].done, 1);
    }
    long long msgs = 0, bytes = 0, total = 0;
    double last = start, cpu_end = cpu_done;
    int bad = 0;
    for (int i = 0; i < n; i++) {
        if (!opt_callback)
            pthread_join(th[i], NULL);
        if (r[i].err || r[i].msgs != sent[i]) {
            fprintf(stderr, "aqbench: fanout: peer %d received %lld of %lld messages\n", i, r[i].msgs, sent[i]);
            bad = 1;
        }
        msgs += r[i].msgs;
        bytes += r[i].bytes;
        total += sent[i];
        if (r[i].last > last)
            last = r[i].last;
        if (r[i].cpu_last > cpu_end)
            cpu_end = r[i].cpu_last;
    }
    if (bad)
        die("fanout: received %lld of %lld messages", msgs, total);
    emit_throughput("fanout", msgs, bytes, last - start, cpu_end - cpu0, "peers", n);
    check(aranya_quic_free(a.h), "free");
    for (int i = 0; i < n; i++)
        check(aranya_quic_free(e[i].h), "free");
    free(bufs);
    free(msg);
    free(e);
    free(r);
    free(th);
    free(sent);
    free(cnt);
}

/* Ping-pong: B echoes every "ping" message back on the channel it came on.
 * With load=1, A also sends 64 KiB messages on "bulk", which B drops. */
#define BULK_SIZE 65536

static atomic_int echo_stop;       /* the ping-pong is over */
static atomic_int bulk_stop;       /* the bulk sender should stop */
static atomic_llong bulk_sent = -1; /* final count of bulk messages; -1 while sending */
static atomic_llong bulk_bytes;    /* bulk payload bytes B received */
static long long bulk_msgs;        /* bulk messages B received (echo thread only) */

static int is_label(const aranya_quic_channel *ch, const char *label) {
    size_t n = strlen(label);
    return ch->label_len == n && memcmp(ch->label, label, n) == 0;
}

/* Runs until the ping-pong is over and every bulk message sent arrived, so
 * that nothing is in flight when the endpoints are freed. */
static void *echo_main(void *arg) {
    endpoint *b = arg;
    uint8_t *buf = malloc(BULK_SIZE);
    aranya_quic_channel ch;
    size_t len;
    double last = now_s();
    for (;;) {
        if (atomic_load(&echo_stop)) {
            long long want = atomic_load(&bulk_sent);
            if (want >= 0 && bulk_msgs >= want)
                break;
            if (now_s() - last > 20)
                die("pingpong: %lld of %lld bulk messages arrived", bulk_msgs, want);
        }
        int32_t rc = wait_receive(b->h, buf, BULK_SIZE, &ch, &len, 100);
        if (rc == ARANYA_QUIC_ERR_TIMEOUT)
            continue;
        check(rc, "echo receive");
        last = now_s();
        if (is_label(&ch, "bulk")) {
            bulk_msgs++;
            atomic_fetch_add(&bulk_bytes, (long long)len);
            continue;
        }
        check(aranya_quic_send(b->h, ch.addr, ch.team_id, ch.label, ch.label_len, buf, len), "echo send");
    }
    free(buf);
    return NULL;
}

typedef struct {
    endpoint *from;
    const char *to;
} bulk_arg;

static void *bulk_main(void *arg) {
    bulk_arg *ba = arg;
    uint8_t *msg = calloc(1, BULK_SIZE);
    long long n = 0;
    while (!atomic_load(&bulk_stop)) {
        send_msg(ba->from, ba->to, "bulk", msg, BULK_SIZE);
        n++;
    }
    atomic_store(&bulk_sent, n);
    free(msg);
    return NULL;
}

/* recv=callback: both ends receive through receive_callback. B's callback
 * echoes each ping (and drops bulk); A's callback takes the round-trip
 * time and sends the next ping, so no thread of ours waits for a message. */
typedef struct {
    endpoint ep;
    const char *to;
    uint8_t *msg;
    size_t size;
    int warm; /* round trips left before the clock starts */
    double t, deadline;
    double *rtt;
    size_t n, cap;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} cb_pinger;

static void pinger_cb(void *user, const aranya_quic_channel *ch, const uint8_t *m, size_t len) {
    (void)ch, (void)m, (void)len;
    cb_pinger *p = user;
    double now = now_s();
    if (p->warm > 0) {
        if (--p->warm == 0)
            p->deadline = now + opt_dur;
    } else {
        if (p->n == p->cap)
            p->rtt = realloc(p->rtt, (p->cap *= 2) * sizeof *p->rtt);
        p->rtt[p->n++] = (now - p->t) * 1e6;
        if (now >= p->deadline) {
            pthread_mutex_lock(&p->mu);
            p->done = 1;
            pthread_cond_signal(&p->cv);
            pthread_mutex_unlock(&p->mu);
            return;
        }
    }
    p->t = now_s();
    send_msg(&p->ep, p->to, "ping", p->msg, p->size);
}

typedef struct {
    endpoint ep;
    atomic_llong bulk_msgs;
} cb_echo;

static void echo_cb(void *user, const aranya_quic_channel *ch, const uint8_t *m, size_t len) {
    cb_echo *e = user;
    if (is_label(ch, "bulk")) {
        atomic_fetch_add(&e->bulk_msgs, 1);
        atomic_fetch_add(&bulk_bytes, (long long)len);
        return;
    }
    check(aranya_quic_send(e->ep.h, ch->addr, ch->team_id, ch->label, ch->label_len, m, len), "echo send");
}

static void sc_pingpong_callback(void) {
    static cb_pinger p;
    static cb_echo e;
    p.size = (size_t)opt_size;
    p.msg = calloc(1, p.size ? p.size : 1);
    p.warm = 10;
    p.cap = 1 << 16;
    p.rtt = malloc(p.cap * sizeof *p.rtt);
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    /* The handles are stored before the first message can reach a
     * callback: nothing is sent until both exist. */
    e.ep = mk_full(1, 0, 0, echo_cb, &e);
    p.ep = mk_full(0, 0, 0, pinger_cb, &p);
    p.to = e.ep.addr;
    pthread_t bt;
    bulk_arg ba = {.from = &p.ep, .to = e.ep.addr};
    double bulk_start = now_s();
    if (opt_load)
        pthread_create(&bt, NULL, bulk_main, &ba);
    p.t = now_s();
    send_msg(&p.ep, p.to, "ping", p.msg, p.size);
    pthread_mutex_lock(&p.mu);
    while (!p.done)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    double ping_end = now_s();
    long long bulk_got = atomic_load(&bulk_bytes);
    if (opt_load) {
        atomic_store(&bulk_stop, 1);
        pthread_join(bt, NULL);
        long long want = atomic_load(&bulk_sent);
        double start = now_s();
        while (atomic_load(&e.bulk_msgs) < want) {
            if (now_s() - start > 20)
                die("pingpong: %lld of %lld bulk messages arrived", (long long)atomic_load(&e.bulk_msgs), want);
            sleep_ms(1);
        }
    }
    double p50 = quantile(p.rtt, p.n, 0.5), p99 = quantile(p.rtt, p.n, 0.99);
    if (opt_load)
        emit("pingpong", "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%zu,\"bulk_gbit_s\":%.4f,\"bulk_msgs\":%lld",
             p50, p99, p.n, (double)bulk_got * 8 / (ping_end - bulk_start) / 1e9, bulk_got / BULK_SIZE);
    else
        emit("pingpong", "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%zu", p50, p99, p.n);
    check(aranya_quic_free(p.ep.h), "free");
    check(aranya_quic_free(e.ep.h), "free");
    free(p.rtt);
    free(p.msg);
}

static void sc_pingpong(void) {
    if (opt_callback) {
        sc_pingpong_callback();
        return;
    }
    endpoint a = mk(0, 0, 0), b = mk(1, 0, 0);
    size_t size = (size_t)opt_size;
    uint8_t *msg = calloc(1, size ? size : 1), *in = malloc(size > 65536 ? size : 65536);
    aranya_quic_channel ch;
    pthread_t et, bt;
    if (!opt_load)
        atomic_store(&bulk_sent, 0);
    pthread_create(&et, NULL, echo_main, &b);
    /* Like the baselines: ten round trips before the clock, so the
     * handshake and the opening of both streams stay out of the
     * quantiles. */
    for (int i = 0; i < 10; i++) {
        send_msg(&a, b.addr, "ping", msg, size);
        recv_msg(&a, in, 65536, &ch);
    }
    bulk_arg ba = {.from = &a, .to = b.addr};
    double bulk_start = now_s();
    if (opt_load)
        pthread_create(&bt, NULL, bulk_main, &ba);
    size_t cap = 1 << 16, n = 0;
    double *rtt = malloc(cap * sizeof *rtt);
    double deadline = now_s() + opt_dur;
    while (now_s() < deadline) {
        double t = now_s();
        send_msg(&a, b.addr, "ping", msg, size);
        recv_msg(&a, in, 65536, &ch);
        if (n == cap)
            rtt = realloc(rtt, (cap *= 2) * sizeof *rtt);
        rtt[n++] = (now_s() - t) * 1e6;
    }
    double ping_end = now_s();
    long long bulk_got = atomic_load(&bulk_bytes);
    if (opt_load) {
        atomic_store(&bulk_stop, 1);
        pthread_join(bt, NULL);
    }
    atomic_store(&echo_stop, 1);
    pthread_join(et, NULL);
    double p50 = quantile(rtt, n, 0.5), p99 = quantile(rtt, n, 0.99);
    if (opt_load)
        emit("pingpong", "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%zu,\"bulk_gbit_s\":%.4f,\"bulk_msgs\":%lld",
             p50, p99, n, (double)bulk_got * 8 / (ping_end - bulk_start) / 1e9, bulk_got / BULK_SIZE);
    else
        emit("pingpong", "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%zu", p50, p99, n);
    check(aranya_quic_free(a.h), "free");
    check(aranya_quic_free(b.h), "free");
    free(rtt);
    free(msg);
    free(in);
}

/* First message to a new peer: a fresh endpoint (its own new socket, made
 * before the clock starts) sends one 64-byte message; timed until the
 * receiver has it. Covers dial, handshake, peer confirmation, stream. */
static void sc_first(void) {
    endpoint b = mk(1, 0, 0);
    uint8_t msg[64] = {0}, in[64];
    aranya_quic_channel ch;
    long iters = opt_iters;
    double *lat = malloc((size_t)iters * sizeof *lat);
    for (long i = -2; i < iters; i++) {
        endpoint a = mk(0, 0, 0);
        double t = now_s();
        send_msg(&a, b.addr, "first", msg, sizeof msg);
        recv_msg(&b, in, sizeof in, &ch);
        double d = (now_s() - t) * 1e6;
        if (i >= 0)
            lat[i] = d;
        check(aranya_quic_free(a.h), "free");
    }
    double p50 = quantile(lat, (size_t)iters, 0.5), p99 = quantile(lat, (size_t)iters, 0.99);
    emit("first", "\"p50_us\":%.2f,\"p99_us\":%.2f,\"samples\":%ld", p50, p99, iters);
    check(aranya_quic_free(b.h), "free");
    free(lat);
}

/* Eviction churn: one sender with max_connections=maxconn sends 64-byte
 * messages round-robin to `peers` endpoints, so (peers > maxconn) nearly
 * every message needs a new connection and an eviction. A poller thread
 * reads all receivers and checks every (peer, sequence) arrives once, in
 * order. */
typedef struct {
    endpoint *eps;
    int n;
    long long *next; /* next expected sequence per peer */
    atomic_int done;
    atomic_llong total;
    long long got, bad;
} churn_rx;

static void *churn_rx_main(void *arg) {
    churn_rx *r = arg;
    struct pollfd *pf = calloc((size_t)r->n, sizeof *pf);
    uint8_t buf[256];
    aranya_quic_channel ch;
    size_t len;
    double last = now_s();
    for (int i = 0; i < r->n; i++) {
        check(aranya_quic_receive_fd(r->eps[i].h, &pf[i].fd), "receive_fd");
        pf[i].events = POLLIN;
    }
    for (;;) {
        if (atomic_load(&r->done) && r->got >= atomic_load(&r->total))
            break;
        if (atomic_load(&r->done) && now_s() - last > 20)
            break; /* lost messages: reported by the caller */
        int k = poll(pf, (nfds_t)r->n, 100);
        if (k <= 0)
            continue;
        for (int i = 0; i < r->n; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            for (;;) {
                int32_t rc = aranya_quic_receive(r->eps[i].h, buf, sizeof buf, &ch, &len);
                if (rc == ARANYA_QUIC_ERR_WOULD_BLOCK)
                    break;
                check(rc, "churn receive");
                uint64_t peer, seq;
                memcpy(&peer, buf, 8);
                memcpy(&seq, buf + 8, 8);
                if (len != 64 || peer != (uint64_t)i || (long long)seq != r->next[i])
                    r->bad++;
                r->next[i] = (long long)seq + 1;
                r->got++;
                last = now_s();
            }
        }
    }
    free(pf);
    return NULL;
}

static void sc_churn(void) {
    int n = (int)opt_peers;
    endpoint a = mk(0, (uint32_t)opt_maxconn, 0);
    churn_rx r = {.n = n};
    r.eps = calloc((size_t)n, sizeof *r.eps);
    r.next = calloc((size_t)n, sizeof *r.next);
    long long *seq = calloc((size_t)n, sizeof *seq);
    for (int i = 0; i < n; i++)
        r.eps[i] = mk(1, 0, 0);
    pthread_t rt;
    pthread_create(&rt, NULL, churn_rx_main, &r);
    aranya_quic_stats st0 = {.struct_size = sizeof st0}, st1 = {.struct_size = sizeof st1};
    check(aranya_quic_get_stats(a.h, &st0), "stats");
    uint8_t msg[64] = {0};
    long long total = 0;
    double start = now_s(), deadline = start + opt_dur;
    for (long long i = 0; now_s() < deadline || i < n; i++) {
        int p = (int)(i % n);
        uint64_t peer = (uint64_t)p, s = (uint64_t)seq[p]++;
        memcpy(msg, &peer, 8);
        memcpy(msg + 8, &s, 8);
        send_msg(&a, r.eps[p].addr, "churn", msg, sizeof msg);
        total++;
    }
    double sent_at = now_s();
    atomic_store(&r.total, total);
    atomic_store(&r.done, 1);
    pthread_join(rt, NULL);
    double el = now_s() - start;
    check(aranya_quic_get_stats(a.h, &st1), "stats");
    long long lost = total - r.got;
    emit("churn",
         "\"msgs_per_s\":%.1f,\"handshakes_per_s\":%.1f,\"msgs\":%lld,\"lost\":%lld,\"bad\":%lld,"
         "\"evictions\":%" PRIu64 ",\"dials\":%" PRIu64 ",\"seconds\":%.3f,\"send_seconds\":%.3f",
         (double)r.got / el, (double)(st1.dials - st0.dials) / el, r.got, lost, r.bad,
         st1.evictions - st0.evictions, st1.dials - st0.dials, el, sent_at - start);
    check(aranya_quic_free(a.h), "free");
    for (int i = 0; i < n; i++)
        check(aranya_quic_free(r.eps[i].h), "free");
    free(r.eps);
    free(r.next);
    free(seq);
}

/* RSS per idle connection: `peers` endpoints each connect to one hub and
 * go idle; (RSS after - RSS before) / peers, both ends of each connection
 * in this one process. */
static void sc_memidle(void) {
    int n = (int)opt_peers;
    endpoint hub = mk(1, (uint32_t)n + 1, 0);
    endpoint *p = calloc((size_t)n, sizeof *p);
    uint8_t msg[64] = {0}, in[64];
    aranya_quic_channel ch;
    for (int i = 0; i < n; i++)
        p[i] = mk(0, 0, 0);
    sleep_ms(300);
    long rss0 = proc_kib("VmRSS");
    for (int i = 0; i < n; i++) {
        send_msg(&p[i], hub.addr, "idle", msg, sizeof msg);
        recv_msg(&hub, in, sizeof in, &ch);
    }
    sleep_ms(500);
    long rss1 = proc_kib("VmRSS");
    aranya_quic_stats st = {.struct_size = sizeof st};
    check(aranya_quic_get_stats(hub.h, &st), "stats");
    emit("memidle", "\"kib_per_conn\":%.1f,\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"conns\":%" PRIu64,
         (double)(rss1 - rss0) / n, rss0, rss1, st.open_connections);
    for (int i = 0; i < n; i++)
        check(aranya_quic_free(p[i].h), "free");
    check(aranya_quic_free(hub.h), "free");
    free(p);
}

/* Peak RSS with a full receive queue. The receiver runs in a child process
 * (so its peak RSS is its own) and never reads; the parent sends 1 MiB
 * messages until backpressure stops it. The child reports its peak RSS once
 * its queue has stopped growing. */
static void sc_memqueue_child(void) {
    endpoint b = mk(1, 0, 0);
    long rss_idle = proc_kib("VmRSS");
    printf("%s\n", b.addr);
    fflush(stdout);
    aranya_quic_stats st = {.struct_size = sizeof st};
    uint64_t last = 0;
    double since = now_s();
    for (;;) {
        sleep_ms(100);
        check(aranya_quic_get_stats(b.h, &st), "stats");
        if (st.queue_bytes != last) {
            last = st.queue_bytes;
            since = now_s();
        } else if (last > 0 && now_s() - since > 1.5) {
            break;
        } else if (now_s() - since > 30) {
            die("memqueue: nothing arrived");
        }
    }
    long hwm = proc_kib("VmHWM");
    printf("%ld %ld %" PRIu64 " %" PRIu64 "\n", hwm, rss_idle, st.queue_bytes, st.queue_messages);
    fflush(stdout);
    _exit(0); /* the parent's send is blocked; skip the graceful close */
}

static void sc_memqueue(char *self) {
    int out[2];
    if (pipe(out) != 0)
        die("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char certs[1100];
    snprintf(certs, sizeof certs, "certs=%s", opt_certs);
    char cc[64];
    snprintf(cc, sizeof cc, "cc=%s", opt_cc_name ? opt_cc_name : "");
    char *argv[] = {self, "memqueue-child", certs, opt_cc_name ? cc : NULL, NULL};
    pid_t pid;
    if (posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ) != 0)
        die("posix_spawn");
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char addr[ARANYA_QUIC_ADDR_MAX + 2];
    if (!fgets(addr, sizeof addr, f))
        die("memqueue: child gave no address");
    addr[strcspn(addr, "\n")] = 0;
    endpoint a = mk(0, 0, 1500);
    size_t size = 1 << 20;
    uint8_t *msg = calloc(1, size);
    long sent = 0;
    for (;;) {
        int32_t rc = aranya_quic_send(a.h, addr, team, "fill", 4, msg, size);
        if (rc != ARANYA_QUIC_OK)
            break; /* backpressure: the send timed out */
        sent++;
    }
    long hwm = 0, idle = 0;
    uint64_t qb = 0, qm = 0;
    if (fscanf(f, "%ld %ld %" SCNu64 " %" SCNu64, &hwm, &idle, &qb, &qm) != 4)
        die("memqueue: child gave no result");
    waitpid(pid, NULL, 0);
    double limit_mib = (double)ARANYA_QUIC_DEFAULT_MAX_QUEUE_BYTES / (1 << 20);
    emit("memqueue",
         "\"peak_rss_mib\":%.1f,\"idle_rss_mib\":%.1f,\"queue_limit_mib\":%.0f,\"queue_mib\":%.1f,"
         "\"queue_messages\":%" PRIu64 ",\"sent\":%ld,\"peak_over_limit_plus_64\":%.3f",
         hwm / 1024.0, idle / 1024.0, limit_mib, (double)qb / (1 << 20), qm, sent,
         (hwm / 1024.0) / (limit_mib + 64));
    /* The receiver never read, so what is still in flight cannot be
     * confirmed: free says so, which is expected here. */
    int32_t rc = aranya_quic_free(a.h);
    if (rc != ARANYA_QUIC_ERR_UNCONFIRMED)
        check(rc, "free");
    fclose(f);
    free(msg);
}

int main(int argc, char **argv) {
    if (argc < 2)
        die("usage: aqbench msg|par|pingpong|first|fanin|fanout|churn|memidle|memqueue [key=value ...]");
    parse_opts(argc, argv);
    load_certs();
    const char *sc = argv[1];
    if (!strcmp(sc, "msg"))
        sc_msg();
    else if (!strcmp(sc, "par"))
        sc_par();
    else if (!strcmp(sc, "pingpong"))
        sc_pingpong();
    else if (!strcmp(sc, "first"))
        sc_first();
    else if (!strcmp(sc, "fanin"))
        sc_fanin();
    else if (!strcmp(sc, "fanout"))
        sc_fanout();
    else if (!strcmp(sc, "churn"))
        sc_churn();
    else if (!strcmp(sc, "memidle"))
        sc_memidle();
    else if (!strcmp(sc, "memqueue"))
        sc_memqueue(argv[0]);
    else if (!strcmp(sc, "info")) {
        endpoint a = mk(0, 0, 0);
        aranya_quic_stats st = {.struct_size = sizeof st};
        check(aranya_quic_get_stats(a.h, &st), "stats");
        printf("%s %s\n", aranya_quic_version(), st.congestion_control);
        check(aranya_quic_free(a.h), "free");
    } else if (!strcmp(sc, "memqueue-child"))
        sc_memqueue_child();
    else
        die("unknown scenario %s", sc);
    return 0;
}
