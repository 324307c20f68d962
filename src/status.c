/* Status strings, the per-thread error message, the version. */
#include <stdarg.h>
#include <stdio.h>
#include "internal.h"

static _Thread_local char last_error[512];

const char *peqa_version(void) { return PEQA_VERSION_STRING; }

const char *peqa_status_string(peqa_status s)
{
    static const char *const names[PEQA_STATUS_COUNT] = {
        [PEQA_OK] = "ok",
        [PEQA_ERR_NULL] = "null pointer argument",
        [PEQA_ERR_SHAPE] = "invalid or inconsistent shape",
        [PEQA_ERR_BITS] = "unsupported bit width",
        [PEQA_ERR_GROUP] = "unsupported group size",
        [PEQA_ERR_OVERFLOW] = "size overflow",
        [PEQA_ERR_NOMEM] = "out of memory",
        [PEQA_ERR_NONFINITE] = "non-finite value",
        [PEQA_ERR_RANGE] = "value out of range",
        [PEQA_ERR_ISA] = "instruction set not available",
        [PEQA_ERR_ARG] = "invalid argument",
        [PEQA_ERR_IO] = "input/output error",
        [PEQA_ERR_FORMAT] = "malformed data",
    };
    if ((unsigned)s >= PEQA_STATUS_COUNT) return "unknown status";
    return names[s];
}

const char *peqa_last_error(void) { return last_error; }

peqa_status peqa__fail(peqa_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return st;
}

peqa_status peqa__wrapf(peqa_status st, const char *fmt, ...)
{
    char prev[512], pre[256];
    snprintf(prev, sizeof prev, "%s", last_error);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    return peqa__fail(st, "%s: %s", pre, prev);
}
