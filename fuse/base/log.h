/*
 * log.h - one line per event, "efsmt: level=L msg key=value ...".
 *
 * Until the daemon detaches, lines go to stderr; afterwards to syslog.
 * Never log per read or write: the hot path stays silent.
 */
#ifndef EFSMT_LOG_H
#define EFSMT_LOG_H

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void log_set_level(enum log_level lvl);
/* Parse "error", "warn", "info" or "debug"; -1 if none of them. */
int log_level_parse(const char *s);
void log_use_syslog(int on);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
