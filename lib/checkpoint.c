/* Checkpoint files of htnn_net_fit (doc/file-format.md, "Checkpoints"): the
 * model file of the net, written by model_io.c, with two optional sections
 * before END: the optimizer's state and the fit's position.  Readers that
 * only want the net skip both.  Resuming checks everything (the file, the
 * architecture, the optimizer, the fit's fingerprint) before it changes
 * anything.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "bytes.h"
#include "checkpoint.h"
#include "error.h"
#include "model_io_internal.h"
#include "optimizer_internal.h"
#include "snapshot.h"

/* Optional sections (bit 31 clear): readers that do not know them skip them. */
#define SECTION_OPTIMIZER 0x00000001u
#define SECTION_FIT 0x00000002u
#define SECTION_HEAD_BYTES 12 /* tag u32 + length u64 */
#define OPT_FIXED_BYTES 80    /* the optimizer section up to its state values */
#define FIT_FIXED_BYTES 148   /* the fit section up to its example order */
#define HYPER_COUNT 8         /* float hyper-parameters stored */

/* ------------------------------------------------------------------------
 * The fit's fingerprint.
 */

/* 64-bit FNV-1a over 32-bit words (their values, so the hash does not
 * depend on the host's byte order). */
static uint64_t hash_words(uint64_t h, const void *p, size_t n)
{
    const unsigned char *bytes = p;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, bytes + 4 * i, sizeof v);
        h = (h ^ v) * 0x100000001b3ull;
    }
    return h;
}

#define FNV_BASIS 0xcbf29ce484222325ull

/* A shard's part of the hash of a sharded training set: the sum (modulo
 * 2^64) over its examples of a hash of each one with its global index.
 * Sums add up over the ranks (net_reduce_u64) to the same value whatever
 * the shards, where a hash of the concatenation would need them all. */
static uint64_t shard_hash(const float *x, const int32_t *labels, size_t first, size_t count,
                           size_t width)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t g = (uint64_t)(first + i);
        uint32_t index[2] = {(uint32_t)g, (uint32_t)(g >> 32)};
        uint64_t h = hash_words(FNV_BASIS, index, 2);
        sum += hash_words(hash_words(h, x + i * width, width), labels + i, 1);
    }
    return sum;
}

void fit_fingerprint_init(fit_fingerprint *fp, const float *x, const int32_t *labels,
                          size_t count, size_t width, const htnn_fit_options *o)
{
    fp->count = o->shard_total ? o->shard_total : count;
    fp->width = width;
    fp->batch_size = o->batch_size;
    fp->epochs = o->epochs;
    fp->shuffle = (uint32_t)o->shuffle;
    fp->data_hash = o->shard_total
                        ? shard_hash(x, labels, o->shard_first, count, width)
                        : hash_words(hash_words(FNV_BASIS, x, count * width), labels, count);
}

size_t fit_batches(const fit_fingerprint *fp)
{
    size_t bs = fp->batch_size < fp->count ? (size_t)fp->batch_size : (size_t)fp->count;
    return ((size_t)fp->count + bs - 1) / bs;
}

/* ------------------------------------------------------------------------
 * Writer.
 */

static void put_f32(byte_writer *w, float v) { put_floats(w, &v, 1); }

static void put_f64(byte_writer *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    put_u64(w, bits);
}

static void write_optimizer(byte_writer *w, htnn_optimizer *opt)
{
    const htnn_optimizer_options *o = optimizer_options(opt);
    const float hyper[HYPER_COUNT] = {o->learning_rate, o->momentum, o->beta1,
                                      o->beta2, o->epsilon, o->weight_decay,
                                      o->step_gamma, o->min_learning_rate};
    size_t n;
    const float *state = optimizer_state(opt, &n);
    put_u32(w, SECTION_OPTIMIZER);
    put_u64(w, OPT_FIXED_BYTES + 4 * (uint64_t)n);
    put_u32(w, (uint32_t)o->kind);
    put_u32(w, (uint32_t)o->schedule);
    put_u32(w, (uint32_t)o->nesterov);
    put_floats(w, hyper, HYPER_COUNT);
    put_u64(w, o->step_epochs);
    put_u64(w, o->cosine_epochs);
    put_f32(w, htnn_optimizer_learning_rate(opt));
    put_u64(w, htnn_optimizer_steps(opt));
    put_u64(w, n);
    put_floats(w, state, n);
}

