/* SPDX-License-Identifier: Apache-2.0 */
/* Debug logging shared by every layer: subsystems, levels, lazy setup. */
#ifndef P11CA_LOG_H
#define P11CA_LOG_H

#include <stdarg.h>

/* Subsystems, switched on by P11CA_DEBUG=p11,prov,ca,reg (or "all"); SRV
 * and CLI get names once something logs under them. */
enum log_sub {
    LOG_SUB_P11 = 1 << 0,
    LOG_SUB_PROV = 1 << 1,
    LOG_SUB_CA = 1 << 2,
    LOG_SUB_REG = 1 << 3,
    LOG_SUB_SRV = 1 << 4,
    LOG_SUB_CLI = 1 << 5,
    LOG_SUB_ALL = 0xff,
};

enum log_level {
    LOG_LVL_ERR = 1,
    LOG_LVL_INFO = 2,
    LOG_LVL_DBG = 3,
};

/*
 * log_configure - override the environment's settings (the provider passes
 * its openssl.cnf "debug-file" / "debug-level" here).  @subs is a comma list
 * as in P11CA_DEBUG (NULL keeps the current one), @file a path to append to
 * (NULL keeps the current one), @level 0 keeps the current level.
 */
void log_configure(const char *subs, const char *file, int level);

/* log_enabled - whether a message of @sub at @level would be written. */
int log_enabled(enum log_sub sub, enum log_level level);

/*
 * log_write - write one line (never to stdout) if @sub/@level is enabled.
 * Callers use the LOG_* macros, which add the source location.
 * Never pass a PIN or key material here.
 */
void log_write(enum log_sub sub, enum log_level level, const char *file,
               int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define LOG_ERR(sub, ...)                                                      \
    log_write(LOG_SUB_##sub, LOG_LVL_ERR, __FILE__, __LINE__, __func__,        \
              __VA_ARGS__)
#define LOG_INFO(sub, ...)                                                     \
    log_write(LOG_SUB_##sub, LOG_LVL_INFO, __FILE__, __LINE__, __func__,       \
              __VA_ARGS__)
#define LOG_DBG(sub, ...)                                                      \
    log_write(LOG_SUB_##sub, LOG_LVL_DBG, __FILE__, __LINE__, __func__,        \
              __VA_ARGS__)

/*
 * return_val_if_fail - guard against programmer errors (not bad input).
 * Logs the failed expression; aborts when P11CA_STRICT=1 (tests).
 */
void log_precondition_failed(const char *expr, const char *file, int line,
                             const char *func);
#define return_val_if_fail(expr, val)                                          \
    do {                                                                       \
        if (!(expr)) {                                                         \
            log_precondition_failed(#expr, __FILE__, __LINE__, __func__);      \
            return (val);                                                      \
        }                                                                      \
    } while (0)
#define return_if_fail(expr)                                                   \
    do {                                                                       \
        if (!(expr)) {                                                         \
            log_precondition_failed(#expr, __FILE__, __LINE__, __func__);      \
            return;                                                            \
        }                                                                      \
    } while (0)

#endif
