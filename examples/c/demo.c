/*
 * demo: two peers exchanging Aranya QUIC Channels messages. Run it twice,
 * as two processes (this is what `make run` does):
 *
 *   demo listen CERTS_DIR bob   ADDR_FILE    # prints what it receives, replies
 *   demo send   CERTS_DIR alice PEER_ADDR    # sends, prints the replies
 *
 * CERTS_DIR comes from `go run ./examples/certgen -out CERTS_DIR alice bob`.
 * The listener binds 127.0.0.1 on a free port and writes its address to
 * ADDR_FILE, so the sender knows where to send.
 *
 * Exit status 0 when every expected message arrived, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aranya_quic.h"

/* The sender sends MESSAGES messages; the listener answers each one. */
#define MESSAGES 5
#define WAIT_MS 10000

static uint8_t *read_file(const char *dir, const char *name, size_t *len) {
    char path[1024];
    FILE *f;
    uint8_t *buf = NULL;
    long n;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "demo: cannot open %s\n", path);
        exit(1);
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n);
        if (buf != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            *len = (size_t)n;
            fclose(f);
            return buf;
        }
    }
    fprintf(stderr, "demo: cannot read %s\n", path);
    exit(1);
}

/* check exits with the library's detail message when rc is not OK. */
static void check(int32_t rc, const char *what) {
    if (rc != ARANYA_QUIC_OK) {
        fprintf(stderr, "demo: %s: %s (%s)\n", what, aranya_quic_strerror(rc), aranya_quic_last_error());
        exit(1);
    }
}

/* open_endpoint loads NAME's certificate and key and the CA, and binds a
 * free port on 127.0.0.1. */
static aranya_quic_t open_endpoint(const char *certs, const char *name) {
    aranya_quic_config cfg;
    aranya_quic_t ep;
    char file[256];
    uint8_t *cert, *key, *ca;

    aranya_quic_config_init(&cfg);
    cfg.bind_addr = "127.0.0.1:0";
    snprintf(file, sizeof file, "%s.crt", name);
    cert = read_file(certs, file, &cfg.cert_pem_len);
    snprintf(file, sizeof file, "%s.key", name);
    key = read_file(certs, file, &cfg.key_pem_len);
    ca = read_file(certs, "ca.pem", &cfg.ca_pem_len);
    cfg.cert_pem = cert;
    cfg.key_pem = key;
    cfg.ca_pem = ca;

    check(aranya_quic_new(&cfg, &ep), "aranya_quic_new");
    /* The library copied what it needs: the buffers can go. */
    free(cert);
    free(key);
    free(ca);
    return ep;
}

/* print_message shows one received message. */
static void print_message(const char *who, const aranya_quic_channel *ch, const uint8_t *msg, size_t len) {
    if (ch->kind == ARANYA_QUIC_KIND_SYNC) {
        printf("%s received sync type %u from %s: \"%.*s\"\n", who, (unsigned)ch->sync_type, ch->addr,
               (int)len, (const char *)msg);
    } else {
        printf("%s received on channel (team %02x%02x.., label \"%s\") from %s: \"%.*s\"\n", who,
               ch->team_id[0], ch->team_id[1], ch->label, ch->addr, (int)len, (const char *)msg);
    }
    fflush(stdout);
}

/* listen: receive MESSAGES messages and answer each on its own channel. */
static int run_listener(const char *certs, const char *name, const char *addr_file) {
    aranya_quic_t ep = open_endpoint(certs, name);
    char addr[ARANYA_QUIC_ADDR_MAX];
    size_t len;
    FILE *f;
    int i;

    check(aranya_quic_local_addr(ep, addr, sizeof addr, &len), "aranya_quic_local_addr");
    /* Write the address to a temporary name, then rename: the sender never
     * reads half a file. */
    {
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s.tmp", addr_file);
        f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%s\n", addr) < 0 || fclose(f) != 0 || rename(tmp, addr_file) != 0) {
            fprintf(stderr, "demo: cannot write %s\n", addr_file);
            return 1;
        }
    }
    printf("%s listening on %s\n", name, addr);
    fflush(stdout);

    for (i = 0; i < MESSAGES; i++) {
        uint8_t msg[1024], reply[1100];
        aranya_quic_channel ch;
        int n;
        check(aranya_quic_receive_timeout(ep, msg, sizeof msg, &ch, &len, WAIT_MS), "aranya_quic_receive_timeout");
        print_message(name, &ch, msg, len);

        /* Reply to the address the message came from, on the same channel. */
        n = snprintf((char *)reply, sizeof reply, "%s got \"%.*s\"", name, (int)len, (const char *)msg);
        if (ch.kind == ARANYA_QUIC_KIND_SYNC) {
            check(aranya_quic_send_sync(ep, ch.addr, ch.sync_type, reply, (size_t)n), "aranya_quic_send_sync");
        } else {
            check(aranya_quic_send(ep, ch.addr, ch.team_id, ch.label, ch.label_len, reply, (size_t)n),
                  "aranya_quic_send");
        }
    }
    /* free closes gracefully: the replies reach the sender before it returns. */
    check(aranya_quic_free(ep), "aranya_quic_free");
    return 0;
}

/* send: send on two channels and one sync type, then print the replies. */
static int run_sender(const char *certs, const char *name, const char *peer) {
    aranya_quic_t ep = open_endpoint(certs, name);
    uint8_t team_id[ARANYA_QUIC_TEAM_ID_LEN];
    static const char *chat[] = {"hello bob", "how are you?", "bye"};
    static const char sync_msg[] = "sync request: give me the commands after #42";
    static const char file_msg[] = "file chunk 1/1";
    int i;

    memset(team_id, 0, sizeof team_id);
    team_id[0] = 0xA1;
    team_id[1] = 0x7E;

    for (i = 0; i < 3; i++) {
        check(aranya_quic_send(ep, peer, team_id, "chat", 4, (const uint8_t *)chat[i], strlen(chat[i])),
              "aranya_quic_send");
    }
    check(aranya_quic_send(ep, peer, team_id, "files", 5, (const uint8_t *)file_msg, strlen(file_msg)),
          "aranya_quic_send");
    check(aranya_quic_send_sync(ep, peer, 1, (const uint8_t *)sync_msg, strlen(sync_msg)),
          "aranya_quic_send_sync");
    printf("%s sent %d messages to %s\n", name, MESSAGES, peer);
    fflush(stdout);

    for (i = 0; i < MESSAGES; i++) {
        uint8_t msg[1100];
        aranya_quic_channel ch;
        size_t len;
        check(aranya_quic_receive_timeout(ep, msg, sizeof msg, &ch, &len, WAIT_MS), "aranya_quic_receive_timeout");
        print_message(name, &ch, msg, len);
    }
    check(aranya_quic_free(ep), "aranya_quic_free");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "listen") == 0) {
        return run_listener(argv[2], argv[3], argv[4]);
    }
    if (argc == 5 && strcmp(argv[1], "send") == 0) {
        return run_sender(argv[2], argv[3], argv[4]);
    }
    fprintf(stderr,
            "usage: %s listen CERTS_DIR NAME ADDR_FILE\n"
            "       %s send   CERTS_DIR NAME PEER_ADDR\n"
            "libaranya_quic %s\n",
            argv[0], argv[0], aranya_quic_version());
    return 2;
}
