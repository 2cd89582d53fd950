/* privs.c - see privs.h */
#define _GNU_SOURCE
#include "privs.h"

#include <cap-ng.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int privs_drop_user(uid_t uid, gid_t gid)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_AUDIT_WRITE))
		return -EPERM;
	int r = capng_change_id((int)uid, (int)gid, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING);
	return r ? -EPERM : 0;
}

int privs_limit_caps(bool keep_audit)
{
	capng_get_caps_process();
	bool had = capng_have_capability(CAPNG_PERMITTED, CAP_AUDIT_WRITE);
	capng_clear(CAPNG_SELECT_BOTH);
	if (keep_audit && had && capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED, CAP_AUDIT_WRITE))
		return -EPERM;
	/* the bounding set can only shrink with CAP_SETPCAP, which no role has:
	 * with no_new_privs nothing can be regained through exec either */
	if (capng_apply(CAPNG_SELECT_CAPS))
		return -EPERM;
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ? -errno : 0;
}

/* --- Landlock ------------------------------------------------------------ */

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE /* ABI 3; Debian 12's headers stop at 2 */
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

#define READ_FILE LANDLOCK_ACCESS_FS_READ_FILE /* no EXECUTE: no role runs programs */
#define READ_ALL (READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define WRITE_FILE (LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)

struct sandbox {
	int ruleset;
	__u64 handled;       /* every right this kernel's ABI knows */
	const char *deny[4]; /* canonical paths nobody but the keeper may read */
	size_t ndeny;
};

static __u64 handled_rights(int abi)
{
	__u64 all = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
	            LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
	            LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
	            LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
	            LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO |
	            LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
	if (abi >= 2)
		all |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		all |= LANDLOCK_ACCESS_FS_TRUNCATE;
	return all;
}

static int add_rule(struct sandbox *s, int fd, __u64 access, bool dir)
{
	struct landlock_path_beneath_attr pb = { .parent_fd = fd };
	pb.allowed_access = access & s->handled & (dir ? ~0ull : (READ_FILE | WRITE_FILE));
	if (!pb.allowed_access)
		return 0;
	return syscall(SYS_landlock_add_rule, s->ruleset, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) ? -errno : 0;
}

static int add_path(struct sandbox *s, const char *path, __u64 access)
{
	int fd = open(path, O_PATH | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = fstat(fd, &st) ? -errno : add_rule(s, fd, access, S_ISDIR(st.st_mode));
	close(fd);
	return r;
}

/* Whether a denied path is path itself (1) or lies beneath it (2). */
static int denied_at(const struct sandbox *s, const char *path)
{
	size_t n = strlen(path);
	int at = 0;

	for (size_t i = 0; i < s->ndeny; i++) {
		if (!strcmp(s->deny[i], path))
			return 1;
		if ((n == 1 || (!strncmp(s->deny[i], path, n) && s->deny[i][n] == '/')))
			at = 2;
	}
	return at;
}

/* Allows access to the tree at path, except the denied paths: a directory
 * holding one is opened up entry by entry. */
static int allow_tree(struct sandbox *s, const char *path, __u64 access, int depth)
{
	int d = denied_at(s, path);

	if (d == 1)
		return 0;
	if (d == 0 || depth > 16)
		return add_path(s, path, access);
	DIR *dir = opendir(path);
	if (!dir)
		return errno == ENOENT || errno == EACCES ? 0 : -errno;
	int r = add_rule(s, dirfd(dir), LANDLOCK_ACCESS_FS_READ_DIR, true); /* list it, no more */
	for (struct dirent *e; !r && (e = readdir(dir));) {
		char child[4096];
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || e->d_type == DT_LNK)
			continue;
		snprintf(child, sizeof(child), "%s%s%s", path, strcmp(path, "/") ? "/" : "", e->d_name);
		r = allow_tree(s, child, access, depth + 1);
	}
	closedir(dir);
	return r;
}

static void deny(struct sandbox *s, const char *path)
{
	char *real = path ? realpath(path, NULL) : NULL;

	if (real && s->ndeny < ARRAY_SIZE(s->deny))
		s->deny[s->ndeny++] = real;
	else
		free(real);
}

int privs_sandbox(const char *role, const struct cfg *c)
{
	int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	struct sandbox s = { .ruleset = -1 };
	char cred[4096];
	const char *creds = getenv("CREDENTIALS_DIRECTORY");

	if (abi < 1)
		return -EOPNOTSUPP;
	s.handled = handled_rights(abi);
	struct landlock_ruleset_attr attr = { .handled_access_fs = s.handled };
	if ((s.ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, sizeof(attr), 0)) < 0)
		return -errno;
	bool keeper = !strcmp(role, "keeper");
	if (!keeper) {
		deny(&s, c->kek_file);
		deny(&s, c->master_key);
		if (creds && *creds) {
			snprintf(cred, sizeof(cred), "%s", creds);
			deny(&s, cred);
		}
	}
	int r = allow_tree(&s, "/", READ_ALL, 0);
	if (!r && !strcmp(role, "logger"))
		r = add_path(&s, c->log_dir, s.handled);
	if (!r && !strcmp(role, "dsr"))
		r = add_path(&s, c->report_dir, s.handled);
	if (!r && keeper)
		r = add_path(&s, c->kek_file, READ_FILE | WRITE_FILE);
	if (!r && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		r = -errno;
	if (!r && syscall(SYS_landlock_restrict_self, s.ruleset, 0))
		r = -errno;
	close(s.ruleset);
	for (size_t i = 0; i < s.ndeny; i++)
		free((char *)s.deny[i]);
	return r;
}

bool privs_sandbox_supported(void)
{
	return syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) >= 1;
}
