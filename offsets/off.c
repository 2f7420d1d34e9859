/* SPDX-License-Identifier: Apache-2.0 */
/*
 * off: the local checkpoint store (see off.h for the contract).
 *
 * DESIGN
 *
 * In memory, entries live in a dense array (off_at() is an index into it) and a hash
 * table of array indices keyed by (source, dev, ino) finds them in O(1) average:
 * open addressing, linear probing, at most half full, deletion by backward shift so
 * there are no tombstones. off_del() moves the last entry into the hole, which is why
 * the order is stable only between modifications. Each entry owns one allocation
 * holding "source\0path\0"; off_set() with an unchanged path, the common case on every
 * acknowledgement batch, allocates nothing.
 *
 * On disk, off_commit() serializes the whole store into one buffer, writes it to
 * "<path>.tmp", fsyncs, closes, renames over <path> and fsyncs the directory, as redis
 * rdbSave() does. A failed fsync is never retried on the same file descriptor (after
 * an error the kernel may have dropped the dirty pages and a second fsync would lie);
 * the next commit writes a new temp file from scratch instead. Invariants:
 *  - <path> is only ever replaced by rename(2) of a fully written, fsynced file, so it
 *    is always a complete store, old or new;
 *  - the store is clean only after the directory fsync succeeded;
 *  - a failed commit leaves the store dirty, no temp file, and <path> as it was,
 *    except when the directory fsync fails: the rename is done by then, so <path> holds
 *    the new store (complete and fsynced, but its name not known durable);
 *  - the loader accepts exactly what the serializer writes, byte for byte, and
 *    rejects everything else with -EBADMSG (or -ENOTSUP for a newer, intact file).
 *
 * System calls and allocations go through the table in off_sys.h so tests can fail
 * them on purpose.
 *
 * FILE FORMAT, version 1. Integers are little-endian, encoded byte by byte.
 *
 *   size  field
 *   8     magic "RTOFFSET"
 *   4     u32 format version (OFF_VERSION)
 *   4     u32 entry count N
 *         N entries, each:
 *   2       u16 source name length S, S <= OFF_SOURCE_MAX
 *   S       source name, no NUL byte
 *   8       u64 dev
 *   8       u64 ino
 *   8       u64 fp
 *   4       u32 fp_len
 *   4       u32 tail_len, <= OFF_TAIL_MAX
 *   8       u64 tail_hash
 *   8       u64 offset
 *   2       u16 path length P, P <= OFF_PATH_MAX
 *   P       path, no NUL byte
 *   8     u64 XXH3_64bits() of every byte before it
 *
 * A file is valid if and only if: the magic and version match, the N entries parse
 * and end exactly where the checksum begins, no (source, dev, ino) appears twice and
 * the checksum matches. The encoding is canonical (one valid file per store content
 * and order), which the fuzzer checks. An empty store is 24 bytes; an empty file is a
 * torn write and invalid.
 *
 * In every version, the first 12 bytes (magic, version) and the trailing checksum keep
 * their meaning, so an older ringtail tells a newer intact file (-ENOTSUP) from a
 * corrupt one (-EBADMSG) whatever else changed.
 *
 * WHEN CHANGING THE FORMAT, BUMP OFF_VERSION AND: make off_load() dispatch on the
 * version so every older one still loads (an upgrade must not lose checkpoints); update
 * this comment, the OFF_HEAD_LEN/OFF_ENT_FIXED/OFF_ENT_MIN constants,
 * off_store_serialize() and off_load_entry(); update test_format_golden and the layout
 * constants in tests/unit/offsets/test_off.c and add a golden test for the old version;
 * add seeds of the new version to tests/fuzz/corpus/offsets/ (written with
 * off_store_serialize()) and keep the old ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "offsets/off.h"
#include "offsets/off_sys.h"

#define OFF_MAGIC     "RTOFFSET"
#define OFF_MAGIC_LEN 8
#define OFF_VERSION   1u
#define OFF_HEAD_LEN  16u /* magic, version, count */
#define OFF_SUM_LEN   8u
#define OFF_ENT_FIXED 48u /* dev, ino, fp, fp_len, tail_len, tail_hash, offset */
#define OFF_ENT_MIN   (2u + OFF_ENT_FIXED + 2u)
#define OFF_FILE_MAX  (256u << 20)
/* More entries than fit in the largest file could never be committed. */
#define OFF_ENT_MAX   ((OFF_FILE_MAX - OFF_HEAD_LEN - OFF_SUM_LEN) / OFF_ENT_MIN)
#define OFF_SLOTS_MIN 16u
#define OFF_SLOT_FREE UINT32_MAX
#define OFF_FILE_MODE 0600