static void write_fit(byte_writer *w, const fit_fingerprint *fp, const fit_position *pos,
                      const rng *r, const size_t *order)
{
    uint64_t k = fp->shuffle ? fp->count : 0;
    put_u32(w, SECTION_FIT);
    put_u64(w, FIT_FIXED_BYTES + 8 * k);
    put_u64(w, fp->count);
    put_u64(w, fp->width);
    put_u64(w, fp->batch_size);
    put_u64(w, fp->epochs);
    put_u32(w, fp->shuffle);
    put_u64(w, fp->data_hash);
    put_u64(w, pos->epoch);
    put_u64(w, pos->batch);
    put_f64(w, pos->loss_sum);
    put_u64(w, pos->correct);
    put_f64(w, pos->result.loss);
    put_f64(w, pos->result.accuracy);
    put_f64(w, pos->result.val_loss);
    put_f64(w, pos->result.val_accuracy);
    for (int i = 0; i < 4; i++)
        put_u64(w, r->s[i]);
    put_u64(w, k);
    for (uint64_t i = 0; i < k; i++)
        put_u64(w, order[i]);
}

htnn_status checkpoint_write(const char *path, const htnn_net *net, htnn_optimizer *opt,
                             const fit_fingerprint *fp, const fit_position *pos,
                             const size_t *order)
{
    size_t n_opt, at, size;
    unsigned char *buf;
    optimizer_state(opt, &n_opt);
    size_t extra = 2 * SECTION_HEAD_BYTES + OPT_FIXED_BYTES + 4 * n_opt + FIT_FIXED_BYTES +
                   (fp->shuffle ? 8 * (size_t)fp->count : 0);
    htnn_status st = model_serialize(net, extra, &buf, &size, &at);
    if (st != HTNN_OK)
        return st;
    byte_writer w = {buf, at};
    write_optimizer(&w, opt);
    write_fit(&w, fp, pos, &net->rng, order);
    model_seal(buf, size);
    st = model_write_file(path, buf, size);
    mem_free(buf);
    return st;
}

/* ------------------------------------------------------------------------
 * Reader: the file, the net it holds and its two sections, all checked
 * before anything is applied.
 */

static int cursor_f32(byte_cursor *c, float *v)
{
    uint32_t bits;
    if (!cursor_u32(c, &bits))
        return 0;
    memcpy(v, &bits, sizeof *v);
    return 1;
}

static int cursor_f64(byte_cursor *c, double *v)
{
    uint64_t bits;
    if (!cursor_u64(c, &bits))
        return 0;
    memcpy(v, &bits, sizeof *v);
    return 1;
}

typedef struct opt_record {
    uint32_t kind;
    float lr;
    uint64_t steps, n;
    size_t values_at;   /* offset of the n state values */
} opt_record;

typedef struct fit_record {
    fit_fingerprint fp;
    fit_position pos;
    rng rng;
    uint64_t k;
    size_t order_at;    /* offset of the k order entries */
} fit_record;

typedef struct checkpoint {
    unsigned char *data;
    size_t size;
    htnn_net *net;      /* the net the file holds */
    opt_record opt;
    fit_record fit;
} checkpoint;

static htnn_status corrupt(const char *path, const char *what)
{
    return error_set(HTNN_EFORMAT, "%s: %s", path, what);
}

/* A section's payload as a cursor; 0 if the file has none. */
static int find(const checkpoint *c, uint32_t tag, byte_cursor *out)
{
    size_t at, length;
    if (!model_find_section(c->data, c->size, tag, &at, &length))
        return 0;
    *out = (byte_cursor){c->data + at, length, 0};
    return 1;
}

/* 1 if the n little-endian floats at p are all finite. */
static int floats_finite(const unsigned char *p, uint64_t n)
{
    uint32_t bad = 0;
    for (uint64_t i = 0; i < n; i++)
        bad |= (load_u32(p + 4 * i) & 0x7f800000u) == 0x7f800000u;
    return bad == 0;
}

static htnn_status read_optimizer(checkpoint *c, const char *path)
{
    opt_record *r = &c->opt;
    byte_cursor cur;
    uint32_t skip32;
    float hyper;
    uint64_t skip64;
    if (!find(c, SECTION_OPTIMIZER, &cur))
        return corrupt(path, "not a checkpoint (no optimizer-state section)");
    int ok = cursor_u32(&cur, &r->kind) && cursor_u32(&cur, &skip32) &&
             cursor_u32(&cur, &skip32);
    for (int i = 0; i < HYPER_COUNT; i++)
        ok = ok && cursor_f32(&cur, &hyper);
    ok = ok && cursor_u64(&cur, &skip64) && cursor_u64(&cur, &skip64) &&
         cursor_f32(&cur, &r->lr) && cursor_u64(&cur, &r->steps) && cursor_u64(&cur, &r->n);
    if (!ok || r->n > cursor_left(&cur) / 4 || cursor_left(&cur) != 4 * r->n)
        return corrupt(path, "optimizer-state section has the wrong length");
    if (r->kind != HTNN_OPT_SGD && r->kind != HTNN_OPT_ADAM)
        return error_set(HTNN_EFORMAT, "%s: unknown optimizer kind %" PRIu32, path, r->kind);
    r->values_at = (size_t)(cur.p + cur.pos - c->data);
    if (!isfinite(r->lr) || r->lr < 0.0f || !floats_finite(c->data + r->values_at, r->n))
        return corrupt(path, "NaN or infinity in the optimizer state");
    return HTNN_OK;
}

