/* The control protocol: every bad request gets a one-line reason; framing
 * limits; the socket naming rule; latency buckets. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "base/opstats.h"
#include "check_run.h"

static char err[1024];

static void expect_bad(const char *req, const char *needle)
{
	struct ctl_request r;

	err[0] = '\0';
	ck_assert_msg(ctl_parse_request(req, strlen(req), &r, err, sizeof(err)) < 0,
		      "accepted: %s", req);
	ck_assert_msg(strstr(err, needle), "%s: error '%s' lacks '%s'", req, err, needle);
	ck_assert_ptr_null(strchr(err, '\n'));
	ck_assert_ptr_null(r.root);
}

static void expect_good(const char *req, enum ctl_cmd cmd, struct ctl_request *r)
{
	err[0] = '\0';
	ck_assert_msg(ctl_parse_request(req, strlen(req), r, err, sizeof(err)) == 0, "%s: %s",
		      req, err);
	ck_assert_int_eq(r->cmd, cmd);
}

START_TEST(good_requests)
{
	struct ctl_request r;
	static const char *simple[] = {"status", "targets", "stats", "rpcs", "metrics", "health"};
	char buf[64];

	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		snprintf(buf, sizeof(buf), "{\"cmd\":\"%s\"}", simple[i]);
		struct ctl_request q;
		err[0] = '\0';
		ck_assert_int_eq(ctl_parse_request(buf, strlen(buf), &q, err, sizeof(err)), 0);
		ck_assert_str_eq(ctl_cmd_name(q.cmd), simple[i]);
		ctl_request_free(&q);
	}
	expect_good("{\"cmd\":\"set-targets\",\"generation\":7,\"targets\":[\"/a\","
		    "{\"id\":\"mt-1\",\"uri\":\"dir:///b\"}]}",
		    CTL_SET_TARGETS, &r);
	ck_assert_uint_eq(r.generation, 7);
	ck_assert_uint_eq(json_array_size(r.targets), 2);
	ctl_request_free(&r);
	expect_good("{\"cmd\":\"add-target\",\"uri\":\"/x\",\"id\":\"i\"}", CTL_ADD_TARGET, &r);
	ck_assert_str_eq(r.uri, "/x");
	ck_assert_str_eq(r.id, "i");
	ctl_request_free(&r);
	expect_good("  {\"cmd\":\"remove-target\",\"id\":\"dir:///x\"}  ", CTL_REMOVE_TARGET, &r);
	ck_assert_str_eq(r.id, "dir:///x");
	ctl_request_free(&r);
}
END_TEST

START_TEST(malformed)
{
	expect_bad("", "malformed JSON");
	expect_bad("{", "malformed JSON");
	expect_bad("nope", "malformed JSON");
	expect_bad("{\"cmd\":\"status\"} {}", "malformed JSON");
	expect_bad("{\"cmd\":\"status\",\"cmd\":\"status\"}", "malformed JSON");
	expect_bad("[\"status\"]", "must be a JSON object");
	expect_bad("\"status\"", "must be a JSON object");
	expect_bad("42", "must be a JSON object");
	expect_bad("null", "must be a JSON object");
	/* a NUL inside the line */
	struct ctl_request r;
	ck_assert_int_lt(ctl_parse_request("{\"cmd\":\"status\"}\0x", 18, &r, err, sizeof(err)),
			 0);
}
END_TEST

START_TEST(bad_commands)
{
	expect_bad("{}", "\"cmd\" must be a string");
	expect_bad("{\"cmd\":1}", "\"cmd\" must be a string");
	expect_bad("{\"cmd\":null}", "\"cmd\" must be a string");
	expect_bad("{\"cmd\":[\"status\"]}", "\"cmd\" must be a string");
	expect_bad("{\"cmd\":\"reboot\"}", "unknown command \"reboot\"");
	expect_bad("{\"cmd\":\"STATUS\"}", "unknown command");
	expect_bad("{\"cmd\":\"status\\u0000x\"}", "malformed JSON");
	expect_bad("{\"cmd\":\"\"}", "unknown command");
	expect_bad("{\"cmd\":\"status\",\"verbose\":true}", "status: unexpected field \"verbose\"");
	expect_bad("{\"cmd\":\"targets\",\"id\":\"x\"}", "unexpected field \"id\"");
	/* found by the fuzzer: a client's string quoted in an error stays one line */
	expect_bad("{\"cmd\":\"status\",\"a\\nb\":1}", "unexpected field \"a?b\"");
	expect_bad("{\"cmd\":\"st\\natus\"}", "unknown command \"st?atus\"");
	expect_bad("{\"cmd\":\"a\\\n\n\"}", "malformed JSON");
	expect_bad("{\"cmd\":\"set-targets\",\"generation\":1,\"targets\":[{\"uri\":\"/a\",\"\\r\":1}]}",
		   "unexpected field \"?\"");
}
END_TEST

