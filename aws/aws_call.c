/* Signed AWS calls: the service (name, region, endpoint), SigV4 signing
 * with credentials from a provider, and retries with backoff until a
 * deadline. Built on aws_http.c's transport; aws_creds.c uses that
 * transport too, never this file, so the two stay apart. */
#include "aws_call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws_creds.h"
#include "aws_sigv4.h"

#define MAX_HEADERS 16	 /* a request's own headers, beyond those signing adds */
#define HEADER_LEN  2048 /* bytes of one header line */

static char *host_of(const char *url)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = strchr(p, '@');
	const char *slash = strchr(p, '/');
	if (at && (!slash || at < slash))
		p = at + 1;
	size_t l = slash ? (size_t)(slash - p) : strlen(p);
	if (l > 4 && strncmp(url, "https://", 8) == 0 && strncmp(p + l - 4, ":443", 4) == 0)
		l -= 4;
	else if (l > 3 && strncmp(url, "http://", 7) == 0 && strncmp(p + l - 3, ":80", 3) == 0)
		l -= 3;
	return strndup(p, l);
}

int aws_service_init(struct aws_service *svc, const char *name, const char *region, const char *url)
{
	memset(svc, 0, sizeof *svc);
	aws_http_conf_default(&svc->conf);
	svc->name = strdup(name);
	svc->region = strdup(region);
	svc->host = host_of(url);
	svc->ep = aws_endpoint_new(url, &svc->conf);
	if (!svc->name || !svc->region || !svc->host || !svc->ep) {
		aws_service_destroy(svc);
		return -ENOMEM;
	}
	return 0;
}

void aws_service_destroy(struct aws_service *svc)
{
	aws_endpoint_free(svc->ep);
	free(svc->name);
	free(svc->region);
	free(svc->host);
	memset(svc, 0, sizeof *svc);
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* One signed attempt. */
static int signed_attempt(struct aws_service *svc, const struct aws_creds *cr,
			  const struct aws_http_req *req, struct aws_http_resp *resp,
			  struct aws_error *err)
{
	char date[AWS_SIGV4_DATE_LEN + 1];
	struct aws_hdr sh[MAX_HEADERS + 3];
	char *lines[MAX_HEADERS + 4] = {0};
	char copy[MAX_HEADERS][HEADER_LEN];
	size_t n = 0, nl = 0;
	int rc;

	aws_sigv4_now(date);
	sh[n++] = (struct aws_hdr){"Host", svc->host};
	sh[n++] = (struct aws_hdr){"X-Amz-Date", date};
	for (const char *const *h = req->headers; h && *h && n < MAX_HEADERS; h++) {
		snprintf(copy[n], sizeof copy[n], "%s", *h);
		char *colon = strchr(copy[n], ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		sh[n] = (struct aws_hdr){copy[n], v};
		n++;
	}
	struct aws_sigv4_in in = {
	    .method = req->method,
	    .path = req->path,
	    .query = req->query,
	    .hdrs = sh,
	    .nhdrs = n,
	    .body = req->body,
	    .body_len = req->body_len,
	    .amz_date = date,
	    .region = svc->region,
	    .service = svc->name,
	    .access_key = cr->access_key,
	    .secret_key = cr->secret_key,
	    .session_token = cr->token,
	};
	struct aws_sigv4_out out;
	rc = aws_sigv4_sign(&in, &out);
	if (rc) {
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "%s %s: cannot sign the request",
			      req->method, req->path);
		return rc;
	}
	rc = -ENOMEM;
	if (asprintf(&lines[nl++], "Host: %s", svc->host) < 0 ||
	    asprintf(&lines[nl++], "X-Amz-Date: %s", date) < 0 ||
	    asprintf(&lines[nl++], "Authorization: %s", out.authz) < 0 ||
	    (cr->token && asprintf(&lines[nl++], "X-Amz-Security-Token: %s", cr->token) < 0))
		goto out;
	for (const char *const *h = req->headers; h && *h && nl < MAX_HEADERS + 3; h++)
		if (!(lines[nl++] = strdup(*h)))
			goto out;
	struct aws_http_req sreq = *req;
	sreq.headers = (const char *const *)lines;
	rc = aws_http_do(svc->ep, &sreq, resp, err);
out:
	if (rc == -ENOMEM)
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < nl; i++)
		free(lines[i]);
	aws_sigv4_out_free(&out);
	return rc;
}

int aws_call(struct aws_service *svc, struct aws_creds_provider *creds,
	     const struct aws_http_req *req, struct aws_http_resp *resp, struct aws_error *err)
{
	long start = now_ms();
	int rc = -EIO;

	memset(err, 0, sizeof *err);
	memset(resp, 0, sizeof *resp);
	for (int attempt = 1;; attempt++) {
		struct aws_creds cr = {0};
		err->attempts = attempt;
		rc = aws_creds_get(creds, &cr, err);
		if (rc)
			return rc;
		/* no attempt outlives the call's deadline */
		struct aws_http_req one = *req;
		long left = svc->conf.deadline_ms - (now_ms() - start);
		one.timeout_ms = left > 0 ? left : 1;
		rc = signed_attempt(svc, &cr, &one, resp, err);
		aws_creds_clear(&cr);
		if (rc == 0 && resp->status >= 200 && resp->status < 300)
			return 0;
		if (rc == 0) {
			aws_error_from_resp(resp, err);
			aws_http_resp_free(resp);
			rc = -EREMOTEIO;
		} else if (rc == -ENOMEM) {
			return rc;
		}
		err->attempts = attempt;
		if (!aws_error_retryable(err) || attempt >= svc->conf.max_attempts)
			return rc;
		long wait = aws_backoff_ms(&svc->conf, attempt - 1);
		left = svc->conf.deadline_ms - (now_ms() - start);
		if (left <= wait) {
			size_t l = strlen(err->message);
			snprintf(err->message + l, sizeof err->message - l,
				 " (gave up after %d attempts: deadline %ld ms)", attempt,
				 svc->conf.deadline_ms);
			return rc;
		}
		sleep_ms(wait);
	}
}
