/* Model files (doc/file-format.md): serialising a net to bytes and back,
 * and the atomic file writer.  Written only against the public net/layer
 * API, so it never depends on how a net is laid out in memory.
 * SPDX-License-Identifier: MIT */
/* realpath() is X/Open, not plain POSIX.1-2008. */
#define _XOPEN_SOURCE 700

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "bytes.h"
#include "error.h"
#include "htnn/net.h"
#include "model_io_internal.h"
#include "model_records.h"

_Static_assert(sizeof(float) == sizeof(uint32_t), "float must be IEEE-754 binary32");

#define MAGIC "HTNNMODL"
#define MAGIC_BYTES 8
#define FORMAT_VERSION 2u      /* the newest; see format_version_of */
#define HEADER_BYTES 44        /* magic .. layer count */
#define RECORD_HEAD_BYTES 12   /* kind u32 + length u64 (layers and sections) */
#define DENSE_FIELD_BYTES 36   /* activation .. out_width */
#define CRC_BYTES 4
#define SECTION_END 0u
#define SECTION_REQUIRED 0x80000000u
/* Required section: one u32 htnn_binary_weights per layer (file-format.md);
 * written only when some layer has binary weights. */
#define SECTION_BINARY_WEIGHTS 0x80000001u
#define SECTION_INPUT_SHAPE 0x00000003u /* optional: the declared input map */
#define INPUT_SHAPE_BYTES 24u
#define MAX_QRELU_BITS 8
#define TEMP_SUFFIX ".tmp.XXXXXX"
#define NEW_FILE_MODE 0644

/* Largest model read or written: 4 GiB (less where size_t is 32 bits). */
#if SIZE_MAX > 0xffffffffu
#define MODEL_MAX_BYTES ((size_t)1 << 32)
#else
#define MODEL_MAX_BYTES (SIZE_MAX / 2)
#endif

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), one entry per byte. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xffu] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ------------------------------------------------------------------------
 * Sizes shared by the writer and the reader (overflow-safe, in uint64_t).
 */

/* Bytes of a dense record's weights (out x in floats) and bias (out floats
 * when has_bias); 0 if they do not fit in a model file. */
static int dense_data_bytes(uint64_t in, uint64_t out, int has_bias,
                            uint64_t *weight_bytes, uint64_t *bias_bytes)
{
    const uint64_t limit = MODEL_MAX_BYTES;
    if (in > limit || out > limit / sizeof(float))
        return 0;
    if (in != 0 && out > limit / sizeof(float) / in)
        return 0;
    *weight_bytes = in * out * sizeof(float);
    *bias_bytes = has_bias ? out * sizeof(float) : 0;
    return 1;
}

/* *acc += v unless the sum would pass MODEL_MAX_BYTES. */
static int add_bytes(uint64_t *acc, uint64_t v)
{
    if (v > MODEL_MAX_BYTES || *acc > MODEL_MAX_BYTES - v)
        return 0;
    *acc += v;
    return 1;
}

static int fits_size_t(uint64_t v)
{
#if SIZE_MAX < UINT64_MAX
    return v <= SIZE_MAX;
#else
    (void)v;
    return 1;
#endif
}

/* ------------------------------------------------------------------------
 * Writer: little-endian fields into a buffer sized exactly beforehand.
 */

typedef byte_writer writer;

/* The public API has no const accessor for layers; saving only reads. */
static htnn_layer *layer_at(const htnn_net *net, size_t index)
{
    return htnn_net_layer((htnn_net *)net, index);
}

static htnn_status layer_info_at(const htnn_net *net, size_t index,
                                 htnn_layer_info *info)
{
    const htnn_layer *layer = layer_at(net, index);
    if (layer == NULL)
        return error_set(HTNN_EINVAL, "save: layer %zu is missing", index);
    info->struct_size = sizeof *info;
    htnn_status st = htnn_layer_get_info(layer, info);
    if (st != HTNN_OK)
        return st;
    return HTNN_OK;
}

/* 1 if some layer has binary weights (the net then needs the
 * SECTION_BINARY_WEIGHTS section). */
static int has_binary_layers(const htnn_net *net)
{
    size_t n = htnn_net_layer_count(net);
    for (size_t i = 0; i < n; i++) {
        htnn_layer_info info;
        if (layer_info_at(net, i, &info) == HTNN_OK && info.binary_weights != 0)
            return 1;
    }
    return 0;
}

/* Total bytes of the serialised net, checked against MODEL_MAX_BYTES. */
/* 1 and the shape when the net's input was declared as a feature map. */
static int declared_shape(const htnn_net *net, size_t shape[3])
{
    if (htnn_net_get_input_shape(net, &shape[0], &shape[1], &shape[2]) != HTNN_OK)
        return 0;
    return shape[1] != 1 || shape[2] != 1;
}

