/* Prints the size of every public struct the Python package mirrors and the
 * offset of each field, one "struct[.field] number" per line, so the tests
 * can compare them with the ctypes.Structure definitions.
 * SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdio.h>

#include <htnn/htnn.h>

#define SIZE(T) printf("%s %zu\n", #T, sizeof(T))
#define FIELD(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main(void)
{
    SIZE(htnn_net_options);
    FIELD(htnn_net_options, seed);
    FIELD(htnn_net_options, output);
    FIELD(htnn_net_options, threads);
    FIELD(htnn_net_options, targets_after_update);

    SIZE(htnn_dense_options);
    FIELD(htnn_dense_options, units);
    FIELD(htnn_dense_options, activation);
    FIELD(htnn_dense_options, qrelu_bits);
    FIELD(htnn_dense_options, loss);
    FIELD(htnn_dense_options, weight_targets);
    FIELD(htnn_dense_options, bias);
    FIELD(htnn_dense_options, binary_weights);

    SIZE(htnn_conv2d_options);
    FIELD(htnn_conv2d_options, channels);
    FIELD(htnn_conv2d_options, kernel_h);
    FIELD(htnn_conv2d_options, kernel_w);
    FIELD(htnn_conv2d_options, stride);
    FIELD(htnn_conv2d_options, padding);
    FIELD(htnn_conv2d_options, activation);
    FIELD(htnn_conv2d_options, qrelu_bits);
    FIELD(htnn_conv2d_options, loss);
    FIELD(htnn_conv2d_options, weight_targets);
    FIELD(htnn_conv2d_options, bias);
    FIELD(htnn_conv2d_options, binary_weights);

    SIZE(htnn_maxpool2d_options);
    FIELD(htnn_maxpool2d_options, size);
    FIELD(htnn_maxpool2d_options, stride);
    FIELD(htnn_maxpool2d_options, activation);
    FIELD(htnn_maxpool2d_options, qrelu_bits);
    FIELD(htnn_maxpool2d_options, loss);
    FIELD(htnn_maxpool2d_options, weight_targets);

    SIZE(htnn_batchnorm_options);
    FIELD(htnn_batchnorm_options, momentum);
    FIELD(htnn_batchnorm_options, epsilon);
    FIELD(htnn_batchnorm_options, activation);
    FIELD(htnn_batchnorm_options, qrelu_bits);
    FIELD(htnn_batchnorm_options, loss);
    FIELD(htnn_batchnorm_options, weight_targets);

    SIZE(htnn_layer_info);
    FIELD(htnn_layer_info, kind);
    FIELD(htnn_layer_info, index);
    FIELD(htnn_layer_info, in_width);
    FIELD(htnn_layer_info, out_width);
    FIELD(htnn_layer_info, activation);
    FIELD(htnn_layer_info, qrelu_bits);
    FIELD(htnn_layer_info, loss);
    FIELD(htnn_layer_info, weight_targets);
    FIELD(htnn_layer_info, bias);
    FIELD(htnn_layer_info, weight_count);
    FIELD(htnn_layer_info, binary_weights);
    FIELD(htnn_layer_info, in_channels);
    FIELD(htnn_layer_info, in_height);
    FIELD(htnn_layer_info, in_columns);
    FIELD(htnn_layer_info, out_channels);
    FIELD(htnn_layer_info, out_height);
    FIELD(htnn_layer_info, out_columns);
    FIELD(htnn_layer_info, kernel_h);
    FIELD(htnn_layer_info, kernel_w);
    FIELD(htnn_layer_info, stride);
    FIELD(htnn_layer_info, padding);
    FIELD(htnn_layer_info, bias_count);

    SIZE(htnn_optimizer_options);
    FIELD(htnn_optimizer_options, kind);
    FIELD(htnn_optimizer_options, learning_rate);
    FIELD(htnn_optimizer_options, momentum);
    FIELD(htnn_optimizer_options, nesterov);
    FIELD(htnn_optimizer_options, beta1);
    FIELD(htnn_optimizer_options, beta2);
    FIELD(htnn_optimizer_options, epsilon);
    FIELD(htnn_optimizer_options, weight_decay);
    FIELD(htnn_optimizer_options, schedule);
    FIELD(htnn_optimizer_options, step_epochs);
    FIELD(htnn_optimizer_options, step_gamma);
    FIELD(htnn_optimizer_options, cosine_epochs);
    FIELD(htnn_optimizer_options, min_learning_rate);

    SIZE(htnn_layer_view);
    FIELD(htnn_layer_view, layer);
    FIELD(htnn_layer_view, batch);
    FIELD(htnn_layer_view, in_width);
    FIELD(htnn_layer_view, out_width);
    FIELD(htnn_layer_view, input);
    FIELD(htnn_layer_view, input_z);
    FIELD(htnn_layer_view, z);
    FIELD(htnn_layer_view, weights);
    FIELD(htnn_layer_view, bias);
    FIELD(htnn_layer_view, targets);
    FIELD(htnn_layer_view, target_weights);
    FIELD(htnn_layer_view, grad_z);
    FIELD(htnn_layer_view, grad_input);
    FIELD(htnn_layer_view, activation);
    FIELD(htnn_layer_view, loss);
    FIELD(htnn_layer_view, below_activation);
    FIELD(htnn_layer_view, below_qrelu_bits);

    SIZE(htnn_heuristic_ops);
    FIELD(htnn_heuristic_ops, name);
    FIELD(htnn_heuristic_ops, set_targets);
    FIELD(htnn_heuristic_ops, destroy);

    SIZE(htnn_progress);
    FIELD(htnn_progress, epoch);
    FIELD(htnn_progress, epochs);
    FIELD(htnn_progress, batch);
    FIELD(htnn_progress, batches);
    FIELD(htnn_progress, loss);
    FIELD(htnn_progress, accuracy);
    FIELD(htnn_progress, end_of_epoch);
    FIELD(htnn_progress, val_loss);
    FIELD(htnn_progress, val_accuracy);
    FIELD(htnn_progress, learning_rate);

    SIZE(htnn_fit_options);
    FIELD(htnn_fit_options, epochs);
    FIELD(htnn_fit_options, batch_size);
    FIELD(htnn_fit_options, shuffle);
    FIELD(htnn_fit_options, progress);
    FIELD(htnn_fit_options, progress_user);
    FIELD(htnn_fit_options, val_x);
    FIELD(htnn_fit_options, val_labels);
    FIELD(htnn_fit_options, val_count);
    FIELD(htnn_fit_options, checkpoint_path);
    FIELD(htnn_fit_options, checkpoint_every);
    FIELD(htnn_fit_options, resume);
    FIELD(htnn_fit_options, shard_first);
    FIELD(htnn_fit_options, shard_total);

    SIZE(htnn_fit_result);
    FIELD(htnn_fit_result, epochs_run);
    FIELD(htnn_fit_result, batches_run);
    FIELD(htnn_fit_result, stopped);
    FIELD(htnn_fit_result, loss);
    FIELD(htnn_fit_result, accuracy);
    FIELD(htnn_fit_result, val_loss);
    FIELD(htnn_fit_result, val_accuracy);

    SIZE(htnn_batch_result);
    FIELD(htnn_batch_result, loss);
    FIELD(htnn_batch_result, correct);

    SIZE(htnn_reducer);
    FIELD(htnn_reducer, ranks);
    FIELD(htnn_reducer, rank);
    FIELD(htnn_reducer, allreduce_sum);
    FIELD(htnn_reducer, start_sum);
    FIELD(htnn_reducer, wait_all);
    FIELD(htnn_reducer, user);
    FIELD(htnn_reducer, reduce_scatter_sum);
    FIELD(htnn_reducer, allgather);

    SIZE(htnn_csv_options);
    FIELD(htnn_csv_options, label_column);
    FIELD(htnn_csv_options, header);
    FIELD(htnn_csv_options, delimiter);
    FIELD(htnn_csv_options, scale);

    /* Added after 0.1.0 (hill-climbing / exhaustive heuristics, full-batch
     * FTPROP): printed when the headers have them. */
