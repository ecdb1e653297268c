/* The EFS client certificate (fuse/daemon/tls_cert.h): the IAM signature
 * against botocore, the certificate parsed back by tests/certcheck.py
 * (python3-cryptography), the key file, renewal. */
#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "check_run.h"
#include "daemon/tls_cert.h"

#define PYTHON "/usr/bin/python3" /* Debian's: python3-botocore, python3-cryptography */
#define FS_ID  "fs-0123456789abcdef0"
#define AP_ID  "fsap-0123456789abcdef0"
#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
/* '/', '+' and '=' must be percent-encoded in the query */
#define TOKEN	  "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+abc/def=="
#define REGION	  "eu-west-1"
#define NOW	  1767323045 /* 2026-01-02T03:04:05Z */
#define LONG_HOST "a-host-name-longer-than-sixty-four-characters.example.internal.test"

static char certcheck[4096];
static char tmpdir[4096];

/* A command's stdout (malloc'd) and exit status. */
static char *run(const char *cmd, int *status)
{
	FILE *p = popen(cmd, "r");
	ck_assert_msg(p != NULL, "cannot run %s", cmd);
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		if (cap - n < 2)
			buf = realloc(buf, cap *= 2);
	}
	buf[n] = '\0';
	*status = pclose(p);
	return buf;
}

static void need_python(void)
{
	int st;
	char *out = run(PYTHON " -c 'import cryptography, botocore' 2>&1", &st);
	ck_assert_msg(st == 0,
		      "%s cannot import cryptography and botocore (apt-get install "
		      "python3-cryptography python3-botocore, or scripts/install-deps.sh): %s",
		      PYTHON, out);
	free(out);
}

static void check_sign(const char *token)
{
	struct tls_cert_iam iam = {AKID, SECRET, token, REGION};
	struct tls_cert_sig sig;
	const char *hash = "8c2c0a1d5e4b32fa86a0c1c3b8c2a4b6f1e2d3c4";
	ck_assert_int_eq(tls_cert_iam_sign(FS_ID, hash, &iam, NOW, &sig), 0);

	char cmd[8192];
	snprintf(cmd, sizeof cmd,
		 PYTHON " %s sign --fs-id %s --pubkey-hash %s --access-key %s --secret '%s' "
			"--region %s --date 20260102T030405Z %s%s%s",
		 certcheck, FS_ID, hash, AKID, SECRET, REGION, token ? "--token '" : "",
		 token ? token : "", token ? "'" : "");
	int st;
	char *out = run(cmd, &st);
	ck_assert_msg(st == 0, "certcheck.py sign failed: %s", out);
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	ck_assert_msg(j != NULL, "certcheck.py sign: not JSON: %s", out);
	ck_assert_str_eq(sig.creq, json_string_value(json_object_get(j, "creq")));
	ck_assert_str_eq(sig.sts, json_string_value(json_object_get(j, "sts")));
	ck_assert_str_eq(sig.signature, json_string_value(json_object_get(j, "signature")));
	/* the form itself, so that the checker and the code cannot drift together */
	ck_assert_ptr_nonnull(strstr(sig.creq, "GET\n/\nAction=Connect&PublicKeyHash="));
	ck_assert_ptr_nonnull(strstr(sig.creq, "X-Amz-Credential=" AKID "%2F20260102%2F" REGION
					       "%2Felasticfilesystem%2Faws4_request"));
	ck_assert_ptr_nonnull(strstr(sig.creq, "\nhost:" FS_ID "\nhost\ne3b0c442"));
	if (token)
		ck_assert_ptr_nonnull(strstr(sig.creq, "X-Amz-Security-Token=IQoJb3JpZ2luX2VjEJr"
						       "%2F%2F%2F%2F%2F%2F%2F%2F%2F%2FwEaCXVzLWVh"
						       "c3QtMSJHMEUCIQ%2Babc%2Fdef%3D%3D&"));
	else
		ck_assert_ptr_null(strstr(sig.creq, "Security-Token"));
	json_decref(j);
	free(out);
	tls_cert_sig_free(&sig);
}

START_TEST(iam_signature_vs_botocore)
{
	need_python();
	check_sign(TOKEN);
	check_sign(NULL);
}
END_TEST

static void key_path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_cert(X509 *x, const char *path)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(PEM_write_X509(f, x), 1);
	fclose(f);
}

/* certcheck.py check on x; its exit status, output in *out. */
static int certcheck_run(X509 *x, const char *args, char **out)
{
	char pem[4200], cmd[16384];
	key_path(pem, sizeof pem, "cert.pem");
	write_cert(x, pem);
	snprintf(cmd, sizeof cmd, PYTHON " %s check %s --fs-id %s --version %s %s 2>&1", certcheck,
		 pem, FS_ID, PACKAGE_VERSION, args);
	int st;
	*out = run(cmd, &st);
	return st;
}

