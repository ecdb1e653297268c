/* The provisioner's policy (prov_decide) as a table of cases, its config
 * parser (prov_config) and its state file (prov_state). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_run.h"
#include "prov_config.h"
#include "prov_decide.h"
#include "prov_state.h"

#define NOW 1000000
#define MAXMT 8

/* One row: the mount targets as "subnet:state" words, the facts, and what
 * must be decided. */
struct row {
	const char *name;
	uint64_t files;
	int count_ok;
	const char *mts; /* "subnet-a:available subnet-b:creating" */
	const char *blocked;
	long since_change; /* seconds since the last change; 0: never */
	long backoff_left;
	int min, max, scale_in;
	enum prov_action want;
	const char *want_subnet; /* or the subnet of the target to delete */
	int want_desired;
};

static const char *const SUBNETS[] = {"subnet-a", "subnet-b", "subnet-c", "subnet-d"};

static const struct row rows[] = {
    {"empty fs gets min_targets", 0, 1, "", NULL, 0, 0, 1, 0, 0, PROV_CREATE, "subnet-a", 1},
    {"min 2 from one", 0, 1, "subnet-a:available", NULL, 0, 0, 2, 0, 0, PROV_CREATE,
     "subnet-b", 2},
    {"below threshold", 99999, 1, "subnet-a:available", NULL, 0, 0, 1, 0, 0, PROV_NONE, NULL, 1},
    {"exactly one target's worth", 100000, 1, "subnet-a:available", NULL, 0, 0, 1, 0, 0,
     PROV_NONE, NULL, 1},
    {"one past the threshold", 100001, 1, "subnet-a:available", NULL, 0, 0, 1, 0, 0,
     PROV_CREATE, "subnet-b", 2},
    {"far past: still one per cycle", 350000, 1, "subnet-a:available", NULL, 0, 0, 1, 0, 0,
     PROV_CREATE, "subnet-b", 4},
    {"clamped to the subnets", 10000000, 1,
     "subnet-a:available subnet-b:available subnet-c:available subnet-d:available", NULL, 0, 0,
     1, 0, 0, PROV_NONE, NULL, 4},
    {"clamped to max_targets", 10000000, 1, "subnet-a:available subnet-b:available", NULL, 0,
     0, 1, 2, 0, PROV_NONE, NULL, 2},
    {"skips used subnets", 250000, 1, "subnet-a:available subnet-c:available", NULL, 0, 0, 1,
     0, 0, PROV_CREATE, "subnet-b", 3},
    {"skips blocked subnets", 150000, 1, "subnet-a:available", "subnet-b", 0, 0, 1, 0, 0,
     PROV_CREATE, "subnet-c", 2},
    {"blocked subnets lower the ceiling", 10000000, 1, "subnet-a:available", "subnet-b subnet-c",
     0, 0, 1, 0, 0, PROV_CREATE, "subnet-d", 2},
    {"cooldown holds a create", 150000, 1, "subnet-a:available", NULL, 100, 0, 1, 0, 0,
     PROV_NONE, NULL, 2},
    {"after the cooldown", 150000, 1, "subnet-a:available", NULL, 600, 0, 1, 0, 0, PROV_CREATE,
     "subnet-b", 2},
    {"back-off holds a create", 150000, 1, "subnet-a:available", NULL, 0, 30, 1, 0, 0,
     PROV_NONE, NULL, 2},
    {"a create in progress is waited for", 350000, 1, "subnet-a:available subnet-b:creating",
     NULL, 0, 0, 1, 0, 0, PROV_WAIT, "subnet-b", 4},
    {"an errored target is deleted", 150000, 1, "subnet-a:available subnet-b:error", NULL, 0,
     0, 1, 0, 0, PROV_DELETE_ERROR, "subnet-b", 2},
    {"deleted targets do not count", 150000, 1, "subnet-a:available subnet-b:deleted", NULL, 0,
     0, 1, 0, 0, PROV_CREATE, "subnet-b", 2},
    {"no scale-in unless enabled", 10, 1, "subnet-a:available subnet-b:available", NULL, 0, 0,
     1, 0, 0, PROV_NONE, NULL, 1},
    {"scale-in removes the last subnet's", 10, 1,
     "subnet-a:available subnet-b:available subnet-c:available", NULL, 0, 0, 1, 0, 1,
     PROV_DELETE, "subnet-c", 2},
    {"scale-in hysteresis: 0.8 x 1 x 100k = 80k, 85k keeps 2", 85000, 1,
     "subnet-a:available subnet-b:available", NULL, 0, 0, 1, 0, 1, PROV_NONE, NULL, 1},
    {"scale-in below the hysteresis", 79999, 1, "subnet-a:available subnet-b:available", NULL,
     0, 0, 1, 0, 1, PROV_DELETE, "subnet-b", 1},
    {"scale-in never below min_targets", 0, 1, "subnet-a:available subnet-b:available", NULL,
     0, 0, 2, 0, 1, PROV_NONE, NULL, 2},
    {"scale-in waits for the cooldown", 10, 1, "subnet-a:available subnet-b:available", NULL,
     100, 0, 1, 0, 1, PROV_NONE, NULL, 1},
    {"a failed count never shrinks", 0, 0, "subnet-a:available subnet-b:available", NULL, 0, 0,
     1, 0, 1, PROV_NONE, NULL, 2},
    {"a failed count still enforces min_targets", 0, 0, "", NULL, 0, 0, 1, 0, 0, PROV_CREATE,
     "subnet-a", 1},
    {"a target outside the candidates counts", 150000, 1, "subnet-z:available", NULL, 0, 0, 1,
     0, 0, PROV_CREATE, "subnet-a", 2},
};