static htnn_status model_bytes(const htnn_net *net, size_t *total)
{
    uint64_t sum = HEADER_BYTES + RECORD_HEAD_BYTES + CRC_BYTES; /* + END */
    size_t n = htnn_net_layer_count(net), shape[3];
    if (declared_shape(net, shape))
        sum += RECORD_HEAD_BYTES + INPUT_SHAPE_BYTES;
    if (has_binary_layers(net) &&
        !add_bytes(&sum, RECORD_HEAD_BYTES + 4 * (uint64_t)n))
        return error_set(HTNN_ELIMIT, "save: too many layers");
    for (size_t i = 0; i < n; i++) {
        htnn_layer_info info;
        uint64_t wb, bb;
        htnn_status st = layer_info_at(net, i, &info);
        if (st != HTNN_OK)
            return st;
        if (info.kind != HTNN_LAYER_DENSE) {
            if (!add_bytes(&sum, record_bytes(layer_at(net, i))))
                return error_set(HTNN_ELIMIT, "save: the model is larger than the "
                                 "%zu-byte limit of the file format", (size_t)MODEL_MAX_BYTES);
            continue;
        }
        if (!dense_data_bytes(info.in_width, info.out_width, info.bias != 0, &wb, &bb) ||
            !add_bytes(&sum, RECORD_HEAD_BYTES + DENSE_FIELD_BYTES) ||
            !add_bytes(&sum, wb) || !add_bytes(&sum, bb))
            return error_set(HTNN_ELIMIT, "save: the model is larger than the %zu-byte "
                             "limit of the file format", (size_t)MODEL_MAX_BYTES);
    }
    *total = (size_t)sum;
    return HTNN_OK;
}

/* Version 1 for nets of dense layers only, so that their files stay
 * readable by libhtnn 0.1; version 2 when a later layer kind needs it. */
static uint32_t format_version_of(const htnn_net *net)
{
    for (size_t i = 0; i < htnn_net_layer_count(net); i++)
        if (record_bytes(layer_at(net, i)))
            return FORMAT_VERSION;
    return 1u;
}

static void write_header(writer *w, const htnn_net_options *o, size_t input_width,
                         size_t layers, uint32_t version)
{
    memcpy(w->p + w->pos, MAGIC, MAGIC_BYTES);
    w->pos += MAGIC_BYTES;
    put_u32(w, version);
    put_u32(w, (uint32_t)o->output);
    put_u64(w, o->seed);
    put_u32(w, (uint32_t)o->targets_after_update);
    put_u64(w, input_width);
    put_u64(w, layers);
}

/* Appends `count` floats read by `get` from the layer. */
static htnn_status write_params(writer *w, const htnn_layer *layer, size_t count,
                                htnn_status (*get)(const htnn_layer *, float *, size_t))
{
    float *tmp = mem_malloc((count ? count : 1) * sizeof *tmp);
    if (tmp == NULL)
        return error_set(HTNN_ENOMEM, "save: out of memory for %zu floats", count);
    htnn_status st = get(layer, tmp, count);
    if (st == HTNN_OK)
        put_floats(w, tmp, count);
    mem_free(tmp);
    return st;
}

static htnn_status write_dense(writer *w, const htnn_net *net, size_t index)
{
    htnn_layer_info info;
    uint64_t wb = 0, bb = 0;
    htnn_status st = layer_info_at(net, index, &info);
    if (st != HTNN_OK)
        return st;
    if (!dense_data_bytes(info.in_width, info.out_width, info.bias != 0, &wb, &bb))
        return error_set(HTNN_ESTATE, "save: the net changed while it was saved");
    put_u32(w, HTNN_LAYER_DENSE);
    put_u64(w, DENSE_FIELD_BYTES + wb + bb);
    put_u32(w, (uint32_t)info.activation);
    put_u32(w, (uint32_t)info.qrelu_bits);
    put_u32(w, (uint32_t)info.loss);
    put_u32(w, (uint32_t)info.weight_targets);
    put_u32(w, info.bias ? 1u : 0u);
    put_u64(w, info.in_width);
    put_u64(w, info.out_width);
    const htnn_layer *layer = layer_at(net, index);
    st = write_params(w, layer, info.weight_count, htnn_layer_get_weights);
    if (st == HTNN_OK && info.bias)
        st = write_params(w, layer, info.out_width, htnn_layer_get_bias);
    return st;
}

