"""Loading libhtnn with ctypes: the library search, the C structs mirrored
field by field, and argtypes/restype for every function the package calls.

Search order (doc: README, section Python):

1. ``HTNN_LIBRARY``: a path to the shared library;
2. the soname ``libhtnn.so.0`` through the dynamic loader (an installed
   library, or ``LD_LIBRARY_PATH``);
3. the libdir recorded by ``meson install`` next to an installed package;
4. a build tree: ``$HTNN_BUILD_DIR/lib/libhtnn.so.0``, then ``build/`` and
   ``build-py/`` next to this source tree (``python/htnn/../../build``).
"""

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double,
                    c_float, c_int, c_size_t, c_uint, c_uint64, c_void_p)

__all__ = ["lib", "path", "has", "SONAME"]

SONAME = "libhtnn.so.0"


def _candidates():
    env = os.environ.get("HTNN_LIBRARY")
    if env:
        yield env, True  # an explicit choice must work
        return
    yield SONAME, False
    try:
        from . import _install  # written by meson install
        yield os.path.join(_install.LIBDIR, SONAME), False
    except ImportError:
        pass
    build = os.environ.get("HTNN_BUILD_DIR")
    if build:
        yield os.path.join(build, "lib", SONAME), False
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    for name in ("build", "build-py"):
        yield os.path.join(root, name, "lib", SONAME), False


def _load():
    tried = []
    for cand, must in _candidates():
        try:
            return ctypes.CDLL(cand), cand
        except OSError as e:
            if must:
                raise ImportError("htnn: cannot load HTNN_LIBRARY=%r: %s" % (cand, e)) from e
            tried.append("%s (%s)" % (cand, e))
    raise ImportError("htnn: cannot find libhtnn; set HTNN_LIBRARY to the path of "
                      "libhtnn.so.0, install the library (meson install), or set "
                      "HTNN_BUILD_DIR to a build directory.  Tried:\n  " +
                      "\n  ".join(tried))


lib, path = _load()

# --- structs (mirrors of include/htnn/*.h, field for field) -----------------


class NetOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("seed", c_uint64), ("output", c_int),
                ("threads", c_int), ("targets_after_update", c_int)]


class DenseOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("units", c_size_t), ("activation", c_int),
                ("qrelu_bits", c_int), ("loss", c_int), ("weight_targets", c_int),
                ("bias", c_int), ("binary_weights", c_int)]


class Conv2dOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("channels", c_size_t), ("kernel_h", c_size_t),
                ("kernel_w", c_size_t), ("stride", c_size_t), ("padding", c_size_t),
                ("activation", c_int), ("qrelu_bits", c_int), ("loss", c_int),
                ("weight_targets", c_int), ("bias", c_int), ("binary_weights", c_int)]


class MaxPool2dOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("size", c_size_t), ("stride", c_size_t),
                ("activation", c_int), ("qrelu_bits", c_int), ("loss", c_int),
                ("weight_targets", c_int)]


class BatchNormOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("momentum", c_float), ("epsilon", c_float),
                ("activation", c_int), ("qrelu_bits", c_int), ("loss", c_int),
                ("weight_targets", c_int)]


class LayerInfo(Structure):
    _fields_ = [("struct_size", c_size_t), ("kind", c_int), ("index", c_size_t),
                ("in_width", c_size_t), ("out_width", c_size_t), ("activation", c_int),
                ("qrelu_bits", c_int), ("loss", c_int), ("weight_targets", c_int),
                ("bias", c_int), ("weight_count", c_size_t), ("binary_weights", c_int),
                # since 0.2
                ("in_channels", c_size_t), ("in_height", c_size_t), ("in_columns", c_size_t),
                ("out_channels", c_size_t), ("out_height", c_size_t),
                ("out_columns", c_size_t), ("kernel_h", c_size_t), ("kernel_w", c_size_t),
                ("stride", c_size_t), ("padding", c_size_t), ("bias_count", c_size_t)]


# The sizes of the structs that grew after the first 0.1.0 headers: the
# package passes the smaller size when the newer fields are not used, so it
# works with libraries from before and after the change (the library reads
# only the bytes struct_size covers).
LEGACY_SIZE = {DenseOptions: DenseOptions.binary_weights.offset,
               LayerInfo: LayerInfo.binary_weights.offset}


class OptimizerOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("kind", c_int), ("learning_rate", c_float),
                ("momentum", c_float), ("nesterov", c_int), ("beta1", c_float),
                ("beta2", c_float), ("epsilon", c_float), ("weight_decay", c_float),
                ("schedule", c_int), ("step_epochs", c_size_t), ("step_gamma", c_float),
                ("cosine_epochs", c_size_t), ("min_learning_rate", c_float)]