#ifdef HTNN_HILL_OPTIONS_INIT
    SIZE(htnn_hill_options);
    FIELD(htnn_hill_options, max_sweeps);
    FIELD(htnn_hill_options, flips_per_sweep);
    FIELD(htnn_hill_options, start);
    FIELD(htnn_hill_options, reach_cost);
    FIELD(htnn_hill_options, weighting);
#endif
#ifdef HTNN_EXHAUSTIVE_OPTIONS_INIT
    SIZE(htnn_exhaustive_options);
    FIELD(htnn_exhaustive_options, max_width);
    FIELD(htnn_exhaustive_options, reach_cost);
    FIELD(htnn_exhaustive_options, weighting);
#endif
#ifdef HTNN_SEARCH_STATS_INIT
    SIZE(htnn_search_stats);
    FIELD(htnn_search_stats, calls);
    FIELD(htnn_search_stats, rows);
    FIELD(htnn_search_stats, evaluations);
    FIELD(htnn_search_stats, flips);
    FIELD(htnn_search_stats, sweeps);
#endif
#ifdef HTNN_FTPROP_OPTIONS_INIT
    SIZE(htnn_ftprop_options);
    FIELD(htnn_ftprop_options, attempts);
    FIELD(htnn_ftprop_options, restarts);
    FIELD(htnn_ftprop_options, max_heuristic_calls);
    FIELD(htnn_ftprop_options, solver_epochs);
    FIELD(htnn_ftprop_options, time_limit);
    FIELD(htnn_ftprop_options, solver);
    FIELD(htnn_ftprop_options, search_loss);