struct off_ent {
        struct off_rec rec; /* rec.path points into str */
        char *str;          /* "source\0path\0", owned */
        uint64_t hash;      /* off_hash() of the key */
        uint16_t source_len, path_len;
};

struct off_store {
        char *path, *tmp_path, *dir_path;
        struct off_ent *ents;
        size_t n, cap;   /* entries used, allocated */
        uint32_t *slots; /* index into ents or OFF_SLOT_FREE; never more than half used */
        size_t mask;     /* number of slots (a power of two) minus one */
        bool dirty;
};

static int sys_open(const char *path, int flags, mode_t mode)
{
        return open(path, flags, mode);
}

#define OFF_SYS_REAL                                                                               \
        {                                                                                          \
                .open = sys_open, .read = read, .write = write, .fchmod = fchmod, .fsync = fsync,  \
                .close = close, .rename = rename, .unlink = unlink, .realloc = realloc,            \
        }

static const struct off_sys sys_real = OFF_SYS_REAL;
static struct off_sys sys = OFF_SYS_REAL;

void off_sys_set(const struct off_sys *ops)
{
        sys = sys_real;
        if (!ops)
                return;
        if (ops->open)
                sys.open = ops->open;
        if (ops->read)
                sys.read = ops->read;
        if (ops->write)
                sys.write = ops->write;
        if (ops->fchmod)
                sys.fchmod = ops->fchmod;
        if (ops->fsync)
                sys.fsync = ops->fsync;
        if (ops->close)
                sys.close = ops->close;
        if (ops->rename)
                sys.rename = ops->rename;
        if (ops->unlink)
                sys.unlink = ops->unlink;
        if (ops->realloc)
                sys.realloc = ops->realloc;
}

static void *off_alloc(size_t n)
{
        return sys.realloc(NULL, n);
}

