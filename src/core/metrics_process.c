/* The process_* families every Prometheus client library exports (CPU time,
 * memory, file descriptors, start time), read from /proc and getrusage at
 * scrape time, so dashboards built for any service work here too. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "credvault/metrics.h"

static cv_result family(struct cv_buf *out, const char *name, const char *type, const char *help, double v)
{
    CV_GUARD(cv_metrics_write_family(out, name, type, help));
    return cv_metrics_write_sample(out, name, NULL, NULL, 0, v);
}

/* starttime (field 22 of /proc/self/stat, clock ticks after boot) plus the
 * boot time of /proc/stat; 0 when either is unreadable */
static double start_time_seconds(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return 0;
    unsigned long long ticks = 0;
    /* after ')': state is field 3, starttime field 22 */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
               &ticks) != 1)
        return 0;
    unsigned long long btime = 0;
    f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %llu", &btime) == 1) break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!btime || hz <= 0) return 0;
    return (double)btime + (double)ticks / (double)hz;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 0;
    double n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

cv_result cv_metrics_render_process(struct cv_buf *out)
{
    struct rusage ru;
    double cpu = 0;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
              (double)ru.ru_stime.tv_usec / 1e6;
    unsigned long long vm_pages = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &vm_pages, &rss_pages) != 2) vm_pages = rss_pages = 0;
        fclose(f);
    }
    double page = (double)sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? (double)rl.rlim_cur : 0;
    CV_GUARD(family(out, "process_cpu_seconds_total", "counter", "user and system CPU time spent, in seconds", cpu));
    CV_GUARD(family(out, "process_resident_memory_bytes", "gauge", "resident memory size in bytes",
                    (double)rss_pages * page));
    CV_GUARD(family(out, "process_virtual_memory_bytes", "gauge", "virtual memory size in bytes",
                    (double)vm_pages * page));
    CV_GUARD(family(out, "process_open_fds", "gauge", "open file descriptors", open_fds()));
    CV_GUARD(family(out, "process_max_fds", "gauge", "the limit of open file descriptors (RLIMIT_NOFILE)", max_fds));
    return family(out, "process_start_time_seconds", "gauge", "start time of the process since the unix epoch, in seconds",
                  start_time_seconds());
}
