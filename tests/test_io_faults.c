/* I/O faults while saving models and packed models (doc/robustness.md):
 * a device such as /dev/full, a disk that fills up (a file size limit, and
 * a real 64 KiB tmpfs), a read-only directory, a parent path that is a
 * file, and a process killed with SIGKILL in the middle of a save.  Every
 * failure must return HTNN_EIO, leave the previous file byte-identical and
 * leave no temporary file; a kill must leave the old or the new model,
 * complete and loadable.
 * SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* unshare, mount: the private mount namespaces */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <htnn/htnn.h>

#define SKIPPED 77      /* a child's exit status: the set-up is not possible here */
#define KILLS 20        /* SIGKILLs per format */

/* ---- the two things that are saved ------------------------------------- */

/* A net and its packed form, saved through one interface so every fault is
 * tried on both file formats. */
typedef struct model {
    const char *name;
    htnn_net *net;
    htnn_packed *packed;   /* NULL: save the net */
} model;

static htnn_status model_save(const model *m, const char *path)
{
    return m->packed ? htnn_packed_save(m->packed, path) : htnn_net_save(m->net, path);
}

static htnn_status model_bytes(const model *m, void **data, size_t *size)
{
    return m->packed ? htnn_packed_save_buffer(m->packed, data, size)
                     : htnn_net_save_buffer(m->net, data, size);
}

/* 1 if the file holds a model of m's format that loads. */
static int file_loads(const model *m, const char *path)
{
    htnn_net *net = NULL;
    htnn_packed *p = NULL;
    htnn_status st = m->packed ? htnn_packed_load(path, &p) : htnn_net_load(path, &net);
    htnn_net_free(net);
    htnn_packed_free(p);
    return st == HTNN_OK;
}

/* in-hidden-10, sign hidden units, float weights (packable). */
static void model_make(model *m, size_t in, size_t hidden, uint64_t seed, int packed)
{
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    no.seed = seed;
    m->name = packed ? "packed" : "net";
    m->packed = NULL;
    assert_int_equal(htnn_net_create(in, &no, &m->net), HTNN_OK);
    d.units = hidden;
    assert_int_equal(htnn_net_add_dense(m->net, &d, NULL), HTNN_OK);
    d.units = 10;
    d.activation = HTNN_ACT_IDENTITY;
    assert_int_equal(htnn_net_add_dense(m->net, &d, NULL), HTNN_OK);
    if (packed)
        assert_int_equal(htnn_net_pack(m->net, &m->packed), HTNN_OK);
}

static void model_free(model *m)
{
    htnn_packed_free(m->packed);
    htnn_net_free(m->net);
}

/* ---- files and directories --------------------------------------------- */

typedef struct scratch {
    char dir[64];
    char path[128];   /* dir/model: holds the previous model */
    void *old;        /* its bytes */
    size_t old_size;
} scratch;

static void scratch_dir(scratch *s)
{
    const char *base = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/htnn-io-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->path, sizeof s->path, "%s/model", s->dir);
    s->old = NULL;
}

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t n = fwrite(data, 1, size, f);
    return fclose(f) == 0 && n == size ? 0 : -1;
}

/* Saves `old` at s->path and keeps its bytes; 0 on success. */
static int put_old(scratch *s, const model *old)
{
    if (model_bytes(old, &s->old, &s->old_size) != HTNN_OK)
        return -1;
    return write_file(s->path, s->old, s->old_size);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    while (d != NULL && (e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d != NULL)
        closedir(d);
    return n;
}

/* 1 if path holds exactly size bytes equal to data. */
static int file_equals(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    unsigned char *buf = malloc(size + 1);
    size_t n = buf ? fread(buf, 1, size + 1, f) : 0;
    fclose(f);
    int same = buf != NULL && n == size && memcmp(buf, data, size) == 0;
    free(buf);
    return same;
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char child[600];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(child, sizeof child, "%s/%s", dir, e->d_name);
        unlink(child);
    }
    if (d != NULL)
        closedir(d);
}

static void scratch_free(scratch *s)
{
    empty_dir(s->dir);
    rmdir(s->dir);
    htnn_free(s->old);
}

/* The save failed with HTNN_EIO and changed nothing: the previous file is
 * byte-identical and nothing else is in the directory.  0 if so, else the
 * number of the failed check (children report it as their exit status). */
static int failed_cleanly(const scratch *s, htnn_status st)
{
    if (st != HTNN_EIO)
        return 1;
    if (htnn_last_error()[0] == '\0')
        return 2;
    if (!file_equals(s->path, s->old, s->old_size))
        return 3;
    if (count_entries(s->dir) != 1)
        return 4;
    return 0;
}

/* ---- (1) devices, a file size limit, a parent that is a file ----------- */

