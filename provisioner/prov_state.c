#include "prov_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_proto.h"

void prov_state_init(struct prov_state *s)
{
	memset(s, 0, sizeof(*s));
	s->targets = json_array();
	s->blocked = json_array();
}

void prov_state_free(struct prov_state *s)
{
	json_decref(s->targets);
	json_decref(s->blocked);
	json_decref(s->mount_targets);
	memset(s, 0, sizeof(*s));
}

int prov_targets_valid(json_t *list)
{
	size_t i;
	json_t *t;
	if (!json_is_array(list) || json_array_size(list) > CTL_MAX_TARGETS)
		return 0;
	json_array_foreach(list, i, t)
	{
		if (!json_is_object(t) || json_object_size(t) != 2 ||
		    !json_is_string(json_object_get(t, "id")) ||
		    !json_is_string(json_object_get(t, "uri")))
			return 0;
	}
	return 1;
}

static int get_u64(json_t *o, const char *k, uint64_t *out)
{
	json_t *v = json_object_get(o, k);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

int prov_state_load(const char *path, struct prov_state *s, char *err, size_t errlen)
{
	json_error_t je;
	uint64_t last = 0, retry = 0, failures = 0;
	prov_state_free(s);
	prov_state_init(s);
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		snprintf(err, errlen, "state file %s: line %d: %s", path, je.line, je.text);
		return -1;
	}
	json_t *targets = json_object_get(root, "targets");
	json_t *blocked = json_object_get(root, "blocked_subnets");
	if (!json_is_object(root) || get_u64(root, "generation", &s->generation) ||
	    !prov_targets_valid(targets) || get_u64(root, "last_change", &last) ||
	    get_u64(root, "retry_after", &retry) || get_u64(root, "failures", &failures) ||
	    get_u64(root, "ssm_generation", &s->ssm_generation) ||
	    (blocked && !json_is_array(blocked))) {
		snprintf(err, errlen,
			 "state file %s: not a provisioner state file (move it away to start over)",
			 path);
		json_decref(root);
		return -1;
	}
	json_decref(s->targets);
	s->targets = json_incref(targets);
	if (blocked) {
		json_decref(s->blocked);
		s->blocked = json_incref(blocked);
	}
	s->last_change = (time_t)last;
	s->retry_after = (time_t)retry;
	s->failures = (long)failures;
	s->mount_targets = json_incref(json_object_get(root, "mount_targets"));
	json_decref(root);
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int rc = -1;
	if (copy) {
		int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			rc = fsync(fd);
			close(fd);
		}
	}
	free(copy);
	return rc;
}

static int mkdir_parent(const char *path)
{
	char *copy = strdup(path);
	int rc = 0;
	if (!copy)
		return -1;
	char *dir = dirname(copy);
	if (access(dir, F_OK) != 0)
		rc = mkdir(dir, 0755) == 0 || errno == EEXIST ? 0 : -1;
	free(copy);
	return rc;
}

int prov_state_save(const char *path, const struct prov_state *s, const char *fs_id, char *err,
		    size_t errlen)
{
	char tmp[4200];
	json_t *o = json_pack("{s:I, s:O, s:s?, s:I, s:I, s:I, s:O, s:I}", "generation",
			      (json_int_t)s->generation, "targets", s->targets, "file_system", fs_id,
			      "last_change", (json_int_t)s->last_change, "retry_after",
			      (json_int_t)s->retry_after, "failures", (json_int_t)s->failures,
			      "blocked_subnets", s->blocked, "ssm_generation",
			      (json_int_t)s->ssm_generation);
	if (o && s->mount_targets)
		json_object_set(o, "mount_targets", s->mount_targets);
	char *text = o ? json_dumps(o, JSON_INDENT(1)) : NULL;
	json_decref(o);
	if (!text) {
		snprintf(err, errlen, "state file %s: out of memory", path);
		return -1;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if (mkdir_parent(path) < 0) {
		snprintf(err, errlen, "state file %s: cannot create its directory: %s", path,
			 strerror(errno));
		free(text);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = fd < 0 ? -1 : 0;
	if (rc == 0)
		rc = write_all(fd, text, strlen(text)) || write_all(fd, "\n", 1) || fsync(fd) ? -1 : 0;
	int e = errno;
	if (fd >= 0 && close(fd) < 0 && rc == 0) {
		rc = -1;
		e = errno;
	}
	if (rc == 0 && rename(tmp, path) < 0) {
		rc = -1;
		e = errno;
	}
	free(text);
	if (rc < 0) {
		unlink(tmp);
		snprintf(err, errlen, "state file %s: %s", path, strerror(e));
		return -1;
	}
	sync_dir(path);
	return 0;
}
