#include "prov_log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int as_json;

void plog_set_json(int on)
{
	as_json = on;
}

void plog_start(struct plog *l, const char *level, const char *msg)
{
	char ts[32];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
	l->o = json_object();
	json_object_set_new(l->o, "time", json_string(ts));
	json_object_set_new(l->o, "level", json_string(level));
	json_object_set_new(l->o, "msg", json_string(msg));
}

void plog_str(struct plog *l, const char *key, const char *v)
{
	if (v)
		json_object_set_new(l->o, key, json_string(v));
}

void plog_int(struct plog *l, const char *key, long long v)
{
	json_object_set_new(l->o, key, json_integer(v));
}

void plog_num(struct plog *l, const char *key, double v)
{
	json_object_set_new(l->o, key, json_real(v));
}

void plog_bool(struct plog *l, const char *key, int v)
{
	json_object_set_new(l->o, key, json_boolean(v));
}

/* A text value is quoted when it has spaces, quotes or '='. */
static void put_text(FILE *f, const char *s)
{
	if (*s && !strpbrk(s, " \t\"=")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void plog_end(struct plog *l)
{
	const char *k;
	json_t *v;
	if (as_json) {
		char *s = json_dumps(l->o, JSON_COMPACT);
		if (s)
			fprintf(stderr, "%s\n", s);
		free(s);
	} else {
		flockfile(stderr);
		fputs("efsmt-provisioner:", stderr);
		json_object_foreach(l->o, k, v)
		{
			if (strcmp(k, "time") == 0)
				continue; /* journald and syslog stamp text lines */
			fprintf(stderr, " %s=", k);
			if (json_is_string(v)) {
				put_text(stderr, json_string_value(v));
			} else {
				char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
				fputs(s ? s : "?", stderr);
				free(s);
			}
		}
		fputc('\n', stderr);
		funlockfile(stderr);
	}
	fflush(stderr);
	json_decref(l->o);
	l->o = NULL;
}

static void vone(const char *level, const char *msg, const char *fmt, va_list ap)
{
	char text[1024];
	struct plog l;
	vsnprintf(text, sizeof(text), fmt, ap);
	plog_start(&l, level, msg);
	plog_str(&l, "error", text);
	plog_end(&l);
}

void plog_error(const char *msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vone("error", msg, fmt, ap);
	va_end(ap);
}

void plog_warn(const char *msg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vone("warn", msg, fmt, ap);
	va_end(ap);
}