/* /dev/full is not a regular file: refused before anything is written, and
 * the device stays (the rename would replace it when run as root). */
static void check_dev_full(const model *m)
{
    struct stat before, after;
    assert_int_equal(stat("/dev/full", &before), 0);
    htnn_clear_error();
    assert_int_equal(model_save(m, "/dev/full"), HTNN_EIO);
    assert_non_null(strstr(htnn_last_error(), "not a regular file"));
    assert_int_equal(stat("/dev/full", &after), 0);
    assert_true(S_ISCHR(after.st_mode));
    assert_true(after.st_rdev == before.st_rdev);
}

/* A disk that fills up mid-write: RLIMIT_FSIZE below the new file's size
 * with SIGXFSZ ignored makes write() fail with EFBIG (works as root). */
static void check_file_limit(const model *old, const model *new_model)
{
    scratch s;
    struct rlimit saved, low;
    scratch_dir(&s);
    assert_int_equal(put_old(&s, old), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    low = saved;
    low.rlim_cur = 4096;
    void (*handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &low), 0);
    htnn_clear_error();
    htnn_status st = model_save(new_model, s.path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, handler);
    assert_int_equal(failed_cleanly(&s, st), 0);
    assert_true(file_loads(old, s.path));
    scratch_free(&s);
}

/* The parent "directory" is a regular file: no temporary file can be
 * created (what a read-only directory does to a non-root user too). */
static void check_parent_is_file(const model *old, const model *new_model)
{
    scratch s;
    char inside[160];
    scratch_dir(&s);
    assert_int_equal(put_old(&s, old), 0);
    snprintf(inside, sizeof inside, "%s/model.htnn", s.path);
    htnn_clear_error();
    assert_int_equal(failed_cleanly(&s, model_save(new_model, inside)), 0);
    scratch_free(&s);
}

/* ---- (2) a read-only directory and a full file system ------------------ */

/* Runs body(arg) in a child process; with `fstype` NULL the child first
 * re-mounts dir read-only, else mounts a file system of that type on it,
 * in a private mount namespace (root only; CI runs as root, where chmod
 * would not stop writes).  Returns the child's exit status: 0 when the body
 * passed, SKIPPED when the namespace could not be set up. */
static int in_private_mount(const char *dir, const char *fstype, const char *data,
                            int (*body)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = unshare(CLONE_NEWNS) == 0 &&
                 mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
        if (ok && fstype == NULL)
            ok = mount(dir, dir, NULL, MS_BIND, NULL) == 0 &&
                 mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) == 0;
        else if (ok)
            ok = mount(fstype, dir, fstype, 0, data) == 0;
        _exit(ok ? body(arg) : SKIPPED);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

typedef struct ns_case {
    const model *old, *new_model;
    scratch s;
    int put_old_inside;  /* write the old file after mounting (tmpfs) */
} ns_case;

static int save_fails_cleanly(void *p)
{
    ns_case *c = p;
    if (c->put_old_inside && put_old(&c->s, c->old) != 0)
        return 10;
    htnn_clear_error();
    int r = failed_cleanly(&c->s, model_save(c->new_model, c->s.path));
    if (r != 0)
        fprintf(stderr, "%s: check %d failed: %s\n", c->new_model->name, r,
                htnn_last_error());
    return r;
}

/* The read-only directory: chmod for a normal user, a read-only bind mount
 * for root. */
static int read_only_save(ns_case *c)
{
    if (geteuid() != 0) {
        assert_int_equal(chmod(c->s.dir, 0555), 0);
        int r = save_fails_cleanly(c);
        assert_int_equal(chmod(c->s.dir, 0755), 0);
        return r;
    }
    return in_private_mount(c->s.dir, NULL, NULL, save_fails_cleanly, c);
}

static void check_read_only_dir(const model *old, const model *new_model)
{
    ns_case c = {old, new_model, {{0}, {0}, NULL, 0}, 0};
    scratch_dir(&c.s);
    assert_int_equal(put_old(&c.s, old), 0);
    int r = read_only_save(&c);
    scratch_free(&c.s);
    if (r == SKIPPED) {
        print_message("read-only directory: skipped, root without a private mount "
                      "namespace (unshare/mount refused)\n");
        skip();
    }
    assert_int_equal(r, 0);
}

/* A real full disk: a 64 KiB tmpfs holding a small old model, and a new one
 * larger than the space left (write or fsync fails with ENOSPC). */
static void check_full_fs(const model *old, const model *new_model)
{
    ns_case c = {old, new_model, {{0}, {0}, NULL, 0}, 1};
    scratch_dir(&c.s);
    int r = in_private_mount(c.s.dir, "tmpfs", "size=64k", save_fails_cleanly, &c);
    scratch_free(&c.s);
    if (r == SKIPPED) {
        print_message("full file system: skipped, no private mount namespace here\n");
        skip();
    }
    assert_int_equal(r, 0);
}