static int read_fit_fields(byte_cursor *cur, fit_record *r)
{
    fit_fingerprint *fp = &r->fp;
    fit_position *pos = &r->pos;
    uint64_t epoch = 0, batch = 0, correct = 0;
    int ok = cursor_u64(cur, &fp->count) && cursor_u64(cur, &fp->width) &&
             cursor_u64(cur, &fp->batch_size) && cursor_u64(cur, &fp->epochs) &&
             cursor_u32(cur, &fp->shuffle) && cursor_u64(cur, &fp->data_hash) &&
             cursor_u64(cur, &epoch) && cursor_u64(cur, &batch) &&
             cursor_f64(cur, &pos->loss_sum) && cursor_u64(cur, &correct) &&
             cursor_f64(cur, &pos->result.loss) && cursor_f64(cur, &pos->result.accuracy) &&
             cursor_f64(cur, &pos->result.val_loss) &&
             cursor_f64(cur, &pos->result.val_accuracy);
    for (int i = 0; i < 4; i++)
        ok = ok && cursor_u64(cur, &r->rng.s[i]);
    ok = ok && cursor_u64(cur, &r->k);
    pos->epoch = (size_t)epoch;
    pos->batch = (size_t)batch;
    pos->correct = (size_t)correct;
    return ok && epoch == pos->epoch && batch == pos->batch && correct == pos->correct;
}

/* The position's derived counts, once its fields are known to be sane. */
static void complete_position(fit_record *r)
{
    fit_position *pos = &r->pos;
    size_t batches = fit_batches(&r->fp);
    size_t bs = r->fp.batch_size < r->fp.count ? (size_t)r->fp.batch_size : (size_t)r->fp.count;
    pos->seen = pos->batch * bs;
    pos->result.struct_size = sizeof pos->result;
    pos->result.epochs_run = pos->epoch;
    pos->result.batches_run = pos->epoch * batches + pos->batch;
    pos->result.stopped = 0;
}

static int fit_fields_sane(const fit_record *r)
{
    const fit_fingerprint *fp = &r->fp;
    const fit_position *pos = &r->pos;
    if (fp->count == 0 || fp->width == 0 || fp->batch_size == 0 || fp->epochs == 0 ||
        fp->shuffle > 1 || fp->count > SIZE_MAX / 8 || fp->epochs > SIZE_MAX / fp->count)
        return 0;
    size_t batches = fit_batches(fp);
    size_t bs = fp->batch_size < fp->count ? (size_t)fp->batch_size : (size_t)fp->count;
    int rng_set = (r->rng.s[0] | r->rng.s[1] | r->rng.s[2] | r->rng.s[3]) != 0;
    return pos->epoch <= fp->epochs && pos->batch < batches &&
           (pos->epoch < fp->epochs || pos->batch == 0) && pos->correct <= pos->batch * bs &&
           pos->loss_sum >= 0.0 && pos->loss_sum < 1e300 && rng_set &&
           r->k == (fp->shuffle ? fp->count : 0);
}

/* Checks that the k entries at p are a permutation of 0..k-1. */
static htnn_status check_order(const unsigned char *p, uint64_t k, const char *path)
{
    unsigned char *seen = mem_calloc(k ? (size_t)k : 1, 1);
    if (seen == NULL)
        return error_set(HTNN_ENOMEM, "%s: out of memory for %" PRIu64 " flags", path, k);
    int ok = 1;
    for (uint64_t i = 0; i < k && ok; i++) {
        uint64_t v = (uint64_t)load_u32(p + 8 * i + 4) << 32 | load_u32(p + 8 * i);
        ok = v < k && !seen[v];
        if (ok)
            seen[v] = 1;
    }
    mem_free(seen);
    return ok ? HTNN_OK : corrupt(path, "the example order is not a permutation");
}