class LayerView(Structure):
    _fields_ = [("struct_size", c_size_t), ("layer", c_size_t), ("batch", c_size_t),
                ("in_width", c_size_t), ("out_width", c_size_t),
                ("input", c_void_p), ("input_z", c_void_p), ("z", c_void_p),
                ("weights", c_void_p), ("bias", c_void_p), ("targets", c_void_p),
                ("target_weights", c_void_p), ("grad_z", c_void_p),
                ("grad_input", c_void_p), ("activation", c_int), ("loss", c_int),
                ("below_activation", c_int), ("below_qrelu_bits", c_int)]


# htnn_status (*set_targets)(void *state, const htnn_layer_view *view,
#                            float *targets, float *weights)
SET_TARGETS_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p, c_void_p)
DESTROY_FN = CFUNCTYPE(None, c_void_p)


class HeuristicOps(Structure):
    _fields_ = [("struct_size", c_size_t), ("name", c_char_p),
                ("set_targets", SET_TARGETS_FN), ("destroy", DESTROY_FN)]


class Progress(Structure):
    _fields_ = [("struct_size", c_size_t), ("epoch", c_size_t), ("epochs", c_size_t),
                ("batch", c_size_t), ("batches", c_size_t), ("loss", c_double),
                ("accuracy", c_double), ("end_of_epoch", c_int), ("val_loss", c_double),
                ("val_accuracy", c_double), ("learning_rate", c_double)]


# int (*htnn_progress_fn)(const htnn_progress *progress, void *user)
PROGRESS_FN = CFUNCTYPE(c_int, POINTER(Progress), c_void_p)


class FitOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("epochs", c_size_t), ("batch_size", c_size_t),
                ("shuffle", c_int), ("progress", PROGRESS_FN), ("progress_user", c_void_p),
                ("val_x", c_void_p), ("val_labels", c_void_p), ("val_count", c_size_t),
                # since 0.2
                ("checkpoint_path", c_char_p), ("checkpoint_every", c_size_t),
                ("resume", c_int),
                # since 0.3
                ("shard_first", c_size_t), ("shard_total", c_size_t)]


class FitResult(Structure):
    _fields_ = [("struct_size", c_size_t), ("epochs_run", c_size_t),
                ("batches_run", c_size_t), ("stopped", c_int), ("loss", c_double),
                ("accuracy", c_double), ("val_loss", c_double), ("val_accuracy", c_double)]


class BatchResult(Structure):
    _fields_ = [("struct_size", c_size_t), ("loss", c_double), ("correct", c_size_t)]


# htnn_status (*allreduce_sum)(float *values, size_t count, void *user), and
# start_sum, reduce_scatter_sum, allgather alike; htnn_status (*wait_all)(void *user)
SUM_FN = CFUNCTYPE(c_int, c_void_p, c_size_t, c_void_p)
WAIT_FN = CFUNCTYPE(c_int, c_void_p)


class Reducer(Structure):
    _fields_ = [("struct_size", c_size_t), ("ranks", c_int), ("rank", c_int),
                ("allreduce_sum", SUM_FN), ("start_sum", SUM_FN), ("wait_all", WAIT_FN),
                ("user", c_void_p), ("reduce_scatter_sum", SUM_FN), ("allgather", SUM_FN)]


class CsvOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("label_column", c_int), ("header", c_int),
                ("delimiter", c_char), ("scale", c_int)]


# --- structs of optional functions (heuristic.h / ftprop.h, newer libraries) --

class HillOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("max_sweeps", c_size_t),
                ("flips_per_sweep", c_size_t), ("start", c_int), ("reach_cost", c_float),
                ("weighting", c_int)]


class ExhaustiveOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("max_width", c_size_t), ("reach_cost", c_float),
                ("weighting", c_int)]


class SearchStats(Structure):
    _fields_ = [("struct_size", c_size_t), ("calls", c_uint64), ("rows", c_uint64),
                ("evaluations", c_uint64), ("flips", c_uint64), ("sweeps", c_uint64)]


FTPROP_MAX_LAYERS = 16


class FtpropOptions(Structure):
    _fields_ = [("struct_size", c_size_t), ("attempts", c_size_t), ("restarts", c_size_t),
                ("max_heuristic_calls", c_size_t), ("solver_epochs", c_size_t),
                ("time_limit", c_double), ("solver", c_int), ("search_loss", c_int)]


class FtpropResult(Structure):
    _fields_ = [("struct_size", c_size_t), ("feasible", c_int), ("accuracy", c_double),
                ("separability", c_int * FTPROP_MAX_LAYERS), ("solver", c_int),
                ("heuristic_calls", c_size_t), ("solver_calls", c_size_t),
                ("solver_iterations", c_uint64), ("restarts", c_size_t),
                ("budget_exhausted", c_int), ("seconds", c_double)]


