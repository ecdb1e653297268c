/* libcurl transport for the AWS client: endpoints, one request at a time,
 * error answers and the backoff between retries. Signing and the retry
 * loop are aws_call.c's. */
#include "aws_http.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define CONNECT_TIMEOUT_MS 3000
#define REQUEST_TIMEOUT_MS 20000
#define MAX_ATTEMPTS	   8
#define BACKOFF_BASE_MS	   100
#define BACKOFF_CAP_MS	   20000
#define DEADLINE_MS	   120000
#define MAX_RESPONSE_BYTES (16 * 1024 * 1024)

struct aws_endpoint {
	CURL *curl;
	char *url;
	struct aws_http_conf conf;
	pthread_mutex_t lock; /* one request at a time on the handle */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	char *end;
	if (!v || !*v)
		return dflt;
	long x = strtol(v, &end, 10);
	return *end || x < 0 ? dflt : x;
}

void aws_http_conf_default(struct aws_http_conf *conf)
{
	conf->connect_timeout_ms = env_long("EFSMT_AWS_CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS);
	conf->request_timeout_ms = env_long("EFSMT_AWS_REQUEST_TIMEOUT_MS", REQUEST_TIMEOUT_MS);
	conf->max_attempts = (int)env_long("EFSMT_AWS_MAX_ATTEMPTS", MAX_ATTEMPTS);
	if (conf->max_attempts < 1)
		conf->max_attempts = 1;
	conf->backoff_base_ms = env_long("EFSMT_AWS_BACKOFF_BASE_MS", BACKOFF_BASE_MS);
	conf->backoff_cap_ms = env_long("EFSMT_AWS_BACKOFF_CAP_MS", BACKOFF_CAP_MS);
	conf->deadline_ms = env_long("EFSMT_AWS_DEADLINE_MS", DEADLINE_MS);
}

void aws_error_set(struct aws_error *err, long status, const char *code, const char *fmt, ...)
{
	va_list ap;
	err->status = status;
	snprintf(err->code, sizeof err->code, "%s", code);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
}

struct aws_endpoint *aws_endpoint_new(const char *base_url, const struct aws_http_conf *conf)
{
	pthread_once(&curl_once, curl_init_once);
	struct aws_endpoint *ep = calloc(1, sizeof *ep);
	if (!ep)
		return NULL;
	ep->url = strdup(base_url);
	ep->curl = curl_easy_init();
	if (!ep->url || !ep->curl) {
		aws_endpoint_free(ep);
		return NULL;
	}
	size_t l = strlen(ep->url);
	while (l && ep->url[l - 1] == '/')
		ep->url[--l] = '\0';
	if (conf)
		ep->conf = *conf;
	else
		aws_http_conf_default(&ep->conf);
	pthread_mutex_init(&ep->lock, NULL);
	return ep;
}

void aws_endpoint_free(struct aws_endpoint *ep)
{
	if (!ep)
		return;
	if (ep->curl) {
		curl_easy_cleanup(ep->curl);
		pthread_mutex_destroy(&ep->lock);
	}
	free(ep->url);
	free(ep);
}

const char *aws_endpoint_url(const struct aws_endpoint *ep)
{
	return ep->url;
}

void aws_http_resp_free(struct aws_http_resp *resp)
{
	free(resp->body);
	free(resp->error_type);
	memset(resp, 0, sizeof *resp);
}

struct sink {
	struct aws_http_resp *resp;
	size_t cap;
	int too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	struct aws_http_resp *r = s->resp;
	if (r->body_len + n > MAX_RESPONSE_BYTES) {
		s->too_big = 1;
		return 0;
	}
	if (r->body_len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		while (cap < r->body_len + n + 1)
			cap *= 2;
		char *p = realloc(r->body, cap);
		if (!p)
			return 0;
		r->body = p;
		s->cap = cap;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t n = size * nmemb;
	static const char name[] = "x-amzn-errortype:";
	if (n > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
		const char *v = data + sizeof name - 1;
		size_t l = n - (sizeof name - 1);
		while (l && (*v == ' ' || *v == '\t'))
			v++, l--;
		size_t cut = 0;
		while (cut < l && v[cut] != ':' && v[cut] != '\r' && v[cut] != '\n')
			cut++;
		free(s->resp->error_type);
		s->resp->error_type = strndup(v, cut);
	} else if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new response (after a redirect or 100): forget the old header */
		free(s->resp->error_type);
		s->resp->error_type = NULL;
	}
	return n;
}

int aws_http_do(struct aws_endpoint *ep, const struct aws_http_req *req, struct aws_http_resp *resp,
		struct aws_error *err)
{
	struct curl_slist *hl = NULL;
	struct sink sink = {.resp = resp};
	char *url;
	int rc = 0;

	memset(resp, 0, sizeof *resp);
	if (asprintf(&url, "%s%s%s%s", ep->url, req->path, req->query && *req->query ? "?" : "",
		     req->query ? req->query : "") < 0) {
		aws_error_set(err, 0, AWS_ERR_INTERNAL, "out of memory");
		return -ENOMEM;
	}
	for (const char *const *h = req->headers; h && *h; h++)
		hl = curl_slist_append(hl, *h);
	hl = curl_slist_append(hl, "Expect:");

	pthread_mutex_lock(&ep->lock);
	CURL *c = ep->curl;
	curl_easy_reset(c); /* options only: the connection cache stays */
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ep->conf.connect_timeout_ms);
	long timeout = ep->conf.request_timeout_ms;
	if (req->timeout_ms > 0 && req->timeout_ms < timeout)
		timeout = req->timeout_ms;
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &sink);
	if (req->body || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req->body_len);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);

	CURLcode cc = curl_easy_perform(c);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
		if (!resp->body)
			resp->body = strdup("");
	} else {
		aws_error_set(err, 0,
			      cc == CURLE_OPERATION_TIMEDOUT ? AWS_ERR_TIMEOUT : AWS_ERR_NETWORK,
			      "%s %s: %s", req->method, ep->url,
			      sink.too_big ? "response too large" : curl_easy_strerror(cc));
		aws_http_resp_free(resp);
		rc = -EIO;
	}
	pthread_mutex_unlock(&ep->lock);
	curl_slist_free_all(hl);
	free(url);
	return rc;
}

