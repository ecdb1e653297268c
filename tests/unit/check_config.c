/* Command line, -o options, target URIs and targets files: good and bad. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "base/log.h"
#include "backends/target.h"
#include "check_run.h"

static char tmp[64];
static char err[1024];

static void setup(void)
{
	strcpy(tmp, "/tmp/efsmt-check-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	ck_assert_int_eq(system(cmd), 0);
}

/* Parse "efsmt SRC TMP <opts...>". */
static int parse(struct efsmt_config *cfg, const char *src, const char *a1, const char *a2)
{
	char *argv[6] = {"efsmt", (char *)src, tmp, (char *)a1, (char *)a2, NULL};
	int argc = 3 + (a1 != NULL) + (a2 != NULL);
	err[0] = '\0';
	return config_parse(argc, argv, cfg, err, sizeof(err));
}

static void expect_error(const char *src, const char *a1, const char *a2, const char *needle)
{
	struct efsmt_config cfg;
	int rc = parse(&cfg, src, a1, a2);
	ck_assert_msg(rc == -1, "accepted %s %s", a1 ? a1 : "", a2 ? a2 : "");
	ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
	ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: '%s'", err);
	config_free(&cfg);
}

static void write_file(const char *name, const char *text, char *path)
{
	sprintf(path, "%s/%s", tmp, name);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(test_good)
{
	struct efsmt_config cfg;
	ck_assert_int_eq(parse(&cfg, "fs-12345678:/sub/dir", "-o",
			       "target=/srv/a//,target=dir:///srv/b/.,entry_timeout=0.5,"
			       "negative_timeout=0,allow_other,_netdev,nofail,x-systemd.automount,"
			       "dev,suid,log_level=debug"),
			 0);
	ck_assert_str_eq(cfg.fs_id, "fs-12345678");
	ck_assert_str_eq(cfg.subdir, "/sub/dir");
	ck_assert_uint_eq(cfg.ntargets, 2);
	ck_assert_str_eq(cfg.targets[0].uri, "dir:///srv/a");
	ck_assert_str_eq(cfg.targets[1].uri, "dir:///srv/b");
	ck_assert_str_eq(cfg.targets[1].path, "/srv/b");
	ck_assert(cfg.entry_timeout == 0.5);
	ck_assert(cfg.negative_timeout == 0);
	ck_assert(cfg.attr_timeout == CFG_DEFAULT_ATTR_TIMEOUT && cfg.acregmax == CFG_DEFAULT_ATTR_TIMEOUT);
	ck_assert_int_eq(cfg.log_level, LOG_LVL_DEBUG);
	ck_assert_str_eq(cfg.fuse_opts, "allow_other,dev,suid");
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "x", "-otarget=/x,local_lock=posix", "-f"), 0);
	ck_assert_int_eq(cfg.local_lock, 2); /* LOCK_LOCAL_POSIX */
	config_free(&cfg);

	/* nfs(5)'s caching names: later options win, the rest follow attr_timeout */
	ck_assert_int_eq(parse(&cfg, "x", "-otarget=/x,actimeo=7,acregmax=60,attr_timeout=2,"
					  "lookupcache=positive,nocto", "-f"),
			 0);
	ck_assert(cfg.acregmin == 7 && cfg.acregmax == 60 && cfg.acdirmin == 7 && cfg.acdirmax == 7);
	ck_assert(cfg.negative_timeout == 0 && cfg.entry_timeout == CFG_DEFAULT_ENTRY_TIMEOUT);
	ck_assert_int_eq(cfg.nocto, 1);
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, "x", "-otarget=/x,attr_timeout=1,acdirmax=30,lookupcache=none",
			       "-f"),
			 0);
	ck_assert(cfg.acregmin == 1 && cfg.acregmax == 1 && cfg.acdirmin == 1 && cfg.acdirmax == 30);
	ck_assert(cfg.negative_timeout == 0 && cfg.entry_timeout == 0 && cfg.nocto == 0);
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, "x", "-otarget=/x,acregmax=9,noac", "-f"), 0);
	ck_assert(cfg.acregmin == 0 && cfg.acregmax == 0 && cfg.acdirmax == 0);
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "label:with:colons", "-otarget=/x", "-f"), 0);
	ck_assert_ptr_null(cfg.fs_id);
	ck_assert_str_eq(cfg.subdir, "");
	ck_assert_int_eq(cfg.foreground, 1);
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "fs-12345678", "-o",
			       "target=10.0.1.5,target=nfs://10.0.1.6:2049/export/,"
			       "target=nfs://[fd00::1]:2050/x,lanes=4"),
			 0);
	ck_assert_uint_eq(cfg.ntargets, 3);
	ck_assert_str_eq(cfg.targets[0].uri, "nfs://10.0.1.5/");
	ck_assert_str_eq(cfg.targets[1].uri, "nfs://10.0.1.6/export");
	ck_assert_str_eq(cfg.targets[2].uri, "nfs://[fd00::1]:2050/x");
	ck_assert_str_eq(cfg.targets[1].scheme, "nfs");
	ck_assert_int_eq(cfg.lanes, 4);
	ck_assert_int_eq(cfg.local_lock, 0); /* locks go to the targets */
	ck_assert_int_eq(cfg.tls, 1); /* a file system id: TLS unless -o notls */
	ck_assert_int_eq(cfg.tls_default, 1);
	ck_assert_int_eq(cfg.tls_verify, 1);
	ck_assert_int_eq(cfg.iam, 0);
	ck_assert_ptr_null(cfg.access_point);
	ck_assert_ptr_null(cfg.region);
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, "fs-12345678", "-o", "target=10.0.1.5,notls"), 0);
	ck_assert_int_eq(cfg.tls, 0);
	config_free(&cfg);
	/* any other SOURCE: TLS only when asked for */
	ck_assert_int_eq(parse(&cfg, "efs-data", "-o", "target=10.0.1.5"), 0);
	ck_assert_int_eq(cfg.tls, 0);
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, "efs-data", "-o", "target=10.0.1.5,notls,tls"), 0);
	ck_assert_int_eq(cfg.tls, 1);
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "fs-0123456789abcdef0", "-o",
			       "target=10.0.1.5,iam,accesspoint=fsap-0123456789abcdef0,"
			       "region=cn-north-1,awsprofile=team,keyfile=/var/k.pem"),
			 0);
	ck_assert_int_eq(cfg.tls, 1);
	ck_assert_int_eq(cfg.iam, 1);
	ck_assert_str_eq(cfg.access_point, "fsap-0123456789abcdef0");
	ck_assert_str_eq(cfg.region, "cn-north-1");
	ck_assert_str_eq(cfg.awsprofile, "team");
	ck_assert_str_eq(cfg.keyfile, "/var/k.pem");
	config_free(&cfg);

	char name[256];
	ck_assert_int_eq(config_efs_tls_name("fs-12345678", "eu-west-1", name, sizeof name), 0);
	ck_assert_str_eq(name, "fs-12345678.efs.eu-west-1.amazonaws.com");
	ck_assert_int_eq(config_efs_tls_name("fs-12345678", "cn-north-1", name, sizeof name), 0);
	ck_assert_str_eq(name, "fs-12345678.efs.cn-north-1.amazonaws.com.cn");
	ck_assert_int_eq(config_efs_tls_name("fs-12345678", "eu-west-1", name, 20), -1);

	/* kernel://: canonical as nfs://, the path kept, the port when not 2049 */
	ck_assert_int_eq(parse(&cfg, "fs-12345678", "-o",
			       "target=kernel://10.0.1.5,target=KERNEL://10.0.1.6:2049/export/,"
			       "target=kernel://[fd00::1]:2050/x"),
			 0);
	ck_assert_uint_eq(cfg.ntargets, 3);
	ck_assert_str_eq(cfg.targets[0].uri, "kernel://10.0.1.5/");
	ck_assert_str_eq(cfg.targets[1].uri, "kernel://10.0.1.6/export");
	ck_assert_str_eq(cfg.targets[2].uri, "kernel://[fd00::1]:2050/x");
	ck_assert_str_eq(cfg.targets[1].scheme, "kernel");
	ck_assert_str_eq(cfg.targets[1].path, "/export");
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "fs-12345678", "-o",
			       "target=10.0.1.5,tls,cafile=/etc/ca.pem,tls_name=a.b,tls_verify=0"),
			 0);
	ck_assert_int_eq(cfg.tls, 1);
	ck_assert_int_eq(cfg.tls_verify, 0);
	ck_assert_str_eq(cfg.cafile, "/etc/ca.pem");
	ck_assert_str_eq(cfg.tls_name, "a.b");
	config_free(&cfg);
	ck_assert_int_eq(parse(&cfg, "x", "-o", "target=10.0.1.5,tls,notls"), 0);
	ck_assert_int_eq(cfg.tls, 0);
	config_free(&cfg);

	ck_assert_int_eq(parse(&cfg, "x", "--help", NULL), 0);
	ck_assert_int_eq(cfg.show_help, 1);
	config_free(&cfg);
}
END_TEST