START_TEST(bad_set_targets)
{
	const char *T = "\"targets\":[\"/a\"]";
	char buf[256];

	expect_bad("{\"cmd\":\"set-targets\",\"targets\":[\"/a\"]}", "\"generation\" is missing");
	expect_bad("{\"cmd\":\"set-targets\",\"generation\":1}", "\"targets\" is missing");
#define GEN(g) (snprintf(buf, sizeof(buf), "{\"cmd\":\"set-targets\",\"generation\":%s,%s}", g, T), buf)
	expect_bad(GEN("-1"), "whole number >= 0");
	expect_bad(GEN("1.5"), "whole number >= 0");
	expect_bad(GEN("\"3\""), "whole number >= 0");
	expect_bad(GEN("null"), "whole number >= 0");
	expect_bad(GEN("true"), "whole number >= 0");
	expect_bad(GEN("99999999999999999999999"), "malformed JSON");
#undef GEN
#define TG(t) (snprintf(buf, sizeof(buf), "{\"cmd\":\"set-targets\",\"generation\":1,\"targets\":%s}", t), buf)
	expect_bad(TG("\"/a\""), "\"targets\" must be a list");
	expect_bad(TG("{}"), "\"targets\" must be a list");
	expect_bad(TG("[]"), "1-256 targets");
	expect_bad(TG("[1]"), "target 0: must be a URI string or an object");
	expect_bad(TG("[\"/a\",null]"), "target 1: must be a URI string or an object");
	expect_bad(TG("[[\"/a\"]]"), "target 0: must be");
	expect_bad(TG("[{}]"), "target 0: \"uri\" is missing");
	expect_bad(TG("[{\"uri\":5}]"), "target 0: \"uri\" must be a string");
	expect_bad(TG("[{\"uri\":\"\"}]"), "target 0: \"uri\" must be 1-");
	expect_bad(TG("[{\"uri\":\"/a\",\"id\":7}]"), "target 0: \"id\" must be a string");
	expect_bad(TG("[{\"uri\":\"/a\",\"id\":\"\"}]"), "\"id\" must be 1-");
	expect_bad(TG("[{\"uri\":\"/a\\nb\"}]"), "control characters");
	expect_bad(TG("[{\"uri\":\"/a\\u0000b\"}]"), "malformed JSON");
	expect_bad(TG("[{\"uri\":\"/a\",\"weight\":2}]"), "unexpected field \"weight\"");
#undef TG
	expect_bad("{\"cmd\":\"set-targets\",\"generation\":1,\"targets\":[\"/a\"],\"x\":1}",
		   "unexpected field \"x\"");
	/* too many targets */
	size_t cap = 64 + (CTL_MAX_TARGETS + 1) * 6;
	char *big = malloc(cap);
	size_t n = (size_t)snprintf(big, cap, "{\"cmd\":\"set-targets\",\"generation\":1,\"targets\":[");
	for (int i = 0; i <= CTL_MAX_TARGETS; i++)
		n += (size_t)snprintf(big + n, cap - n, "%s\"/a\"", i ? "," : "");
	snprintf(big + n, cap - n, "]}");
	expect_bad(big, "1-256 targets");
	free(big);
}
END_TEST

START_TEST(bad_add_remove)
{
	expect_bad("{\"cmd\":\"add-target\"}", "add-target: \"uri\" is missing");
	expect_bad("{\"cmd\":\"add-target\",\"uri\":[]}", "\"uri\" must be a string");
	expect_bad("{\"cmd\":\"add-target\",\"uri\":\"/a\",\"id\":false}", "\"id\" must be a string");
	expect_bad("{\"cmd\":\"add-target\",\"uri\":\"/a\",\"generation\":3}", "unexpected field");
	expect_bad("{\"cmd\":\"add-target\",\"uri\":\"\\t/a\"}", "control characters");
	expect_bad("{\"cmd\":\"remove-target\"}", "remove-target: \"id\" is missing");
	expect_bad("{\"cmd\":\"remove-target\",\"id\":1}", "\"id\" must be a string");
	expect_bad("{\"cmd\":\"remove-target\",\"uri\":\"/a\"}", "unexpected field \"uri\"");
	char *longid = malloc(5000);
	memset(longid, 'x', 5000);
	memcpy(longid, "{\"cmd\":\"remove-target\",\"id\":\"", 29);
	memcpy(longid + 4995, "\"}", 3);
	expect_bad(longid, "\"id\" must be 1-4096 bytes");
	free(longid);
}
END_TEST

START_TEST(too_large)
{
	size_t n = CTL_MAX_LINE;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	memcpy(big, "{\"cmd\":\"status\"}", 16);
	big[n] = '\0';
	expect_bad(big, "larger than 1048576 bytes");
	free(big);
}
END_TEST

START_TEST(answers)
{
	char *ok = ctl_answer_ok(json_pack("{s:i}", "generation", 3));
	ck_assert_str_eq(ok, "{\"ok\":true,\"generation\":3}\n");
	free(ok);
	ok = ctl_answer_ok(NULL);
	ck_assert_str_eq(ok, "{\"ok\":true}\n");
	free(ok);
	char *bad = ctl_answer_error("no \"such\"\ntarget");
	ck_assert_str_eq(bad, "{\"ok\":false,\"error\":\"no \\\"such\\\"\\ntarget\"}\n");
	free(bad);
}
END_TEST

