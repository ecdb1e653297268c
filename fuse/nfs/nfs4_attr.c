/* nfs4_attr.c - fattr4 decoding into struct nfs_attr, settable attributes
 * encoding, and the NFS4ERR_* to errno table. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "nfs4.h"
#include "xdr.h"

#define NFS_BITMAP_MAX_WORDS 8 /* longer bitmaps are refused */
#define NFS_OWNER_MAX 1024
#define NFS_NOBODY_ID 65534
#define NFS_BLOCK_UNIT 512 /* st_blocks counts these */

static mode_t ftype_to_mode(uint32_t t)
{
	switch (t) {
	case NF4REG: return S_IFREG;
	case NF4DIR: return S_IFDIR;
	case NF4BLK: return S_IFBLK;
	case NF4CHR: return S_IFCHR;
	case NF4LNK: return S_IFLNK;
	case NF4SOCK: return S_IFSOCK;
	case NF4FIFO: return S_IFIFO;
	case NF4ATTRDIR: return S_IFDIR;
	case NF4NAMEDATTR: return S_IFREG;
	default: return 0;
	}
}

/* "1000" -> 1000; "name@domain" -> the local id of name; else nobody. */
static uint32_t owner_to_id(const char *s, int group)
{
	char *end;
	if (s[0] >= '0' && s[0] <= '9') {
		unsigned long v = strtoul(s, &end, 10);
		if (*end == '\0' && v <= UINT32_MAX)
			return (uint32_t)v;
	}
	char name[NFS_OWNER_MAX + 1];
	snprintf(name, sizeof name, "%s", s);
	char *at = strchr(name, '@');
	if (at)
		*at = '\0';
	char buf[4096];
	if (group) {
		struct group g, *r = NULL;
		if (getgrnam_r(name, &g, buf, sizeof buf, &r) == 0 && r)
			return (uint32_t)r->gr_gid;
	} else {
		struct passwd p, *r = NULL;
		if (getpwnam_r(name, &p, buf, sizeof buf, &r) == 0 && r)
			return (uint32_t)r->pw_uid;
	}
	return NFS_NOBODY_ID;
}

static void get_time(struct xdr_dec *d, struct timespec *ts)
{
	int64_t sec = (int64_t)xdr_get_u64(d);
	uint32_t nsec = xdr_get_u32(d);
	if (nsec >= 1000000000u)
		d->err = -EBADMSG;
	ts->tv_sec = (time_t)sec;
	ts->tv_nsec = (long)nsec;
}

/* A bitmap4 into words[]; returns the word count or -EBADMSG. */
static int get_bitmap(struct xdr_dec *d, uint32_t *words, int max)
{
	uint32_t n = xdr_get_u32(d);
	if (d->err || n > NFS_BITMAP_MAX_WORDS) {
		d->err = -EBADMSG;
		return -EBADMSG;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t w = xdr_get_u32(d);
		if ((int)i < max)
			words[i] = w;
		else if (w) /* a bit we cannot know the size of */
			d->err = -EBADMSG;
	}
	for (int i = (int)n; i < max; i++)
		words[i] = 0;
	return d->err ? -EBADMSG : (int)n;
}

