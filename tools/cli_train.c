/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_train.c - `htnn train`: options, building the net, htnn_net_fit with
 * a progress display, SIGINT handling, saving and the final report.
 */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#if HTNN_TOOL_MPI
#include <htnn/htnn_mpi.h>
#endif

#define MAX_HIDDEN 64
#define MAX_UNITS (1 << 24)

static const char train_help[] =
    "Usage: htnn train DATA [MODEL] [TRAINING] --out FILE\n"
    "\n"
    "Trains a hard-threshold net with FTPROP-MB and saves it to FILE.\n"
    "\n"
    "Data:\n"
    "  --fashion-mnist          Fashion-MNIST: train on train, test on t10k\n"
    "                           (directory: $HTNN_FASHION_MNIST_DIR or\n"
    "                           /usr/share/datasets/fashion-mnist)\n"
    "  --train-images F --train-labels F   IDX training data (bytes / 255)\n"
    "  --test-images F --test-labels F     IDX test data\n"
    "  --train-csv F [--test-csv F]        CSV data, one example per line\n"
    "  --label-column N|last|none          label column of CSV (default 0)\n"
    "  --csv-header yes|no|auto            CSV header line (default auto)\n"
    "  --delimiter C            CSV field separator (default ',', or 'tab')\n"
    "  --scale                  scale each CSV column to [0, 1] (per file)\n"
    "  --limit N                use the first N training examples\n"
    "  --test-limit N           use the first N test examples\n"
    "  --val-split N            hold out the last N training examples for\n"
    "                           validation, reported every epoch\n"
    "\n"
    "Model:\n"
    "  --layers W1,W2,...       hidden layer widths (default 512,512; 'none')\n"
    "  --act NAME               hidden activation: sign (default), step,\n"
    "                           qrelu, relu, identity\n"
    "  --qrelu-bits N           bits of qrelu, 1..8 (default 2)\n"
    "  --loss NAME              per-layer loss: soft-hinge (default),\n"
    "                           saturated-hinge, hinge, perceptron, linear\n"
    "  --sste                   same as --loss saturated-hinge\n"
    "  --no-weighting           count every target 1 instead of its weight\n"
    "  --binary-weights MODE    none (default), scaled or sign (all layers)\n"
    "  --output softmax|hard    output scoring (default softmax); hard: sign\n"
    "                           output units trained with --output-loss\n"
    "  --output-loss NAME       loss of a hard output layer (default hinge: a\n"
    "                           convex perceptron loss; soft-hinge saturates)\n"
    "\n";

/* Split in two: ISO C guarantees string literals of 4095 bytes only. */
static const char train_help_training[] =
    "Training:\n"
    "  --optimizer adam|sgd     (default adam)\n"
    "  --lr X                   learning rate (default 1e-3)\n"
    "  --momentum X             SGD momentum in [0, 1)\n"
    "  --nesterov               SGD Nesterov momentum\n"
    "  --weight-decay X         L2 weight decay (default 0)\n"
    "  --schedule constant|step|cosine   learning-rate schedule per epoch\n"
    "  --step-epochs N          step schedule: epochs per decay (default 1)\n"
    "  --gamma X                step schedule: decay factor (default 0.1)\n"
    "  --min-lr X               cosine schedule: final learning rate\n"
    "  --epochs N               (default 10)\n"
    "  --batch N                mini-batch size (default 100)\n"
    "  --seed N                 RNG seed for weights and shuffling (default 1)\n"
    "  --threads N              BLAS/kernel threads (default 1; 0 = BLAS's)\n"
    "  --no-shuffle             keep the data order in every epoch\n"
    "  --test-each-epoch        evaluate the test data after every epoch\n"
    "                           (instead of --val-split data)\n"
    "  --heuristic loss|hill|exhaustive   target heuristic (default loss)\n"
    "  --hill-sweeps N          hill climbing: sweeps per example (default 16)\n"
    "  --hill-flips N           hill climbing: flips per sweep (default 1)\n"
    "  --hill-start outputs|loss  hill climbing starts from the current\n"
    "                           outputs or the loss-driven targets (default:\n"
    "                           loss, outputs with --ftprop)\n"
    "  --search-weighting flip|unit|gradient  target weights of hill and\n"
    "                           exhaustive search (default: gradient, flip\n"
    "                           with --ftprop)\n"
    "  --reach-cost X           hill/exhaustive: cost of moving a target away\n"
    "                           from the unit's output, per unit of margin\n"
    "  --max-width N            exhaustive: widest layer searched (default 16)\n"
    "  --ftprop                 full-batch FTPROP (small data): search feasible\n"
    "                           targets instead of training mini-batches; needs\n"
    "                           sign/step hidden units (default heuristic:\n"
    "                           exhaustive, reach cost 0.3)\n"
    "  --restarts N             --ftprop: weight re-draws after a failed\n"
    "                           search (default 100)\n"
    "\n"
    "Output:\n"
    "  --out FILE               where to save the model (required)\n"
    "  --checkpoint FILE        write the training state (net, optimizer, RNG,\n"
    "                           position) to FILE at the end of every epoch;\n"
    "                           FILE is also a model file\n"
    "  --checkpoint-every N     ... after every N batches instead\n"
    "  --resume                 continue from --checkpoint FILE if it exists\n"
    "                           (same data and options: bit-identical result)\n"
    "  --json                   print a JSON summary line on stdout\n"
    "  --mpi                    data-parallel training under mpiexec: every rank\n"
    "                           reads its shard of IDX training data (CSV: all\n"
    "                           of it) and trains its part of every global batch\n"
    "                           of --batch; rank 0 prints and saves (a checkpoint\n"
    "                           of rank r > 0 goes to FILE.rank<r>)\n"
    "  --quiet                  no progress output\n"
    "\n"
    "Ctrl-C stops training after the current batch and still saves the "
    "model\n(exit status 130).\n";