def new(struct, **fields):
    """A struct with struct_size set, then the given fields."""
    s = struct()
    s.struct_size = ctypes.sizeof(struct)
    for k, v in fields.items():
        setattr(s, k, v)
    return s


STRUCTS = {"htnn_net_options": NetOptions, "htnn_dense_options": DenseOptions,
           "htnn_layer_info": LayerInfo, "htnn_optimizer_options": OptimizerOptions,
           "htnn_layer_view": LayerView, "htnn_heuristic_ops": HeuristicOps,
           "htnn_progress": Progress, "htnn_fit_options": FitOptions,
           "htnn_fit_result": FitResult, "htnn_batch_result": BatchResult,
           "htnn_csv_options": CsvOptions, "htnn_conv2d_options": Conv2dOptions,
           "htnn_maxpool2d_options": MaxPool2dOptions,
           "htnn_batchnorm_options": BatchNormOptions, "htnn_reducer": Reducer}
# Checked against the C layouts only when the headers have them.
OPTIONAL_STRUCTS = {"htnn_hill_options": HillOptions,
                    "htnn_exhaustive_options": ExhaustiveOptions,
                    "htnn_search_stats": SearchStats,
                    "htnn_ftprop_options": FtpropOptions,
                    "htnn_ftprop_result": FtpropResult}

# --- functions ---------------------------------------------------------------

st = c_int   # htnn_status
sz = c_size_t
vp = c_void_p  # handles and arrays (passed as addresses)
_p = POINTER

_PROTOTYPES = {
    # common.h
    "htnn_strerror": (c_char_p, [c_int]),
    "htnn_last_error": (c_char_p, []),
    "htnn_clear_error": (None, []),
    "htnn_version": (c_uint, []),
    "htnn_version_string": (c_char_p, []),
    # net.h
    "htnn_net_create": (st, [sz, _p(NetOptions), _p(vp)]),
    "htnn_net_free": (None, [vp]),
    "htnn_net_clone": (st, [vp, _p(vp)]),
    "htnn_net_add_dense": (st, [vp, _p(DenseOptions), _p(vp)]),
    "htnn_net_set_input_shape": (st, [vp, sz, sz, sz]),
    "htnn_net_get_input_shape": (st, [vp, _p(sz), _p(sz), _p(sz)]),
    "htnn_net_add_conv2d": (st, [vp, _p(Conv2dOptions), _p(vp)]),
    "htnn_net_add_maxpool2d": (st, [vp, _p(MaxPool2dOptions), _p(vp)]),
    "htnn_net_add_batchnorm": (st, [vp, _p(BatchNormOptions), _p(vp)]),
    "htnn_net_seed": (st, [vp, c_uint64]),
    "htnn_net_set_threads": (st, [vp, c_int]),
    "htnn_net_get_options": (st, [vp, _p(NetOptions)]),
    "htnn_net_layer_count": (sz, [vp]),
    "htnn_net_input_width": (sz, [vp]),
    "htnn_net_output_width": (sz, [vp]),
    "htnn_net_parameter_count": (sz, [vp]),
    "htnn_net_layer": (vp, [vp, sz]),
    "htnn_layer_get_info": (st, [vp, _p(LayerInfo)]),
    "htnn_layer_get_weights": (st, [vp, vp, sz]),
    "htnn_layer_set_weights": (st, [vp, vp, sz]),
    "htnn_layer_get_bias": (st, [vp, vp, sz]),
    "htnn_layer_set_bias": (st, [vp, vp, sz]),
    "htnn_layer_set_loss": (st, [vp, c_int, c_int]),
    "htnn_layer_get_running_stats": (st, [vp, vp, vp, sz]),
    "htnn_layer_set_running_stats": (st, [vp, vp, vp, sz]),
    "htnn_net_predict_logits": (st, [vp, vp, sz, vp]),
    "htnn_net_predict": (st, [vp, vp, sz, vp]),
    "htnn_net_evaluate": (st, [vp, vp, vp, sz, _p(c_double), _p(c_double)]),
    "htnn_net_class_count": (sz, [vp]),
    "htnn_net_save": (st, [vp, c_char_p]),
    "htnn_net_load": (st, [c_char_p, _p(vp)]),
    "htnn_net_save_buffer": (st, [vp, _p(vp), _p(sz)]),
    "htnn_net_load_buffer": (st, [vp, sz, _p(vp)]),
    "htnn_free": (None, [vp]),
    # optimizer.h
    "htnn_optimizer_create": (st, [_p(OptimizerOptions), _p(vp)]),
    "htnn_optimizer_free": (None, [vp]),
    "htnn_optimizer_reset": (st, [vp]),
    "htnn_optimizer_set_epoch": (st, [vp, sz, sz]),
    "htnn_optimizer_learning_rate": (c_float, [vp]),
    "htnn_optimizer_steps": (c_uint64, [vp]),
    # heuristic.h
    "htnn_heuristic_create": (st, [_p(HeuristicOps), vp, _p(vp)]),
    "htnn_heuristic_create_loss": (st, [_p(vp)]),
    "htnn_heuristic_free": (None, [vp]),
    "htnn_heuristic_name": (c_char_p, [vp]),
    "htnn_heuristic_set_targets": (st, [vp, vp, vp, vp]),
    "htnn_net_targets": (vp, [vp]),
    "htnn_targets_layer_count": (sz, [vp]),
    "htnn_targets_batch": (sz, [vp]),
    "htnn_targets_get": (st, [vp, sz, _p(vp), _p(vp), _p(sz), _p(sz)]),
    # train.h
    "htnn_net_train_batch": (st, [vp, vp, vp, vp, vp, sz, _p(BatchResult)]),
    "htnn_net_fit": (st, [vp, vp, vp, vp, vp, sz, _p(FitOptions), _p(FitResult)]),
    # reduce.h
    "htnn_net_set_reducer": (st, [vp, _p(Reducer)]),
    # data.h
    "htnn_data_load_idx": (st, [c_char_p, c_char_p, c_int, _p(vp)]),
    "htnn_data_load_idx_rows": (st, [c_char_p, c_char_p, c_int, sz, sz, _p(vp)]),
    "htnn_data_idx_count": (st, [c_char_p, _p(sz)]),
    "htnn_data_load_csv": (st, [c_char_p, _p(CsvOptions), _p(vp)]),
    "htnn_data_create": (st, [vp, vp, sz, sz, _p(vp)]),
    "htnn_data_subset": (st, [vp, sz, sz, _p(vp)]),
    "htnn_data_free": (None, [vp]),
    "htnn_data_count": (sz, [vp]),
    "htnn_data_width": (sz, [vp]),
    "htnn_data_class_count": (sz, [vp]),
    "htnn_data_features": (vp, [vp]),
    "htnn_data_labels": (vp, [vp]),
    "htnn_data_shape": (st, [vp, _p(sz), _p(sz), _p(sz)]),
}