/* One attribute value; -EBADMSG for an attribute we cannot size. */
static int decode_one(struct xdr_dec *d, unsigned bit, struct nfs_attr *a)
{
	char s[NFS_OWNER_MAX + 1];
	size_t n;
	uint32_t bm[3];
	switch (bit) {
	case FATTR4_SUPPORTED_ATTRS:
	case FATTR4_SUPPATTR_EXCLCREAT:
		get_bitmap(d, bm, 3);
		break;
	case FATTR4_TYPE:
		a->st.st_mode = (a->st.st_mode & 07777) | ftype_to_mode(xdr_get_u32(d));
		a->have |= NFS_A_TYPE;
		break;
	case 2:	 /* fh_expire_type */
	case 13: /* aclsupport */
	case 28: /* maxlink */
		(void)xdr_get_u32(d);
		break;
	case FATTR4_CHANGE:
		a->change = xdr_get_u64(d);
		a->have |= NFS_A_CHANGE;
		break;
	case FATTR4_SIZE:
		a->st.st_size = (off_t)xdr_get_u64(d);
		a->have |= NFS_A_SIZE;
		break;
	case 5: case 6: case 7: case 9: /* link/symlink support, named_attr, unique_handles */
	case 15: case 16: case 17: case 18: case 26: case 34: /* booleans */
		(void)xdr_get_bool(d);
		break;
	case FATTR4_FSID:
		(void)xdr_get_u64(d);
		(void)xdr_get_u64(d);
		break;
	case FATTR4_LEASE_TIME:
		a->lease_time = xdr_get_u32(d);
		a->have |= NFS_A_LEASE;
		break;
	case FATTR4_RDATTR_ERROR:
		a->rdattr_error = xdr_get_u32(d);
		a->have |= NFS_A_RDATTR_ERROR;
		break;
	case 19: /* filehandle */
		(void)xdr_get_opaque(d, &n, NFS4_FHSIZE);
		break;
	case FATTR4_FILEID:
		a->st.st_ino = (ino_t)xdr_get_u64(d);
		a->have |= NFS_A_FILEID;
		break;
	case FATTR4_FILES_AVAIL:
		a->files_avail = xdr_get_u64(d);
		a->have |= NFS_A_FSSTAT;
		break;
	case FATTR4_FILES_FREE:
		a->files_free = xdr_get_u64(d);
		break;
	case FATTR4_FILES_TOTAL:
		a->files_total = xdr_get_u64(d);
		break;
	case FATTR4_MAXFILESIZE:
	case 38: case 39: case 40: /* quota */
	case FATTR4_MOUNTED_ON_FILEID:
		(void)xdr_get_u64(d);
		break;
	case FATTR4_MAXNAME:
		a->maxname = xdr_get_u32(d);
		a->have |= NFS_A_MAXNAME;
		break;
	case FATTR4_MAXREAD:
		a->maxread = xdr_get_u64(d);
		a->have |= NFS_A_MAXIO;
		break;
	case FATTR4_MAXWRITE:
		a->maxwrite = xdr_get_u64(d);
		a->have |= NFS_A_MAXIO;
		break;
	case FATTR4_MODE:
		a->st.st_mode = (a->st.st_mode & S_IFMT) | (xdr_get_u32(d) & 07777);
		a->have |= NFS_A_MODE;
		break;
	case FATTR4_NUMLINKS:
		a->st.st_nlink = xdr_get_u32(d);
		a->have |= NFS_A_NLINK;
		break;
	case FATTR4_OWNER:
	case FATTR4_OWNER_GROUP:
		if (xdr_get_string(d, s, sizeof s, NFS_OWNER_MAX) == 0) {
			if (bit == FATTR4_OWNER) {
				a->st.st_uid = owner_to_id(s, 0);
				a->have |= NFS_A_UID;
			} else {
				a->st.st_gid = owner_to_id(s, 1);
				a->have |= NFS_A_GID;
			}
		}
		break;
	case FATTR4_RAWDEV: {
		uint32_t major = xdr_get_u32(d), minor = xdr_get_u32(d);
		a->st.st_rdev = makedev(major, minor);
		a->have |= NFS_A_RDEV;
		break;
	}
	case FATTR4_SPACE_AVAIL:
		a->space_avail = xdr_get_u64(d);
		a->have |= NFS_A_FSSTAT;
		break;
	case FATTR4_SPACE_FREE:
		a->space_free = xdr_get_u64(d);
		break;
	case FATTR4_SPACE_TOTAL:
		a->space_total = xdr_get_u64(d);
		break;
	case FATTR4_SPACE_USED:
		a->st.st_blocks = (blkcnt_t)(xdr_get_u64(d) / NFS_BLOCK_UNIT);
		a->have |= NFS_A_SPACE;
		break;
	case FATTR4_TIME_ACCESS:
		get_time(d, &a->st.st_atim);
		a->have |= NFS_A_ATIME;
		break;
	case FATTR4_TIME_METADATA:
		get_time(d, &a->st.st_ctim);
		a->have |= NFS_A_CTIME;
		break;
	case FATTR4_TIME_MODIFY:
		get_time(d, &a->st.st_mtim);
		a->have |= NFS_A_MTIME;
		break;
	case 49: case 50: case 51: { /* time_backup, time_create, time_delta */
		struct timespec ts;
		get_time(d, &ts);
		break;
	}
	default:
		d->err = -EBADMSG;
	}
	return d->err;
}