START_TEST(certificate_parsed_back)
{
	need_python();
	char path[4200], err[512], *out;
	key_path(path, sizeof path, "deep/er/key.pem");
	EVP_PKEY *k = NULL;
	ck_assert_msg(tls_cert_key_load(path, &k, err, sizeof err) == 0, "%s", err);
	struct tls_cert_iam iam = {AKID, SECRET, TOKEN, REGION};
	time_t now = time(NULL);
	struct tls_cert_params p = {FS_ID, AP_ID, LONG_HOST, &iam, now};
	X509 *x = NULL;
	ck_assert_msg(tls_cert_build(k, &p, &x, err, sizeof err) == 0, "%s", err);
	int st =
	    certcheck_run(x,
			  "--hostname " LONG_HOST " --access-point " AP_ID " --access-key " AKID
			  " --secret '" SECRET "' --token '" TOKEN "' --region " REGION,
			  &out);
	ck_assert_msg(st == 0, "certcheck.py: %s", out);
	free(out);
	/* the checker catches a wrong secret, a missing token, a wrong access point */
	ck_assert_int_ne(certcheck_run(x,
				       "--access-point " AP_ID " --access-key " AKID
				       " --secret wrong --token '" TOKEN "' --region " REGION,
				       &out),
			 0);
	ck_assert_msg(strstr(out, "IAM signature") != NULL, "%s", out);
	free(out);
	ck_assert_int_ne(certcheck_run(x,
				       "--access-point " AP_ID " --access-key " AKID
				       " --secret '" SECRET "' --region " REGION,
				       &out),
			 0);
	free(out);
	ck_assert_int_ne(certcheck_run(x,
				       "--access-point fsap-00000000000000000 --access-key " AKID
				       " --secret '" SECRET "' --token '" TOKEN
				       "' --region " REGION,
				       &out),
			 0);
	free(out);
	/* the validity window in this process's own terms too */
	ck_assert_int_eq(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 15 * 60 - 1}), 1);
	ck_assert_int_eq(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 15 * 60 + 1}), -1);
	ck_assert_int_eq(X509_cmp_time(X509_get0_notAfter(x), &(time_t){now + 3 * 3600 + 1}), -1);
	X509_free(x);

	/* no IAM, no access point: the file system id and client information only */
	struct tls_cert_params q = {FS_ID, NULL, "host1", NULL, now};
	ck_assert_msg(tls_cert_build(k, &q, &x, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(certcheck_run(x, "--hostname host1", &out) == 0, "%s", out);
	free(out);
	/* an IAM extension that is not there is caught */
	ck_assert_int_ne(
	    certcheck_run(x, "--access-key " AKID " --secret '" SECRET "' --region " REGION, &out),
	    0);
	free(out);
	X509_free(x);
	EVP_PKEY_free(k);
}
END_TEST

static void pubhash(const char *path, char hex[41])
{
	char err[512];
	EVP_PKEY *k = NULL;
	ck_assert_msg(tls_cert_key_load(path, &k, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(tls_cert_pubkey_hash(k, hex), 0);
	ck_assert_int_eq(EVP_PKEY_bits(k), TLS_CERT_KEY_BITS);
	EVP_PKEY_free(k);
}

START_TEST(key_file)
{
	char path[4200], a[41], b[41], err[512];
	key_path(path, sizeof path, "k1.pem");
	pubhash(path, a);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0400);
	pubhash(path, b); /* made once, then reused */
	ck_assert_str_eq(a, b);

	/* two processes making the key at once end up with the same one */
	key_path(path, sizeof path, "race/k.pem");
	int fds[2][2];
	pid_t pid[2];
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pipe(fds[i]), 0);
		pid[i] = fork();
		ck_assert_int_ge(pid[i], 0);
		if (pid[i] == 0) {
			char h[41];
			EVP_PKEY *k = NULL;
			if (tls_cert_key_load(path, &k, err, sizeof err) ||
			    tls_cert_pubkey_hash(k, h))
				_exit(1);
			_exit(write(fds[i][1], h, 40) == 40 ? 0 : 1);
		}
		close(fds[i][1]);
	}
	char h[2][41] = {{0}};
	for (int i = 0; i < 2; i++) {
		int status;
		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert_int_eq(status, 0);
		ck_assert_int_eq(read(fds[i][0], h[i], 40), 40);
		close(fds[i][0]);
	}
	ck_assert_str_eq(h[0], h[1]);
	pubhash(path, a);
	ck_assert_str_eq(a, h[0]);

	/* a key others may read is refused, with what to do */
	key_path(path, sizeof path, "k1.pem");
	ck_assert_int_eq(chmod(path, 0440), 0);
	EVP_PKEY *k = NULL;
	ck_assert_int_eq(tls_cert_key_load(path, &k, err, sizeof err), -EPERM);
	ck_assert_ptr_nonnull(strstr(err, "chmod 0400"));
	chmod(path, 0400);
}
END_TEST