static htnn_status write_model(const htnn_net *net, unsigned char *buf, size_t size)
{
    htnn_net_options o;
    o.struct_size = sizeof o;
    htnn_status st = htnn_net_get_options(net, &o);
    if (st != HTNN_OK)
        return st;
    writer w = {buf, 0};
    size_t n = htnn_net_layer_count(net);
    write_header(&w, &o, htnn_net_input_width(net), n, format_version_of(net));
    for (size_t i = 0; i < n && st == HTNN_OK; i++) {
        const htnn_layer *layer = layer_at(net, i);
        if (record_bytes(layer))
            record_write(&w, layer);
        else
            st = write_dense(&w, net, i);
    }
    if (st != HTNN_OK)
        return st;
    if (has_binary_layers(net)) {
        put_u32(&w, SECTION_BINARY_WEIGHTS);
        put_u64(&w, 4 * (uint64_t)n);
        for (size_t i = 0; i < n && st == HTNN_OK; i++) {
            htnn_layer_info info;
            st = layer_info_at(net, i, &info);
            put_u32(&w, (uint32_t)info.binary_weights);
        }
        if (st != HTNN_OK)
            return st;
    }
    size_t shape[3];
    if (declared_shape(net, shape)) {
        put_u32(&w, SECTION_INPUT_SHAPE);
        put_u64(&w, INPUT_SHAPE_BYTES);
        for (int k = 0; k < 3; k++)
            put_u64(&w, shape[k]);
    }
    put_u32(&w, SECTION_END);
    put_u64(&w, 0);
    put_u32(&w, crc32_ieee(buf, w.pos));
    if (w.pos != size) /* only if the net changed while it was being saved */
        return error_set(HTNN_ESTATE, "save: wrote %zu bytes, expected %zu (was the "
                         "net changed by another thread?)", w.pos, size);
    return HTNN_OK;
}

htnn_status htnn_net_save_buffer(const htnn_net *net, void **data, size_t *size)
{
    if (net == NULL || data == NULL || size == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_save_buffer: net, data or size is NULL");
    size_t total = 0;
    htnn_status st = model_bytes(net, &total);
    if (st != HTNN_OK)
        return st;
    unsigned char *buf = mem_malloc(total);
    if (buf == NULL)
        return error_set(HTNN_ENOMEM, "save: out of memory for %zu bytes", total);
    st = write_model(net, buf, total);
    if (st != HTNN_OK) {
        mem_free(buf);
        return st;
    }
    *data = buf;
    *size = total;
    return HTNN_OK;
}

void htnn_free(void *ptr) { mem_free(ptr); }

/* ------------------------------------------------------------------------
 * Atomic file writer: temporary file in the same directory, fsync, rename.
 */

static htnn_status io_error(const char *path, const char *what, const char *other,
                            int err)
{
    return error_set(HTNN_EIO, "%s: %s%s: %s", path, what, other, strerror(err));
}

/* Gives the temporary file the mode of the file it replaces, or 0644; the
 * mode is cosmetic, so failing to set it is not an error. */
static void set_temp_mode(int fd, const char *path)
{
    struct stat sb;
    mode_t mode = NEW_FILE_MODE;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
        mode = sb.st_mode & 07777;
    (void)fchmod(fd, mode);
}

/* Writes, flushes, syncs and closes the temporary file (fd is consumed). */
static htnn_status write_temp(int fd, const char *tmp, const char *path,
                              const void *data, size_t size)
{
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        int err = errno;
        close(fd);
        return io_error(path, "cannot open temporary file ", tmp, err);
    }
    int ok = fwrite(data, 1, size, f) == size && fflush(f) == 0 && fsync(fd) == 0;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    return ok ? HTNN_OK : io_error(path, "cannot write temporary file ", tmp, err);
}

/* Best effort: makes the rename itself durable.  The new file is already in
 * place, so a failure here is not reported.  `dir` has strlen(path) + 1
 * bytes, allocated with the temporary name so that nothing here can fail
 * for want of memory. */
static void sync_parent(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static htnn_status save_atomically(const char *path, const void *data, size_t size)
{
    size_t len = strlen(path);
    /* the temporary name, then room for the parent directory's name */
    char *tmp = mem_malloc(len + sizeof TEMP_SUFFIX + len + 1);
    if (tmp == NULL)
        return error_set(HTNN_ENOMEM, "%s: out of memory for a file name", path);
    memcpy(tmp, path, len);
    memcpy(tmp + len, TEMP_SUFFIX, sizeof TEMP_SUFFIX);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        htnn_status st = io_error(path, "cannot create temporary file ", tmp, errno);
        mem_free(tmp);
        return st;
    }
    set_temp_mode(fd, path);
    htnn_status st = write_temp(fd, tmp, path, data, size);
    if (st == HTNN_OK && rename(tmp, path) != 0)
        st = io_error(path, "cannot rename ", tmp, errno);
    if (st != HTNN_OK)
        unlink(tmp);
    else
        sync_parent(path, tmp + len + sizeof TEMP_SUFFIX);
    mem_free(tmp);
    return st;
}

/* The file a save replaces: `path` itself, or the file a symbolic link
 * points to (so the link survives).  *target is mem_malloc'd.  Anything but a
 * regular file (a device, a FIFO, a directory) is refused: the rename would
 * replace it, and as root that could be /dev/null. */