int nfs4_decode_fattr(struct xdr_dec *d, struct nfs_attr *attr)
{
	uint32_t bm[3];
	size_t n;
	memset(attr, 0, sizeof *attr);
	attr->st.st_blksize = NFS_IO_MAX;
	if (get_bitmap(d, bm, 3) < 0)
		return -EBADMSG;
	const uint8_t *vals = xdr_get_opaque(d, &n, d->len);
	if (!vals)
		return -EBADMSG;
	struct xdr_dec v;
	xdr_dec_init(&v, vals, n);
	for (unsigned bit = 0; bit < 96; bit++) {
		if (!(bm[bit / 32] & (1u << (bit % 32))))
			continue;
		if (decode_one(&v, bit, attr))
			return -EBADMSG;
	}
	return 0;
}

static void put_time(struct xdr_enc *x, const struct timespec *ts)
{
	xdr_put_u32(x, SET_TO_CLIENT_TIME4);
	xdr_put_u64(x, (uint64_t)(int64_t)ts->tv_sec);
	xdr_put_u32(x, (uint32_t)ts->tv_nsec);
}

void nfs4_encode_sattr(struct xdr_enc *x, const struct nfs_sattr *sa)
{
	uint32_t w0 = 0, w1 = 0;
	unsigned v = sa ? sa->valid : 0;
	if (v & NFS_SA_SIZE)
		w0 |= 1u << FATTR4_SIZE;
	if (v & NFS_SA_MODE)
		w1 |= 1u << (FATTR4_MODE - 32);
	if (v & NFS_SA_UID)
		w1 |= 1u << (FATTR4_OWNER - 32);
	if (v & NFS_SA_GID)
		w1 |= 1u << (FATTR4_OWNER_GROUP - 32);
	if (v & (NFS_SA_ATIME | NFS_SA_ATIME_NOW))
		w1 |= 1u << (FATTR4_TIME_ACCESS_SET - 32);
	if (v & (NFS_SA_MTIME | NFS_SA_MTIME_NOW))
		w1 |= 1u << (FATTR4_TIME_MODIFY_SET - 32);
	if (w1) {
		xdr_put_u32(x, 2);
		xdr_put_u32(x, w0);
		xdr_put_u32(x, w1);
	} else if (w0) {
		xdr_put_u32(x, 1);
		xdr_put_u32(x, w0);
	} else {
		xdr_put_u32(x, 0);
	}
	size_t lenpos = xdr_put_u32_slot(x);
	size_t start = x->len;
	char num[16];
	if (v & NFS_SA_SIZE)
		xdr_put_u64(x, sa->size);
	if (v & NFS_SA_MODE)
		xdr_put_u32(x, sa->mode & 07777);
	if (v & NFS_SA_UID) {
		snprintf(num, sizeof num, "%u", sa->uid);
		xdr_put_string(x, num);
	}
	if (v & NFS_SA_GID) {
		snprintf(num, sizeof num, "%u", sa->gid);
		xdr_put_string(x, num);
	}
	if (v & NFS_SA_ATIME_NOW)
		xdr_put_u32(x, SET_TO_SERVER_TIME4);
	else if (v & NFS_SA_ATIME)
		put_time(x, &sa->atime);
	if (v & NFS_SA_MTIME_NOW)
		xdr_put_u32(x, SET_TO_SERVER_TIME4);
	else if (v & NFS_SA_MTIME)
		put_time(x, &sa->mtime);
	xdr_patch_u32(x, lenpos, (uint32_t)(x->len - start));
}

struct errmap {
	uint32_t status;
	int err;
};

