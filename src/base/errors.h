/*
 * errors.h - the one error code space of Spline.
 *
 * Every action returns 0 or a negative code. Codes below 1000 are negated errno values
 * (-ENOENT, -EIO ...); codes from 1000 are Spline's own, declared once in
 * src/base/errors/<component>.def as XX(NAME, wire_code, "message"). The in-process value
 * of SPL_EFOO is -(wire_code); the wire carries the positive number. Names, numbers and
 * messages are stable: tools and other processes rely on them. Each component owns its
 * own .def file (and its number range) so that adding a code touches one file.
 * Thread-safe: all functions are pure lookups.
 */
#ifndef SPL_BASE_ERRORS_H
#define SPL_BASE_ERRORS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

enum spl_error_wire {
#define XX(name, code, msg) name##_WIRE = code,
#include "base/errors/base.def"
#include "base/errors/rpc.def"
#include "base/errors/raft.def"
#include "base/errors/raftlog.def"
#include "base/errors/mds.def"
#include "base/errors/chunkserver.def"
#include "base/errors/client.def"
#undef XX
};

enum spl_error {
#define XX(name, code, msg) name = -(code),
#include "base/errors/base.def"
#include "base/errors/rpc.def"
#include "base/errors/raft.def"
#include "base/errors/raftlog.def"
#include "base/errors/mds.def"
#include "base/errors/chunkserver.def"
#include "base/errors/client.def"
#undef XX
};

/* The first wire code that is Spline's own; smaller positive numbers are errno values. */
#define SPL_ERROR_BASE 1000

/* spl_strerror - a message a person can act on, for 0, a negated errno or a Spline code.
 * Never NULL; unknown codes give "unknown error". The string is static. */
const char *spl_strerror(int err);

/* spl_errname - the stable symbolic name ("SPL_ENOTLEADER", "ENOENT", "OK").
 * Never NULL; unknown codes give "UNKNOWN". The string is static. */
const char *spl_errname(int err);

/* spl_err_to_wire - the positive number carried on the wire for an in-process code. */
static inline uint32_t spl_err_to_wire(int err) { return err < 0 ? (uint32_t)-err : 0; }

/* spl_err_from_wire - the in-process code for a wire number. Numbers that name no known
 * code map to SPL_EINTERNAL so that a newer peer cannot smuggle meaningless codes in. */
int spl_err_from_wire(uint32_t wire);

/* spl_err_is_known - true when err is 0, a known errno value or a declared Spline code. */
bool spl_err_is_known(int err);

/* spl_err_count / spl_err_at - walk the table of Spline codes (for docs and tests). */
int spl_err_count(void);
int spl_err_at(int index);

#endif