typedef struct model_opts {
    size_t hidden[MAX_HIDDEN];
    size_t hidden_count;
    cli_layer_spec arch[MAX_HIDDEN]; /* --arch: the whole net */
    size_t arch_count;               /* 0: --layers describes the net */
    int activation;
    int qrelu_bits;
    int loss;
    int output_loss; /* loss of a hard-threshold output layer */
    int binary_weights; /* htnn_binary_weights of every layer */
    int weight_targets;
    int output;
} model_opts;

typedef struct train_opts {
    cli_data_opts data;
    model_opts model;
    htnn_optimizer_options optim;
    int momentum_given;
    size_t epochs;
    size_t batch;
    size_t val_split;
    uint64_t seed;
    int threads;
    int shuffle;
    int test_each_epoch; /* the test set stands in for validation data */
    int heuristic;      /* 0 loss, 1 hill, 2 exhaustive, -1 not given */
    int hill_start;     /* htnn_hill_start, -1: by mode (see make_heuristic) */
    int search_weighting; /* htnn_search_weighting, -1: by mode */
    htnn_hill_options hill;
    htnn_exhaustive_options exhaustive;
    float reach_cost;   /* < 0: not given */
    int ftprop;
    size_t restarts;
    int json;
    int quiet;
    const char *out;
    const char *checkpoint;   /* --checkpoint FILE, or NULL */
    size_t checkpoint_every;  /* --checkpoint-every N (0: every epoch) */
    int checkpoint_every_given;
    int resume;               /* --resume */
    int mpi;                  /* --mpi */
    int rank;                 /* MPI rank with --mpi, else 0 */
    int ranks;                /* MPI ranks with --mpi, else 1 */
} train_opts;

typedef struct train_data {
    htnn_data *train;   /* the training set, or (sharded) this rank's shard of it */
    htnn_data *val;
    htnn_data *test;
    size_t classes;
    int sharded;        /* --mpi with IDX data: train holds examples */
    size_t first;       /* [first, first + count) of the training set's */
    size_t total;       /* total examples (count when not sharded) */
} train_data;

/* ---- options ----------------------------------------------------------- */

static void train_opts_init(train_opts *o)
{
    const htnn_optimizer_options optim = HTNN_OPTIMIZER_OPTIONS_INIT;
    memset(o, 0, sizeof *o);
    cli_data_opts_init(&o->data, CLI_DATA_TRAIN);
    o->model.hidden[0] = 512;
    o->model.hidden[1] = 512;
    o->model.hidden_count = 2;
    o->model.activation = HTNN_ACT_SIGN;
    o->model.qrelu_bits = 2;
    o->model.loss = HTNN_LOSS_SOFT_HINGE;
    o->model.output_loss = HTNN_LOSS_HINGE;
    o->model.weight_targets = 1;
    o->model.output = HTNN_OUTPUT_SOFTMAX;
    o->optim = optim;
    o->epochs = 10;
    o->batch = 100;
    o->seed = 1;
    o->threads = 1;
    o->shuffle = 1;
    o->heuristic = -1;
    o->hill_start = -1;
    o->search_weighting = -1;
    {
        const htnn_hill_options hill = HTNN_HILL_OPTIONS_INIT;
        const htnn_exhaustive_options ex = HTNN_EXHAUSTIVE_OPTIONS_INIT;
        o->hill = hill;
        o->exhaustive = ex;
    }
    o->reach_cost = -1.0f;
    o->restarts = 100;
    o->ranks = 1;
}

static int flag_into(cli_parser *p, int *dst, int value);

static const cli_choice heuristics[] = {
    {"loss", 0}, {"hill", 1}, {"exhaustive", 2}, {NULL, 0}};
static const cli_choice hill_starts[] = {
    {"outputs", HTNN_HILL_START_OUTPUTS}, {"loss", HTNN_HILL_START_LOSS}, {NULL, 0}};
static const cli_choice weightings[] = {
    {"flip", HTNN_SEARCH_WEIGHT_FLIP}, {"unit", HTNN_SEARCH_WEIGHT_UNIT},
    {"gradient", HTNN_SEARCH_WEIGHT_GRADIENT}, {NULL, 0}};

static int heuristic_option(cli_parser *p, train_opts *o)
{
    double v;
    int rc;
    if (cli_is(p, "--heuristic"))
        return cli_choice_value(p, heuristics, &o->heuristic);
    if (cli_is(p, "--hill-sweeps"))
        return cli_size_value(p, 1, 1000000, &o->hill.max_sweeps);
    if (cli_is(p, "--hill-flips"))
        return cli_size_value(p, 1, 1000000, &o->hill.flips_per_sweep);
    if (cli_is(p, "--hill-start"))
        return cli_choice_value(p, hill_starts, &o->hill_start);
    if (cli_is(p, "--search-weighting"))
        return cli_choice_value(p, weightings, &o->search_weighting);
    if (cli_is(p, "--max-width"))
        return cli_size_value(p, 1, 30, &o->exhaustive.max_width);
    if (cli_is(p, "--restarts"))
        return cli_size_value(p, 0, 1000000000, &o->restarts);
    if (cli_is(p, "--ftprop"))
        return flag_into(p, &o->ftprop, 1);
    if (cli_is(p, "--reach-cost")) {
        if ((rc = cli_double_value(p, &v)) != CLI_OK)
            return rc;
        if (v < 0.0 || v > 1e6)
            return cli_bad_value(p, "a number in [0, 1e6]");
        o->reach_cost = (float)v;
        return CLI_OK;
    }
    return CLI_NOT_MINE;
}

/* --layers 512,512 | none (parsed by cli_arch.c) */
static int layers_value(cli_parser *p, model_opts *m)
{
    const char *text = NULL;
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (!cli_parse_layers(text, MAX_HIDDEN, MAX_UNITS, m->hidden, &m->hidden_count))
        return cli_bad_value(p, "comma-separated widths such as 512,512");
    return CLI_OK;
}