/* RFC 8881 section 15.1; the errno a local file system would give. */
static const struct errmap errmap[] = {
	{ 1, EPERM },	     /* PERM */
	{ 2, ENOENT },	     /* NOENT */
	{ 5, EIO },	     /* IO */
	{ 6, ENXIO },	     /* NXIO */
	{ 13, EACCES },	     /* ACCESS */
	{ 17, EEXIST },	     /* EXIST */
	{ 18, EXDEV },	     /* XDEV */
	{ 20, ENOTDIR },     /* NOTDIR */
	{ 21, EISDIR },	     /* ISDIR */
	{ 22, EINVAL },	     /* INVAL */
	{ 27, EFBIG },	     /* FBIG */
	{ 28, ENOSPC },	     /* NOSPC */
	{ 30, EROFS },	     /* ROFS */
	{ 31, EMLINK },	     /* MLINK */
	{ 63, ENAMETOOLONG }, /* NAMETOOLONG */
	{ 66, ENOTEMPTY },   /* NOTEMPTY */
	{ 69, EDQUOT },	     /* DQUOT */
	{ 70, ESTALE },	     /* STALE */
	{ 10001, ESTALE },   /* BADHANDLE */
	{ 10003, EINVAL },   /* BAD_COOKIE */
	{ 10004, EOPNOTSUPP }, /* NOTSUPP */
	{ 10005, EINVAL },   /* TOOSMALL */
	{ 10006, EREMOTEIO }, /* SERVERFAULT */
	{ 10007, EINVAL },   /* BADTYPE */
	{ 10008, EAGAIN },   /* DELAY (after the retries) */
	{ 10009, EINVAL },   /* SAME */
	{ 10010, EAGAIN },   /* DENIED (lock held by another) */
	{ 10011, EBADF },    /* EXPIRED: the open state is gone (backend re-opens) */
	{ 10012, EAGAIN },   /* LOCKED */
	{ 10013, EAGAIN },   /* GRACE (after the retries) */
	{ 10014, ESTALE },   /* FHEXPIRED */
	{ 10015, EACCES },   /* SHARE_DENIED */
	{ 10016, EPERM },    /* WRONGSEC */
	{ 10017, EBUSY },    /* CLID_INUSE */
	{ 10018, EREMOTEIO }, /* RESOURCE */
	{ 10019, EREMOTE },  /* MOVED */
	{ 10020, EBADF },    /* NOFILEHANDLE */
	{ 10021, EPROTONOSUPPORT }, /* MINOR_VERS_MISMATCH */
	{ 10022, EIO },	     /* STALE_CLIENTID */
	{ 10023, EBADF },    /* STALE_STATEID: a server restart (backend re-opens) */
	{ 10024, EIO },	     /* OLD_STATEID */
	{ 10025, EBADF },    /* BAD_STATEID */
	{ 10026, EIO },	     /* BAD_SEQID */
	{ 10027, EINVAL },   /* NOT_SAME */
	{ 10028, EINVAL },   /* LOCK_RANGE */
	{ 10029, ELOOP },    /* SYMLINK */
	{ 10030, EIO },	     /* RESTOREFH */
	{ 10032, EOPNOTSUPP }, /* ATTRNOTSUPP */
	{ 10036, EIO },	     /* BADXDR */
	{ 10037, EBUSY },    /* LOCKS_HELD */
	{ 10038, EBADF },    /* OPENMODE */
	{ 10039, EINVAL },   /* BADOWNER */
	{ 10040, EINVAL },   /* BADCHAR */
	{ 10041, EINVAL },   /* BADNAME */
	{ 10042, EINVAL },   /* BAD_RANGE */
	{ 10043, ENOLCK },   /* LOCK_NOTSUPP */
	{ 10044, EOPNOTSUPP }, /* NFS4_OP_ILLEGAL */
	{ 10045, EDEADLK },  /* DEADLOCK */
	{ 10046, EBUSY },    /* FILE_OPEN */
	{ 10047, EBADF },    /* ADMIN_REVOKED */
	{ 10052, EIO },	     /* BADSESSION (after the retries) */
	{ 10065, EINVAL },   /* REQ_TOO_BIG */
	{ 10066, EINVAL },   /* REP_TOO_BIG */
	{ 10070, EINVAL },   /* TOO_MANY_OPS */
	{ 10083, EINVAL },   /* WRONG_TYPE */
};

int nfs4_errno(uint32_t status)
{
	if (status == NFS4_OK)
		return 0;
	for (size_t i = 0; i < sizeof errmap / sizeof errmap[0]; i++)
		if (errmap[i].status == status)
			return -errmap[i].err;
	return -EIO;
}