static void run_row(const struct row *r)
{
	struct prov_mt mts[MAXMT];
	char words[MAXMT][2][32];
	const char *blocked[MAXMT];
	size_t n = 0, nb = 0;
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", r->mts);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save), n++) {
		char *colon = strchr(w, ':');
		*colon = 0;
		snprintf(words[n][0], sizeof(words[n][0]), "%s", w);
		snprintf(words[n][1], sizeof(words[n][1]), "%s", colon + 1);
		mts[n] = (struct prov_mt){words[n][0], words[n][0], "az", words[n][1]};
	}
	char bbuf[128];
	snprintf(bbuf, sizeof(bbuf), "%s", r->blocked ? r->blocked : "");
	for (char *w = strtok_r(bbuf, " ", &save); w; w = strtok_r(NULL, " ", &save))
		blocked[nb++] = w;
	struct prov_policy p = {.files_per_target = 100000,
				.min_targets = r->min,
				.max_targets = r->max,
				.scale_in = r->scale_in,
				.scale_in_below = 0.8,
				.cooldown_s = 600};
	struct prov_facts f = {.count_ok = r->count_ok,
			       .files = r->files,
			       .mts = mts,
			       .nmts = n,
			       .subnets = SUBNETS,
			       .nsubnets = 4,
			       .blocked = blocked,
			       .nblocked = nb,
			       .now = NOW,
			       .last_change = r->since_change ? NOW - r->since_change : 0,
			       .retry_after = r->backoff_left ? NOW + r->backoff_left : 0};
	struct prov_decision d;
	prov_decide(&p, &f, &d);
	ck_assert_msg(d.action == r->want, "%s: action %s, want %s (%s)", r->name,
		      prov_action_name(d.action), prov_action_name(r->want), d.reason);
	ck_assert_msg(d.desired == r->want_desired, "%s: desired %d, want %d", r->name, d.desired,
		      r->want_desired);
	ck_assert_msg(d.reason[0], "%s: no reason", r->name);
	if (r->want == PROV_CREATE)
		ck_assert_msg(d.subnet && strcmp(d.subnet, r->want_subnet) == 0,
			      "%s: subnet %s, want %s", r->name, d.subnet, r->want_subnet);
	if (r->want == PROV_DELETE || r->want == PROV_DELETE_ERROR || r->want == PROV_WAIT)
		ck_assert_msg(d.mt_id && strcmp(d.mt_id, r->want_subnet) == 0,
			      "%s: target %s, want the one in %s", r->name, d.mt_id,
			      r->want_subnet);
}

START_TEST(test_decide_table)
{
	run_row(&rows[_i]);
}
END_TEST