START_TEST(test_bad_options)
{
	expect_error("fs-12345678", "-o", "target=/a,bogus=1", "unknown option 'bogus=1'");
	expect_error("fs-12345678", "-o", "target=/a,nonsense", "unknown option 'nonsense'");
	expect_error("fs-12345678", "-x", NULL, "unknown flag '-x'");
	expect_error("fs-12345678", "-o", NULL, "-o needs");
	expect_error("fs-12345678", "-o", "allow_other", "no targets");
	expect_error("fs-12345678", "-o", "target=/a,target=/a/", "given twice");
	expect_error("fs-12345678", "-o", "target=/a,entry_timeout=-1", "entry_timeout=-1");
	expect_error("fs-12345678", "-o", "target=/a,attr_timeout=abc", "attr_timeout=abc");
	expect_error("fs-12345678", "-o", "target=/a,acregmin=x", "acregmin=x");
	expect_error("fs-12345678", "-o", "target=/a,acregmin=10,acregmax=5",
		     "acregmax (5) is below acregmin (10)");
	expect_error("fs-12345678", "-o", "target=/a,lookupcache=some", "lookupcache=some");
	expect_error("fs-12345678", "-o", "target=/a,cto=1", "unknown option 'cto=1'");
	expect_error("fs-12345678", "-o", "target=/a,threads=0", "threads=0");
	expect_error("fs-12345678", "-o", "target=/a,threads=2x", "threads=2x");
	expect_error("fs-12345678", "-o", "target=/a,log_level=loud", "log_level=loud");
	expect_error("fs-12345678:sub", "-o", "target=/a", "must be an absolute path");
	expect_error("fs-12345678:/a/../b", "-o", "target=/a", "without '..'");
}
END_TEST