#endif
#ifdef HTNN_FTPROP_RESULT_INIT
    SIZE(htnn_ftprop_result);
    FIELD(htnn_ftprop_result, feasible);
    FIELD(htnn_ftprop_result, accuracy);
    FIELD(htnn_ftprop_result, separability);
    FIELD(htnn_ftprop_result, solver);
    FIELD(htnn_ftprop_result, heuristic_calls);
    FIELD(htnn_ftprop_result, solver_calls);
    FIELD(htnn_ftprop_result, solver_iterations);
    FIELD(htnn_ftprop_result, restarts);
    FIELD(htnn_ftprop_result, budget_exhausted);
    FIELD(htnn_ftprop_result, seconds);
#endif

    /* default values of the *_INIT macros, to compare with the Python side */
    {
        htnn_net_options n = HTNN_NET_OPTIONS_INIT;
        htnn_dense_options d = HTNN_DENSE_OPTIONS_INIT;
        htnn_optimizer_options o = HTNN_OPTIMIZER_OPTIONS_INIT;
        htnn_fit_options f = HTNN_FIT_OPTIONS_INIT;
        htnn_conv2d_options c = HTNN_CONV2D_OPTIONS_INIT;
        htnn_maxpool2d_options p = HTNN_MAXPOOL2D_OPTIONS_INIT;
        htnn_batchnorm_options b = HTNN_BATCHNORM_OPTIONS_INIT;
        printf("default.net.seed %llu\n", (unsigned long long)n.seed);
        printf("default.dense.activation %d\n", d.activation);
        printf("default.dense.qrelu_bits %d\n", d.qrelu_bits);
        printf("default.dense.loss %d\n", d.loss);
        printf("default.optimizer.kind %d\n", o.kind);
        printf("default.optimizer.learning_rate %.9g\n", (double)o.learning_rate);
        printf("default.optimizer.beta2 %.9g\n", (double)o.beta2);
        printf("default.optimizer.epsilon %.9g\n", (double)o.epsilon);
        printf("default.optimizer.step_epochs %zu\n", o.step_epochs);
        printf("default.optimizer.step_gamma %.9g\n", (double)o.step_gamma);
        printf("default.fit.epochs %zu\n", f.epochs);
        printf("default.fit.batch_size %zu\n", f.batch_size);
        printf("default.conv2d.kernel_h %zu\n", c.kernel_h);
        printf("default.conv2d.kernel_w %zu\n", c.kernel_w);
        printf("default.conv2d.stride %zu\n", c.stride);
        printf("default.conv2d.padding %zu\n", c.padding);
        printf("default.conv2d.activation %d\n", c.activation);
        printf("default.conv2d.qrelu_bits %d\n", c.qrelu_bits);
        printf("default.conv2d.loss %d\n", c.loss);
        printf("default.conv2d.weight_targets %d\n", c.weight_targets);
        printf("default.conv2d.bias %d\n", c.bias);
        printf("default.conv2d.binary_weights %d\n", c.binary_weights);
        printf("default.maxpool2d.size %zu\n", p.size);
        printf("default.maxpool2d.stride %zu\n", p.stride);
        printf("default.maxpool2d.activation %d\n", p.activation);
        printf("default.maxpool2d.qrelu_bits %d\n", p.qrelu_bits);
        printf("default.maxpool2d.loss %d\n", p.loss);
        printf("default.maxpool2d.weight_targets %d\n", p.weight_targets);
        printf("default.batchnorm.momentum %.9g\n", (double)b.momentum);
        printf("default.batchnorm.epsilon %.9g\n", (double)b.epsilon);
        printf("default.batchnorm.activation %d\n", b.activation);
        printf("default.batchnorm.qrelu_bits %d\n", b.qrelu_bits);
        printf("default.batchnorm.loss %d\n", b.loss);
        printf("default.batchnorm.weight_targets %d\n", b.weight_targets);
    }
    return 0;
}