__attribute__((format(printf, 4, 5))) static int off_fail(struct off_error *err, int r,
                                                          uint64_t pos, const char *fmt, ...)
{
        va_list ap;

        err->pos = pos;
        va_start(ap, fmt);
        (void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        return r;
}

static uint16_t get16(const uint8_t *p)
{
        return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
        return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t off_hash(const char *source, size_t source_len, uint64_t dev, uint64_t ino)
{
        uint8_t key[16 + OFF_SOURCE_MAX];

        put64(key, dev);
        put64(key + 8, ino);
        memcpy(key + 16, source, source_len);
        return XXH3_64bits(key, 16 + source_len);
}

/* The slot holding the key, or the free slot where it would go. */
static size_t off_slot_find(const struct off_store *s, const char *source, size_t source_len,
                            uint64_t dev, uint64_t ino, uint64_t hash)
{
        size_t i = hash & s->mask;

        for (;;) {
                uint32_t e = s->slots[i];
                const struct off_ent *ent;

                if (e == OFF_SLOT_FREE)
                        return i;
                ent = &s->ents[e];
                if (ent->hash == hash && ent->rec.dev == dev && ent->rec.ino == ino &&
                    ent->source_len == source_len && memcmp(ent->str, source, source_len) == 0)
                        return i;
                i = (i + 1) & s->mask;
        }
}

static int off_table_resize(struct off_store *s, size_t nslots)
{
        uint32_t *slots;

        slots = off_alloc(nslots * sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        memset(slots, 0xff, nslots * sizeof(*slots));
        for (size_t e = 0; e < s->n; e++) {
                size_t i = s->ents[e].hash & (nslots - 1);

                while (slots[i] != OFF_SLOT_FREE)
                        i = (i + 1) & (nslots - 1);
                slots[i] = (uint32_t)e;
        }
        free(s->slots);
        s->slots = slots;
        s->mask = nslots - 1;
        return 0;
}

/* Makes room for want entries; on failure the store is unchanged. */
static int off_reserve(struct off_store *s, size_t want)
{
        size_t nslots = s->mask + 1;

        if (want > OFF_ENT_MAX)
                return -ENOMEM;
        if (want > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : OFF_SLOTS_MIN;
                struct off_ent *ents;

                if (cap < want)
                        cap = want;
                ents = sys.realloc(s->ents, cap * sizeof(*ents));
                if (!ents)
                        return -ENOMEM;
                s->ents = ents;
                s->cap = cap;
        }
        while (want > nslots / 2)
                nslots *= 2;
        if (nslots != s->mask + 1)
                return off_table_resize(s, nslots);
        return 0;
}

static char *off_strs_new(const char *source, size_t source_len, const char *path, size_t path_len)
{
        char *str = off_alloc(source_len + path_len + 2);

        if (!str)
                return NULL;
        memcpy(str, source, source_len);
        str[source_len] = '\0';
        memcpy(str + source_len + 1, path, path_len);
        str[source_len + 1 + path_len] = '\0';
        return str;
}

/* Appends an entry at the free slot found for its key; room was reserved. */
static void off_ent_add(struct off_store *s, size_t slot, uint64_t hash, char *str,
                        size_t source_len, size_t path_len, const struct off_rec *rec)
{
        struct off_ent *ent = &s->ents[s->n];

        ent->rec = *rec;
        ent->rec.path = str + source_len + 1;
        ent->str = str;
        ent->hash = hash;
        ent->source_len = (uint16_t)source_len;
        ent->path_len = (uint16_t)path_len;
        s->slots[slot] = (uint32_t)s->n++;
}

/*
 * Empties slot i by backward shift: each following entry of the probe run moves into
 * the hole unless that would put it before its home slot, so lookups never need
 * tombstones.
 */
static void off_slot_clear(struct off_store *s, size_t i)
{
        size_t j = i;

        for (;;) {
                size_t home;

                j = (j + 1) & s->mask;
                if (s->slots[j] == OFF_SLOT_FREE)
                        break;
                home = s->ents[s->slots[j]].hash & s->mask;
                if (((j - home) & s->mask) >= ((j - i) & s->mask)) {
                        s->slots[i] = s->slots[j];
                        i = j;
                }
        }
        s->slots[i] = OFF_SLOT_FREE;
}

static void off_ent_remove(struct off_store *s, size_t slot)
{
        uint32_t e = s->slots[slot], last = (uint32_t)(s->n - 1);

        free(s->ents[e].str);
        off_slot_clear(s, slot);
        if (e != last) {
                size_t j = s->ents[last].hash & s->mask;

                while (s->slots[j] != last)
                        j = (j + 1) & s->mask;
                s->slots[j] = e;
                s->ents[e] = s->ents[last];
        }
        s->n--;
}

void off_store_free(struct off_store *s)
{
        if (!s)
                return;
        for (size_t e = 0; e < s->n; e++)
                free(s->ents[e].str);
        free(s->ents);
        free(s->slots);
        free(s->path);
        free(s->tmp_path);
        free(s->dir_path);
        free(s);
}

int off_store_new(const char *path, struct off_store **ret_store)
{
        struct off_store *s;
        size_t len, dir_len;
        const char *slash;

        if (!path || !*path || !ret_store)
                return -EINVAL;
        len = strlen(path);
        s = off_alloc(sizeof(*s));
        if (!s)
                return -ENOMEM;
        memset(s, 0, sizeof(*s));
        s->path = off_alloc(len + 1);
        s->tmp_path = off_alloc(len + sizeof(".tmp"));
        /* The directory to fsync after the rename: "a/b" -> "a", "b" -> ".", "/b" -> "/". */
        slash = strrchr(path, '/');
        dir_len = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
        s->dir_path = off_alloc(dir_len ? dir_len + 1 : sizeof("."));
        if (!s->path || !s->tmp_path || !s->dir_path || off_table_resize(s, OFF_SLOTS_MIN) < 0)
                goto fail;
        memcpy(s->path, path, len + 1);
        memcpy(s->tmp_path, path, len);
        memcpy(s->tmp_path + len, ".tmp", sizeof(".tmp"));
        if (dir_len) {
                memcpy(s->dir_path, path, dir_len);
                s->dir_path[dir_len] = '\0';
        } else {
                memcpy(s->dir_path, ".", sizeof("."));
        }
        *ret_store = s;
        return 0;
fail:
        off_store_free(s);
        return -ENOMEM;
}

static bool off_sum_ok(const uint8_t *buf, size_t len, uint64_t *ret_stored, uint64_t *ret_computed)
{
        uint64_t stored = get64(buf + len - OFF_SUM_LEN);
        uint64_t computed = XXH3_64bits(buf, len - OFF_SUM_LEN);

        *ret_stored = stored;
        *ret_computed = computed;
        return stored == computed;
}

/* Parses entry i starting at *pos, entries end at end; advances *pos on success. */
static int off_load_entry(struct off_store *s, const uint8_t *buf, size_t *pos, size_t end,
                          uint32_t i, struct off_error *err)
{
        size_t p = *pos, start = *pos, source_len, path_len, slot;
        const char *source, *path, *nul;
        const char *what;
        struct off_rec rec;
        uint64_t hash;
        char *str;

        what = "source name length";
        if (end - p < 2)
                goto truncated;
        source_len = get16(buf + p);
        if (source_len > OFF_SOURCE_MAX)
                return off_fail(err, -EBADMSG, p,
                                "entry %" PRIu32 ": source name of %zu bytes, longer than %u", i,
                                source_len, OFF_SOURCE_MAX);
        p += 2;
        what = "source name";
        if (end - p < source_len)
                goto truncated;
        source = (const char *)buf + p;
        nul = memchr(source, '\0', source_len);
        if (nul)
                return off_fail(err, -EBADMSG, p + (size_t)(nul - source),
                                "entry %" PRIu32 ": NUL byte in source name", i);
        p += source_len;

        what = "dev, ino, fingerprint and offset";
        if (end - p < OFF_ENT_FIXED)
                goto truncated;
        rec.dev = get64(buf + p);
        rec.ino = get64(buf + p + 8);
        rec.fp = get64(buf + p + 16);
        rec.fp_len = get32(buf + p + 24);
        rec.tail_len = get32(buf + p + 28);
        rec.tail_hash = get64(buf + p + 32);
        rec.offset = get64(buf + p + 40);
        if (rec.tail_len > OFF_TAIL_MAX)
                return off_fail(err, -EBADMSG, p + 28,
                                "entry %" PRIu32 ": tail_len %" PRIu32 " larger than %u", i,
                                rec.tail_len, OFF_TAIL_MAX);
        p += OFF_ENT_FIXED;

        what = "path length";
        if (end - p < 2)
                goto truncated;
        path_len = get16(buf + p);
        if (path_len > OFF_PATH_MAX)
                return off_fail(err, -EBADMSG, p,
                                "entry %" PRIu32 ": path of %zu bytes, longer than %u", i, path_len,
                                OFF_PATH_MAX);
        p += 2;
        what = "path";
        if (end - p < path_len)
                goto truncated;
        path = (const char *)buf + p;
        nul = memchr(path, '\0', path_len);
        if (nul)
                return off_fail(err, -EBADMSG, p + (size_t)(nul - path),
                                "entry %" PRIu32 ": NUL byte in path", i);
        p += path_len;

        hash = off_hash(source, source_len, rec.dev, rec.ino);
        slot = off_slot_find(s, source, source_len, rec.dev, rec.ino, hash);
        if (s->slots[slot] != OFF_SLOT_FREE)
                return off_fail(err, -EBADMSG, start,
                                "entry %" PRIu32 " repeats entry %" PRIu32
                                " (same source, dev %" PRIu64 ", ino %" PRIu64 ")",
                                i, s->slots[slot], rec.dev, rec.ino);
        str = off_strs_new(source, source_len, path, path_len);
        if (!str)
                return off_fail(err, -ENOMEM, start, "out of memory");
        off_ent_add(s, slot, hash, str, source_len, path_len, &rec);
        *pos = p;
        return 0;

truncated:
        return off_fail(err, -EBADMSG, p, "truncated in entry %" PRIu32 " (%s)", i, what);
}

/* Fills the empty store s from the file contents buf[0..len). */
static int off_load(struct off_store *s, const uint8_t *buf, size_t len, unsigned flags,
                    struct off_error *err)
{
        uint64_t stored, computed;
        uint32_t version, count;
        size_t pos, end;
        int r;

        if (len == 0)
                return off_fail(err, -EBADMSG, 0,
                                "empty file: a torn write (an empty store is %u bytes)",
                                OFF_HEAD_LEN + OFF_SUM_LEN);
        for (size_t i = 0; i < len && i < OFF_MAGIC_LEN; i++) {
                if (buf[i] != (uint8_t)OFF_MAGIC[i])
                        return off_fail(err, -EBADMSG, i,
                                        "bad magic: not a ringtail checkpoint file");
        }
        if (len < OFF_HEAD_LEN + OFF_SUM_LEN)
                return off_fail(err, -EBADMSG, len,
                                "truncated: %zu bytes, shorter than header and checksum (%u)", len,
                                OFF_HEAD_LEN + OFF_SUM_LEN);
        end = len - OFF_SUM_LEN;

        version = get32(buf + OFF_MAGIC_LEN);
        if (version == 0)
                return off_fail(err, -EBADMSG, OFF_MAGIC_LEN, "bad format version 0");
        if (version > OFF_VERSION) {
                /* Only an intact file is "newer": a flipped bit in the version is damage. */
                if (!(flags & OFF_PARSE_NO_CHECKSUM) && !off_sum_ok(buf, len, &stored, &computed))
                        goto bad_sum;
                return off_fail(err, -ENOTSUP, OFF_MAGIC_LEN,
                                "format version %" PRIu32 ": written by a newer ringtail "
                                "(this one reads up to version %u)",
                                version, OFF_VERSION);
        }

        count = get32(buf + OFF_MAGIC_LEN + 4);
        if (count > (end - OFF_HEAD_LEN) / OFF_ENT_MIN)
                return off_fail(err, -EBADMSG, OFF_MAGIC_LEN + 4,
                                "entry count %" PRIu32 " cannot fit in %zu bytes "
                                "(truncated or corrupt)",
                                count, len);
        r = off_reserve(s, count);
        if (r < 0)
                return off_fail(err, r, OFF_MAGIC_LEN + 4, "out of memory");

        pos = OFF_HEAD_LEN;
        for (uint32_t i = 0; i < count; i++) {
                r = off_load_entry(s, buf, &pos, end, i, err);
                if (r < 0)
                        return r;
        }
        if (pos != end)
                return off_fail(err, -EBADMSG, pos,
                                "%zu bytes of trailing garbage after the last entry", end - pos);
        if (!(flags & OFF_PARSE_NO_CHECKSUM) && !off_sum_ok(buf, len, &stored, &computed))
                goto bad_sum;
        return 0;

bad_sum:
        return off_fail(err, -EBADMSG, end,
                        "checksum mismatch: stored %016" PRIx64 ", computed %016" PRIx64
                        " (torn write or corruption)",
                        stored, computed);
}

int off_store_parse(const char *path, const void *buf, size_t len, unsigned flags,
                    struct off_store **ret_store, struct off_error *reterr_err)
{
        struct off_store *s = NULL;
        struct off_error err;
        int r;

        r = off_store_new(path, &s);
        if (r < 0) {
                (void)off_fail(&err, r, 0, r == -ENOMEM ? "out of memory" : "bad arguments");
                goto fail;
        }
        if (!buf && len) {
                r = off_fail(&err, -EINVAL, 0, "bad arguments");
                goto out_free;
        }
        r = off_load(s, buf, len, flags, &err);
        if (r < 0)
                goto out_free;
        *ret_store = s;
        return 0;

out_free:
        off_store_free(s);
fail:
        if (reterr_err)
                *reterr_err = err;
        return r;
}

/*
 * Reads the whole file; -ENOENT if it does not exist. off_commit() replaces the file by
 * rename and never writes into it, so the inode read here does not change: one that
 * grows past its fstat() size has another writer and is refused.
 */
static int off_file_read(const char *path, uint8_t **ret_buf, size_t *ret_len,
                         struct off_error *err)
{
        uint8_t *buf = NULL;
        size_t len = 0, cap;
        struct stat st;
        ssize_t n;
        int fd, r;

        /* O_NONBLOCK: a FIFO put there must not hang the open; no effect on files. */
        fd = sys.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK, 0);
        if (fd < 0)
                return off_fail(err, -errno, 0, "cannot open the file");
        if (fstat(fd, &st) < 0) {
                r = off_fail(err, -errno, 0, "cannot stat the file");
                goto out_close;
        }
        if (!S_ISREG(st.st_mode)) {
                r = off_fail(err, -EINVAL, 0, "not a regular file");
                goto out_close;
        }
        if (st.st_size > (off_t)OFF_FILE_MAX) {
                r = off_fail(err, -EBADMSG, OFF_FILE_MAX,
                             "%jd bytes, larger than a checkpoint file can be (%u)",
                             (intmax_t)st.st_size, OFF_FILE_MAX);
                goto out_close;
        }
        /* One byte more than expected, to see the end of file or growth. */
        cap = (size_t)st.st_size + 1;
        buf = off_alloc(cap);
        if (!buf) {
                r = off_fail(err, -ENOMEM, 0, "out of memory");
                goto out_close;
        }
        while (len < cap) {
                n = sys.read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = off_fail(err, -errno, len, "cannot read the file");
                        goto out_free;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        if (len == cap) {
                r = off_fail(err, -EBADMSG, (uint64_t)st.st_size,
                             "the file grew while being read: another process writes it");
                goto out_free;
        }
        /* Read-only descriptor: close() cannot lose data, its result does not matter. */
        (void)sys.close(fd);
        *ret_buf = buf;
        *ret_len = len;
        return 0;

out_free:
        free(buf);
out_close:
        (void)sys.close(fd);
        return r;
}

int off_store_open(const char *path, struct off_store **ret_store, struct off_error *reterr_err)
{
        struct off_store *s = NULL;
        struct off_error err;
        uint8_t *buf = NULL;
        size_t len = 0;
        int r;

        if (!path || !*path || !ret_store) {
                r = off_fail(&err, -EINVAL, 0, "bad arguments");
                goto fail;
        }
        r = off_file_read(path, &buf, &len, &err);
        if (r == -ENOENT) {
                r = off_store_new(path, &s);
                if (r < 0) {
                        (void)off_fail(&err, r, 0, "out of memory");
                        goto fail;
                }
                *ret_store = s;
                return 0;
        }
        if (r < 0)
                goto fail;
        r = off_store_parse(path, buf, len, 0, &s, &err);
        free(buf);
        if (r < 0)
                goto fail;
        *ret_store = s;
        return 0;

fail:
        if (reterr_err)
                *reterr_err = err;
        return r;
}

int off_get(const struct off_store *s, const char *source, uint64_t dev, uint64_t ino,
            struct off_rec *ret_rec)
{
        size_t source_len, slot;

        if (!s || !source)
                return -EINVAL;
        source_len = strnlen(source, OFF_SOURCE_MAX + 1);
        if (source_len > OFF_SOURCE_MAX)
                return -ENOENT;
        slot = off_slot_find(s, source, source_len, dev, ino,
                             off_hash(source, source_len, dev, ino));
        if (s->slots[slot] == OFF_SLOT_FREE)
                return -ENOENT;
        if (ret_rec)
                *ret_rec = s->ents[s->slots[slot]].rec;
        return 0;
}

int off_set(struct off_store *s, const char *source, const struct off_rec *rec)
{
        size_t source_len, path_len, slot;
        struct off_ent *ent;
        const char *path;
        uint64_t hash;
        char *str;
        int r;

        if (!s || !source || !rec)
                return -EINVAL;
        source_len = strnlen(source, OFF_SOURCE_MAX + 1);
        path = rec->path ? rec->path : "";
        path_len = strnlen(path, OFF_PATH_MAX + 1);
        if (source_len > OFF_SOURCE_MAX || path_len > OFF_PATH_MAX || rec->tail_len > OFF_TAIL_MAX)
                return -EINVAL;

        hash = off_hash(source, source_len, rec->dev, rec->ino);
        slot = off_slot_find(s, source, source_len, rec->dev, rec->ino, hash);
        if (s->slots[slot] != OFF_SLOT_FREE) {
                ent = &s->ents[s->slots[slot]];
                /* rec->path may be the borrowed ent->rec.path: compare before freeing. */
                if (ent->path_len != path_len || memcmp(ent->rec.path, path, path_len) != 0) {
                        str = off_strs_new(source, source_len, path, path_len);
                        if (!str)
                                return -ENOMEM;
                        free(ent->str);
                        ent->str = str;
                        ent->path_len = (uint16_t)path_len;
                }
                ent->rec = *rec;
                ent->rec.path = ent->str + source_len + 1;
                s->dirty = true;
                return 0;
        }

        r = off_reserve(s, s->n + 1);
        if (r < 0)
                return r;
        str = off_strs_new(source, source_len, path, path_len);
        if (!str)
                return -ENOMEM;
        /* off_reserve() may have rehashed. */
        slot = off_slot_find(s, source, source_len, rec->dev, rec->ino, hash);
        off_ent_add(s, slot, hash, str, source_len, path_len, rec);
        s->dirty = true;
        return 0;
}

int off_del(struct off_store *s, const char *source, uint64_t dev, uint64_t ino)
{
        size_t source_len, slot;

        if (!s || !source)
                return -EINVAL;
        source_len = strnlen(source, OFF_SOURCE_MAX + 1);
        if (source_len > OFF_SOURCE_MAX)
                return -ENOENT;
        slot = off_slot_find(s, source, source_len, dev, ino,
                             off_hash(source, source_len, dev, ino));
        if (s->slots[slot] == OFF_SLOT_FREE)
                return -ENOENT;
        off_ent_remove(s, slot);
        s->dirty = true;
        return 0;
}

size_t off_count(const struct off_store *s)
{
        return s->n;
}

int off_at(const struct off_store *s, size_t i, const char **ret_source, struct off_rec *ret_rec)
{
        if (i >= s->n)
                return -ENOENT;
        if (ret_source)
                *ret_source = s->ents[i].str;
        if (ret_rec)
                *ret_rec = s->ents[i].rec;
        return 0;
}

bool off_is_dirty(const struct off_store *s)
{
        return s->dirty;
}

const char *off_store_path(const struct off_store *s)
{
        return s->path;
}

int off_store_serialize(const struct off_store *s, uint8_t **ret_buf, size_t *ret_len)
{
        size_t len = OFF_HEAD_LEN + OFF_SUM_LEN, p;
        uint8_t *buf;

        /* Checked on every step, so len cannot overflow even with a 32-bit size_t. */
        for (size_t e = 0; e < s->n; e++) {
                len += OFF_ENT_MIN + s->ents[e].source_len + s->ents[e].path_len;
                if (len > OFF_FILE_MAX)
                        return -EFBIG;
        }
        buf = off_alloc(len);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, OFF_MAGIC, OFF_MAGIC_LEN);
        put32(buf + OFF_MAGIC_LEN, OFF_VERSION);
        put32(buf + OFF_MAGIC_LEN + 4, (uint32_t)s->n);
        p = OFF_HEAD_LEN;
        for (size_t e = 0; e < s->n; e++) {
                const struct off_ent *ent = &s->ents[e];

                put16(buf + p, ent->source_len);
                memcpy(buf + p + 2, ent->str, ent->source_len);
                p += 2 + ent->source_len;
                put64(buf + p, ent->rec.dev);
                put64(buf + p + 8, ent->rec.ino);
                put64(buf + p + 16, ent->rec.fp);
                put32(buf + p + 24, ent->rec.fp_len);
                put32(buf + p + 28, ent->rec.tail_len);
                put64(buf + p + 32, ent->rec.tail_hash);
                put64(buf + p + 40, ent->rec.offset);
                p += OFF_ENT_FIXED;
                put16(buf + p, ent->path_len);
                memcpy(buf + p + 2, ent->rec.path, ent->path_len);
                p += 2 + ent->path_len;
        }
        put64(buf + p, XXH3_64bits(buf, p));
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

static int off_write_all(int fd, const uint8_t *buf, size_t len)
{
        while (len > 0) {
                ssize_t n = sys.write(fd, buf, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                /* Not expected for a regular file; never spin on it. */
                if (n == 0)
                        return -EIO;
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

static int off_dir_sync(const char *dir)
{
        int fd, r = 0;

        fd = sys.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (sys.fsync(fd) < 0)
                r = -errno;
        /* Read-only descriptor: close() cannot lose data, its result does not matter. */
        (void)sys.close(fd);
        return r;
}

int off_commit(struct off_store *s)
{
        uint8_t *buf = NULL;
        size_t len;
        int fd, r;

        if (!s->dirty)
                return 0;
        r = off_store_serialize(s, &buf, &len);
        if (r < 0)
                return r;
        fd = sys.open(s->tmp_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, OFF_FILE_MODE);
        if (fd < 0) {
                r = -errno;
                goto out_free;
        }
        /* open() applies the umask, and keeps the mode of a leftover temp file. */
        if (sys.fchmod(fd, OFF_FILE_MODE) < 0) {
                r = -errno;
                goto out_close;
        }
        r = off_write_all(fd, buf, len);
        if (r < 0)
                goto out_close;
        if (sys.fsync(fd) < 0) {
                r = -errno;
                goto out_close;
        }
        /*
         * On Linux the descriptor is released even when close() fails; the data was
         * fsynced, but an error (NFS reports write-back errors here) still fails the
         * commit. EINTR only means a signal arrived: nothing is lost.
         */
        if (sys.close(fd) < 0 && errno != EINTR) {
                r = -errno;
                goto out_unlink;
        }
        if (sys.rename(s->tmp_path, s->path) < 0) {
                r = -errno;
                goto out_unlink;
        }
        /*
         * Past the rename <path> is the new store, complete and fsynced, but the rename
         * itself is durable only once the directory is. If that fails the store stays
         * dirty and the next commit renames again and retries the directory fsync.
         */
        r = off_dir_sync(s->dir_path);
        if (r < 0)
                goto out_free;
        s->dirty = false;
        free(buf);
        return 0;

out_close:
        (void)sys.close(fd);
out_unlink:
        (void)sys.unlink(s->tmp_path);
out_free:
        free(buf);
        return r;
}
