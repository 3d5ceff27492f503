/*
 * htnn - the libhtnn command-line program.
 * SPDX-License-Identifier: MIT
 *
 * cli_progress.c - the training progress display (an in-place bar on a
 * terminal, one line per epoch otherwise), training-time accounting, and
 * the SIGINT flag that stops htnn_net_fit after the current batch.
 */
#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#define BAR_WIDTH 24
#define DRAW_INTERVAL 0.1 /* seconds between progress bar updates */

/* Set by the SIGINT handler, read by the progress callback: the only
 * mutable global of the tool. */
static volatile sig_atomic_t stop_requested = 0;

static void on_sigint(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* Installs the handler, unless SIGINT is ignored (a background job of a
 * non-interactive shell), which is then left ignored. */
static void install_sigint(struct sigaction *old)
{
    struct sigaction sa;
    memset(old, 0, sizeof *old);
    stop_requested = 0;
    if (sigaction(SIGINT, NULL, old) != 0 || old->sa_handler == SIG_IGN)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C ends the program */
    sigaction(SIGINT, &sa, NULL);
}

/* 1 if the library's progress struct includes the field ending at `end`. */
static int progress_has(const htnn_progress *pr, size_t end)
{
    return pr->struct_size >= end;
}

static size_t epoch_samples(const cli_progress *s, size_t batch)
{
    size_t done = (batch + 1) * s->batch_size;
    return done < s->train_count ? done : s->train_count;
}

static double rate(double samples, double seconds)
{
    return seconds > 0.0 ? samples / seconds : 0.0;
}

static void draw_bar(cli_progress *s, const htnn_progress *pr, double now)
{
    char bar[BAR_WIDTH + 1];
    size_t filled = pr->batches > 0 ? (pr->batch + 1) * BAR_WIDTH / pr->batches
                                    : 0;
    size_t done = epoch_samples(s, pr->batch);
    memset(bar, '#', filled);
    memset(bar + filled, '.', BAR_WIDTH - filled);
    bar[BAR_WIDTH] = '\0';
    fprintf(stderr, "\repoch %zu/%zu [%s] %zu/%zu loss %.4f acc %.2f%% "
            "%.0f samples/s\033[K", pr->epoch + 1, pr->epochs, bar,
            pr->batch + 1, pr->batches, pr->loss, 100.0 * pr->accuracy,
            rate((double)done, s->epoch_seconds));
    fflush(stderr);
    s->last_draw = now;
    s->bar_visible = 1;
}

static void print_epoch(cli_progress *s, const htnn_progress *pr)
{
    size_t val_end = offsetof(htnn_progress, val_accuracy) + sizeof(double);
    size_t lr_end = offsetof(htnn_progress, learning_rate) + sizeof(double);
    if (s->tty)
        fputc('\r', stderr);
    fprintf(stderr, "epoch %zu/%zu loss %.4f train-acc %.2f%%", pr->epoch + 1,
            pr->epochs, pr->loss, 100.0 * pr->accuracy);
    if (progress_has(pr, val_end) && isfinite(pr->val_accuracy))
        fprintf(stderr, " %s-loss %.4f %s-acc %.2f%%", s->val_name, pr->val_loss,
                s->val_name, 100.0 * pr->val_accuracy);
    if (progress_has(pr, lr_end))
        fprintf(stderr, " lr %.3g", pr->learning_rate);
    fprintf(stderr, " %.1f s %.0f samples/s%s\n", s->epoch_seconds,
            rate((double)s->train_count, s->epoch_seconds),
            s->tty ? "\033[K" : "");
    fflush(stderr);
    s->bar_visible = 0;
}

/* Accounts the time since the previous callback as training time; at the
 * end of an epoch with validation, that interval also holds the validation
 * pass, so the epoch's mean batch time stands in for it. */
static void account_time(cli_progress *s, const htnn_progress *pr,
                         double now)
{
    double dt = now - s->last_time;
    s->last_time = now;
    if (pr->batch == 0)
        s->epoch_seconds = 0.0;
    if (pr->end_of_epoch && s->has_val && pr->batch > 0)
        dt = s->epoch_seconds / (double)pr->batch;
    s->epoch_seconds += dt;
    s->train_seconds += dt;
    s->samples_done = pr->epoch * s->train_count + epoch_samples(s, pr->batch) -
                      s->resumed_samples;
    s->last_epoch = pr->epoch;
    s->last_batch = pr->batch;
    s->last_batches = pr->batches;
}

int cli_progress_callback(const htnn_progress *pr, void *user)
{
    cli_progress *s = user;
    double now = cli_now();
    account_time(s, pr, now);
    if (!s->quiet) {
        if (pr->end_of_epoch)
            print_epoch(s, pr);
        else if (s->tty && now - s->last_draw >= DRAW_INTERVAL)
            draw_bar(s, pr, now);
    }
    return stop_requested != 0;
}

void cli_progress_init(cli_progress *ps, int quiet, int has_val,
                       size_t batch_size, size_t train_count)
{
    memset(ps, 0, sizeof *ps);
    ps->tty = isatty(fileno(stderr));
    ps->quiet = quiet;
    ps->has_val = has_val;
    ps->val_name = "val";
    ps->batch_size = batch_size;
    ps->train_count = train_count;
}

void cli_progress_start(cli_progress *ps)
{
    install_sigint(&ps->old_sigint);
    ps->last_time = ps->last_draw = cli_now();
}

void cli_progress_finish(cli_progress *ps)
{
    sigaction(SIGINT, &ps->old_sigint, NULL);
    if (ps->bar_visible) {
        fputc('\n', stderr);
        ps->bar_visible = 0;
    }
}

double cli_progress_rate(const cli_progress *ps)
{
    return rate((double)ps->samples_done, ps->train_seconds);
}
