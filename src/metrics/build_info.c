/*
 * build_info.c - spline_build_info: which build a process runs.
 *
 * SPL_VERSION and SPL_GIT_COMMIT come from src/metrics/CMakeLists.txt (the project
 * version, and `git describe --always --dirty` at configure time or "unknown"); they are
 * compiled into this file only, so a new commit rebuilds one object.
 */
#include "metrics/metrics.h"

#include "base/assert.h"

#ifndef SPL_VERSION
#error "SPL_VERSION is defined by src/metrics/CMakeLists.txt"
#endif
#ifndef SPL_GIT_COMMIT
#error "SPL_GIT_COMMIT is defined by src/metrics/CMakeLists.txt"
#endif

const char *spl_metrics_version(void) { return SPL_VERSION; }

const char *spl_metrics_commit(void) { return SPL_GIT_COMMIT; }

void spl_metrics_register_build_info(struct spl_metrics *reg, const char *component)
{
    ASSERT(reg && component && component[0]);
    struct spl_gauge_family *fam =
        spl_gauge_family(reg, "spline_build_info",
                         "Always 1: the component, version and git commit of this build",
                         "component", "version", "commit");
    spl_gauge_set(spl_gauge_get(fam, component, SPL_VERSION, SPL_GIT_COMMIT), 1);
}