static htnn_status save_target(const char *path, char **target)
{
    struct stat sb;
    *target = NULL;
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? HTNN_OK : io_error(path, "cannot inspect", "", errno);
    if (S_ISLNK(sb.st_mode)) {
        /* realpath into our own buffer: its malloc'd form bypasses mem_malloc */
        if ((*target = mem_malloc(PATH_MAX)) == NULL)
            return error_set(HTNN_ENOMEM, "%s: out of memory for the link's target", path);
        if (realpath(path, *target) == NULL) {
            int err = errno;
            mem_free(*target);
            *target = NULL;
            return io_error(path, "cannot resolve the link", "", err);
        }
        if (stat(*target, &sb) != 0)
            sb.st_mode = S_IFREG; /* a dangling link: its target will be created */
    }
    if (!S_ISREG(sb.st_mode)) {
        mem_free(*target);
        *target = NULL;
        return error_set(HTNN_EIO, "%s: not a regular file; refusing to replace it", path);
    }
    return HTNN_OK;
}

htnn_status htnn_net_save(const htnn_net *net, const char *path)
{
    if (net == NULL || path == NULL || path[0] == '\0')
        return error_set(HTNN_EINVAL, "htnn_net_save: net or path is NULL or empty");
    void *data = NULL;
    size_t size = 0;
    htnn_status st = htnn_net_save_buffer(net, &data, &size);
    if (st == HTNN_OK)
        st = model_write_file(path, data, size);
    mem_free(data);
    return st;
}

/* ------------------------------------------------------------------------
 * Reader: a bounds-checked cursor over the whole file in memory.
 */

typedef byte_cursor cursor;

static int cur_skip(cursor *c, uint64_t n)
{
    if (n > cursor_left(c))
        return 0;
    c->pos += (size_t)n;
    return 1;
}

typedef struct model_header {
    uint32_t version, output, targets_after_update;
    uint64_t seed, input_width, layer_count;
    size_t binary_at;  /* offset of the binary-weights section payload, 0 if none */
} model_header;

/* One layer record; the dense fields are read only for kind DENSE. */
typedef struct layer_record {
    uint32_t kind;
    uint64_t length;
    uint32_t activation, qrelu_bits, loss, weight_targets, bias;
    uint64_t in_width, out_width;
    size_t weights_at, bias_at; /* offsets of the float arrays */
} layer_record;

static htnn_status truncated(const char *name, const char *where)
{
    return error_set(HTNN_EFORMAT, "%s: truncated in %s", name, where);
}

static htnn_status truncated_layer(const char *name, size_t index, const char *where)
{
    return error_set(HTNN_EFORMAT, "%s: truncated in layer %zu %s", name, index, where);
}

static htnn_status read_magic_version(cursor *c, const char *name, uint32_t *out_version)
{
    uint32_t version;
    if (cursor_left(c) >= MAGIC_BYTES && memcmp(c->p, MAGIC, MAGIC_BYTES) != 0)
        return error_set(HTNN_EFORMAT, "%s: not a libhtnn model file (bad magic)", name);
    if (!cur_skip(c, MAGIC_BYTES) || !cursor_u32(c, &version))
        return truncated(name, "header");
    if (version < 1 || version > FORMAT_VERSION)
        return error_set(HTNN_EVERSION, "%s: model format version %" PRIu32 " is not "
                         "supported (this libhtnn reads versions 1 to %u)", name, version,
                         FORMAT_VERSION);
    *out_version = version;
    return HTNN_OK;
}

static htnn_status read_header(cursor *c, const char *name, model_header *h)
{
    htnn_status st = read_magic_version(c, name, &h->version);
    if (st != HTNN_OK)
        return st;
    if (!cursor_u32(c, &h->output) || !cursor_u64(c, &h->seed) ||
        !cursor_u32(c, &h->targets_after_update) || !cursor_u64(c, &h->input_width) ||
        !cursor_u64(c, &h->layer_count))
        return truncated(name, "header");
    /* Every layer record takes at least RECORD_HEAD_BYTES: this bounds the
     * count by the file size before anything trusts it. */
    if (h->layer_count > cursor_left(c) / RECORD_HEAD_BYTES)
        return error_set(HTNN_EFORMAT, "%s: layer count %" PRIu64 " does not fit in "
                         "the %zu bytes that follow the header", name, h->layer_count,
                         cursor_left(c));
    return HTNN_OK;
}

static htnn_status read_dense(cursor *c, const char *name, size_t index,
                              layer_record *r)
{
    size_t start = c->pos;
    uint64_t wb, bb;
    if (!cursor_u32(c, &r->activation) || !cursor_u32(c, &r->qrelu_bits) ||
        !cursor_u32(c, &r->loss) || !cursor_u32(c, &r->weight_targets) ||
        !cursor_u32(c, &r->bias) || !cursor_u64(c, &r->in_width) || !cursor_u64(c, &r->out_width))
        return truncated_layer(name, index, "header");
    if (!dense_data_bytes(r->in_width, r->out_width, r->bias != 0, &wb, &bb))
        return error_set(HTNN_EFORMAT, "%s: layer %zu: %" PRIu64 " x %" PRIu64
                         " weights are too many", name, index, r->out_width, r->in_width);
    r->weights_at = c->pos;
    if (!cur_skip(c, wb))
        return truncated_layer(name, index, "weights");
    r->bias_at = c->pos;
    if (!cur_skip(c, bb))
        return truncated_layer(name, index, "bias");
    if (c->pos - start != r->length)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: record length %" PRIu64
                         " does not match its %zu bytes of contents", name, index,
                         r->length, c->pos - start);
    return HTNN_OK;
}