static htnn_status read_fit(checkpoint *c, const char *path)
{
    fit_record *r = &c->fit;
    byte_cursor cur;
    memset(r, 0, sizeof *r);
    if (!find(c, SECTION_FIT, &cur))
        return corrupt(path, "not a checkpoint (no fit-state section)");
    if (!read_fit_fields(&cur, r) || r->k > cursor_left(&cur) / 8 ||
        cursor_left(&cur) != 8 * r->k)
        return corrupt(path, "fit-state section has the wrong length");
    if (!fit_fields_sane(r))
        return corrupt(path, "fit-state section holds an impossible position");
    r->order_at = (size_t)(cur.p + cur.pos - c->data);
    complete_position(r);
    return check_order(c->data + r->order_at, r->k, path);
}

static void checkpoint_close(checkpoint *c)
{
    htnn_net_free(c->net);
    mem_free(c->data);
    memset(c, 0, sizeof *c);
}

static htnn_status checkpoint_open(const char *path, checkpoint *c)
{
    memset(c, 0, sizeof *c);
    htnn_status st = model_read_file(path, &c->data, &c->size);
    if (st == HTNN_OK)
        st = model_load_named(c->data, c->size, path, &c->net);
    if (st == HTNN_OK)
        st = read_optimizer(c, path);
    if (st == HTNN_OK)
        st = read_fit(c, path);
    if (st != HTNN_OK)
        checkpoint_close(c);
    return st;
}

/* ------------------------------------------------------------------------
 * Resuming: does the checkpoint belong to this fit?
 */

static htnn_status refuse(const char *path, const char *what, uint64_t theirs, uint64_t ours)
{
    return error_set(HTNN_ESTATE, "%s: the checkpoint was written by a fit with %s %" PRIu64
                     ", this fit has %" PRIu64 "; refusing to resume", path, what, theirs,
                     ours);
}

static htnn_status check_fingerprint(const fit_fingerprint *theirs, const fit_fingerprint *ours,
                                     const char *path)
{
    if (theirs->count != ours->count)
        return refuse(path, "example count", theirs->count, ours->count);
    if (theirs->width != ours->width)
        return refuse(path, "input width", theirs->width, ours->width);
    if (theirs->batch_size != ours->batch_size)
        return refuse(path, "batch size", theirs->batch_size, ours->batch_size);
    if (theirs->epochs != ours->epochs)
        return refuse(path, "epochs", theirs->epochs, ours->epochs);
    if (theirs->shuffle != ours->shuffle)
        return refuse(path, "shuffle", theirs->shuffle, ours->shuffle);
    if (theirs->data_hash != ours->data_hash)
        return error_set(HTNN_ESTATE, "%s: the checkpoint was written for other training data "
                         "(same count and width, other values or labels; or by a sharded fit "
                         "for an unsharded one, or the reverse); refusing to resume", path);
    return HTNN_OK;
}

static int same_layer(const htnn_layer_info *a, const htnn_layer_info *b)
{
    return a->kind == b->kind && a->in_width == b->in_width &&
           a->out_width == b->out_width && a->activation == b->activation &&
           a->qrelu_bits == b->qrelu_bits && a->loss == b->loss &&
           a->weight_targets == b->weight_targets && a->bias == b->bias &&
           a->weight_count == b->weight_count && a->binary_weights == b->binary_weights &&
           a->in_channels == b->in_channels && a->in_height == b->in_height &&
           a->in_columns == b->in_columns && a->out_channels == b->out_channels &&
           a->out_height == b->out_height && a->out_columns == b->out_columns &&
           a->kernel_h == b->kernel_h && a->kernel_w == b->kernel_w &&
           a->stride == b->stride && a->padding == b->padding &&
           a->bias_count == b->bias_count;
}

static htnn_status check_layer(const htnn_net *net, const htnn_net *saved, size_t d,
                               const char *path)
{
    htnn_layer_info a = HTNN_LAYER_INFO_INIT, b = HTNN_LAYER_INFO_INIT;
    htnn_layer_get_info(net->layers[d], &a);
    htnn_layer_get_info(saved->layers[d], &b);
    if (same_layer(&a, &b))
        return HTNN_OK;
    return error_set(HTNN_ESTATE, "%s: layer %zu of the checkpoint (kind %d, %zu -> %zu, "
                     "activation %d, loss %d) differs from the net's (kind %d, %zu -> %zu, "
                     "activation %d, loss %d) or in its other options; refusing to resume",
                     path, d, b.kind, b.in_width, b.out_width, b.activation, b.loss, a.kind,
                     a.in_width, a.out_width, a.activation, a.loss);
}