static const char *json_str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

void aws_error_from_resp(const struct aws_http_resp *resp, struct aws_error *err)
{
	const char *code = NULL, *msg = NULL;
	json_t *j =
	    resp->body && resp->body_len ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
	if (json_is_object(j)) {
		code = json_str(j, "ErrorCode");
		if (!code && (code = json_str(j, "__type"))) {
			const char *hash = strrchr(code, '#');
			if (hash)
				code = hash + 1;
		}
		if (!code)
			code = json_str(j, "code");
		msg = json_str(j, "Message");
		if (!msg)
			msg = json_str(j, "message");
	}
	if (resp->error_type && *resp->error_type)
		code = resp->error_type;
	if (!code || !*code) {
		if (resp->status == 429)
			code = "TooManyRequests";
		else if (resp->status >= 500)
			code = "ServiceUnavailable";
		else
			code = "UnknownError";
	}
	aws_error_set(err, resp->status, code, "%s", msg ? msg : "(no message)");
	/* keep the message one line */
	for (char *c = err->message; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	json_decref(j);
}

int aws_error_retryable(const struct aws_error *err)
{
	static const char *const throttles[] = {"ThrottlingException",	"Throttling",
						"TooManyRequests",	"TooManyRequestsException",
						"RequestLimitExceeded", "ThrottledException"};
	if (strcmp(err->code, AWS_ERR_NETWORK) == 0 || strcmp(err->code, AWS_ERR_TIMEOUT) == 0)
		return 1;
	if (err->status == 429 || err->status >= 500)
		return 1;
	for (size_t i = 0; i < sizeof throttles / sizeof throttles[0]; i++)
		if (strcmp(err->code, throttles[i]) == 0)
			return 1;
	return 0;
}

static unsigned rand_seed(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned)(ts.tv_nsec ^ ts.tv_sec ^ (long)pthread_self());
}

long aws_backoff_ms(const struct aws_http_conf *conf, int n)
{
	static __thread unsigned seed;
	if (!seed)
		seed = rand_seed() | 1;
	long ceil = conf->backoff_base_ms;
	for (int i = 0; i < n && ceil < conf->backoff_cap_ms; i++)
		ceil *= 2;
	if (ceil > conf->backoff_cap_ms)
		ceil = conf->backoff_cap_ms;
	return ceil > 0 ? (long)(rand_r(&seed) % (ceil + 1)) : 0;
}