START_TEST(test_config_file_and_flags)
{
	char path[] = "/tmp/check_prov_XXXXXX", err[600];
	int fd = mkstemp(path);
	const char *text = "# a comment\n\n  file_system = fs-0123abcd   # trailing\n"
			   "subnets = subnet-a, subnet-b subnet-c\n"
			   "files-per-target=2000\nscale_in = yes\nscale_in_below = 0.5\n";
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	struct prov_config c;
	prov_config_init(&c);
	ck_assert_int_eq(c.files_per_target, 100000);
	ck_assert_int_eq(c.interval_s, 300);
	ck_assert_str_eq(c.uri_template, "nfs://{ip}");
	ck_assert_int_eq(prov_config_load(&c, path, err, sizeof(err)), 0);
	ck_assert_str_eq(c.file_system, "fs-0123abcd");
	ck_assert_int_eq(c.subnets.n, 3);
	ck_assert_str_eq(c.subnets.v[2], "subnet-c");
	ck_assert_int_eq(c.files_per_target, 2000);
	ck_assert_int_eq(c.scale_in, 1);
	ck_assert_int_eq(prov_config_set(&c, "interval", "60", err, sizeof(err)), 0);
	ck_assert_int_eq(c.interval_s, 60);
	ck_assert_int_eq(prov_config_check(&c, 1, err, sizeof(err)), 0);
	prov_config_free(&c);
	unlink(path);
}
END_TEST

/* Each bad setting is refused with a line that names it. */
static const struct {
	const char *key, *value, *needle;
} bad[] = {
    {"files_per_target", "0", "files_per_target"},
    {"files_per_target", "-5", "files_per_target"},
    {"files_per_target", "12x", "files_per_target"},
    {"interval", "0", "interval"},
    {"min_targets", "1001", "min_targets"},
    {"scale_in", "maybe", "scale_in"},
    {"scale_in_below", "1.5", "scale_in_below"},
    {"scale_in_below", "0", "scale_in_below"},
    {"log_format", "xml", "log_format"},
    {"security_groups", "sg-1 sg-2 sg-3 sg-4 sg-5 sg-6", "security_groups"},
    {"no_such_key", "1", "no_such_key"},
    {"file_system", "fs-1\n2", "file_system"},
};

START_TEST(test_config_bad_values)
{
	struct prov_config c;
	char err[600] = "";
	prov_config_init(&c);
	ck_assert_int_eq(prov_config_set(&c, bad[_i].key, bad[_i].value, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, bad[_i].needle), "'%s' does not name %s", err, bad[_i].needle);
	ck_assert_ptr_null(strchr(err, '\n'));
	prov_config_free(&c);
}
END_TEST

static const struct {
	const char *key, *value, *needle;
} bad_check[] = {
    {"file_system", "filesystem-1", "file_system"},
    {"subnets", "subnet-a net-b", "net-b"},
    {"subnets", "subnet-a subnet-a", "twice"},
    {"security_groups", "group1", "group1"},
    {"uri_template", "nfs://{host}", "uri_template"},
    {"uri_template", "nfs://fixed", "uri_template"},
    {"state_file", "relative.json", "state_file"},
    {"endpoint_url", "ftp://x", "endpoint_url"},
    {"ssm_parameter", "no-slash", "ssm_parameter"},
    {"max_targets", "1", NULL}, /* with min_targets 2 below */
};

START_TEST(test_config_check)
{
	struct prov_config c;
	char err[600] = "";
	prov_config_init(&c);
	ck_assert_int_eq(prov_config_set(&c, "file_system", "fs-12345678", err, sizeof(err)), 0);
	ck_assert_int_eq(prov_config_check(&c, 1, err, sizeof(err)), 0);
	ck_assert_int_eq(prov_config_set(&c, bad_check[_i].key, bad_check[_i].value, err,
					 sizeof(err)),
			 0);
	if (!bad_check[_i].needle)
		ck_assert_int_eq(prov_config_set(&c, "min_targets", "2", err, sizeof(err)), 0);
	ck_assert_int_eq(prov_config_check(&c, 1, err, sizeof(err)), -1);
	const char *needle = bad_check[_i].needle ? bad_check[_i].needle : "max_targets";
	ck_assert_msg(strstr(err, needle), "'%s' does not name %s", err, needle);
	prov_config_free(&c);
}
END_TEST

