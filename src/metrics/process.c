/*
 * process.c - the standard process_* metrics, computed at scrape time.
 *
 * CPU time from CLOCK_PROCESS_CPUTIME_ID, memory from /proc/self/statm, open
 * descriptors by listing /proc/self/fd, the descriptor limit from getrlimit, and the
 * start time from /proc/self/stat (starttime, in clock ticks after boot) plus btime
 * from /proc/stat, read once at registration. A value that cannot be read is NaN.
 */
#include "metrics/metrics_internal.h"

#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"

static double cpu_seconds(void *arg)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return NAN;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Field `index` (0: total program size, 1: resident set) of /proc/self/statm, in bytes. */
static double statm_bytes(int index)
{
    unsigned long pages[2];
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return NAN;
    int n = fscanf(f, "%lu %lu", &pages[0], &pages[1]);
    fclose(f);
    if (n != 2)
        return NAN;
    return (double)pages[index] * (double)sysconf(_SC_PAGESIZE);
}

static double resident_bytes(void *arg) { return statm_bytes(1); }
static double virtual_bytes(void *arg) { return statm_bytes(0); }

static double open_fds(void *arg)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return NAN;
    double count = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] != '.')
            count++;
    }
    closedir(dir);
    return count - 1; /* the listing's own descriptor */
}

static double max_fds(void *arg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return NAN;
    return rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
}

/* Seconds since boot at which this process started, from /proc/self/stat field 22. */
static double start_after_boot_seconds(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return NAN;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return NAN;
    unsigned long long ticks = 0;
    /* after ')': state is field 3; starttime is field 22 */
    int matched = sscanf(p + 1,
                         " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d"
                         " %*d %*d %*d %llu",
                         &ticks);
    if (matched != 1)
        return NAN;
    return (double)ticks / (double)sysconf(_SC_CLK_TCK);
}

static double boot_time_seconds(void)
{
    char line[256];
    double btime = NAN;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return NAN;
    while (fgets(line, sizeof(line), f)) {
        unsigned long long v;
        if (sscanf(line, "btime %llu", &v) == 1) {
            btime = (double)v;
            break;
        }
    }
    fclose(f);
    return btime;
}

static double process_start_time;
static pthread_once_t start_time_once = PTHREAD_ONCE_INIT;

static void start_time_init(void)
{
    process_start_time = boot_time_seconds() + start_after_boot_seconds();
}

static double start_time(void *arg) { return process_start_time; }

void spl_metrics_register_process(struct spl_metrics *reg)
{
    ASSERT(reg);
    pthread_mutex_lock(&reg->lock);
    bool again = reg->process_registered;
    reg->process_registered = true;
    pthread_mutex_unlock(&reg->lock);
    if (again)
        return;
    pthread_once(&start_time_once, start_time_init);

    spl_counter_attach_cb(spl_counter_new(reg, "process_cpu_seconds_total",
                                          "Total user and system CPU time spent in seconds"),
                          cpu_seconds, NULL);
    spl_gauge_attach_cb(spl_gauge_new(reg, "process_resident_memory_bytes",
                                      "Resident memory size in bytes"),
                        resident_bytes, NULL);
    spl_gauge_attach_cb(spl_gauge_new(reg, "process_virtual_memory_bytes",
                                      "Virtual memory size in bytes"),
                        virtual_bytes, NULL);
    spl_gauge_attach_cb(spl_gauge_new(reg, "process_open_fds", "Number of open file descriptors"),
                        open_fds, NULL);
    spl_gauge_attach_cb(spl_gauge_new(reg, "process_max_fds",
                                      "Maximum number of open file descriptors"),
                        max_fds, NULL);
    spl_gauge_attach_cb(spl_gauge_new(reg, "process_start_time_seconds",
                                      "Start time of the process since unix epoch in seconds"),
                        start_time, NULL);
}
