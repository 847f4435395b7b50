/* SPDX-License-Identifier: Apache-2.0 */
/* Errors of the provider: raised on the application's queue through the
 * core upcalls, with our reason codes and the PKCS#11 layer's message. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "prov.h"

static void raise_v(prov_ctx *ctx, int reason, const char *file, int line,
                    const char *func, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void raise_v(prov_ctx *ctx, int reason, const char *file, int line,
                    const char *func, const char *fmt, va_list ap)
{
    char msg[1024];
    va_list ap2;

    va_copy(ap2, ap);
    vsnprintf(msg, sizeof(msg), fmt, ap2);
    va_end(ap2);
    LOG_DBG(PROV, "error %d at %s:%d: %s", reason, file, line, msg);
    if (!ctx || !ctx->up_new_error || !ctx->up_vset_error)
        return;
    ctx->up_new_error(ctx->handle);
    if (ctx->up_set_error_debug)
        ctx->up_set_error_debug(ctx->handle, file, line, func);
    ctx->up_vset_error(ctx->handle, (uint32_t)reason, fmt, ap);
}

void prov_raise_at(prov_ctx *ctx, int reason, const char *file, int line,
                   const char *func, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    raise_v(ctx, reason, file, line, func, fmt, ap);
    va_end(ap);
}

/* The core's vset_error with a real (empty) va_list and no format. */
static void set_reason_only(prov_ctx *ctx, int reason, ...)
{
    va_list ap;

    va_start(ap, reason);
    ctx->up_vset_error(ctx->handle, (uint32_t)reason, NULL, ap);
    va_end(ap);
}

void prov_raise_reason(prov_ctx *ctx, int reason)
{
    if (!ctx || !ctx->up_new_error || !ctx->up_vset_error)
        return;
    ctx->up_new_error(ctx->handle);
    set_reason_only(ctx, reason);
}

/* The reason for @rv: its class (p11_rv_class), refined for the input
 * errors that have reasons of their own (a bad URI, several matches, a
 * module a URI may not load). */
static int reason_for(CK_RV rv)
{
    if (rv == P11_RV_URI_INVALID)
        return PROV_R_BAD_URI;
    if (rv == P11_RV_AMBIGUOUS)
        return PROV_R_AMBIGUOUS;
    if (rv == P11_RV_URI_MODULE)
        return PROV_R_URI_MODULE;
    switch (p11_rv_class(rv)) {
    case P11_CLASS_INPUT:
        return PROV_R_BAD_INPUT;
    case P11_CLASS_NOT_FOUND:
        return PROV_R_NOT_FOUND;
    case P11_CLASS_PIN:
        return PROV_R_PIN;
    case P11_CLASS_UNSUPPORTED:
        return PROV_R_UNSUPPORTED;
    case P11_CLASS_NO_MEMORY:
        return PROV_R_INTERNAL;
    default:
        return PROV_R_TOKEN;
    }
}

/* Wrapper so that the message is passed as data, never as a format. */
static void raise_msg(prov_ctx *ctx, int reason, const char *file, int line,
                      const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void raise_msg(prov_ctx *ctx, int reason, const char *file, int line,
                      const char *func, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    raise_v(ctx, reason, file, line, func, fmt, ap);
    va_end(ap);
}

int prov_raise_p11_at(prov_ctx *ctx, CK_RV rv, const char *what,
                      const char *file, int line, const char *func)
{
    const char *msg =
        p11_error_rv() == rv ? p11_error_message() : p11_rv_text(rv);

    if (what)
        raise_msg(ctx, reason_for(rv), file, line, func, "%s: %s", what, msg);
    else
        raise_msg(ctx, reason_for(rv), file, line, func, "%s", msg);
    return 0;
}

void prov_set_mark(prov_ctx *ctx)
{
    if (ctx->up_set_error_mark)
        ctx->up_set_error_mark(ctx->handle);
}

void prov_pop_to_mark(prov_ctx *ctx)
{
    if (ctx->up_pop_error_to_mark)
        ctx->up_pop_error_to_mark(ctx->handle);
}
