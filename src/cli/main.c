/*
 * main.c - `spline`: global options, then one command group (cli.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/log.h"
#include "cli/cli.h"

#define CLI_ATTEMPT_MS_MIN 2000 /* a silent MDS costs at most this (or --timeout) */

static const char usage[] =
    "usage: spline [--mds=HOST:PORT,...] [--timeout=SECONDS] [--json] [--no-follow]\n"
    "              COMMAND ...\n"
    "\n"
    "commands:\n"
    "  cluster init FILE              create the topology a cluster file describes\n"
    "  cluster status [--details]     health, chunkservers, copysets, operators, recovery\n"
    "  volume create NAME --size=SIZE [--owner=O] [--pool=LPOOL]\n"
    "  volume stat NAME | list | extend NAME --size=SIZE | rename NAME NEW\n"
    "  volume delete NAME | recycle | restore ID [--name=NEW]\n"
    "  volume segment NAME OFFSET [--allocate]\n"
    "  topology list                  pools, zones, servers, chunkservers, logical pools\n"
    "  chunkserver list               chunkservers with liveness and load\n"
    "\n"
    "--mds defaults to $SPLINE_MDS, else 127.0.0.1:6700. --timeout (default 30 s) bounds\n"
    "the whole command; one attempt at one MDS gets a third of it (at least 2 s; cluster\n"
    "init: all of it), then the next address is tried. Redirects to the leader are\n"
    "followed (--no-follow: report what the first MDS answers).\n"
    "Exit codes: 0 ok, 1 the operation failed, 2 usage error, 3 no MDS leader reachable.\n";

int cli_usage_error(const char *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("spline: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    if (u)
        fputs(u, stderr);
    return CLI_EUSAGE;
}

const char *cli_opt(const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) == 0 && strncmp(arg + 2, name, n) == 0 && arg[2 + n] == '=')
        return arg + 3 + n;
    return NULL;
}

int cli_parse_size(const char *text, uint64_t *out)
{
    char *end;
    if (!text || !*text || *text == '-')
        return -EINVAL;
    unsigned long long v = strtoull(text, &end, 10);
    int shift = 0;
    switch (*end) {
    case 'K': case 'k': shift = 10; break;
    case 'M': case 'm': shift = 20; break;
    case 'G': case 'g': shift = 30; break;
    case 'T': case 't': shift = 40; break;
    case 'P': case 'p': shift = 50; break;
    case '\0': break;
    default: return -EINVAL;
    }
    if (shift && end[1] && strcmp(end + 1, "iB") != 0 && strcmp(end + 1, "B") != 0)
        return -EINVAL;
    if (end == text || (shift && v > (UINT64_MAX >> shift)))
        return -EINVAL;
    *out = (uint64_t)v << shift;
    return 0;
}

void cli_format_size(uint64_t b, char *buf, size_t len)
{
    static const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int i = 0;
    while (i < 5 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        i++;
    }
    snprintf(buf, len, "%llu %s", (unsigned long long)b, u[i]);
}

int cli_call(struct cli *c, const char *what, const struct spl_rpc_service *svc,
             uint32_t method, const ProtobufCMessage *req, ProtobufCMessage **resp)
{
    struct spl_rpc_error_info err;
    int rc = spl_mdsc_call(c->mdsc, svc, method, req, resp, &err);
    if (rc == 0)
        return CLI_OK;
    const char *msg = err.message[0] ? err.message : spl_strerror(rc);
    fprintf(stderr, "spline: %s: %s (%s)\n", what, msg, spl_errname(rc));
    bool unreachable = rc == SPL_ERPC_UNREACHABLE || rc == SPL_ERPC_TIMEDOUT ||
                       rc == SPL_ERPC_CONNCLOSED || rc == SPL_EMDS_NOTLEADER ||
                       rc == SPL_EMDS_NOLEADER || rc == SPL_EMDS_NOTREADY ||
                       rc == SPL_EETCD_UNAVAILABLE;
    if (unreachable)
        fprintf(stderr, "spline: no MDS leader answered at %s\n", c->mds);
    return unreachable ? CLI_EUNREACHABLE : CLI_EFAIL;
}

int main(int argc, char **argv)
{
    struct cli c = {.mds = getenv("SPLINE_MDS"), .timeout_ms = 30000};
    if (!c.mds || !c.mds[0])
        c.mds = "127.0.0.1:6700";
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        const char *v;
        if ((v = cli_opt(argv[i], "mds")))
            c.mds = v;
        else if ((v = cli_opt(argv[i], "timeout"))) {
            char *end;
            double s = strtod(v, &end);
            if (*end || s <= 0 || s > 3600)
                return cli_usage_error(usage, "bad --timeout '%s' (seconds)", v);
            c.timeout_ms = (uint32_t)(s * 1000);
        } else if (strcmp(argv[i], "--json") == 0)
            c.json = true;
        else if (strcmp(argv[i], "--no-follow") == 0)
            c.no_follow = true;
        else if (strcmp(argv[i], "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else
            return cli_usage_error(usage, "unknown option '%s'", argv[i]);
    }
    if (i >= argc)
        return cli_usage_error(usage, "no command");
    c.attempt_ms = c.timeout_ms / 3 > CLI_ATTEMPT_MS_MIN ? c.timeout_ms / 3 : CLI_ATTEMPT_MS_MIN;
    if (c.attempt_ms > c.timeout_ms)
        c.attempt_ms = c.timeout_ms;
    const char *group = argv[i];
    int (*fn)(struct cli *, int, char **) = NULL;
    if (strcmp(group, "cluster") == 0)
        fn = cli_cluster;
    else if (strcmp(group, "volume") == 0)
        fn = cli_volume;
    else if (strcmp(group, "topology") == 0)
        fn = cli_topology;
    else if (strcmp(group, "chunkserver") == 0)
        fn = cli_chunkserver;
    else if (strcmp(group, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    } else
        return cli_usage_error(usage, "unknown command '%s'", group);
    spl_log_set_level(SPL_LOG_ERROR); /* the RPC layer's reconnect chatter is not for users */
    struct spl_rpc_runtime_opts ro = {.io_threads = 1, .name = "cli"};
    if (spl_rpc_runtime_create(&ro, &c.rt) < 0 ||
        spl_mdsc_open(c.rt, c.mds, c.attempt_ms, c.timeout_ms, &c.mdsc) < 0) {
        fprintf(stderr, "spline: bad --mds '%s'\n", c.mds);
        return CLI_EUSAGE;
    }
    spl_mdsc_set_follow(c.mdsc, !c.no_follow);
    int rc = fn(&c, argc - i - 1, argv + i + 1);
    spl_mdsc_close(c.mdsc);
    spl_rpc_runtime_destroy(c.rt);
    return rc;
}