/* --arch "conv5x5:32,pool2,sign,...,dense:10" (parsed by cli_arch.c) */
static int arch_value(cli_parser *p, model_opts *m)
{
    const char *text = NULL;
    char why[128];
    int rc = cli_value(p, &text);
    if (rc != CLI_OK)
        return rc;
    if (!cli_parse_arch(text, m->arch, MAX_HIDDEN, &m->arch_count, why, sizeof why))
        return cli_bad_value(p, why);
    return CLI_OK;
}

static int model_option(cli_parser *p, model_opts *m)
{
    if (cli_is(p, "--layers"))
        return layers_value(p, m);
    if (cli_is(p, "--arch"))
        return arch_value(p, m);
    if (cli_is(p, "--act"))
        return cli_choice_value(p, cli_activations, &m->activation);
    if (cli_is(p, "--qrelu-bits"))
        return cli_int_value(p, 1, 8, &m->qrelu_bits);
    if (cli_is(p, "--binary-weights")) {
        static const cli_choice modes[] = {{"none", HTNN_BINARY_NONE},
                                           {"scaled", HTNN_BINARY_SCALED},
                                           {"sign", HTNN_BINARY_SIGN},
                                           {NULL, 0}};
        return cli_choice_value(p, modes, &m->binary_weights);
    }
    if (cli_is(p, "--loss"))
        return cli_choice_value(p, cli_losses, &m->loss);
    if (cli_is(p, "--output-loss"))
        return cli_choice_value(p, cli_losses, &m->output_loss);
    if (cli_is(p, "--sste")) {
        m->loss = HTNN_LOSS_SATURATED_HINGE;
        return cli_flag(p);
    }
    if (cli_is(p, "--no-weighting")) {
        m->weight_targets = 0;
        return cli_flag(p);
    }
    if (cli_is(p, "--output"))
        return cli_choice_value(p, cli_outputs, &m->output);
    return CLI_NOT_MINE;
}

/* Parses a number option into a float, checking lo <= v <= hi (open ends
 * when the matching flag is set). */
static int float_value(cli_parser *p, double lo, int lo_open, double hi,
                       int hi_open, const char *what, float *out)
{
    double v = 0.0;
    int rc = cli_double_value(p, &v);
    if (rc != CLI_OK)
        return rc;
    if (v < lo || (lo_open && v == lo) || v > hi || (hi_open && v == hi))
        return cli_bad_value(p, what);
    *out = (float)v;
    return CLI_OK;
}

static int optimizer_option(cli_parser *p, train_opts *o)
{
    static const cli_choice kinds[] = {
        {"adam", HTNN_OPT_ADAM}, {"sgd", HTNN_OPT_SGD}, {NULL, 0}};
    static const cli_choice schedules[] = {
        {"constant", HTNN_SCHEDULE_CONSTANT}, {"step", HTNN_SCHEDULE_STEP},
        {"cosine", HTNN_SCHEDULE_COSINE}, {NULL, 0}};
    htnn_optimizer_options *q = &o->optim;
    if (cli_is(p, "--optimizer"))
        return cli_choice_value(p, kinds, &q->kind);
    if (cli_is(p, "--lr"))
        return float_value(p, 0, 1, 1e3, 0, "a number in (0, 1000]",
                           &q->learning_rate);
    if (cli_is(p, "--momentum")) {
        o->momentum_given = 1;
        return float_value(p, 0, 0, 1, 1, "a number in [0, 1)", &q->momentum);
    }
    if (cli_is(p, "--nesterov")) {
        q->nesterov = 1;
        return cli_flag(p);
    }
    if (cli_is(p, "--weight-decay"))
        return float_value(p, 0, 0, 1e3, 0, "a number in [0, 1000]",
                           &q->weight_decay);
    if (cli_is(p, "--schedule"))
        return cli_choice_value(p, schedules, &q->schedule);
    if (cli_is(p, "--step-epochs"))
        return cli_size_value(p, 1, 1000000, &q->step_epochs);
    if (cli_is(p, "--gamma"))
        return float_value(p, 0, 1, 1, 0, "a number in (0, 1]",
                           &q->step_gamma);
    if (cli_is(p, "--min-lr"))
        return float_value(p, 0, 0, 1e3, 0, "a number in [0, 1000]",
                           &q->min_learning_rate);
    return CLI_NOT_MINE;
}

static int flag_into(cli_parser *p, int *dst, int value)
{
    *dst = value;
    return cli_flag(p);
}

static int run_option(cli_parser *p, train_opts *o)
{
    if (cli_is(p, "--epochs"))
        return cli_size_value(p, 1, 1000000, &o->epochs);
    if (cli_is(p, "--batch"))
        return cli_size_value(p, 1, 10000000, &o->batch);
    if (cli_is(p, "--val-split"))
        return cli_size_value(p, 1, SIZE_MAX, &o->val_split);
    if (cli_is(p, "--seed"))
        return cli_u64_value(p, &o->seed);
    if (cli_is(p, "--threads"))
        return cli_int_value(p, 0, 1024, &o->threads);
    if (cli_is(p, "--no-shuffle"))
        return flag_into(p, &o->shuffle, 0);
    if (cli_is(p, "--test-each-epoch"))
        return flag_into(p, &o->test_each_epoch, 1);
    if (cli_is(p, "--json"))
        return flag_into(p, &o->json, 1);
    if (cli_is(p, "--quiet"))
        return flag_into(p, &o->quiet, 1);
    if (cli_is(p, "--out"))
        return cli_value(p, &o->out);
    if (cli_is(p, "--checkpoint"))
        return cli_value(p, &o->checkpoint);
    if (cli_is(p, "--checkpoint-every")) {
        o->checkpoint_every_given = 1;
        return cli_size_value(p, 1, SIZE_MAX, &o->checkpoint_every);
    }
    if (cli_is(p, "--resume"))
        return flag_into(p, &o->resume, 1);
    if (cli_is(p, "--mpi"))
        return flag_into(p, &o->mpi, 1);
    return CLI_NOT_MINE;
}