# Functions that newer libraries may add; bound only if the loaded library
# exports them (the package keeps working without).
_OPTIONAL = {
    "htnn_heuristic_create_hill": (st, [_p(HillOptions), _p(vp)]),
    "htnn_heuristic_create_exhaustive": (st, [_p(ExhaustiveOptions), _p(vp)]),
    "htnn_heuristic_get_stats": (st, [vp, _p(SearchStats)]),
    "htnn_layer_view_loss": (st, [vp, vp, c_float, _p(c_double)]),
    "htnn_net_ftprop": (st, [vp, vp, vp, vp, sz, _p(FtpropOptions), _p(FtpropResult)]),
    "htnn_separable": (st, [vp, vp, sz, sz, c_int, sz, _p(c_int), vp, vp]),
    # packed.h
    "htnn_net_pack": (st, [vp, _p(vp)]),
    "htnn_packed_free": (None, [vp]),
    "htnn_packed_set_kernel": (st, [vp, c_int]),
    "htnn_packed_kernel_in_use": (c_int, [vp]),
    "htnn_packed_kernel_name": (c_char_p, [c_int]),
    "htnn_packed_set_threads": (st, [vp, c_int]),
    "htnn_packed_threads": (c_int, [vp]),
    "htnn_packed_input_width": (sz, [vp]),
    "htnn_packed_output_width": (sz, [vp]),
    "htnn_packed_layer_count": (sz, [vp]),
    "htnn_packed_class_count": (sz, [vp]),
    "htnn_packed_predict_logits": (st, [vp, vp, sz, vp]),
    "htnn_packed_predict": (st, [vp, vp, sz, vp]),
    "htnn_packed_save": (st, [vp, c_char_p]),
    "htnn_packed_save_buffer": (st, [vp, _p(vp), _p(sz)]),
    "htnn_packed_load": (st, [c_char_p, _p(vp)]),
    "htnn_packed_load_buffer": (st, [vp, sz, _p(vp)]),
    "htnn_packed_export_c": (st, [vp, c_char_p, _p(vp), _p(sz)]),
}


def _declare():
    missing = []
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError("htnn: %s lacks %s" % (path, ", ".join(missing)))
    for name, (restype, argtypes) in _OPTIONAL.items():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = argtypes


_declare()


def has(name):
    """True if the loaded library exports `name` (an optional function)."""
    return hasattr(lib, name)


def optional(name):
    """The optional function `name`, or UnsupportedError if this library
    does not export it."""
    fn = getattr(lib, name, None)
    if fn is None:
        from ._errors import UnsupportedError
        raise UnsupportedError("%s is not in %s (an older libhtnn)" % (name, path))
    return fn