/* Reads the bounds of one layer record; values are checked later. */
static htnn_status read_layer(cursor *c, const char *name, size_t index,
                              layer_record *r)
{
    if (!cursor_u32(c, &r->kind) || !cursor_u64(c, &r->length))
        return truncated_layer(name, index, "header");
    if (r->kind == HTNN_LAYER_DENSE)
        return read_dense(c, name, index, r);
    if (!cur_skip(c, r->length))
        return error_set(HTNN_EFORMAT, "%s: truncated in layer %zu (kind %" PRIu32
                         ", %" PRIu64 " bytes, %zu left)", name, index, r->kind,
                         r->length, cursor_left(c));
    return HTNN_OK;
}

/* Walks the sections up to END; *required gets the first section tag this
 * reader must understand but does not (0 if none).  The binary-weights
 * section is located (h->binary_at) and its length checked. */
static htnn_status read_sections(cursor *c, const char *name, model_header *h,
                                 uint32_t *required)
{
    *required = 0;
    h->binary_at = 0;
    for (size_t i = 0;; i++) {
        uint32_t tag;
        uint64_t length;
        if (!cursor_u32(c, &tag) || !cursor_u64(c, &length))
            return truncated(name, "the sections (no END section)");
        if (tag == SECTION_END)
            return length == 0 ? HTNN_OK
                               : error_set(HTNN_EFORMAT, "%s: END section has length %"
                                           PRIu64 ", not 0", name, length);
        if (tag == SECTION_BINARY_WEIGHTS) {
            if (h->binary_at != 0)
                return error_set(HTNN_EFORMAT, "%s: two binary-weights sections", name);
            if (length != 4 * h->layer_count)
                return error_set(HTNN_EFORMAT, "%s: binary-weights section has %" PRIu64
                                 " bytes, not 4 per layer (%" PRIu64 ")", name, length,
                                 4 * h->layer_count);
            if (!cur_skip(c, length))
                return truncated(name, "the binary-weights section");
            h->binary_at = c->pos - (size_t)length;
            continue;
        }
        if (!cur_skip(c, length))
            return error_set(HTNN_EFORMAT, "%s: truncated in section %zu (tag 0x%08" PRIx32
                             ", %" PRIu64 " bytes, %zu left)", name, i, tag, length,
                             cursor_left(c));
        if ((tag & SECTION_REQUIRED) && *required == 0)
            *required = tag;
    }
}

static htnn_status read_checksum(cursor *c, const char *name)
{
    uint32_t stored;
    if (cursor_left(c) > CRC_BYTES)
        return error_set(HTNN_EFORMAT, "%s: %zu unexpected bytes after the END section",
                         name, cursor_left(c) - CRC_BYTES);
    size_t covered = c->pos;
    if (!cursor_u32(c, &stored))
        return truncated(name, "checksum");
    uint32_t computed = crc32_ieee(c->p, covered);
    if (stored != computed)
        return error_set(HTNN_EFORMAT, "%s: checksum mismatch (stored 0x%08" PRIx32
                         ", computed 0x%08" PRIx32 "): the file is corrupt", name,
                         stored, computed);
    return HTNN_OK;
}

/* First pass: every length and count against the bytes present, then the
 * checksum.  Nothing is allocated and no value is interpreted yet. */
static htnn_status check_structure(const unsigned char *data, size_t size,
                                   const char *name, model_header *h)
{
    cursor c = {data, size, 0};
    layer_record r;
    uint32_t required;
    htnn_status st = read_header(&c, name, h);
    for (uint64_t i = 0; st == HTNN_OK && i < h->layer_count; i++)
        st = read_layer(&c, name, (size_t)i, &r);
    if (st == HTNN_OK)
        st = read_sections(&c, name, h, &required);
    if (st == HTNN_OK)
        st = read_checksum(&c, name);
    if (st == HTNN_OK && required != 0)
        return error_set(HTNN_EVERSION, "%s: the file needs section 0x%08" PRIx32
                         ", which this libhtnn does not know", name, required);
    return st;
}

/* ------------------------------------------------------------------------
 * Second pass: values, then the net through the public API.
 */

static htnn_status check_header(const model_header *h, const char *name)
{
    if (h->output != HTNN_OUTPUT_SOFTMAX && h->output != HTNN_OUTPUT_HARD_THRESHOLD)
        return error_set(HTNN_EFORMAT, "%s: unknown output kind %" PRIu32, name, h->output);
    if (h->targets_after_update > 1)
        return error_set(HTNN_EFORMAT, "%s: targets_after_update %" PRIu32
                         " is not 0 or 1", name, h->targets_after_update);
    if (h->input_width == 0 || !fits_size_t(h->input_width))
        return error_set(HTNN_EFORMAT, "%s: input width %" PRIu64 " is out of range",
                         name, h->input_width);
    return HTNN_OK;
}

