/* efsmt-provisioner, for now only:
 *   efsmt-provisioner count [--threads N] [--log-format json|text] PATH
 * (walk.h says what it prints and returns). Usage errors exit 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walk.h"

#define PROV_MAX_THREADS 256

static int usage(const char *why)
{
	fprintf(stderr,
		"efsmt-provisioner: %s\nusage: efsmt-provisioner count [--threads N] "
		"[--log-format json|text] PATH\n",
		why);
	return 2;
}

static int cmd_count(int argc, char **argv)
{
	int threads = 0, json = 0;
	const char *path = NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
			char *end;
			long n = strtol(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || n < 0 || n > PROV_MAX_THREADS)
				return usage(
				    "count: --threads wants a number from 0 (default) to 256");
			threads = (int)n;
		} else if (strcmp(a, "--log-format") == 0 && i + 1 < argc) {
			const char *f = argv[++i];
			if (strcmp(f, "json") != 0 && strcmp(f, "text") != 0)
				return usage("count: --log-format wants json or text");
			json = strcmp(f, "json") == 0;
		} else if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0) {
			return usage("count: unknown option or missing value");
		} else {
			if (strcmp(a, "--") == 0 && ++i == argc)
				break;
			if (path || i + 1 != argc)
				return usage("count: one PATH, after the options");
			path = argv[i];
		}
	}
	if (!path)
		return usage("count: PATH missing");
	return walk_cmd_count(path, threads, json);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "count") == 0)
		return cmd_count(argc - 2, argv + 2);
	return usage(argc < 2 ? "command missing" : "unknown command");
}
