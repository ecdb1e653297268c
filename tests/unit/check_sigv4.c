/* SigV4: every case of the official AWS test suite (tests/data/sigv4) but
 * the four quirks its README names, and the EFS/SSM vectors. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "aws_sigv4.h"
#include "check_run.h"

#define SUITE_KEY     "AKIDEXAMPLE"
#define SUITE_SECRET  "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_REGION  "us-east-1"
#define SUITE_SERVICE "service"
#define MAX_HDRS      32
/* get-vanilla-with-session-token signs with this token (see its .sreq) */
#define SUITE_TOKEN_CASE "get-vanilla-with-session-token"
#define SUITE_TOKEN	 "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
/* 34 cases in the suite, minus the 4 quirks */
#define SUITE_CASES 30

static const char *const quirks[] = {
    "get-space",
    "get-vanilla-query-order-key",
    "get-vanilla-query-order-value",
    "get-vanilla-query-order-key-case",
};

static char datadir[4096];

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct stat st;
	fstat(fileno(f), &st);
	char *buf = malloc((size_t)st.st_size + 1);
	size_t n = fread(buf, 1, (size_t)st.st_size, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

struct parsed {
	char method[16];
	char *path, *query, *body;
	struct aws_hdr hdrs[MAX_HDRS];
	char *values[MAX_HDRS];
	size_t n;
	const char *date;
};

/* The .req form: request line, "Name:value" lines (a line starting with a
 * blank continues the previous value), a blank line, the body. */
static void parse_req(char *req, struct parsed *p)
{
	memset(p, 0, sizeof *p);
	char *line = req, *next;
	char *nl = strchr(line, '\n');
	ck_assert_ptr_nonnull(nl);
	*nl = '\0';
	next = nl + 1;
	char *sp1 = strchr(line, ' ');
	char *sp2 = strrchr(line, ' ');
	ck_assert(sp1 && sp2 > sp1);
	*sp1 = *sp2 = '\0';
	snprintf(p->method, sizeof p->method, "%s", line);
	p->path = sp1 + 1;
	char *q = strchr(p->path, '?');
	if (q) {
		*q = '\0';
		p->query = q + 1;
	}
	p->body = "";
	for (line = next; line && *line;) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (line[0] == '\0') {
			p->body = nl ? nl + 1 : "";
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && p->n) {
			char *v = p->values[p->n - 1];
			size_t l = strlen(v);
			v = realloc(v, l + strlen(line) + 2);
			v[l] = ' ';
			strcpy(v + l + 1, line);
			p->values[p->n - 1] = v;
			p->hdrs[p->n - 1].value = v;
		} else {
			char *colon = strchr(line, ':');
			ck_assert_ptr_nonnull(colon);
			ck_assert_uint_lt(p->n, MAX_HDRS);
			*colon = '\0';
			p->hdrs[p->n].name = line;
			p->values[p->n] = strdup(colon + 1);
			p->hdrs[p->n].value = p->values[p->n];
			if (strcasecmp(line, "X-Amz-Date") == 0)
				p->date = p->values[p->n];
			p->n++;
		}
		line = nl ? nl + 1 : NULL;
	}
	if (line == NULL || *line == '\0')
		if (p->body == NULL)
			p->body = "";
}

static int run_case(const char *dir, const char *name)
{
	char path[8192];
	struct parsed p;
	struct aws_sigv4_out out;

	snprintf(path, sizeof path, "%s/%s/%s.req", dir, name, name);
	char *req = slurp(path);
	if (!req)
		return 0;
	parse_req(req, &p);
	ck_assert_msg(p.date != NULL, "%s: no X-Amz-Date", name);
	struct aws_sigv4_in in = {
	    .method = p.method,
	    .path = p.path,
	    .query = p.query,
	    .hdrs = p.hdrs,
	    .nhdrs = p.n,
	    .body = p.body,
	    .body_len = strlen(p.body),
	    .amz_date = p.date,
	    .region = SUITE_REGION,
	    .service = SUITE_SERVICE,
	    .access_key = SUITE_KEY,
	    .secret_key = SUITE_SECRET,
	    .session_token = strcmp(name, SUITE_TOKEN_CASE) == 0 ? SUITE_TOKEN : NULL,
	};
	ck_assert_int_eq(aws_sigv4_sign(&in, &out), 0);

	static const char *const ext[] = {"creq", "sts", "authz"};
	const char *got[] = {out.creq, out.sts, out.authz};
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s/%s.%s", dir, name, name, ext[i]);
		char *want = slurp(path);
		ck_assert_msg(want != NULL, "%s: missing", path);
		ck_assert_msg(strcmp(want, got[i]) == 0, "%s.%s:\nwant:\n%s\ngot:\n%s", name,
			      ext[i], want, got[i]);
		free(want);
	}
	aws_sigv4_out_free(&out);
	for (size_t i = 0; i < p.n; i++)
		free(p.values[i]);
	free(req);
	return 1;
}

