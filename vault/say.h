/*
 * say.h - how the vault library speaks (internal to vault/). Every
 * message is one line without the program name; the reporter set with
 * wfs_vault_set_reporter (vault.h) decides how it is printed, so the CLI's
 * messages look the same whether they come from a command or from here.
 */
#ifndef WARDFS_VAULT_SAY_H
#define WARDFS_VAULT_SAY_H

#include <stdbool.h>

#include "vault.h"

__attribute__((format(printf, 1, 2))) void vault_error(const char *fmt, ...);
/* The message, then ": strerror(err)"; returns 1 (a failed command's status). */
__attribute__((format(printf, 2, 3))) int vault_error_errno(int err, const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void vault_warning(const char *fmt, ...);
/* A located policy diagnostic ("FILE:LINE: error: ..."), or a line that
 * lists what the error before it named: printed as it is. */
__attribute__((format(printf, 1, 2))) void vault_detail(const char *fmt, ...);
/* A progress bar's line: redrawn in place until last. */
__attribute__((format(printf, 2, 3))) void vault_progress(bool last, const char *fmt, ...);

#endif