START_TEST(test_config_file_errors_name_the_line)
{
	char path[] = "/tmp/check_prov_XXXXXX", err[600];
	int fd = mkstemp(path);
	const char *text = "file_system = fs-12345678\n\nsubnets subnet-a\n";
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	struct prov_config c;
	prov_config_init(&c);
	ck_assert_int_eq(prov_config_load(&c, path, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, ":3: expected 'key = value'"), "%s", err);
	ck_assert_int_eq(prov_config_load(&c, "/nonexistent/p.conf", err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "No such file"), "%s", err);
	prov_config_free(&c);
	unlink(path);
}
END_TEST

START_TEST(test_uri_template)
{
	char out[128];
	ck_assert_int_eq(prov_uri_expand("nfs://{ip}/export", "10.0.0.5", "fsmt-1", "us-east-1a",
					 "subnet-a", out, sizeof(out)),
			 0);
	ck_assert_str_eq(out, "nfs://10.0.0.5/export");
	ck_assert_int_eq(prov_uri_expand("{id}@{az}/{subnet}", "ip", "fsmt-1", "az1", "sn", out,
					 sizeof(out)),
			 0);
	ck_assert_str_eq(out, "fsmt-1@az1/sn");
	ck_assert_int_eq(prov_uri_expand("nfs://{nope}", "ip", "id", "az", "sn", out, sizeof(out)),
			 -1);
	ck_assert_int_eq(prov_uri_expand("nfs://{ip}", "10.0.0.5", "id", "az", "sn", out, 8), -1);
}
END_TEST

START_TEST(test_state_roundtrip)
{
	char dir[] = "/tmp/check_prov_XXXXXX", path[256], err[600];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/targets.json", dir);
	struct prov_state s, t;
	prov_state_init(&s);
	prov_state_init(&t);
	ck_assert_int_eq(prov_state_load(path, &t, err, sizeof(err)), 0); /* missing: empty */
	ck_assert_int_eq(t.generation, 0);
	s.generation = 7;
	json_array_append_new(s.targets, json_pack("{s:s,s:s}", "id", "fsmt-1", "uri", "nfs://a"));
	json_array_append_new(s.blocked, json_string("subnet-x"));
	s.last_change = 123;
	s.failures = 2;
	s.retry_after = 456;
	ck_assert_int_eq(prov_state_save(path, &s, "fs-12345678", err, sizeof(err)), 0);
	ck_assert_int_eq(prov_state_load(path, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(t.generation, 7);
	ck_assert(json_equal(s.targets, t.targets));
	ck_assert(json_equal(s.blocked, t.blocked));
	ck_assert_int_eq(t.last_change, 123);
	ck_assert_int_eq(t.failures, 2);
	ck_assert_int_eq(t.retry_after, 456);
	/* No temporary file is left behind. */
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "test $(ls %s/sub | wc -l) = 1", dir);
	ck_assert_int_eq(system(cmd), 0);
	/* A malformed file is an error, not an empty state. */
	FILE *f = fopen(path, "w");
	fputs("{\"generation\": \"seven\", \"targets\": []}", f);
	fclose(f);
	ck_assert_int_eq(prov_state_load(path, &t, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "not a provisioner state file"), "%s", err);
	prov_state_free(&s);
	prov_state_free(&t);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("prov");
	TCase *tc = tcase_create("decide");
	tcase_add_loop_test(tc, test_decide_table, 0, sizeof(rows) / sizeof(rows[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("config");
	tcase_add_test(tc, test_config_file_and_flags);
	tcase_add_loop_test(tc, test_config_bad_values, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_loop_test(tc, test_config_check, 0, sizeof(bad_check) / sizeof(bad_check[0]));
	tcase_add_test(tc, test_config_file_errors_name_the_line);
	tcase_add_test(tc, test_uri_template);
	suite_add_tcase(s, tc);
	tc = tcase_create("state");
	tcase_add_test(tc, test_state_roundtrip);
	suite_add_tcase(s, tc);
	return check_run(s);
}