START_TEST(test_bad_uris)
{
	expect_error("x", "-o", "target=relative/path", "a relative path?");
	expect_error("x", "-o", "target=nfs://", "nor an NFS address");
	expect_error("x", "-o", "target=nfs://10.0.1.5:99999", "nor an NFS address");
	expect_error("x", "-o", "target=nfs://10.0.1.5/a/../b", "'..' is not allowed");
	expect_error("x", "-o", "target=kernel://efs.example.com/", "is not an IP address");
	expect_error("x", "-o", "target=kernel://10.0.1.5/a/../b", "'..' is not allowed");
	expect_error("x", "-o", "target=kernel://10.0.1.5:99999", "not kernel://IP[:PORT][/PATH]");
	expect_error("x", "-o", "target=kernel://10.0.1.5,target=kernel://10.0.1.5:2049/",
		     "given twice");
	expect_error("x", "-o", "target=ftp://10.0.1.5", "unsupported scheme 'ftp'");
	expect_error("x", "-o", "target=10.0.1.5,target=nfs://10.0.1.5:2049/", "given twice");
	expect_error("x", "-o", "target=/a,lanes=17", "lanes=17");
	expect_error("x", "-o", "target=/a,local_lock=some",
		     "local_lock=some: expected none, flock, posix or all");
	expect_error("x", "-o", "target=/a,tls_verify=2", "tls_verify=2");
	expect_error("fs-12345678", "-o", "target=/a,accesspoint=fsap-xyz",
		     "accesspoint=fsap-xyz: expected fsap- and 17 lowercase hex digits");
	expect_error("fs-12345678", "-o", "target=/a,accesspoint=fsap-0123456789ABCDEF0",
		     "accesspoint=fsap-0123456789ABCDEF0: expected");
	expect_error("fs-12345678", "-o", "target=/a,accesspoint=fsap-0123456789abcdef01",
		     "expected fsap-");
	expect_error("fs-12345678", "-o", "target=/a,accesspoint=fsap-0123456789abcdef0,notls",
		     "-o accesspoint= needs TLS");
	expect_error("fs-12345678", "-o", "target=/a,iam,notls", "-o iam needs TLS");
	expect_error("label", "-o", "target=/a,iam,tls", "-o iam needs SOURCE to be the file system id");
	expect_error("label", "-o", "target=/a,accesspoint=fsap-0123456789abcdef0",
		     "needs SOURCE to be the file system id");
	expect_error("fs-12345678", "-o", "target=/a,region=US_EAST", "region=US_EAST: expected");
	expect_error("fs-12345678", "-o", "target=/a,region=", "region=: expected");
	expect_error("fs-12345678", "-o", "target=/a,keyfile=k.pem", "an absolute path");
	expect_error("fs-12345678", "-o", "target=/a,awsprofile=", "a profile name");
	expect_error("fs-12345678", "-o", "target=/a,iam=1", "unknown option 'iam=1'");
	expect_error("x", "-o", "target=/a,cafile=ca.pem", "absolute path");
	expect_error("x", "-o", "target=/a,tls_name=", "a host name");
	expect_error("x", "-o", "target=dir://host/x", "no host part");
	expect_error("x", "-o", "target=/a/../b", "'..' is not allowed");
	expect_error("x", "-o", "target=", "empty target");
}
END_TEST