static void no_aws_env(void)
{
	char f[4200];
	key_path(f, sizeof f, "no-such-file");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	setenv("AWS_SHARED_CREDENTIALS_FILE", f, 1);
	setenv("AWS_CONFIG_FILE", f, 1);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

START_TEST(provider_renews)
{
	char path[4200], err[512];
	key_path(path, sizeof path, "k2.pem");
	no_aws_env();
	struct tls_cert_conf conf = {
	    .keyfile = path, .fs_id = FS_ID, .iam = 1, .region = REGION, .renew_s = 1};
	struct tls_cert_provider *p = NULL;
	/* no credentials: the error says where it looked */
	ck_assert_int_eq(tls_cert_provider_new(&conf, &p, err, sizeof err), -EACCES);
	ck_assert_msg(strstr(err, "no AWS credentials") && strstr(err, "environment") &&
			  strstr(err, "ECS") && strstr(err, "IMDS"),
		      "%s", err);

	setenv("AWS_ACCESS_KEY_ID", AKID, 1);
	setenv("AWS_SECRET_ACCESS_KEY", SECRET, 1);
	ck_assert_msg(tls_cert_provider_new(&conf, &p, err, sizeof err) == 0, "%s", err);
	X509 *x1, *x2, *x3;
	EVP_PKEY *k;
	unsigned g1, g2, g3;
	ck_assert_int_eq(tls_cert_provider_get(p, &x1, &k, &g1, err, sizeof err), 0);
	EVP_PKEY_free(k);
	ck_assert_int_eq(tls_cert_provider_get(p, &x2, &k, &g2, err, sizeof err), 0);
	EVP_PKEY_free(k);
	ck_assert_uint_eq(g1, g2);
	ck_assert_ptr_eq(x1, x2); /* not due: the same certificate */
	sleep(2);
	ck_assert_int_eq(tls_cert_provider_get(p, &x3, &k, &g3, err, sizeof err), 0);
	EVP_PKEY_free(k);
	ck_assert_uint_ne(g3, g1);
	ck_assert_int_ne(X509_cmp(x1, x3), 0);
	X509_free(x1);
	X509_free(x2);
	X509_free(x3);
	tls_cert_provider_free(p);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
}
END_TEST

/* -o awsprofile=: that profile's keys, not the environment's nor default's */
START_TEST(provider_awsprofile)
{
	char path[4200], creds[4200], err[512], *out;
	key_path(path, sizeof path, "k3.pem");
	key_path(creds, sizeof creds, "credentials");
	no_aws_env();
	FILE *f = fopen(creds, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d/s\n"
	      "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = team/secret+1\n"
	      "aws_session_token = team/token==\n",
	      f);
	fclose(f);
	setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env", 1);
	struct tls_cert_conf conf = {
	    .keyfile = path, .fs_id = FS_ID, .iam = 1, .region = REGION, .awsprofile = "team"};
	struct tls_cert_provider *p = NULL;
	ck_assert_msg(tls_cert_provider_new(&conf, &p, err, sizeof err) == 0, "%s", err);
	X509 *x;
	EVP_PKEY *k;
	unsigned g;
	ck_assert_int_eq(tls_cert_provider_get(p, &x, &k, &g, err, sizeof err), 0);
	EVP_PKEY_free(k);
	int st = certcheck_run(x,
			       "--access-key AKIDTEAM --secret team/secret+1 --token team/token== "
			       "--region " REGION,
			       &out);
	ck_assert_msg(st == 0, "certcheck.py: %s", out);
	free(out);
	X509_free(x);
	tls_cert_provider_free(p);
}
END_TEST

int main(void)
{
	const char *srcdir = getenv("srcdir");
	snprintf(certcheck, sizeof certcheck, "%s/tests/certcheck.py", srcdir ? srcdir : ".");
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/check_cert.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	Suite *s = suite_create("cert");
	TCase *tc = tcase_create("cert");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, iam_signature_vs_botocore);
	tcase_add_test(tc, certificate_parsed_back);
	tcase_add_test(tc, key_file);
	tcase_add_test(tc, provider_renews);
	tcase_add_test(tc, provider_awsprofile);
	suite_add_tcase(s, tc);
	int rc = check_run(s);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_cert: could not remove %s\n", tmpdir);
	return rc;
}
