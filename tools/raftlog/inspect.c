/*
 * inspect.c - raftlog-inspect: print a group's raft log for humans (STYLE 21).
 *
 *   raftlog-inspect [-s] GROUP_DIR     hard state slots, snapshot meta, every segment's
 *                                      header slots and records (index, term, type, len,
 *                                      offset, crc ok); -s: segments only, no records
 *   raftlog-inspect --pool POOL_DIR    the walpool's files and sizes
 *
 * Read-only: it decodes the files itself with format.h and never cuts, seals or resets
 * anything, so it shows damage that spl_raftlog_open() would refuse. Exit status: 0 when
 * everything verified, 1 when something did not, 2 on usage or I/O errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/errors.h"
#include "raftlog/format.h"

static int problems;

static void usage(void)
{
    fprintf(stderr, "usage: raftlog-inspect [-s] GROUP_DIR\n"
                    "       raftlog-inspect --pool POOL_DIR\n");
    exit(2);
}

/* Read a whole file (up to max bytes) into a new buffer. */
static uint8_t *slurp(const char *path, size_t max, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max) {
        close(fd);
        return NULL;
    }
    size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    size_t got = 0;
    while (buf && got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    *len_out = len;
    return buf;
}

static void print_hardstate(const char *dir)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/hardstate", dir);
    uint8_t *buf = slurp(path, 1 << 20, &len);
    if (!buf) {
        printf("hard state: %s: %s\n", path, spl_strerror(-errno));
        problems++;
        return;
    }
    struct spl_raftlog_hs_slot cur;
    int cur_slot = -1;
    int rc = spl_raftlog_hs_pick(buf, len, &cur, &cur_slot);
    printf("hard state (%s, %zu bytes):\n", path, len);
    for (int i = 0; i < 2; i++) {
        size_t at = (size_t)i * SPL_RAFTLOG_HS_SLOT_STRIDE;
        struct spl_raftlog_hs_slot s;
        if (at + SPL_RAFTLOG_HS_SLOT_SIZE > len) {
            printf("  slot %d: missing\n", i);
        } else if (spl_raftlog_hs_decode(buf + at, len - at, &s) == 0) {
            printf("  slot %d: seq %" PRIu64 " group %" PRIu64 " term %" PRIu64 " vote %" PRIu64
                   " commit %" PRIu64 "%s\n", i, s.seq, s.group_id, s.hs.term, s.hs.vote,
                   s.hs.commit, rc == 0 && cur_slot == i ? "  <- current" : "");
        } else {
            printf("  slot %d: %s\n", i,
                   spl_raftlog_is_zero(buf + at, SPL_RAFTLOG_HS_SLOT_SIZE) ? "empty" : "INVALID");
        }
    }
    if (rc != 0) {
        printf("  NO VALID SLOT: %s\n", spl_strerror(rc));
        problems++;
    }
    free(buf);
}

static void print_snapmeta(const char *dir)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/snapmeta", dir);
    uint8_t *buf = slurp(path, SPL_RAFTLOG_SNAP_META_MAX, &len);
    if (!buf) {
        printf("snapshot meta: none (%s)\n", spl_strerror(-errno));
        return;
    }
    struct spl_raftlog_snapmeta m;
    uint64_t gid = 0;
    int rc = spl_raftlog_snapmeta_decode(buf, len, &gid, &m);
    free(buf);
    if (rc != 0) {
        printf("snapshot meta: %s: INVALID (%s)\n", path, spl_strerror(rc));
        problems++;
        return;
    }
    printf("snapshot meta (%zu bytes): group %" PRIu64 " index %" PRIu64 " term %" PRIu64
           " epoch %" PRIu64 "\n  voters (", len, gid, m.index, m.term, m.epoch);
    for (uint32_t i = 0; i < m.conf.voter_count; i++)
        printf("%s%" PRIu64, i ? "," : "", m.conf.voters[i]);
    printf(") learners (");
    for (uint32_t i = 0; i < m.conf.learner_count; i++)
        printf("%s%" PRIu64, i ? "," : "", m.conf.learners[i]);
    printf(") files %u, blob %u bytes\n", m.file_count, m.blob_len);
    for (uint32_t i = 0; i < m.file_count; i++)
        printf("  file %s %" PRIu64 " bytes\n", m.files[i].name, m.files[i].size);
    spl_raftlog_snapmeta_free(&m);
}

/* ---- segments ---- */

struct seg_list {
    char **names;
    uint32_t count, cap;
};

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b); /* seq is the zero-padded prefix */
}

static bool rec_at(const uint8_t *buf, size_t len, uint64_t off, uint64_t nonce,
                   struct spl_raftlog_rec_header *h)
{
    if (off + SPL_RAFTLOG_REC_HEADER_SIZE > len)
        return false;
    return spl_raftlog_rec_verify(buf + off, len - off, nonce, len, h) == 0;
}