static int check_train_opts(const train_opts *o)
{
    int rc = cli_data_check(&o->data, "train");
    if (rc != CLI_OK)
        return rc;
    if (o->out == NULL)
        return cli_usage_error("train", "train: --out FILE is required");
    if ((o->resume || o->checkpoint_every_given) && o->checkpoint == NULL)
        return cli_usage_error("train", "train: --resume and --checkpoint-every need "
                               "--checkpoint FILE");
    if (o->checkpoint != NULL && o->ftprop)
        return cli_usage_error("train", "train: --checkpoint does not apply to --ftprop");
    if (o->optim.kind != HTNN_OPT_SGD && (o->momentum_given || o->optim.nesterov))
        return cli_usage_error("train", "train: --momentum and --nesterov "
                               "need --optimizer sgd");
    if (o->mpi && !HTNN_TOOL_MPI)
        return cli_usage_error("train", "train: --mpi: this htnn was built without MPI "
                               "(configure with -Dmpi=enabled)");
    if (o->mpi && o->ftprop)
        return cli_usage_error("train", "train: --mpi does not apply to --ftprop");
    if (o->optim.nesterov && o->optim.momentum <= 0.0f)
        return cli_usage_error("train", "train: --nesterov needs "
                               "--momentum > 0");
    return CLI_OK;
}

static int parse_train(int argc, char **argv, train_opts *o)
{
    cli_parser p;
    cli_parser_init(&p, "train", argc, argv, 1);
    while (cli_parser_next(&p)) {
        int rc;
        if (p.positional != NULL)
            return cli_extra_operand(&p);
        if (cli_is_help(&p)) {
            fputs(train_help, stdout);
            fputs(train_help_training, stdout);
            return CLI_HELP;
        }
        rc = cli_data_option(&p, &o->data);
        if (rc == CLI_NOT_MINE)
            rc = model_option(&p, &o->model);
        if (rc == CLI_NOT_MINE)
            rc = optimizer_option(&p, o);
        if (rc == CLI_NOT_MINE)
            rc = run_option(&p, o);
        if (rc == CLI_NOT_MINE)
            rc = heuristic_option(&p, o);
        if (rc == CLI_NOT_MINE)
            return cli_unknown(&p);
        if (rc != CLI_OK)
            return rc;
    }
    return check_train_opts(o);
}

/* ---- data -------------------------------------------------------------- */

static void train_data_free(train_data *td)
{
    htnn_data_free(td->train);
    htnn_data_free(td->val);
    htnn_data_free(td->test);
    memset(td, 0, sizeof *td);
}

static int check_val_split(size_t n, size_t count)
{
    if (n < count)
        return CLI_OK;
    cli_error("--val-split %zu leaves no training data (%zu examples)", n, count);
    return CLI_FAIL;
}

/* Moves the last n examples of td->train into td->val. */
static int split_validation(train_data *td, size_t n)
{
    size_t count = htnn_data_count(td->train);
    htnn_data *head = NULL;
    htnn_status st;
    int rc = check_val_split(n, count);
    if (rc != CLI_OK)
        return rc;
    st = htnn_data_subset(td->train, count - n, n, &td->val);
    if (st == HTNN_OK)
        st = htnn_data_subset(td->train, 0, count - n, &head);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot split off validation data");
    htnn_data_free(td->train);
    td->train = head;
    return CLI_OK;
}

static int check_test_data(const train_opts *o, train_data *td)
{
    const char *name = cli_data_name(&o->data, 1);
    size_t width = htnn_data_width(td->test);
    size_t classes = htnn_data_class_count(td->test);
    if (width != htnn_data_width(td->train)) {
        cli_error("width mismatch: test data '%s' has %zu features per "
                  "example but training data '%s' has %zu", name, width,
                  cli_data_name(&o->data, 0), htnn_data_width(td->train));
        return CLI_FAIL;
    }
    if (classes == 0) {
        cli_error("test data '%s' has no labels", name);
        return CLI_FAIL;
    }
    if (classes > td->classes)
        td->classes = classes;
    return CLI_OK;
}

static void report_data(const train_opts *o, const train_data *td,
                        double seconds)
{
    if (o->quiet)
        return;
    fprintf(stderr, "train: %zu examples, %zu features, %zu classes (%s)\n",
            td->total, htnn_data_width(td->train), td->classes,
            cli_data_name(&o->data, 0));
    if (td->sharded)
        fprintf(stderr, "sharded: each rank reads its part; rank %d holds examples "
                "[%zu, %zu)\n", o->rank, td->first,
                td->first + htnn_data_count(td->train));
    if (td->val != NULL)
        fprintf(stderr, "validation: %zu examples (last of the training "
                "data)\n", htnn_data_count(td->val));
    if (td->test != NULL)
        fprintf(stderr, "test: %zu examples (%s)\n",
                htnn_data_count(td->test), cli_data_name(&o->data, 1));
    fprintf(stderr, "loaded in %.2f s\n", seconds);
}

static int mpi_shard(const train_opts *o, size_t total, size_t *first, size_t *n);
static size_t mpi_max(const train_opts *o, size_t v);

/* The whole training set (--val-split: its last examples are validation). */
static int load_whole(const train_opts *o, train_data *td)
{
    int rc = cli_data_load(&o->data, &td->train);
    if (rc != CLI_OK)
        return rc;
    td->classes = htnn_data_class_count(td->train);
    if (td->classes > 0 && o->val_split > 0 &&
        (rc = split_validation(td, o->val_split)) != CLI_OK)
        return rc;
    td->total = htnn_data_count(td->train);
    return CLI_OK;
}

