/* The AWS client's pure parts: error forms, retry classes, backoff, dates. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"
#include "aws_call.h"
#include "check_run.h"

static void parse(long status, const char *etype, const char *body, struct aws_error *err)
{
	struct aws_http_resp r = {.status = status,
				  .body = (char *)body,
				  .body_len = body ? strlen(body) : 0,
				  .error_type = (char *)etype};
	memset(err, 0, sizeof *err);
	aws_error_from_resp(&r, err);
}

START_TEST(error_forms)
{
	struct aws_error e;
	parse(409, "MountTargetConflict", "{\"message\":\"exists\"}", &e);
	ck_assert_str_eq(e.code, "MountTargetConflict");
	ck_assert_str_eq(e.message, "exists");
	ck_assert_int_eq(e.status, 409);
	parse(400, NULL, "{\"ErrorCode\":\"SubnetNotFound\",\"Message\":\"no subnet\",\"x\":null}",
	      &e);
	ck_assert_str_eq(e.code, "SubnetNotFound");
	ck_assert_str_eq(e.message, "no subnet");
	parse(400, NULL,
	      "{\"__type\":\"com.amazonaws.ssm#ParameterNotFound\",\"message\":\"m\\nn\"}", &e);
	ck_assert_str_eq(e.code, "ParameterNotFound");
	ck_assert_str_eq(e.message, "m n"); /* one line */
	parse(400, NULL, "{\"__type\":\"ThrottlingException\"}", &e);
	ck_assert_str_eq(e.code, "ThrottlingException");
	ck_assert(aws_error_retryable(&e));
	parse(503, NULL, "<html>", &e);
	ck_assert_str_eq(e.code, "ServiceUnavailable");
	ck_assert(aws_error_retryable(&e));
	parse(429, NULL, "", &e);
	ck_assert_str_eq(e.code, "TooManyRequests");
	parse(404, NULL, "[1,2]", &e);
	ck_assert_str_eq(e.code, "UnknownError");
	ck_assert(!aws_error_retryable(&e));
	parse(409, NULL, "{\"ErrorCode\":\"MountTargetConflict\"}", &e);
	ck_assert(!aws_error_retryable(&e));
}
END_TEST

START_TEST(backoff_full_jitter_capped)
{
	struct aws_http_conf c = {.backoff_base_ms = 100, .backoff_cap_ms = 1000};
	long max[8] = {0};
	for (int i = 0; i < 2000; i++)
		for (int n = 0; n < 8; n++) {
			long w = aws_backoff_ms(&c, n);
			long ceil = 100L << n;
			ck_assert_int_ge(w, 0);
			ck_assert_int_le(w, ceil < 1000 ? ceil : 1000);
			if (w > max[n])
				max[n] = w;
		}
	/* full jitter reaches near its ceiling */
	ck_assert_int_gt(max[0], 80);
	ck_assert_int_gt(max[7], 900);
}
END_TEST

START_TEST(iso8601)
{
	ck_assert_int_eq(aws_parse_iso8601("2026-01-01T00:00:00Z"), 1767225600);
	ck_assert_int_eq(aws_parse_iso8601("2026-01-01T00:00:01.123Z"), 1767225601);
	ck_assert_int_eq(aws_parse_iso8601("2026-01-01T00:00:00+00:00"), 1767225600);
	ck_assert_int_eq(aws_parse_iso8601("tomorrow"), -1);
	ck_assert_int_eq(aws_parse_iso8601("2026-01-01T00:00:00+02:00"), -1);
	ck_assert_int_eq(aws_parse_iso8601(NULL), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aws");
	TCase *tc = tcase_create("aws");
	tcase_add_test(tc, error_forms);
	tcase_add_test(tc, backoff_full_jitter_capped);
	tcase_add_test(tc, iso8601);
	suite_add_tcase(s, tc);
	return check_run(s);
}
