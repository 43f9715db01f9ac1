/*
 * cli.h - the `spline` command line tool: shared helpers of the command groups
 * (cluster.c, volume.c, topology.c; main.c parses global options and dispatches).
 *
 * Owns: the connection to the MDS (spl_mdsc, following leader redirects across
 * --mds addresses), printing errors as "spline: <what>: <message> (<STABLE_NAME>)", size
 * parsing and printing, exit codes. Single-threaded (the RPC runtime's IO thread runs
 * underneath).
 *
 * Exit codes: 0 success; 1 the MDS refused or failed the operation (the message says
 * why); 2 usage error (bad command, option or argument); 3 no MDS leader reachable
 * (unreachable addresses, no leader elected, etcd unavailable).
 */
#ifndef SPL_CLI_CLI_H
#define SPL_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "mds/mds_client.h"

enum { CLI_OK = 0, CLI_EFAIL = 1, CLI_EUSAGE = 2, CLI_EUNREACHABLE = 3 };

struct cli {
    const char *mds;        /* --mds list */
    uint32_t timeout_ms;    /* whole-call deadline */
    uint32_t attempt_ms;    /* one attempt at one MDS (cluster init: timeout_ms) */
    bool json;              /* --json output where supported */
    bool no_follow;         /* --no-follow: do not follow redirects */
    spl_rpc_runtime *rt;
    struct spl_mdsc *mdsc;
};

/* cli_call - call the MDS leader (following redirects, trying every --mds address, each
 * attempt bounded by attempt_ms and all of them by timeout_ms and SPL_MDSC_ATTEMPTS_MAX);
 * on failure print "spline: what: message (NAME)" and return the exit code: 1, or 3
 * with a second line "spline: no MDS leader answered at ADDRS" when no MDS served. */
int cli_call(struct cli *c, const char *what, const struct spl_rpc_service *svc,
             uint32_t method, const ProtobufCMessage *req, ProtobufCMessage **resp);

/* cli_usage_error - print "spline: msg" and the group's usage; returns CLI_EUSAGE. */
int cli_usage_error(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* cli_parse_size - "10G", "512M", "1T", "1073741824" (K/M/G/T/P are powers of 1024).
 * 0 or -EINVAL. */
int cli_parse_size(const char *text, uint64_t *out);
/* cli_format_size - "10 GiB" style. */
void cli_format_size(uint64_t bytes, char *buf, size_t len);
/* cli_opt - when arg is "--name=value" returns value, else NULL. */
const char *cli_opt(const char *arg, const char *name);

int cli_cluster(struct cli *c, int argc, char **argv);
int cli_volume(struct cli *c, int argc, char **argv);
int cli_topology(struct cli *c, int argc, char **argv);
int cli_chunkserver(struct cli *c, int argc, char **argv);

#endif
