/*
 * fsm.c - helpers for the snapshot description an FSM fills (fsm.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/errors.h"
#include "base/limits.h"
#include "raftnode/fsm.h"

void spl_fsm_snapshot_init(struct spl_fsm_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    spl_iobuf_init(&s->blob);
}

void spl_fsm_snapshot_reset(struct spl_fsm_snapshot *s)
{
    for (uint32_t i = 0; i < s->file_count; i++)
        free(s->files[i].name);
    free(s->files);
    spl_iobuf_reset(&s->blob);
    spl_fsm_snapshot_init(s);
}

bool spl_fsm_name_is_valid(const char *name)
{
    size_t len = name ? strnlen(name, SPL_RAFTLOG_SNAP_NAME_MAX + 1) : 0;
    if (len == 0 || len > SPL_RAFTLOG_SNAP_NAME_MAX)
        return false;
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    return true;
}

int spl_fsm_snapshot_add_file(struct spl_fsm_snapshot *s, const char *name, uint64_t size)
{
    if (!spl_fsm_name_is_valid(name))
        return SPL_EINVAL_ARG;
    if (s->file_count >= SPL_RAFTLOG_SNAP_FILES_MAX)
        return SPL_ETOOBIG;
    if (s->file_count == s->file_cap) {
        uint32_t cap = s->file_cap ? s->file_cap * 2 : 16;
        struct spl_fsm_file *files = realloc(s->files, cap * sizeof(*files));
        if (!files)
            return -ENOMEM;
        s->files = files;
        s->file_cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return -ENOMEM;
    s->files[s->file_count].name = copy;
    s->files[s->file_count].size = size;
    s->file_count++;
    return 0;
}