/* ---- (3) SIGKILL in the middle of a save -------------------------------- */

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005u + 1442695040888963407u;
    return *s >> 33;
}

/* The child saves a and b in turn until it is killed. */
static void save_forever(const model *a, const model *b, const char *path)
{
    for (;;) {
        model_save(a, path);
        model_save(b, path);
    }
}

static size_t temp_files(const char *dir)
{
    return count_entries(dir) - 1;
}

/* Waits until the child's temporary file exists (it is writing), at most
 * about a second. */
static void wait_for_temp_file(const char *dir)
{
    struct timespec t = {0, 20000};
    for (int i = 0; i < 50000 && temp_files(dir) == 0; i++)
        nanosleep(&t, NULL);
}

/* Kills a saving child KILLS times, every other time at a random moment
 * and otherwise as soon as its temporary file appears (so that kills land
 * mid-write however the machine is loaded); after each kill the target
 * holds exactly a's or b's bytes and loads.  A kill can leave the child's
 * temporary file (nobody is left to remove it): counted, as proof that
 * kills landed mid-write, then removed. */
static void check_kill_mid_save(const model *a, const model *b)
{
    scratch s;
    void *b_bytes;
    size_t b_size, left_over = 0;
    uint64_t seed = (uint64_t)time(NULL);
    scratch_dir(&s);
    assert_int_equal(put_old(&s, a), 0);
    assert_int_equal(model_bytes(b, &b_bytes, &b_size), HTNN_OK);
    print_message("%s: %d kills, seed %llu\n", a->name, KILLS, (unsigned long long)seed);
    for (int i = 0; i < KILLS; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            save_forever(a, b, s.path);
        struct timespec t = {0, (long)(1 + lcg(&seed) % 40) * 1000000L};
        if (i % 2)
            wait_for_temp_file(s.dir);
        else
            nanosleep(&t, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_true(file_equals(s.path, s.old, s.old_size) ||
                    file_equals(s.path, b_bytes, b_size));
        assert_true(file_loads(a, s.path));
        left_over += temp_files(s.dir) > 0;
        empty_dir(s.dir);
        assert_int_equal(write_file(s.path, s.old, s.old_size), 0);
    }
    print_message("%s: %zu of %d kills left a temporary file behind\n", a->name, left_over,
                  KILLS);
    assert_true(left_over > 0);
    htnn_free(b_bytes);
    scratch_free(&s);
}

/* ---- the tests, each on both formats ----------------------------------- */

/* Small models for the fault checks; big ones (about 1 MB) for the kills,
 * so that a save takes long enough to be interrupted. */
static void for_both_formats(size_t in, size_t hidden,
                             void (*check)(const model *, const model *))
{
    for (int packed = 0; packed <= 1; packed++) {
        model old, new_model;
        model_make(&old, in, hidden, 1, packed);
        model_make(&new_model, in, hidden, 2, packed);
        check(&old, &new_model);
        model_free(&old);
        model_free(&new_model);
    }
}

static void dev_full_both(const model *old, const model *new_model)
{
    (void)old;
    check_dev_full(new_model);
}

static void test_dev_full(void **state)
{
    (void)state;
    for_both_formats(16, 16, dev_full_both);
}

static void test_file_size_limit(void **state)
{
    (void)state;
    for_both_formats(64, 64, check_file_limit);
}

static void test_parent_is_a_file(void **state)
{
    (void)state;
    for_both_formats(16, 16, check_parent_is_file);
}

static void test_read_only_directory(void **state)
{
    (void)state;
    for_both_formats(16, 16, check_read_only_dir);
}

/* old: 16-16-10 (about 1.8 KB); new: 256-128-10 (about 130 KB). */
static void full_fs_both(int packed)
{
    model old, new_model;
    model_make(&old, 16, 16, 1, packed);
    model_make(&new_model, 256, 128, 2, packed);
    check_full_fs(&old, &new_model);
    model_free(&old);
    model_free(&new_model);
}

static void test_full_file_system(void **state)
{
    (void)state;
    full_fs_both(0);
    full_fs_both(1);
}

static void test_kill_during_save(void **state)
{
    (void)state;
    for_both_formats(512, 512, check_kill_mid_save);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_full),
        cmocka_unit_test(test_file_size_limit),
        cmocka_unit_test(test_parent_is_a_file),
        cmocka_unit_test(test_read_only_directory),
        cmocka_unit_test(test_full_file_system),
        cmocka_unit_test(test_kill_during_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