static int is_quirk(const char *name)
{
	for (size_t i = 0; i < sizeof quirks / sizeof quirks[0]; i++)
		if (strcmp(name, quirks[i]) == 0)
			return 1;
	return 0;
}

/* Every folder holding <name>.req, at any depth. */
static int walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	char sub[8192];

	ck_assert_msg(d != NULL, "cannot open %s", dir);
	while ((e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
		if (stat(sub, &st) || !S_ISDIR(st.st_mode) || is_quirk(e->d_name))
			continue;
		int got = run_case(dir, e->d_name);
		n += got ? got : walk(sub);
	}
	closedir(d);
	return n;
}

START_TEST(official_suite)
{
	ck_assert_int_eq(walk(datadir), SUITE_CASES);
}
END_TEST

/* efs-vectors.tsv: name method url service amz_date headers body signed_headers signature */
START_TEST(efs_vectors)
{
	char path[8192];
	snprintf(path, sizeof path, "%s/efs-vectors.tsv", datadir);
	char *tsv = slurp(path);
	ck_assert_ptr_nonnull(tsv);
	int n = 0;
	char *save = NULL;
	strtok_r(tsv, "\n", &save); /* header row */
	for (char *row; (row = strtok_r(NULL, "\n", &save));) {
		char *col[9];
		char *c = row;
		for (int i = 0; i < 9; i++) {
			col[i] = c;
			char *t = c ? strchr(c, '\t') : NULL;
			if (t)
				*t = '\0';
			c = t ? t + 1 : NULL;
		}
		ck_assert_ptr_nonnull(col[8]);
		char *host = col[2] + strlen("https://");
		char *slash = strchr(host, '/');
		char *pathq = strdup(slash);
		*slash = '\0';
		char *q = strchr(pathq, '?');
		if (q)
			*q++ = '\0';
		struct aws_hdr h[MAX_HDRS] = {{"Host", host}, {"X-Amz-Date", col[4]}};
		size_t nh = 2;
		char *hs = col[5], *hsave = NULL;
		for (char *one = strtok_r(hs, "|", &hsave); one;
		     one = strtok_r(NULL, "|", &hsave)) {
			char *colon = strchr(one, ':');
			*colon = '\0';
			h[nh].name = one;
			h[nh++].value = colon + 1;
		}
		struct aws_sigv4_in in = {
		    .method = col[1],
		    .path = pathq,
		    .query = q,
		    .hdrs = h,
		    .nhdrs = nh,
		    .body = col[6],
		    .body_len = strlen(col[6]),
		    .amz_date = col[4],
		    .region = SUITE_REGION,
		    .service = col[3],
		    .access_key = SUITE_KEY,
		    .secret_key = SUITE_SECRET,
		};
		struct aws_sigv4_out out;
		ck_assert_int_eq(aws_sigv4_sign(&in, &out), 0);
		ck_assert_msg(strcmp(out.signed_headers, col[7]) == 0, "%s: signed headers %s",
			      col[0], out.signed_headers);
		ck_assert_msg(strcmp(out.signature, col[8]) == 0, "%s: signature\n%s\n%s", col[0],
			      out.creq, out.sts);
		aws_sigv4_out_free(&out);
		free(pathq);
		n++;
	}
	ck_assert_int_eq(n, 3);
	free(tsv);
}
END_TEST

START_TEST(bad_input)
{
	struct aws_hdr h[] = {{"Host", "x"}};
	struct aws_sigv4_in in = {
	    .method = "GET",
	    .path = "/",
	    .hdrs = h,
	    .nhdrs = 1,
	    .amz_date = "2015-08-30",
	    .region = "r",
	    .service = "s",
	    .access_key = "a",
	    .secret_key = "b",
	};
	struct aws_sigv4_out out;
	ck_assert_int_eq(aws_sigv4_sign(&in, &out), -EINVAL);
	in.amz_date = "20150830T123600Z";
	h[0].name = "";
	ck_assert_int_eq(aws_sigv4_sign(&in, &out), -EINVAL);
	ck_assert_ptr_null(out.authz);
}
END_TEST

START_TEST(uri_encode)
{
	char *s = aws_uri_encode("a b/c~*%", 8, 1);
	ck_assert_str_eq(s, "a%20b/c~%2A%25");
	free(s);
	s = aws_uri_encode("/x", 2, 0);
	ck_assert_str_eq(s, "%2Fx");
	free(s);
}
END_TEST

int main(void)
{
	const char *srcdir = getenv("srcdir");
	snprintf(datadir, sizeof datadir, "%s/tests/data/sigv4", srcdir ? srcdir : ".");
	Suite *s = suite_create("sigv4");
	TCase *tc = tcase_create("sigv4");
	tcase_add_test(tc, official_suite);
	tcase_add_test(tc, efs_vectors);
	tcase_add_test(tc, bad_input);
	tcase_add_test(tc, uri_encode);
	suite_add_tcase(s, tc);
	return check_run(s);
}
