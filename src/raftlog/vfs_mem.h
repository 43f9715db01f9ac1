/*
 * vfs_mem.h - an in-memory disk behind `struct spl_vfs`, with durability and faults.
 *
 * What it owns: a whole file system in memory (a namespace of directories and files),
 * and for every file and name both its current state (what reads see) and its durable
 * state (what a power loss would leave). A write becomes durable at fdatasync/syncfs of
 * its file; a create, rename, unlink, mkdir or rmdir in directory D becomes durable at
 * sync_dir(D) (strict per-directory semantics: a rename A -> B needs both directories
 * synced, so a missing fsync of either shows up as a lost or duplicated name).
 *
 * Faults, for SQLite-style loops ("fail the N-th call, raise N, check after each"):
 *  - spl_vfs_mem_fail(): the N-th call of a class (write, sync, metadata, read) fails
 *    with a chosen errno, once or from then on. A failed write changes nothing. A failed
 *    fdatasync throws the file's unsynced writes away (reads then see the durable bytes),
 *    the harsh end of what Linux does after a writeback error.
 *  - spl_vfs_mem_crash_at(): power is lost at the N-th mutating call (write, sync or
 *    metadata): that call and every call after it fail with -EIO (close still works),
 *    and a crashing write leaves a chosen prefix of its bytes in the page cache.
 *  - spl_vfs_mem_reboot(): what survives: DROP keeps only durable state; KEEP keeps every
 *    completed call plus the torn part of the crashing write (a process crash: the page
 *    cache survives); PREFIX(k) keeps the first k unsynced calls in issue order (a power
 *    loss with in-order writeback); TORN_ONE(k) keeps only half of the k-th one (writeback
 *    out of order, torn mid-write). Every fd is closed; faults are disarmed.
 * Paths are absolute ("/pool/x"); "/" always exists.
 *
 * Threads: every function (and every vfs method) may be called from any thread; one
 * mutex serializes them.
 */
#ifndef SPL_RAFTLOG_VFS_MEM_H
#define SPL_RAFTLOG_VFS_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftlog/vfs.h"

struct spl_vfs_mem;

enum spl_vfs_fault_class {
    SPL_VFS_FAULT_WRITE = 0, /* pwritev */
    SPL_VFS_FAULT_SYNC = 1,  /* fdatasync, sync_dir, syncfs */
    SPL_VFS_FAULT_META = 2,  /* open with CREATE, rename, unlink, mkdir, rmdir, ftruncate,
                                fallocate */
    SPL_VFS_FAULT_READ = 3,  /* pread */
    SPL_VFS_FAULT_CLASSES = 4,
};

enum spl_vfs_reboot_mode {
    SPL_VFS_REBOOT_DROP = 0,   /* power loss: only durable bytes and names remain */
    SPL_VFS_REBOOT_KEEP = 1,   /* process crash: everything written remains */
    SPL_VFS_REBOOT_PREFIX = 2, /* power loss after the first k unsynced calls reached disk */
    SPL_VFS_REBOOT_TORN_ONE = 3, /* power loss with reordered writeback: of the unsynced
                                  * calls only the k-th (0-based) reached the disk, and
                                  * of a write only its first half (torn) */
};

/* spl_vfs_mem_create - an empty file system. 0 or -ENOMEM. */
int spl_vfs_mem_create(struct spl_vfs_mem **out);

/* spl_vfs_mem_destroy - free everything (open fds included). NULL is fine. */
void spl_vfs_mem_destroy(struct spl_vfs_mem *m);

/* spl_vfs_mem_vfs - the method table to hand to the log; valid until destroy. */
const struct spl_vfs *spl_vfs_mem_vfs(struct spl_vfs_mem *m);

/* spl_vfs_mem_count - calls of class cls so far (failed ones included). */
uint64_t spl_vfs_mem_count(struct spl_vfs_mem *m, enum spl_vfs_fault_class cls);

/* spl_vfs_mem_mutations - mutating calls (write, sync, metadata) so far. */
uint64_t spl_vfs_mem_mutations(struct spl_vfs_mem *m);

/* spl_vfs_mem_fail - make the nth call of class cls from now (1 = the next one) fail with
 * err (a negative errno); persist: every later call of the class fails too. nth 0
 * disarms the class. */
void spl_vfs_mem_fail(struct spl_vfs_mem *m, enum spl_vfs_fault_class cls, uint64_t nth,
                      int err, bool persist);

/* spl_vfs_mem_crash_at - lose power at the nth mutating call from now (1 = the next one).
 * When that call is a write, its first tear_bytes bytes (UINT64_MAX: all of them) reach
 * the page cache before the crash. nth 0 disarms. */
void spl_vfs_mem_crash_at(struct spl_vfs_mem *m, uint64_t nth, uint64_t tear_bytes);

/* spl_vfs_mem_crash_now - lose power now. */
void spl_vfs_mem_crash_now(struct spl_vfs_mem *m);

/* spl_vfs_mem_crashed - true between a crash and the next reboot. */
bool spl_vfs_mem_crashed(struct spl_vfs_mem *m);

/* spl_vfs_mem_unsynced - calls whose effect is not durable yet (the k range of PREFIX). */
uint64_t spl_vfs_mem_unsynced(struct spl_vfs_mem *m);

/* spl_vfs_mem_reboot - decide what survived (see the top), close every fd, disarm every
 * fault and clear the crash: afterwards current state == durable state. keep is the k of
 * PREFIX (ignored otherwise). Works whether or not a crash happened. */
void spl_vfs_mem_reboot(struct spl_vfs_mem *m, enum spl_vfs_reboot_mode mode, uint64_t keep);

/* spl_vfs_mem_poke - overwrite len bytes of file `path` at off, durably and at once (bit
 * rot for tests). 0, -ENOENT, -EINVAL (outside the file). */
int spl_vfs_mem_poke(struct spl_vfs_mem *m, const char *path, uint64_t off, const void *buf,
                     size_t len);

/* spl_vfs_mem_open_fds - fds currently open (tests check that nothing leaks). */
uint32_t spl_vfs_mem_open_fds(struct spl_vfs_mem *m);

#endif