static int enum_ok(uint32_t v, uint32_t last) { return v <= last; }

static htnn_status check_dense(const layer_record *r, const char *name, size_t index,
                               uint64_t width)
{
    if (!enum_ok(r->activation, HTNN_ACT_RELU))
        return error_set(HTNN_EFORMAT, "%s: layer %zu: unknown activation %" PRIu32,
                         name, index, r->activation);
    if (r->activation == HTNN_ACT_QRELU &&
        (r->qrelu_bits < 1 || r->qrelu_bits > MAX_QRELU_BITS))
        return error_set(HTNN_EFORMAT, "%s: layer %zu: qrelu bits %" PRIu32
                         " not in 1..%d", name, index, r->qrelu_bits, MAX_QRELU_BITS);
    if (!enum_ok(r->loss, HTNN_LOSS_LINEAR))
        return error_set(HTNN_EFORMAT, "%s: layer %zu: unknown loss %" PRIu32, name,
                         index, r->loss);
    if (r->weight_targets > 1 || r->bias > 1)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: weight_targets %" PRIu32
                         " or bias %" PRIu32 " is not 0 or 1", name, index,
                         r->weight_targets, r->bias);
    if (r->in_width != width)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: input width %" PRIu64
                         " does not match the previous width %" PRIu64, name, index,
                         r->in_width, width);
    if (r->out_width == 0)
        return error_set(HTNN_EFORMAT, "%s: layer %zu has no units", name, index);
    return HTNN_OK;
}



htnn_status model_library_refused(htnn_status st, const char *name, const char *what)
{
    char detail[256];
    snprintf(detail, sizeof detail, "%s", htnn_last_error());
    if (st == HTNN_ENOMEM || st == HTNN_ELIMIT)
        return error_set(st, "%s: %s: %s", name, what, detail);
    return error_set(HTNN_EFORMAT, "%s: %s rejected by the library: %s", name, what,
                     detail);
}

static htnn_status set_params(htnn_layer *layer, const unsigned char *src, size_t n,
                              float *tmp, const char *name, size_t index,
                              const char *what,
                              htnn_status (*set)(htnn_layer *, const float *, size_t))
{
    size_t bad = decode_floats(src, n, tmp);
    if (bad != n)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: %s %zu is NaN or infinite", name,
                         index, what, bad);
    htnn_status st = set(layer, tmp, n);
    return st == HTNN_OK ? HTNN_OK : model_library_refused(st, name, what);
}

static htnn_status add_dense(htnn_net *net, const unsigned char *data,
                             const layer_record *r, const char *name, size_t index,
                             uint32_t binary)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    htnn_layer *layer;
    if (binary > HTNN_BINARY_SIGN)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: unknown binary-weights mode %"
                         PRIu32, name, index, binary);
    d.binary_weights = (int)binary;
    d.units = (size_t)r->out_width;
    d.activation = (int)r->activation;
    d.qrelu_bits = (int)(int32_t)r->qrelu_bits; /* two's complement i32 */
    d.loss = (int)r->loss;
    d.weight_targets = (int)r->weight_targets;
    d.bias = (int)r->bias;
    htnn_status st = htnn_net_add_dense(net, &d, &layer);
    if (st != HTNN_OK)
        return model_library_refused(st, name, "layer");
    size_t nw = (size_t)(r->in_width * r->out_width), nb = (size_t)r->out_width;
    float *tmp = mem_malloc((nw > nb ? nw : nb) * sizeof *tmp);
    if (tmp == NULL)
        return error_set(HTNN_ENOMEM, "%s: layer %zu: out of memory for %zu floats", name,
                         index, nw);
    st = set_params(layer, data + r->weights_at, nw, tmp, name, index, "weight",
                    htnn_layer_set_weights);
    if (st == HTNN_OK && r->bias)
        st = set_params(layer, data + r->bias_at, nb, tmp, name, index, "bias",
                        htnn_layer_set_bias);
    mem_free(tmp);
    return st;
}

/* Checks and appends layer record i, which ends at `end`.  Version 1
 * files hold dense layers only. */
static htnn_status add_layer(htnn_net *net, const unsigned char *data, const layer_record *r,
                             size_t end, const char *name, size_t i, const model_header *h,
                             uint64_t width)
{
    uint32_t binary = h->binary_at ? load_u32(data + h->binary_at + 4 * i) : 0;
    htnn_status st;
    if (r->kind == HTNN_LAYER_DENSE) {
        st = check_dense(r, name, i, width);
        return st == HTNN_OK ? add_dense(net, data, r, name, i, binary) : st;
    }
    if (h->version < 2 && r->kind <= HTNN_LAYER_BATCHNORM)
        return error_set(HTNN_EFORMAT, "%s: layer %zu: layer kind %" PRIu32 " in a version "
                         "%" PRIu32 " file", name, i, r->kind, h->version);
    return record_add(net, r->kind, data + end - (size_t)r->length, r->length, name, i,
                      binary);
}