/* --mpi with IDX data: this rank reads only its shard of the training
 * examples and the --val-split examples after them.  The class count is
 * the whole set's (the maximum over the ranks), as alone: every rank's
 * net must have the same output layer. */
static int load_shard(const train_opts *o, train_data *td)
{
    size_t n, count;
    int rc = cli_data_count(&o->data, &n);
    if (rc == CLI_OK)
        rc = check_val_split(o->val_split, n);
    if (rc == CLI_OK)
        rc = mpi_shard(o, n - o->val_split, &td->first, &count);
    if (rc == CLI_OK)
        rc = cli_data_load_rows(&o->data, td->first, count, &td->train);
    if (rc == CLI_OK && o->val_split > 0)
        rc = cli_data_load_rows(&o->data, n - o->val_split, o->val_split, &td->val);
    if (rc != CLI_OK)
        return rc;
    td->sharded = 1;
    td->total = n - o->val_split;
    td->classes = htnn_data_class_count(td->train);
    if (td->val != NULL && htnn_data_class_count(td->val) > td->classes)
        td->classes = htnn_data_class_count(td->val);
    td->classes = mpi_max(o, td->classes);
    return CLI_OK;
}

static int load_train_data(const train_opts *o, train_data *td)
{
    double start = cli_now();
    int rc = o->mpi && cli_data_is_idx(&o->data) ? load_shard(o, td) : load_whole(o, td);
    if (rc != CLI_OK)
        return rc;
    if (td->classes == 0) {
        cli_error("training data '%s' has no labels", cli_data_name(&o->data, 0));
        return CLI_FAIL;
    }
    rc = cli_data_load_test(&o->data, &td->test);
    if (rc == CLI_OK && td->test != NULL)
        rc = check_test_data(o, td);
    if (rc == CLI_OK)
        report_data(o, td, cli_now() - start);
    return rc;
}

/* ---- the net ----------------------------------------------------------- */

static int add_layer(htnn_net *net, size_t units, int activation, int loss,
                     const model_opts *m)
{
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    htnn_status st;
    d.units = units;
    d.activation = activation;
    d.qrelu_bits = m->qrelu_bits;
    d.loss = loss;
    d.weight_targets = m->weight_targets;
    d.binary_weights = m->binary_weights;
    st = htnn_net_add_dense(net, &d, NULL);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot add a dense layer of %zu units",
                             units);
    return CLI_OK;
}

/* One --arch item; `top` is the output layer (its activation is the
 * output's: identity for softmax, sign for a hard output). */
static htnn_status add_spec(htnn_net *net, const cli_layer_spec *l, const model_opts *m,
                            int top)
{
    int hard = m->output == HTNN_OUTPUT_HARD_THRESHOLD;
    int act = top ? (hard ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY)
                  : (l->activation >= 0 ? l->activation : HTNN_ACT_IDENTITY);
    int loss = top && hard ? m->output_loss : m->loss;
    if (l->kind == HTNN_LAYER_CONV2D) {
        htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
        c.channels = l->units, c.kernel_h = l->kh, c.kernel_w = l->kw;
        c.stride = l->stride, c.padding = l->pad;
        c.activation = act, c.qrelu_bits = l->qrelu_bits, c.loss = loss;
        c.weight_targets = m->weight_targets, c.binary_weights = m->binary_weights;
        return htnn_net_add_conv2d(net, &c, NULL);
    }
    if (l->kind == HTNN_LAYER_MAXPOOL2D) {
        htnn_maxpool2d_options pl = HTNN_MAXPOOL2D_OPTIONS_INIT;
        pl.size = l->kh, pl.stride = l->stride;
        pl.activation = act, pl.qrelu_bits = l->qrelu_bits, pl.loss = loss;
        pl.weight_targets = m->weight_targets;
        return htnn_net_add_maxpool2d(net, &pl, NULL);
    }
    if (l->kind == HTNN_LAYER_BATCHNORM) {
        htnn_batchnorm_options b = HTNN_BATCHNORM_OPTIONS_INIT;
        b.activation = act, b.qrelu_bits = l->qrelu_bits, b.loss = loss;
        b.weight_targets = m->weight_targets;
        return htnn_net_add_batchnorm(net, &b, NULL);
    }
    htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
    d.units = l->units;
    d.activation = act, d.qrelu_bits = l->qrelu_bits, d.loss = loss;
    d.weight_targets = m->weight_targets, d.binary_weights = m->binary_weights;
    return htnn_net_add_dense(net, &d, NULL);
}

/* --arch: the data's image shape becomes the net's input shape. */
static int add_arch(htnn_net *net, const model_opts *m, const size_t shape[3],
                    size_t out_units)
{
    const cli_layer_spec *top = &m->arch[m->arch_count - 1];
    htnn_status st = htnn_net_set_input_shape(net, shape[0], shape[1], shape[2]);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot use the data's shape %zux%zux%zu", shape[0],
                             shape[1], shape[2]);
    if (top->activation >= 0) {
        cli_error("--arch: the last layer is the output; drop its activation (use "
                  "--output hard for sign outputs)");
        return CLI_USAGE;
    }
    if (top->units != out_units) {
        cli_error("--arch: the last layer has %zu units but the data needs %zu",
                  top->units, out_units);
        return CLI_USAGE;
    }
    for (size_t i = 0; i < m->arch_count; i++)
        if ((st = add_spec(net, &m->arch[i], m, i + 1 == m->arch_count)) != HTNN_OK)
            return cli_lib_error(st, "--arch: cannot add layer %zu", i);
    return CLI_OK;
}