/* The line reader over a socketpair: lines split anywhere, and a line
 * longer than the limit is refused without holding more than the limit. */
START_TEST(line_reader)
{
	int sv[2];
	struct ctl_linebuf lb = {0};
	char *line;
	size_t len;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "{\"a\":1}\n{\"b\"", 12), 12);
	ck_assert_int_gt(ctl_lb_read(&lb, sv[0]), 0);
	ck_assert_int_eq(ctl_lb_next(&lb, &line, &len), 1);
	ck_assert_str_eq(line, "{\"a\":1}");
	ck_assert_int_eq(ctl_lb_next(&lb, &line, &len), 0);
	ck_assert_int_eq(write(sv[1], ":2}\n", 4), 4);
	ck_assert_int_gt(ctl_lb_read(&lb, sv[0]), 0);
	ck_assert_int_eq(ctl_lb_next(&lb, &line, &len), 1);
	ck_assert_str_eq(line, "{\"b\":2}");
	ck_assert_uint_eq(len, 7);
	ck_assert_int_eq(ctl_lb_next(&lb, &line, &len), 0);

	/* 2 MiB without a newline: refused once the limit is reached. */
	char *chunk = calloc(1, 64 * 1024);
	memset(chunk, 'x', 64 * 1024);
	int refused = 0;
	for (int i = 0; i < 32 && !refused; i++) {
		ck_assert_int_eq(write(sv[1], chunk, 64 * 1024), 64 * 1024);
		while (ctl_lb_read(&lb, sv[0]) > 0 && lb.len < CTL_MAX_LINE &&
		       lb.len % (64 * 1024) != 0)
			;
		refused = ctl_lb_next(&lb, &line, &len) < 0;
		ck_assert_uint_le(lb.cap, CTL_MAX_LINE + 1);
	}
	ck_assert(refused);
	free(chunk);
	ctl_lb_free(&lb);
	close(sv[0]);
	close(sv[1]);
}
END_TEST

START_TEST(socket_names)
{
	char a[256], b[256], c[256];

	ck_assert_int_eq(ctl_default_socket("fs-12345678", "/mnt/efs", a, sizeof(a)), 0);
	ck_assert_int_eq(ctl_default_socket("fs-12345678", "/mnt/efs2", b, sizeof(b)), 0);
	ck_assert_int_eq(ctl_default_socket("fs-12345678", "/mnt/efs", c, sizeof(c)), 0);
	ck_assert_str_eq(a, c);
	ck_assert_str_ne(a, b);
	ck_assert_ptr_nonnull(strstr(a, "/fs-12345678-"));
	ck_assert_ptr_nonnull(strstr(a, ".sock"));
	/* labels that clean to the same name still differ */
	ck_assert_int_eq(ctl_default_socket("a/b", "/m", a, sizeof(a)), 0);
	ck_assert_int_eq(ctl_default_socket("a_b", "/m", b, sizeof(b)), 0);
	ck_assert_str_ne(a, b);
	ck_assert_ptr_null(strchr(strrchr(a, '/') + 1, ' '));
	/* a long label is cut, and the result fits a sockaddr_un */
	char label[300];
	memset(label, 'L', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	ck_assert_int_eq(ctl_default_socket(label, "/m", a, sizeof(a)), 0);
	ck_assert_uint_lt(strlen(a), 108);
	ck_assert_int_eq(ctl_default_socket("fs-1", "/m", a, 10), -1);
}
END_TEST

START_TEST(latency_buckets)
{
	uint64_t hist[OPSTATS_BUCKETS] = {0};

	for (uint64_t us = 0; us < 1000000; us = us * 2 + 1) {
		unsigned bkt = opstats_bucket(us);
		ck_assert_uint_gt(opstats_bucket_upper(bkt), us);
		ck_assert(bkt == 0 || opstats_bucket_upper(bkt - 1) <= us);
	}
	ck_assert_uint_eq(opstats_bucket(UINT64_MAX), OPSTATS_BUCKETS - 1);
	ck_assert_uint_eq(opstats_quantile(hist, 0.5), 0);
	for (int i = 0; i < 98; i++)
		hist[opstats_bucket(100)]++;
	hist[opstats_bucket(5000)] += 2;
	ck_assert_uint_le(opstats_quantile(hist, 0.5), 125);
	ck_assert_uint_ge(opstats_quantile(hist, 0.5), 100);
	ck_assert_uint_ge(opstats_quantile(hist, 0.99), 5000);
	ck_assert_uint_le(opstats_quantile(hist, 0.99), 6250);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ctl");
	TCase *tc = tcase_create("proto");

	tcase_add_test(tc, good_requests);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, bad_commands);
	tcase_add_test(tc, bad_set_targets);
	tcase_add_test(tc, bad_add_remove);
	tcase_add_test(tc, too_large);
	tcase_add_test(tc, answers);
	tcase_add_test(tc, line_reader);
	tcase_add_test(tc, socket_names);
	tcase_add_test(tc, latency_buckets);
	suite_add_tcase(s, tc);
	return check_run(s);
}