static htnn_status create_net(const model_header *h, const char *name, htnn_net **net)
{
    htnn_net_options o = HTNN_NET_OPTIONS_INIT;
    o.seed = h->seed;
    o.output = (int)h->output;
    o.threads = 0;
    o.targets_after_update = (int)h->targets_after_update;
    htnn_status st = htnn_net_create((size_t)h->input_width, &o, net);
    return st == HTNN_OK ? HTNN_OK : model_library_refused(st, name, "header");
}

/* The optional input-shape section (writers since 0.2 store a declared
 * shape; without it the input is width x 1 x 1, or whatever the first
 * conv, pool or batch-norm record says). */
static htnn_status restore_input_shape(htnn_net *net, const unsigned char *data, size_t size,
                                       const char *name)
{
    size_t at, length;
    if (!model_find_section(data, size, SECTION_INPUT_SHAPE, &at, &length))
        return HTNN_OK;
    cursor c = {data, at + length, at};
    uint64_t v[3];
    if (length != INPUT_SHAPE_BYTES || !cursor_u64(&c, &v[0]) || !cursor_u64(&c, &v[1]) ||
        !cursor_u64(&c, &v[2]) || !fits_size_t(v[0]) || !fits_size_t(v[1]) ||
        !fits_size_t(v[2]))
        return error_set(HTNN_EFORMAT, "%s: malformed input-shape section", name);
    htnn_status st = htnn_net_set_input_shape(net, (size_t)v[0], (size_t)v[1], (size_t)v[2]);
    return st == HTNN_OK ? HTNN_OK : model_library_refused(st, name, "input shape");
}

/* Second pass over a buffer check_structure accepted. */
static htnn_status build_net(const unsigned char *data, size_t size, const char *name,
                             const model_header *h, htnn_net **out)
{
    htnn_net *net = NULL;
    htnn_status st = check_header(h, name);
    if (st == HTNN_OK)
        st = create_net(h, name, &net);
    if (st == HTNN_OK)
        st = restore_input_shape(net, data, size, name);
    cursor c = {data, size, HEADER_BYTES};
    uint64_t width = h->input_width;
    for (size_t i = 0; st == HTNN_OK && i < (size_t)h->layer_count; i++) {
        layer_record r;
        st = read_layer(&c, name, i, &r);
        if (st == HTNN_OK)
            st = add_layer(net, data, &r, c.pos, name, i, h, width);
        width = htnn_net_output_width(net);
    }
    /* Adding layers drew initial weights: restart the RNG from the seed so a
     * loaded net does not depend on how it was rebuilt. */
    if (st == HTNN_OK)
        st = htnn_net_seed(net, h->seed);
    if (st != HTNN_OK) {
        htnn_net_free(net);
        return st;
    }
    *out = net;
    return HTNN_OK;
}

static htnn_status load_named(const unsigned char *data, size_t size, const char *name,
                              htnn_net **out)
{
    model_header h = {0, 0, 0, 0, 0, 0, 0};
    htnn_status st = check_structure(data, size, name, &h);
    return st == HTNN_OK ? build_net(data, size, name, &h, out) : st;
}

htnn_status htnn_net_load_buffer(const void *data, size_t size, htnn_net **out)
{
    if (data == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_load_buffer: data or out is NULL");
    return load_named(data, size, "model buffer", out);
}

/* ------------------------------------------------------------------------
 * Reading a whole file, never more than MODEL_MAX_BYTES.
 */

/* Initial buffer size: the file size + 1 for regular files (so EOF is seen
 * without growing), else 64 KiB. */
static htnn_status read_size_hint(FILE *f, const char *path, size_t *hint)
{
    struct stat sb;
    *hint = (size_t)1 << 16;
    if (fstat(fileno(f), &sb) != 0)
        return HTNN_OK;
    if (S_ISDIR(sb.st_mode))
        return error_set(HTNN_EIO, "%s: is a directory", path);
    if (!S_ISREG(sb.st_mode))
        return HTNN_OK;
    if (sb.st_size < 0 || (uintmax_t)sb.st_size > MODEL_MAX_BYTES)
        return error_set(HTNN_ELIMIT, "%s: %jd bytes is larger than the %zu-byte model "
                         "limit", path, (intmax_t)sb.st_size, (size_t)MODEL_MAX_BYTES);
    *hint = (size_t)sb.st_size + 1;
    return HTNN_OK;
}

static htnn_status read_stream(FILE *f, const char *path, size_t cap,
                               unsigned char **data, size_t *size)
{
    size_t len = 0;
    unsigned char *buf = mem_malloc(cap);
    if (buf == NULL)
        return error_set(HTNN_ENOMEM, "%s: out of memory for %zu bytes", path, cap);
    for (;;) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        if (cap > MODEL_MAX_BYTES) {
            mem_free(buf);
            return error_set(HTNN_ELIMIT, "%s: larger than the %zu-byte model limit",
                             path, (size_t)MODEL_MAX_BYTES);
        }
        size_t next = cap > MODEL_MAX_BYTES / 2 ? MODEL_MAX_BYTES + 1 : cap * 2;
        unsigned char *grown = mem_realloc(buf, next);
        if (grown == NULL) {
            mem_free(buf);
            return error_set(HTNN_ENOMEM, "%s: out of memory for %zu bytes", path, next);
        }
        buf = grown;
        cap = next;
    }
    if (ferror(f)) {
        mem_free(buf);
        return error_set(HTNN_EIO, "%s: read failed: %s", path, strerror(errno));
    }
    *data = buf;
    *size = len;
    return HTNN_OK;
}