static void print_segment(const char *dir, const char *name, bool records, uint64_t *expect)
{
    char path[4096];
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    uint8_t *buf = slurp(path, (size_t)SPL_RAFTLOG_SEGMENT_SIZE_MAX, &len);
    if (!buf) {
        printf("segment %s: %s\n", name, spl_strerror(-errno));
        problems++;
        return;
    }
    struct spl_raftlog_seg_header h;
    int slot = -1;
    int rc = spl_raftlog_seg_header_pick(buf, len, &h, &slot, NULL);
    printf("segment %s (%zu bytes)\n", name, len);
    for (int i = 0; i < 2; i++) {
        struct spl_raftlog_seg_header s;
        size_t at = (size_t)i * SPL_RAFTLOG_SEG_SLOT_STRIDE;
        if (at < len && spl_raftlog_seg_header_decode(buf + at, len - at, &s) == 0)
            printf("  header slot %d: gen %" PRIu64 " seq %" PRIu64 " group %" PRIu64
                   " first %" PRIu64 " prev_term %" PRIu64 " nonce %016" PRIx64 "%s%s\n", i,
                   s.gen, s.seq, s.group_id, s.first_index, s.prev_term, s.nonce,
                   (s.flags & SPL_RAFTLOG_SEG_SEALED) ? " sealed" : "",
                   rc == 0 && slot == i ? "  <- current" : "");
        else
            printf("  header slot %d: %s\n", i,
                   at < len && spl_raftlog_is_zero(buf + at, SPL_RAFTLOG_SEG_SLOT_SIZE)
                       ? "empty" : "invalid");
    }
    if (rc != 0) {
        printf("  NO VALID HEADER: %s\n", spl_strerror(rc));
        problems++;
        free(buf);
        return;
    }
    if (*expect && h.first_index != *expect) {
        printf("  GAP: starts at %" PRIu64 ", the previous segment ended at %" PRIu64 "\n",
               h.first_index, *expect - 1);
        problems++;
    }
    bool sealed = (h.flags & SPL_RAFTLOG_SEG_SEALED) != 0;
    uint64_t off = SPL_RAFTLOG_SEGMENT_HEADER_SIZE, index = h.first_index, n = 0;
    struct spl_raftlog_rec_header r;
    while ((!sealed || index <= h.seal_last_index) && rec_at(buf, len, off, h.nonce, &r) &&
           r.index == index) {
        if (records)
            printf("  index %" PRIu64 " term %" PRIu64 " type %u len %u offset %" PRIu64
                   " crc ok\n", r.index, r.term, r.entry_type, r.data_len, off);
        off += spl_raftlog_rec_size(r.data_len);
        index++;
        n++;
    }
    printf("  records: %" PRIu64 " (%" PRIu64 "..%" PRIu64 "), %" PRIu64 " bytes used",
           n, h.first_index, index - 1, off);
    if (sealed)
        printf(", sealed at %" PRIu64 "%s", h.seal_last_index,
               index - 1 == h.seal_last_index ? "" : " (RECORDS MISSING)");
    problems += sealed && index - 1 != h.seal_last_index;
    printf("\n");
    if (!sealed) {
        /* what stopped the scan, and whether valid data follows it */
        struct spl_raftlog_rec_header bad;
        bool hdr_ok = off + SPL_RAFTLOG_REC_HEADER_SIZE <= len &&
                      spl_raftlog_rec_header_decode(buf + off, len - off, len, &bad) == 0;
        if (hdr_ok && bad.index == index)
            printf("  end: record %" PRIu64 " at offset %" PRIu64 " fails its CRC (torn?)\n",
                   index, off);
        for (uint64_t p = off + SPL_RAFTLOG_REC_ALIGN; p + SPL_RAFTLOG_REC_HEADER_SIZE <= len;
             p += SPL_RAFTLOG_REC_ALIGN) {
            if (rec_at(buf, len, p, h.nonce, &bad)) {
                printf("  CORRUPT: valid record %" PRIu64 " at offset %" PRIu64
                       " after the end at offset %" PRIu64 "\n", bad.index, p, off);
                problems++;
                break;
            }
        }
    }
    *expect = index;
    free(buf);
}

static int print_segments(const char *dir, bool records)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "raftlog-inspect: %s: %s\n", dir, spl_strerror(-errno));
        return 2;
    }
    struct seg_list l = {0};
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t seq, first;
        if (!spl_raftlog_seg_name_parse(de->d_name, &seq, &first))
            continue;
        if (l.count == l.cap) {
            l.cap = l.cap ? l.cap * 2 : 16;
            l.names = realloc(l.names, sizeof(char *) * l.cap);
        }
        l.names[l.count++] = strdup(de->d_name);
    }
    closedir(d);
    if (l.count)
        qsort(l.names, l.count, sizeof(char *), name_cmp);
    printf("segments: %u\n", l.count);
    uint64_t expect = 0;
    for (uint32_t i = 0; i < l.count; i++) {
        print_segment(dir, l.names[i], records, &expect);
        free(l.names[i]);
    }
    free(l.names);
    return 0;
}

static int print_pool(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "raftlog-inspect: %s: %s\n", dir, spl_strerror(-errno));
        return 2;
    }
    uint64_t files = 0, bytes = 0, other = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (strncmp(de->d_name, "pool-", 5) != 0 || strlen(de->d_name) != 21 ||
            stat(path, &st) != 0) {
            other++;
            continue;
        }
        files++;
        bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    printf("pool %s: %" PRIu64 " free segment files, %" PRIu64 " bytes (%" PRIu64
           " bytes each), %" PRIu64 " other entries\n", dir, files, bytes,
           files ? bytes / files : 0, other);
    return 0;
}

int main(int argc, char **argv)
{
    bool records = true;
    int i = 1;
    if (argc == 3 && strcmp(argv[1], "--pool") == 0)
        return print_pool(argv[2]);
    if (i < argc && strcmp(argv[i], "-s") == 0) {
        records = false;
        i++;
    }
    if (i + 1 != argc || argv[i][0] == '-')
        usage();
    const char *dir = argv[i];
    printf("raft log %s\n", dir);
    print_hardstate(dir);
    print_snapmeta(dir);
    int rc = print_segments(dir, records);
    if (rc != 0)
        return rc;
    printf("%s\n", problems ? "PROBLEMS FOUND" : "ok");
    return problems ? 1 : 0;
}