START_TEST(test_mountpoint)
{
	struct efsmt_config cfg;
	char *argv[] = {"efsmt", "src", "/nonexistent/efsmt-mnt", "-o", "target=/a", NULL};
	ck_assert_int_eq(config_parse(5, argv, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "create the directory first"));
	config_free(&cfg);
	char *argv2[] = {"efsmt", "src", NULL};
	ck_assert_int_eq(config_parse(2, argv2, &cfg, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "usage"));
	config_free(&cfg);
}
END_TEST

START_TEST(test_targets_file)
{
	struct efsmt_config cfg;
	char path[256], opt[300];

	write_file("list.json", "[\"/srv/a\", {\"id\": \"fsmt-1\", \"uri\": \"dir:///srv/b\"}]",
		   path);
	snprintf(opt, sizeof(opt), "targets_file=%s,target=/srv/c", path);
	ck_assert_int_eq(parse(&cfg, "x", "-o", opt), 0);
	ck_assert_uint_eq(cfg.ntargets, 3);
	ck_assert_str_eq(cfg.targets[0].uri, "dir:///srv/c");
	ck_assert_str_eq(cfg.targets[2].id, "fsmt-1");
	config_free(&cfg);

	write_file("obj.json", "{\"generation\": 7, \"targets\": [\"/srv/a\"]}", path);
	snprintf(opt, sizeof(opt), "targets_file=%s", path);
	ck_assert_int_eq(parse(&cfg, "x", "-o", opt), 0);
	ck_assert_uint_eq(cfg.generation, 7);
	config_free(&cfg);

	static const struct {
		const char *text, *needle;
	} bad[] = {
		{"[\"/srv/a\",", "line 1"},
		{"{\"targets\": 3}", "expected a JSON list"},
		{"[42]", "must be a URI string or an object"},
		{"[{\"uri\": \"/a\", \"az\": \"x\"}]", "unexpected field \"az\""},
		{"[{\"id\": \"x\"}]", "\"uri\" is missing"},
		{"[{\"uri\": 5}]", "unexpected field \"uri\""},
		{"[{\"uri\": \"/a\", \"id\": \"has space\"}]", "id must be"},
		{"{\"generation\": \"x\", \"targets\": []}", "\"generation\" must be"},
		{"[]", "no targets"},
		{"[\"/a\", {\"uri\": \"/b\", \"id\": \"dir:///a\"}]", "used twice"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file("bad.json", bad[i].text, path);
		snprintf(opt, sizeof(opt), "targets_file=%s", path);
		expect_error("x", "-o", opt, bad[i].needle);
	}
	snprintf(opt, sizeof(opt), "targets_file=%s/missing.json", tmp);
	expect_error("x", "-o", opt, "missing.json");
}
END_TEST

START_TEST(test_target_open)
{
	struct target_spec spec;
	char file[256];
	struct target *t;

	/* A directory attaches; a missing one and a file do not. */
	ck_assert_int_eq(target_parse_uri(tmp, &spec, err, sizeof(err)), 0);
	t = target_open(&spec, "", err, sizeof(err));
	ck_assert_ptr_nonnull(t);
	ck_assert_str_eq(t->id, spec.uri);
	target_put(t);
	t = target_open(&spec, "/nope", err, sizeof(err));
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));
	target_spec_free(&spec);

	write_file("plain", "x", file);
	ck_assert_int_eq(target_parse_uri(file, &spec, err, sizeof(err)), 0);
	t = target_open(&spec, "", err, sizeof(err));
	ck_assert_ptr_null(t);
	ck_assert_ptr_nonnull(strstr(err, "is not a directory"));
	target_spec_free(&spec);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("parse");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good);
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_bad_uris);
	tcase_add_test(tc, test_mountpoint);
	tcase_add_test(tc, test_targets_file);
	tcase_add_test(tc, test_target_open);
	suite_add_tcase(s, tc);
	return check_run(s);
}