static htnn_status read_file(const char *path, unsigned char **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return error_set(HTNN_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t hint;
    htnn_status st = read_size_hint(f, path, &hint);
    if (st == HTNN_OK)
        st = read_stream(f, path, hint, data, size);
    fclose(f);
    return st;
}

htnn_status htnn_net_load(const char *path, htnn_net **out)
{
    if (path == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_net_load: path or out is NULL");
    unsigned char *data = NULL;
    size_t size = 0;
    htnn_status st = read_file(path, &data, &size);
    if (st != HTNN_OK)
        return st;
    st = load_named(data, size, path, out);
    mem_free(data);
    return st;
}

/* ------------------------------------------------------------------------
 * Shared with the packed model files (packed_io.c).
 */

uint32_t model_crc32(const unsigned char *p, size_t n) { return crc32_ieee(p, n); }

/* Every file save (models, packed models) goes through the regular-file
 * check, so no save can replace a device such as /dev/full. */
htnn_status model_write_file(const char *path, const void *data, size_t size)
{
    char *target;
    htnn_status st = save_target(path, &target);
    if (st == HTNN_OK)
        st = save_atomically(target ? target : path, data, size);
    mem_free(target);
    return st;
}

htnn_status model_read_file(const char *path, unsigned char **data, size_t *size)
{
    return read_file(path, data, size);
}

/* ------------------------------------------------------------------------
 * Extra optional sections (checkpoints, checkpoint.c): room for them
 * before END when writing, and finding one in a file the loader accepted.
 */

htnn_status model_serialize(const htnn_net *net, size_t extra, unsigned char **data,
                            size_t *size, size_t *extra_at)
{
    void *model = NULL;
    size_t n = 0;
    htnn_status st = htnn_net_save_buffer(net, &model, &n);
    if (st != HTNN_OK)
        return st;
    if (extra > MODEL_MAX_BYTES - n) {
        mem_free(model);
        return error_set(HTNN_ELIMIT, "save: %zu bytes of model and %zu bytes of "
                         "training state exceed the %zu-byte limit of the file format",
                         n, extra, (size_t)MODEL_MAX_BYTES);
    }
    unsigned char *buf = mem_realloc(model, n + extra);
    if (buf == NULL) {
        mem_free(model);
        return error_set(HTNN_ENOMEM, "save: out of memory for %zu bytes", n + extra);
    }
    /* END (and the checksum model_seal rewrites) move behind the gap */
    size_t end = n - RECORD_HEAD_BYTES - CRC_BYTES;
    memmove(buf + end + extra, buf + end, RECORD_HEAD_BYTES);
    *data = buf;
    *size = n + extra;
    *extra_at = end;
    return HTNN_OK;
}

void model_seal(unsigned char *data, size_t size)
{
    writer w = {data, size - CRC_BYTES};
    put_u32(&w, crc32_ieee(data, size - CRC_BYTES));
}

htnn_status model_load_named(const unsigned char *data, size_t size, const char *name,
                             htnn_net **out)
{
    return load_named(data, size, name, out);
}

/* Walks the records by their 12-byte heads only, so it needs no knowledge
 * of the layer kinds. */
int model_find_section(const unsigned char *data, size_t size, uint32_t tag, size_t *at,
                       size_t *length)
{
    cursor c = {data, size, HEADER_BYTES - 8}; /* the layer count ends the header */
    uint64_t layers, len;
    uint32_t t;
    if (!cursor_u64(&c, &layers))
        return 0;
    for (uint64_t i = 0; i < layers; i++)
        if (!cursor_u32(&c, &t) || !cursor_u64(&c, &len) || !cur_skip(&c, len))
            return 0;
    while (cursor_u32(&c, &t) && cursor_u64(&c, &len) && t != SECTION_END) {
        if (t == tag && len <= cursor_left(&c)) {
            *at = c.pos;
            *length = (size_t)len;
            return 1;
        }
        if (!cur_skip(&c, len))
            return 0;
    }
    return 0;
}
