/*
 * etcd_harness.h - a real etcd for tests: started on free 127.0.0.1 ports in a fresh
 * temporary data directory, waited on until healthy, killed and removed afterwards.
 *
 * Owns the etcd child process and its directory. The child gets PR_SET_PDEATHSIG so a
 * crashed test cannot leak it. The binary is $SPL_ETCD_BIN or etcd from PATH. One thread
 * drives a harness; several harnesses may run at once (each has its own ports).
 */
#ifndef SPL_TEST_ETCD_HARNESS_H
#define SPL_TEST_ETCD_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

struct spl_etcd_harness {
    pid_t pid;             /* 0 when not running */
    char dir[256];         /* data dir and log (etcd.log) */
    int client_port;
    int peer_port;
    char endpoint[64];     /* "http://127.0.0.1:<client_port>" */
};

/* spl_etcd_harness_start - start etcd and wait (up to 20 s) until it answers /health.
 * 0 or a negative errno (the log path is printed to stderr on failure). */
int spl_etcd_harness_start(struct spl_etcd_harness *h);

/* spl_etcd_harness_kill - SIGKILL etcd and reap it; data stays for a restart. */
void spl_etcd_harness_kill(struct spl_etcd_harness *h);

/* spl_etcd_harness_restart - start etcd again on the same ports and data. */
int spl_etcd_harness_restart(struct spl_etcd_harness *h);

/* spl_etcd_harness_stop - kill etcd (if running) and remove its directory. */
void spl_etcd_harness_stop(struct spl_etcd_harness *h);

#endif