static htnn_status check_architecture(const htnn_net *net, const htnn_net *saved,
                                      const char *path)
{
    if (net->input_width != saved->input_width)
        return refuse(path, "a net of input width", saved->input_width, net->input_width);
    if (net->n_layers != saved->n_layers)
        return refuse(path, "a net of layer count", saved->n_layers, net->n_layers);
    if (net->opts.output != saved->opts.output)
        return refuse(path, "a net of output kind", (uint64_t)saved->opts.output,
                      (uint64_t)net->opts.output);
    if (net->opts.targets_after_update != saved->opts.targets_after_update)
        return refuse(path, "targets_after_update",
                      (uint64_t)saved->opts.targets_after_update,
                      (uint64_t)net->opts.targets_after_update);
    for (size_t d = 0; d < net->n_layers; d++) {
        htnn_status st = check_layer(net, saved, d, path);
        if (st != HTNN_OK)
            return st;
    }
    return HTNN_OK;
}

static htnn_status check_optimizer(htnn_optimizer *opt, const opt_record *r, const char *path)
{
    size_t n;
    optimizer_state(opt, &n);
    if ((int)r->kind != optimizer_options(opt)->kind)
        return refuse(path, "optimizer kind", r->kind, (uint64_t)optimizer_options(opt)->kind);
    if (r->n != n)
        return error_set(HTNN_ESTATE, "%s: the checkpoint's optimizer state has %" PRIu64
                         " values, this optimizer keeps %zu (SGD with and without momentum "
                         "differ); refusing to resume", path, r->n, n);
    return HTNN_OK;
}

static htnn_status check_resume(const checkpoint *c, htnn_net *net, htnn_optimizer *opt,
                                const fit_fingerprint *fp, const char *path)
{
    htnn_status st = check_architecture(net, c->net, path);
    if (st == HTNN_OK)
        st = check_fingerprint(&c->fit.fp, fp, path);
    if (st == HTNN_OK)
        st = check_optimizer(opt, &c->opt, path);
    return st;
}

/* Nothing here can fail: every value was checked. */
static void apply(const checkpoint *c, htnn_net *net, htnn_optimizer *opt, fit_position *pos,
                  size_t *order)
{
    size_t n;
    float *state = optimizer_state(opt, &n);
    const unsigned char *p = c->data + c->fit.order_at;
    net_trained_copy(net, c->net);
    net->rng = c->fit.rng;
    (void)decode_floats(c->data + c->opt.values_at, n, state); /* all finite */
    optimizer_set_progress(opt, c->opt.steps, c->opt.lr);
    *pos = c->fit.pos;
    for (uint64_t i = 0; i < c->fit.k; i++)
        order[i] = (size_t)((uint64_t)load_u32(p + 8 * i + 4) << 32 | load_u32(p + 8 * i));
}

htnn_status checkpoint_resume(const char *path, htnn_net *net, htnn_optimizer *opt,
                              const fit_fingerprint *fp, fit_position *pos, size_t *order)
{
    struct stat sb;
    checkpoint c;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return HTNN_OK;
    htnn_status st = checkpoint_open(path, &c);
    if (st != HTNN_OK)
        return st;
    st = check_resume(&c, net, opt, fp, path);
    if (st == HTNN_OK)
        apply(&c, net, opt, pos, order);
    checkpoint_close(&c);
    return st;
}

htnn_status htnn_checkpoint_get_info(const char *path, htnn_checkpoint_info *out)
{
    checkpoint c;
    if (path == NULL || out == NULL)
        return error_set(HTNN_EINVAL, "htnn_checkpoint_get_info: path or out is NULL");
    if (out->struct_size < sizeof(size_t) || out->struct_size > sizeof *out)
        return error_set(HTNN_EINVAL, "htnn_checkpoint_get_info: bad struct_size %zu",
                         out->struct_size);
    htnn_status st = checkpoint_open(path, &c);
    if (st != HTNN_OK)
        return st;
    const fit_fingerprint *fp = &c.fit.fp;
    htnn_checkpoint_info info = {sizeof info, c.fit.pos.epoch, c.fit.pos.batch,
                                 fit_batches(fp), (size_t)fp->epochs,
                                 c.fit.pos.result.batches_run, (size_t)fp->count,
                                 (size_t)fp->width, (size_t)fp->batch_size, (int)fp->shuffle,
                                 (int)c.opt.kind, c.opt.steps};
    checkpoint_close(&c);
    memcpy((char *)out + sizeof(size_t), (const char *)&info + sizeof(size_t),
           out->struct_size - sizeof(size_t));
    return HTNN_OK;
}
