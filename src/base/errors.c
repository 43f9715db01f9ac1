/* errors.c - lookups over the X-macro error table; see errors.h. */
#include "base/errors.h"

#include <string.h>

#include "base/assert.h"

struct spl_error_row {
    int code;
    const char *name;
    const char *msg;
};

static const struct spl_error_row spl_error_rows[] = {
#define XX(name, code, msg) {-(code), #name, msg},
#include "base/errors/base.def"
#include "base/errors/rpc.def"
#include "base/errors/raft.def"
#include "base/errors/raftlog.def"
#include "base/errors/mds.def"
#include "base/errors/chunkserver.def"
#include "base/errors/client.def"
#undef XX
};

static const struct spl_error_row *spl_error_find(int err)
{
    for (size_t i = 0; i < SPL_ARRAY_SIZE(spl_error_rows); i++)
        if (spl_error_rows[i].code == err)
            return &spl_error_rows[i];
    return NULL;
}

static bool spl_err_is_errno(int err) { return err < 0 && err > -SPL_ERROR_BASE; }

const char *spl_strerror(int err)
{
    if (err == 0)
        return "success";
    if (spl_err_is_errno(err)) {
        const char *desc = strerrordesc_np(-err);
        return desc ? desc : "unknown error";
    }
    const struct spl_error_row *row = spl_error_find(err);
    return row ? row->msg : "unknown error";
}

const char *spl_errname(int err)
{
    if (err == 0)
        return "OK";
    if (spl_err_is_errno(err)) {
        const char *name = strerrorname_np(-err);
        return name ? name : "UNKNOWN";
    }
    const struct spl_error_row *row = spl_error_find(err);
    return row ? row->name : "UNKNOWN";
}

bool spl_err_is_known(int err)
{
    if (err == 0)
        return true;
    if (spl_err_is_errno(err))
        return strerrorname_np(-err) != NULL;
    return spl_error_find(err) != NULL;
}

int spl_err_from_wire(uint32_t wire)
{
    if (wire > (uint32_t)INT32_MAX)
        return SPL_EINTERNAL;
    int err = -(int)wire;
    return spl_err_is_known(err) ? err : SPL_EINTERNAL;
}

int spl_err_count(void) { return (int)SPL_ARRAY_SIZE(spl_error_rows); }

int spl_err_at(int index)
{
    ASSERT(index >= 0 && index < spl_err_count());
    return spl_error_rows[index].code;
}