static int build_net(const train_opts *o, const htnn_data *train, size_t classes,
                     htnn_net **out)
{
    size_t width = htnn_data_width(train), shape[3] = {width, 1, 1};
    htnn_data_shape(train, &shape[0], &shape[1], &shape[2]);
    const model_opts *m = &o->model;
    htnn_net_options no = HTNN_NET_OPTIONS_INIT;
    htnn_net *net = NULL;
    int hard = m->output == HTNN_OUTPUT_HARD_THRESHOLD;
    size_t out_units = classes < 2 ? 2 : classes;
    size_t i;
    int rc = CLI_OK;
    htnn_status st;
    no.seed = o->seed;
    no.output = m->output;
    no.threads = o->threads;
    st = htnn_net_create(width, &no, &net);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot create the net");
    if (hard && out_units == 2)
        out_units = 1; /* one sign unit: labels 0/1 as -1/+1 */
    if (m->arch_count) {
        rc = add_arch(net, m, shape, out_units);
    } else {
        for (i = 0; i < m->hidden_count && rc == CLI_OK; i++)
            rc = add_layer(net, m->hidden[i], m->activation, m->loss, m);
        if (rc == CLI_OK)
            rc = add_layer(net, out_units, hard ? HTNN_ACT_SIGN : HTNN_ACT_IDENTITY,
                           hard ? m->output_loss : m->loss, m);
    }
    if (rc != CLI_OK) {
        htnn_net_free(net);
        return rc;
    }
    *out = net;
    return CLI_OK;
}

/* ---- training ---------------------------------------------------------- */

static int make_optimizer(const train_opts *o, htnn_optimizer **out)
{
    htnn_status st = htnn_optimizer_create(&o->optim, out);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot create the optimizer");
    return CLI_OK;
}

/* The heuristic of --heuristic (NULL: the library's default). */
static int make_heuristic(const train_opts *o, htnn_heuristic **out)
{
    htnn_hill_options hill = o->hill;
    htnn_exhaustive_options ex = o->exhaustive;
    htnn_status st = HTNN_OK;
    *out = NULL;
    if (o->reach_cost >= 0.0f)
        hill.reach_cost = ex.reach_cost = o->reach_cost;
    else if (o->ftprop)
        hill.reach_cost = ex.reach_cost = 0.3f;
    /* In FTPROP-MB, hill climbing refines the loss-driven targets with |G|
     * weights: started from the outputs on a wide layer, a few flips leave
     * most targets reinforcing the current outputs and training stalls
     * (784-512-512-10: chance level; see doc/benchmarks.md). */
    hill.start = o->hill_start >= 0 ? o->hill_start
                                    : (o->ftprop ? HTNN_HILL_START_OUTPUTS : HTNN_HILL_START_LOSS);
    hill.weighting = o->search_weighting >= 0
                         ? o->search_weighting
                         : (o->ftprop ? HTNN_SEARCH_WEIGHT_FLIP : HTNN_SEARCH_WEIGHT_GRADIENT);
    if (o->search_weighting >= 0)
        ex.weighting = o->search_weighting;
    if (o->heuristic == 0)
        st = htnn_heuristic_create_loss(out);
    else if (o->heuristic == 1)
        st = htnn_heuristic_create_hill(&hill, out);
    else if (o->heuristic == 2 || o->ftprop)
        st = htnn_heuristic_create_exhaustive(&ex, out);
    if (st != HTNN_OK)
        return cli_lib_error(st, "cannot create the heuristic");
    return CLI_OK;
}

/* --ftprop: one full-batch search over the training data. */
static int run_ftprop(const train_opts *o, htnn_net *net, train_data *td,
                      htnn_fit_result *res)
{
    htnn_ftprop_options fo = HTNN_FTPROP_OPTIONS_INIT;
    htnn_ftprop_result fr = HTNN_FTPROP_RESULT_INIT;
    htnn_heuristic *h = NULL;
    int rc = make_heuristic(o, &h);
    if (rc != CLI_OK)
        return rc;
    fo.restarts = o->restarts;
    htnn_status st = htnn_net_ftprop(net, h, htnn_data_features(td->train),
                                     htnn_data_labels(td->train),
                                     htnn_data_count(td->train), &fo, &fr);
    htnn_heuristic_free(h);
    if (st != HTNN_OK)
        return cli_lib_error(st, "full-batch FTPROP failed");
    res->epochs_run = 1;
    res->batches_run = 1;
    res->accuracy = fr.accuracy;
    res->loss = NAN;
    if (!o->quiet) {
        fprintf(stderr, "ftprop: %s after %zu heuristic calls, %zu unit fits, %zu "
                "restarts, %.3g s; training accuracy %.2f%%\n",
                fr.feasible ? "feasible targets found" : "no feasible targets found",
                fr.heuristic_calls, fr.solver_calls, fr.restarts, fr.seconds,
                100.0 * fr.accuracy);
        fprintf(stderr, "ftprop: layer separability:");
        for (size_t d = 0; d < htnn_net_layer_count(net) && d < HTNN_FTPROP_MAX_LAYERS; d++)
            fprintf(stderr, " %s", fr.separability[d] == HTNN_SEPARABILITY_SEPARABLE
                                       ? "separable"
                                   : fr.separability[d] == HTNN_SEPARABILITY_NOT_SEPARABLE
                                       ? "not-separable"
                                       : "undecided");
        fputc('\n', stderr);
    }
    return CLI_OK;
}

/* --checkpoint, --checkpoint-every and --resume; when resuming, says
 * where the fit continues and tells the progress display what was trained
 * before (so samples/s counts this run only). */
static int setup_checkpoint(const train_opts *o, const train_data *td, cli_progress *ps,
                            htnn_fit_options *fo)
{
    htnn_checkpoint_info info = HTNN_CHECKPOINT_INFO_INIT;
    htnn_status st;
    if (o->checkpoint == NULL)
        return CLI_OK;
    fo->checkpoint_path = o->checkpoint;
    fo->checkpoint_every = o->checkpoint_every;
    fo->resume = o->resume;
    if (!o->resume || access(o->checkpoint, F_OK) != 0) {
        if (o->resume && !o->quiet)
            fprintf(stderr, "checkpoint %s does not exist: starting from scratch\n",
                    o->checkpoint);
        return CLI_OK;
    }
    st = htnn_checkpoint_get_info(o->checkpoint, &info);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot resume from the checkpoint", o->checkpoint);
    size_t count = td->total, bs = o->batch < count ? o->batch : count;
    size_t in_epoch = info.batch * bs < count ? info.batch * bs : count;
    ps->resumed_samples = info.epoch * count + in_epoch;
    if (o->quiet)
        return CLI_OK;
    if (info.epoch == info.epochs)
        fprintf(stderr, "resuming from %s: its fit had finished (%zu batches)\n",
                o->checkpoint, info.batches_run);
    else
        fprintf(stderr, "resuming from %s at epoch %zu/%zu, batch %zu/%zu (%zu batches "
                "trained)\n", o->checkpoint, info.epoch + 1, info.epochs, info.batch + 1,
                info.batches, info.batches_run);
    return CLI_OK;
}

static int run_fit(const train_opts *o, htnn_net *net, train_data *td,
                   cli_progress *ps, htnn_fit_result *res)
{
    htnn_fit_options fo = HTNN_FIT_OPTIONS_INIT;
    htnn_optimizer *opt = NULL;
    htnn_status st;
    int rc = make_optimizer(o, &opt);
    if (rc != CLI_OK)
        return rc;
    fo.epochs = o->epochs;
    fo.batch_size = o->batch;
    fo.shuffle = o->shuffle;
    fo.progress = cli_progress_callback;
    fo.progress_user = ps;
    if (td->sharded) {
        fo.shard_first = td->first;
        fo.shard_total = td->total;
    }
    htnn_data *val = td->val ? td->val : (o->test_each_epoch ? td->test : NULL);
    if (val != NULL) {
        fo.val_x = htnn_data_features(val);
        fo.val_labels = htnn_data_labels(val);
        fo.val_count = htnn_data_count(val);
    }
    htnn_heuristic *h = NULL;
    if ((rc = make_heuristic(o, &h)) != CLI_OK) {
        htnn_optimizer_free(opt);
        return rc;
    }
    if ((rc = setup_checkpoint(o, td, ps, &fo)) != CLI_OK) {
        htnn_heuristic_free(h);
        htnn_optimizer_free(opt);
        return rc;
    }
    cli_progress_start(ps);
    st = htnn_net_fit(net, opt, h, htnn_data_features(td->train),
                      htnn_data_labels(td->train),
                      htnn_data_count(td->train), &fo, res);
    cli_progress_finish(ps);
    htnn_heuristic_free(h);
    htnn_optimizer_free(opt);
    if (st != HTNN_OK)
        return cli_lib_error(st, "training failed");
    return CLI_OK;
}

/* ---- MPI (--mpi) -------------------------------------------------------- */

#if HTNN_TOOL_MPI
static htnn_reducer *mpi_reducer;
static char mpi_checkpoint[4096];

/* MPI_Init; ranks other than 0 print nothing and keep their checkpoints
 * apart (every rank holds the same state). */
static int mpi_begin(train_opts *o)
{
    int ranks;
    if (!o->mpi)
        return CLI_OK;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) {
        cli_error("train: --mpi: MPI_Init failed");
        return CLI_FAIL;
    }
    MPI_Comm_rank(MPI_COMM_WORLD, &o->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    o->ranks = ranks;
    if (o->rank != 0) {
        o->quiet = 1;
        o->json = 0;
    } else if (!o->quiet) {
        fprintf(stderr, "mpi: %d ranks, global batch %zu (about %zu rows per rank)\n", ranks,
                o->batch, (o->batch + (size_t)ranks - 1) / (size_t)ranks);
    }
    if (o->rank != 0 && o->checkpoint != NULL) {
        snprintf(mpi_checkpoint, sizeof mpi_checkpoint, "%s.rank%d", o->checkpoint, o->rank);
        o->checkpoint = mpi_checkpoint;
    }
    return CLI_OK;
}

/* Every rank's net sums its gradients with the others'. */
static int mpi_attach(const train_opts *o, htnn_net *net)
{
    htnn_status st;
    if (!o->mpi)
        return CLI_OK;
    /* the fastest sums measured on one node (doc/distributed.md); on several
     * nodes shared memory has no effect and MPI's collectives are used */
    int flags = HTNN_MPI_SHARDED_STEP | HTNN_MPI_SHARED_MEMORY;
    if ((st = htnn_mpi_reducer_create(MPI_COMM_WORLD, flags, &mpi_reducer)) != HTNN_OK ||
        (st = htnn_net_set_reducer(net, mpi_reducer)) != HTNN_OK)
        return cli_lib_error(st, "--mpi: cannot set up the reducer");
    htnn_mpi_stats stats = HTNN_MPI_STATS_INIT;
    if (!o->quiet && htnn_mpi_reducer_stats(mpi_reducer, &stats) == HTNN_OK)
        fprintf(stderr, "mpi: sums %s, sharded optimizer step\n",
                stats.shared_memory ? "through shared memory (one node)" : "with MPI collectives");
    return CLI_OK;
}

/* This rank's shard [*first, *first + *n) of `total` training examples. */
static int mpi_shard(const train_opts *o, size_t total, size_t *first, size_t *n)
{
    htnn_status st = htnn_mpi_shard(total, o->rank, o->ranks, first, n);
    if (st != HTNN_OK)
        return cli_lib_error(st, "--mpi: cannot shard %zu examples", total);
    if (*n == 0) {
        cli_error("--mpi: %zu training examples for %d ranks: every rank needs one",
                  total, o->ranks);
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* The largest of every rank's v. */
static size_t mpi_max(const train_opts *o, size_t v)
{
    unsigned long long mine = v, most = v;
    (void)o;
    MPI_Allreduce(&mine, &most, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return (size_t)most;
}

/* A failure on one rank must end the job, not leave the others waiting. */
static int mpi_end(const train_opts *o, int rc)
{
    if (!o->mpi)
        return rc;
    if (rc != CLI_OK && rc != CLI_INTERRUPTED)
        MPI_Abort(MPI_COMM_WORLD, rc);
    htnn_mpi_reducer_free(mpi_reducer);
    MPI_Finalize();
    return rc;
}
#else
static int mpi_begin(train_opts *o) { (void)o; return CLI_OK; }
static int mpi_attach(const train_opts *o, htnn_net *net) { (void)o, (void)net; return CLI_OK; }
static int mpi_end(const train_opts *o, int rc) { (void)o; return rc; }
/* without MPI, --mpi is refused: one rank holds everything */
static int mpi_shard(const train_opts *o, size_t total, size_t *first, size_t *n)
{
    (void)o;
    *first = 0;
    *n = total;
    return CLI_OK;
}
static size_t mpi_max(const train_opts *o, size_t v) { (void)o; return v; }
#endif

/* ---- report ------------------------------------------------------------ */

typedef struct train_summary {
    double test_loss;
    double test_accuracy;
    size_t test_count;
} train_summary;

static void print_json(const train_opts *o, const train_data *td,
                       const cli_progress *ps, const htnn_fit_result *res,
                       const train_summary *sum)
{
    FILE *f = stdout;
    fprintf(f, "{\"command\":\"train\",\"epochs\":%zu,\"epochs_run\":%zu,"
            "\"batch\":%zu,\"threads\":%d,\"train_samples\":%zu,"
            "\"classes\":%zu,\"seconds\":", o->epochs, res->epochs_run,
            o->batch, o->threads, td->total, td->classes);
    cli_json_number(f, ps->train_seconds);
    fputs(",\"samples_per_sec\":", f);
    cli_json_number(f, cli_progress_rate(ps));
    fputs(",\"train_loss\":", f);
    cli_json_number(f, res->loss);
    fputs(",\"train_accuracy\":", f);
    cli_json_number(f, res->accuracy);
    fputs(",\"val_accuracy\":", f);
    cli_json_number(f, td->val != NULL ? res->val_accuracy : NAN);
    fprintf(f, ",\"test_samples\":%zu,\"test_accuracy\":", sum->test_count);
    cli_json_number(f, sum->test_accuracy);
    fputs(",\"test_loss\":", f);
    cli_json_number(f, sum->test_loss);
    fprintf(f, ",\"interrupted\":%s,\"model\":", res->stopped ? "true"
                                                               : "false");
    cli_json_string(f, o->out);
    fputs("}\n", f);
}

static void print_summary(const train_opts *o, const cli_progress *ps,
                          const htnn_fit_result *res,
                          const train_summary *sum)
{
    FILE *f = o->json ? stderr : stdout;
    if (o->json && o->quiet)
        return;
    if (res->stopped)
        fprintf(f, "interrupted in epoch %zu/%zu after batch %zu/%zu\n",
                ps->last_epoch + 1, o->epochs, ps->last_batch + 1,
                ps->last_batches);
    if (!o->ftprop) /* full-batch FTPROP reports its own search above */
        fprintf(f, "trained %zu samples in %.3g s: %.0f samples/s\n",
                ps->samples_done, ps->train_seconds, cli_progress_rate(ps));
    if (res->batches_run > 0)
        fprintf(f, "train accuracy: %.2f%% (during the last epoch)\n",
                100.0 * res->accuracy);
    if (sum->test_count > 0)
        fprintf(f, "test accuracy: %.2f%% (%zu examples), loss %.4f\n",
                100.0 * sum->test_accuracy, sum->test_count, sum->test_loss);
    fprintf(f, "model saved to %s\n", o->out);
}

static int save_and_report(const train_opts *o, htnn_net *net,
                           train_data *td, const cli_progress *ps,
                           const htnn_fit_result *res)
{
    train_summary sum = {NAN, NAN, 0};
    htnn_status st;
    int rc;
    if (o->rank != 0)   /* --mpi: rank 0 saves and reports */
        return res->stopped ? CLI_INTERRUPTED : CLI_OK;
    st = htnn_net_save(net, o->out);
    if (st != HTNN_OK)
        return cli_file_error(st, "cannot save the model", o->out);
    if (td->test != NULL) {
        rc = cli_evaluate(net, td->test, &sum.test_loss, &sum.test_accuracy);
        if (rc != CLI_OK)
            return rc;
        sum.test_count = htnn_data_count(td->test);
    }
    print_summary(o, ps, res, &sum);
    if (o->json)
        print_json(o, td, ps, res, &sum);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output");
        return CLI_FAIL;
    }
    return res->stopped ? CLI_INTERRUPTED : CLI_OK;
}

int cli_train(int argc, char **argv)
{
    train_opts o;
    train_data td;
    cli_progress ps;
    htnn_fit_result res = HTNN_FIT_RESULT_INIT;
    htnn_net *net = NULL;
    int rc;
    train_opts_init(&o);
    memset(&td, 0, sizeof td);
    rc = parse_train(argc, argv, &o);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    if ((rc = mpi_begin(&o)) != CLI_OK)
        return rc;
    rc = load_train_data(&o, &td);
    if (rc == CLI_OK)
        rc = build_net(&o, td.train, td.classes, &net);
    if (rc == CLI_OK)
        rc = mpi_attach(&o, net);
    if (rc == CLI_OK) {
        cli_progress_init(&ps, o.quiet, td.val != NULL || (o.test_each_epoch && td.test),
                          o.batch, td.total);
        ps.val_name = td.val == NULL ? "test" : "val";
        rc = o.ftprop ? run_ftprop(&o, net, &td, &res)
                      : run_fit(&o, net, &td, &ps, &res);
    }
    if (rc == CLI_OK)
        rc = save_and_report(&o, net, &td, &ps, &res);
    htnn_net_free(net);
    train_data_free(&td);
    return mpi_end(&o, rc);
}
