#!/usr/bin/python3
"""PyTorch peer benchmark for libhtnn (BENCH.md, "The peer").

What it measures
----------------
The reference workload of BENCH.md, implemented in PyTorch (CPU) with the same
formulas and hyperparameters as libhtnn, so that libhtnn's speed and accuracy
can be compared with a well-known implementation *in the same run on the same
machine*:

  * Fashion-MNIST (/usr/share/datasets/fashion-mnist), inputs scaled to [0, 1],
    float32; 784-512-512-10 MLP; sign hidden activations (sign(0) = -1);
    linear output layer; softmax cross-entropy (mean over the batch).
  * FTPROP-MB with the loss-driven target heuristic and |G| target weighting.
    By ALGORITHM.md this is exactly back-propagation in which the derivative of
    each sign unit is replaced by a surrogate:
        --loss soft-hinge : dL/dz = G * (1 - tanh(z)^2)
        --loss sste       : dL/dz = G * 1[|z| < 1]   (saturated hinge = SSTE)
    Targets for layer d-1 come from the pre-update W[d], which is what a single
    backward pass computes.
  * --act relu: the full-precision ReLU baseline (ordinary back-propagation).
  * --binary-weights scaled|sign: binary weights in every layer, as
    `htnn train --binary-weights scaled|sign` (doc/binary.md, lib/dense.c):
    latent float weights W (nn.Linear's init), forward
        Z = (X B^T) * alpha + b,  B = sign(W) (sign(0) = -1),
        alpha_j = mean_i |W[j][i]| (scaled) or 1 (sign), bias in float;
    backward straight-through: dL/dW = dZ^T X is applied to the latent W
    (the sign and alpha's dependence on W count as identity), the input
    gradient is dZ (B * alpha); after every Adam step W is clipped to
    [-1, 1].  "name" becomes "pytorch-binary-mlp".  --self-check verifies
    this forward and backward against a numpy computation and exits.
  * Adam lr 1e-3, betas (0.9, 0.999), eps 1e-8; batch 100; 10 epochs;
    reshuffled every epoch; fixed seed (torch.manual_seed for the weights,
    numpy RandomState for the shuffles).  Weights and biases use nn.Linear's
    default init (uniform +-1/sqrt(fan_in)), as libhtnn does.

Modes
-----
  --mode train (default)
      Trains once per --threads setting (torch.set_num_threads(n)) and prints
      ONE JSON line per setting on stdout:
        {"name": "pytorch-mlp", "act", "loss", "threads", "blas_threads",
         "batch", "epochs", "train_samples", "samples_per_sec", "seconds",
         "test_accuracy", "peak_rss_mb", "epoch_test_accuracy": [...], "seed"}
      samples_per_sec = epochs * train_samples / seconds, where seconds is the
      training time only (shuffling, batch gathering, forward, backward, Adam);
      data loading and the per-epoch test evaluation are excluded, and one
      warm-up batch (on a throw-away copy of the net) runs before timing.
      "loss" is null for --act relu.  test_accuracy is a fraction in [0, 1].
      peak_rss_mb is the process's peak resident set (ru_maxrss); when several
      thread settings are requested each runs in its own child process so the
      figure belongs to that configuration alone.
  --mode sgemm
      The sgemm-only "roofline" of the same shapes in torch: per batch the
      three forward products X@W1.T, H1@W2.T, H2@W3.T, the three weight
      gradients dZ.T @ H_prev and the two input gradients dZ @ W (layers 2, 3),
      into preallocated outputs, timed over many batches (median of --reps
      repetitions of --iters batches).  One JSON line per thread setting:
        {"name": "pytorch-sgemm", "threads", "blas_threads", "batch", "iters",
         "samples_per_sec", "seconds", "gflops"}
  BLAS threads
      Debian's torch does its matrix products in the system OpenBLAS (pthread
      build), whose thread pool is NOT sized by torch.set_num_threads: by
      default it uses every CPU even at --threads 1.  --blas-threads auto (the
      default; BENCH.md's orientation numbers match this setting) leaves
      it so; --blas-threads same pins it to --threads (a strict n-thread run);
      an integer pins it to that.  "blas_threads" in the JSON says what was in
      effect.  On 2 CPUs, --threads 2 with a 2-thread OpenBLAS oversubscribes
      (torch's spinning OpenMP workers fight OpenBLAS's) and is much slower.
      Results are bit-reproducible for a fixed seed and BLAS thread count;
      changing the BLAS thread count changes rounding, hence the trajectory.
  --smoke
      Tiny run for CI (train: --limit 2000 --epochs 1 --threads 1; sgemm:
      few iterations, threads 1).  Never assert on its timings.
  --self-check
      Checks the binary-weight layers (both modes) on a small net: each
      layer's forward equals (h sign(W)^T) * alpha + b computed in numpy (and
      differs from the float product h W^T + b), the gradients are the
      straight-through ones, and an Adam step leaves W in [-1, 1].  Prints
      {"name": "pytorch-binary-mlp-self-check", "ok": ..., "checks": [...]}
      and exits 1 when a check fails.

If torch cannot be imported the script says so on stderr, prints
{"name": "pytorch-mlp", "skipped": "torch not available"} and exits 0
(likewise "numpy not available" when numpy is the missing module).
Progress goes to stderr; stdout carries only JSON lines.

How to run
----------
  /usr/bin/python3 bench/compare_pytorch.py --smoke
  /usr/bin/python3 bench/compare_pytorch.py                       # 10 epochs, threads 1 and 2
  /usr/bin/python3 bench/compare_pytorch.py --threads 1 --loss sste
  /usr/bin/python3 bench/compare_pytorch.py --threads 1 --act relu
  /usr/bin/python3 bench/compare_pytorch.py --mode sgemm --threads 1,2
  /usr/bin/python3 bench/compare_pytorch.py --threads 1 --binary-weights scaled
  /usr/bin/python3 bench/compare_pytorch.py --self-check

Which numbers to compare
------------------------
  * Throughput: libhtnn's MLP samples/s against the *best* thread setting of
    "pytorch-mlp" samples_per_sec (BENCH.md target: >= 1.5x, then >= 2x), and
    against libhtnn's own C sgemm-only roofline at the same threads.  The
    "pytorch-sgemm" figure is for orientation only.  Alternate runs (A B A B)
    and take medians: the machines are shared and noisy.
  * Accuracy: test_accuracy after 10 epochs (soft hinge ~0.882, SSTE ~0.880,
    ReLU ~0.894 on the reference machine; ~0.857 after 2 soft-hinge epochs).
    A sign net's test accuracy moves by about +-1 point from epoch to epoch
    and from seed to seed: compare means over several seeds (--seed).
  * Memory: peak_rss_mb (includes the Python/torch runtime itself).

Standard library + numpy + torch only.  A benchmark tool, never a dependency
of the library or its tests.
"""

import argparse
import copy
import ctypes
import gzip
import json
import os
import resource
import statistics
import subprocess
import sys
import time

NAME = "pytorch-mlp"
DATA_DIR = "/usr/share/datasets/fashion-mnist"
LAYERS = (784, 512, 512, 10)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def emit(record):
    print(json.dumps(record), flush=True)


try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - depends on the machine
    np = torch = F = None
    _IMPORT_ERROR = exc
else:
    _IMPORT_ERROR = None


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def _read_idx(path, magic, header_len):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    got = int.from_bytes(raw[0:4], "big")
    if got != magic:
        raise ValueError(f"{path}: bad IDX magic {got:#x}, expected {magic:#x}")
    count = int.from_bytes(raw[4:8], "big")
    return count, np.frombuffer(raw, dtype=np.uint8, offset=header_len)


def load_images(path, limit=None):
    count, pix = _read_idx(path, 0x00000803, 16)
    pix = pix.reshape(count, 28 * 28)[:limit]
    return pix.astype(np.float32) / np.float32(255.0)


def load_labels(path, limit=None):
    count, lab = _read_idx(path, 0x00000801, 8)
    return lab[:count][:limit].astype(np.int64)


def load_fashion_mnist(data_dir, limit=None):
    def p(name):
        return os.path.join(data_dir, name)
    xtr = load_images(p("train-images-idx3-ubyte.gz"), limit)
    ytr = load_labels(p("train-labels-idx1-ubyte.gz"), limit)
    xte = load_images(p("t10k-images-idx3-ubyte.gz"))
    yte = load_labels(p("t10k-labels-idx1-ubyte.gz"))
    return (torch.from_numpy(xtr), torch.from_numpy(ytr),
            torch.from_numpy(xte), torch.from_numpy(yte))


# --------------------------------------------------------------------------
# Model: sign units with FTPROP-MB surrogate derivatives
# --------------------------------------------------------------------------

if torch is not None:

    class SignSoftHinge(torch.autograd.Function):
        """sign forward; backward = loss-driven soft-hinge targets with |G|
        weighting, i.e. G * (1 - tanh(z)^2)."""

        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return (z > 0).to(z.dtype) * 2 - 1   # sign(0) = -1

        @staticmethod
        def backward(ctx, grad):
            (z,) = ctx.saved_tensors
            t = torch.tanh(z)
            return grad * (1.0 - t * t)

    class SignSSTE(torch.autograd.Function):
        """sign forward; backward = saturated hinge with |G| weighting, i.e.
        the saturated straight-through estimator G * 1[|z| < 1]."""

        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return (z > 0).to(z.dtype) * 2 - 1   # sign(0) = -1

        @staticmethod
        def backward(ctx, grad):
            (z,) = ctx.saved_tensors
            return grad * (z.abs() < 1.0).to(grad.dtype)

    class BinaryLinearFn(torch.autograd.Function):
        """libhtnn's binary-weight dense layer: Z = (X B^T) * alpha + b in
        that order (the scale after the product, as lib/dense.c), B =
        sign(W) with sign(0) = -1; straight-through backward."""

        @staticmethod
        def forward(ctx, x, w, b, scaled):
            bsign = (w > 0).to(w.dtype) * 2 - 1
            alpha = w.abs().mean(dim=1) if scaled else torch.ones_like(b)
            z = x @ bsign.t()
            if scaled:
                z = z * alpha
            ctx.save_for_backward(x, bsign, alpha)
            return z + b

        @staticmethod
        def backward(ctx, g):
            x, bsign, alpha = ctx.saved_tensors
            # dL/dX through the weights the forward used; dL/dW = dZ^T X on
            # the latent weights (sign and alpha count as identity)
            return g @ (bsign * alpha[:, None]), g.t() @ x, g.sum(dim=0), None

    class BinaryLinear(torch.nn.Linear):
        """nn.Linear's parameters and init as latent weights, forward with
        their signs (mode "scaled" or "sign")."""

        def __init__(self, a, b, mode):
            super().__init__(a, b)
            self.scaled = mode == "scaled"

        def forward(self, x):
            return BinaryLinearFn.apply(x, self.weight, self.bias, self.scaled)

        def clip_latent(self):
            with torch.no_grad():
                self.weight.clamp_(-1.0, 1.0)

    class MLP(torch.nn.Module):
        def __init__(self, act, loss, sizes=LAYERS, binary="none"):
            super().__init__()
            # every layer binary, as `htnn train --binary-weights`
            self.layers = torch.nn.ModuleList(
                torch.nn.Linear(a, b) if binary == "none" else BinaryLinear(a, b, binary)
                for a, b in zip(sizes[:-1], sizes[1:]))
            # nn.Linear's default init (weights and biases uniform
            # +-1/sqrt(fan_in)), as libhtnn does
            if act == "relu":
                self.act = F.relu
            elif loss == "soft-hinge":
                self.act = SignSoftHinge.apply
            elif loss == "sste":
                self.act = SignSSTE.apply
            else:
                raise ValueError(f"unknown loss {loss!r}")

        def forward(self, x):
            for lin in self.layers[:-1]:
                x = self.act(lin(x))
            return self.layers[-1](x)

        def after_step(self):
            """libhtnn clips binary layers' latent weights after each
            optimizer step."""
            for lin in self.layers:
                if isinstance(lin, BinaryLinear):
                    lin.clip_latent()


    class ConvNet(torch.nn.Module):
        """The paper's 4-layer convnet (issue 4): conv 5x5 32 -> pool 2 ->
        act -> conv 5x5 64 -> pool 2 -> act -> dense 1024 -> act -> dense 10,
        "same" padding; with bn, batch norm before each hidden activation
        (libhtnn: --arch conv5x5:32,pool2,bn,sign,conv5x5:64,pool2,bn,sign,
        dense:1024,bn,sign,dense:10)."""

        def __init__(self, act, loss, bn=False):
            super().__init__()
            nn = torch.nn
            self.conv1 = nn.Conv2d(1, 32, 5, padding=2)
            self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
            self.fc1 = nn.Linear(64 * 7 * 7, 1024)
            self.fc2 = nn.Linear(1024, 10)
            ident = nn.Identity
            self.bn1 = nn.BatchNorm2d(32) if bn else ident()
            self.bn2 = nn.BatchNorm2d(64) if bn else ident()
            self.bn3 = nn.BatchNorm1d(1024) if bn else ident()
            self.act = MLP(act, loss).act

        def forward(self, x):
            x = x.view(-1, 1, 28, 28)
            x = self.act(self.bn1(F.max_pool2d(self.conv1(x), 2)))
            x = self.act(self.bn2(F.max_pool2d(self.conv2(x), 2)))
            x = self.act(self.bn3(self.fc1(x.flatten(1))))
            return self.fc2(x)


def make_model(args):
    if args.net == "convnet":
        return ConvNet(args.act, args.loss, args.bn)
    return MLP(args.act, args.loss, binary=args.binary_weights)


def model_name(args):
    return "pytorch-binary-mlp" if args.binary_weights != "none" else "pytorch-" + args.net


def make_optimizer(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3,
                            betas=(0.9, 0.999), eps=1e-8)


def train_step(model, opt, xb, yb):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(xb), yb)  # mean over the batch
    loss.backward()
    opt.step()
    if hasattr(model, "after_step"):
        model.after_step()
    return loss


def accuracy(model, x, y, chunk=10000):
    correct = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], chunk):
            pred = model(x[i:i + chunk]).argmax(dim=1)
            correct += int((pred == y[i:i + chunk]).sum())
    return correct / x.shape[0]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _openblas():
    """The OpenBLAS library torch's sgemm goes through, via ctypes, or None.

    Debian's torch calls the system BLAS (libblas.so.3 -> OpenBLAS pthread
    build), whose thread pool is separate from torch's OpenMP pool and is not
    affected by torch.set_num_threads."""
    global _OPENBLAS
    if _OPENBLAS is False:
        _OPENBLAS = None
        try:
            with open("/proc/self/maps") as f:
                paths = sorted({ln.split()[-1] for ln in f
                                if "openblas" in ln and ".so" in ln})
            for path in paths:
                lib = ctypes.CDLL(path)
                if hasattr(lib, "openblas_set_num_threads"):
                    lib.openblas_get_num_threads.restype = ctypes.c_int
                    _OPENBLAS = lib
                    break
        except OSError:
            pass
    return _OPENBLAS


_OPENBLAS = False


def set_threads(threads, blas_threads):
    """torch.set_num_threads(threads) and size OpenBLAS's pool: blas_threads
    is "same" (= threads), "auto" (leave OpenBLAS's default) or an integer.
    Returns the OpenBLAS thread count in effect (None if OpenBLAS not found)."""
    torch.set_num_threads(threads)
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # make sure BLAS is loaded
    lib = _openblas()
    if lib is None:
        if blas_threads not in ("same", "auto"):
            log("warning: OpenBLAS not found, --blas-threads ignored")
        return None
    if blas_threads == "same":
        lib.openblas_set_num_threads(threads)
    elif blas_threads != "auto":
        lib.openblas_set_num_threads(int(blas_threads))
    return int(lib.openblas_get_num_threads())


def run_train(args, threads, data):
    xtr, ytr, xte, yte = data
    n = xtr.shape[0]
    blas_threads = set_threads(threads, args.blas_threads)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)
    model = make_model(args)
    opt = make_optimizer(model)

    # Warm-up batch on a throw-away copy (no effect on the measured run).
    wm = copy.deepcopy(model)
    train_step(wm, make_optimizer(wm), xtr[:args.batch], ytr[:args.batch])
    del wm

    seconds = 0.0
    epoch_acc = []
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.from_numpy(rng.permutation(n))
        loss_sum = 0.0
        for i in range(0, n, args.batch):
            idx = perm[i:i + args.batch]
            loss = train_step(model, opt, xtr.index_select(0, idx),
                              ytr.index_select(0, idx))
            loss_sum += float(loss) * idx.shape[0]
        dt = time.perf_counter() - t0
        seconds += dt
        model.eval()
        acc = accuracy(model, xte, yte)
        epoch_acc.append(acc)
        log(f"[{model_name(args)} act={args.act} loss={args.loss} threads={threads}] "
            f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / n:.4f} "
            f"test acc {acc:.4f} ({n / dt:.0f} samples/s)")

    return {
        "name": model_name(args),
        "binary_weights": args.binary_weights,
        "bn": bool(args.bn),
        "act": args.act,
        "loss": None if args.act == "relu" else args.loss,
        "threads": threads,
        "blas_threads": blas_threads,
        "batch": args.batch,
        "epochs": args.epochs,
        "train_samples": n,
        "samples_per_sec": round(args.epochs * n / seconds, 1),
        "seconds": round(seconds, 3),
        "test_accuracy": epoch_acc[-1] if epoch_acc else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "epoch_test_accuracy": epoch_acc,
        "seed": args.seed,
    }


# --------------------------------------------------------------------------
# Self-check of the binary-weight layers
# --------------------------------------------------------------------------

SELF_CHECK_SIZES = (30, 16, 12, 5)


def _max_err(t, ref):
    return float(np.abs(t.detach().double().numpy() - ref).max())


def check_binary_layer(lin, mode, hin, check):
    """One layer on inputs hin (rows): forward and straight-through
    gradients against numpy in float64.  Returns the layer's z."""
    where = f"{mode}, layer {lin.in_features}->{lin.out_features}"
    hin = hin.detach().requires_grad_(True)
    z = lin(hin)
    w = lin.weight.detach().double().numpy()
    b = lin.bias.detach().double().numpy()
    h = hin.detach().double().numpy()
    sign_w = np.where(w > 0, 1.0, -1.0)                    # sign(0) = -1
    alpha = np.abs(w).mean(axis=1) if mode == "scaled" else np.ones(w.shape[0])
    err = _max_err(z, (h @ sign_w.T) * alpha + b)
    check(f"{where}: z = (h sign(W)^T) * alpha + b", err < 1e-4, err)
    err = _max_err(z, h @ w.T + b)
    check(f"{where}: z is not the float product h W^T + b", err > 1e-3, err)
    r = torch.randn_like(z)
    (z * r).sum().backward()
    g = r.double().numpy()
    err = _max_err(lin.weight.grad, g.T @ h)
    check(f"{where}: dL/dW = dZ^T X (straight-through)", err < 1e-4, err)
    err = _max_err(hin.grad, g @ (sign_w * alpha[:, None]))
    check(f"{where}: dL/dX = dZ (sign(W) * alpha)", err < 1e-4, err)
    lin.zero_grad(set_to_none=True)
    return z.detach()


def self_check(args):
    """Both binary modes on a small sign MLP (SELF_CHECK_SIZES), layer by
    layer on the activations the model itself produced, then one Adam step
    from weights outside [-1, 1]."""
    checks = []

    def check(what, ok, value):
        checks.append({"check": what, "ok": bool(ok), "value": value})
        log(f"self-check {'ok  ' if ok else 'FAIL'} {what} ({value:.3g})")

    torch.manual_seed(args.seed)
    x = torch.rand(8, SELF_CHECK_SIZES[0])
    y = torch.randint(0, SELF_CHECK_SIZES[-1], (8,))
    for mode in ("scaled", "sign"):
        model = MLP("sign", args.loss, sizes=SELF_CHECK_SIZES, binary=mode)
        with torch.no_grad():
            model.layers[0].weight[0, :3] = 0.0   # zero latent weights count as -1
        h = x
        for lin in model.layers:
            h = model.act(check_binary_layer(lin, mode, h, check))
        with torch.no_grad():
            model.layers[1].weight[0, :2] = torch.tensor([3.0, -3.0])
        train_step(model, make_optimizer(model), x, y)
        wmax = max(float(lin.weight.abs().max()) for lin in model.layers)
        check(f"{mode}: latent weights in [-1, 1] after an Adam step", wmax <= 1.0, wmax)
    ok = all(c["ok"] for c in checks)
    emit({"name": "pytorch-binary-mlp-self-check", "ok": ok, "checks": checks})
    return 0 if ok else 1


# --------------------------------------------------------------------------
# sgemm-only roofline
# --------------------------------------------------------------------------

def run_sgemm(args, threads):
    blas_threads = set_threads(threads, args.blas_threads)
    g = torch.Generator().manual_seed(args.seed)
    m = args.batch
    sizes = LAYERS

    def rnd(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    W = [rnd(b, a) for a, b in zip(sizes[:-1], sizes[1:])]      # n[d] x n[d-1]
    H = [rnd(m, s) for s in sizes]                              # H[0] = X
    dZ = [rnd(m, s) for s in sizes[1:]]
    dW = [torch.empty_like(w) for w in W]
    dH = [torch.empty(m, s) for s in sizes[1:-1]]               # grad of H1, H2
    flops_per_batch = 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        flops_per_batch += 2 * m * a * b * 2                    # forward + grad W
    for a, b in zip(sizes[1:-1], sizes[2:]):
        flops_per_batch += 2 * m * a * b                        # grad input (layers 2, 3)

    def one_batch():
        for d in range(3):                  # forward: Z[d] = H[d-1] @ W[d].T
            torch.mm(H[d], W[d].t(), out=H[d + 1])
        for d in (2, 1, 0):                 # backward
            torch.mm(dZ[d].t(), H[d], out=dW[d])
            if d > 0:
                torch.mm(dZ[d], W[d], out=dH[d - 1])

    for _ in range(max(1, args.iters // 10)):   # warm-up
        one_batch()
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        for _ in range(args.iters):
            one_batch()
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    log(f"[pytorch-sgemm threads={threads}] reps: "
        + ", ".join(f"{args.iters * m / t:.0f}" for t in times) + " samples/s")
    return {
        "name": "pytorch-sgemm",
        "threads": threads,
        "blas_threads": blas_threads,
        "batch": m,
        "iters": args.iters,
        "samples_per_sec": round(args.iters * m / sec, 1),
        "seconds": round(sec, 4),
        "gflops": round(flops_per_batch * args.iters / sec / 1e9, 2),
    }


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="PyTorch peer of libhtnn's reference benchmark "
                    "(Fashion-MNIST 784-512-512-10 sign MLP, FTPROP-MB).")
    ap.add_argument("--mode", choices=("train", "sgemm"), default="train")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", default="1,2",
                    help="comma-separated thread counts, one run each (default 1,2)")
    ap.add_argument("--blas-threads", default="auto",
                    help="OpenBLAS pool size: 'auto' (OpenBLAS's own default, all "
                         "CPUs; the default), 'same' as --threads, or a number")
    ap.add_argument("--loss", choices=("soft-hinge", "sste"), default="soft-hinge")
    ap.add_argument("--act", choices=("sign", "relu"), default="sign")
    ap.add_argument("--net", choices=("mlp", "convnet"), default="mlp",
                    help="the reference MLP or the paper's 4-layer convnet")
    ap.add_argument("--bn", action="store_true",
                    help="convnet: batch norm before each hidden activation")
    ap.add_argument("--binary-weights", choices=("none", "scaled", "sign"), default="none",
                    help="mlp: binary weights in every layer, as htnn train "
                         "--binary-weights (scaled: sign(W) * mean|W| per unit)")
    ap.add_argument("--self-check", action="store_true",
                    help="check the binary-weight layers against numpy and exit")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None,
                    help="use only the first N training examples")
    ap.add_argument("--data-dir", default=DATA_DIR)
    ap.add_argument("--iters", type=int, default=600,
                    help="sgemm mode: batches per repetition (default 600 = one epoch)")
    ap.add_argument("--reps", type=int, default=5,
                    help="sgemm mode: repetitions, the median is reported")
    ap.add_argument("--in-process", action="store_true",
                    help="run all thread settings in this process "
                         "(default: one child process each when there are several)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny CI run: --limit 2000 --epochs 1 --threads 1")
    args = ap.parse_args(argv)
    if args.smoke:
        args.limit, args.epochs, args.threads = 2000, 1, "1"
        args.iters, args.reps = 20, 1
    try:
        args.thread_list = [int(t) for t in args.threads.split(",") if t.strip()]
    except ValueError:
        ap.error(f"--threads: expected comma-separated integers, got {args.threads!r}")
    if not args.thread_list or min(args.thread_list) < 1:
        ap.error("--threads: need at least one positive thread count")
    if args.epochs < 1 or args.batch < 1 or args.iters < 1 or args.reps < 1:
        ap.error("--epochs, --batch, --iters and --reps must be positive")
    if args.blas_threads not in ("same", "auto") and (
            not args.blas_threads.isdigit() or int(args.blas_threads) < 1):
        ap.error("--blas-threads: expected 'same', 'auto' or a positive integer")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be positive")
    if args.binary_weights != "none" and args.net != "mlp":
        ap.error("--binary-weights: --net mlp only")
    return args


def run_children(argv, thread_list):
    """Re-run this script once per thread setting, so that each configuration
    gets a fresh process (clean peak RSS, no thread-pool carry-over)."""
    base = []
    skip = False
    for a in argv:  # drop any --threads option, keep everything else
        if skip:
            skip = False
            continue
        if a == "--threads":
            skip = True
            continue
        if a.startswith("--threads="):
            continue
        base.append(a)
    status = 0
    for n in thread_list:
        cmd = [sys.executable, os.path.abspath(__file__), *base,
               "--threads", str(n), "--in-process"]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        sys.stdout.write(out.stdout)
        sys.stdout.flush()
        if out.returncode != 0:
            log(f"child for threads={n} failed with status {out.returncode}")
            status = out.returncode
    return status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)

    if _IMPORT_ERROR is not None:
        what = "numpy" if getattr(_IMPORT_ERROR, "name", "") == "numpy" else "torch"
        log(f"compare_pytorch.py: {what} is not importable ({_IMPORT_ERROR}); "
            f"skipping the PyTorch peer (install python3-torch and run with /usr/bin/python3)")
        emit({"name": NAME, "skipped": f"{what} not available"})
        return 0

    if args.self_check:
        return self_check(args)
    if len(args.thread_list) > 1 and not args.in_process:
        return run_children(argv, args.thread_list)

    log(f"torch {torch.__version__}, numpy {np.__version__}, "
        f"cpus {os.cpu_count()}, mode {args.mode}")
    if args.mode == "sgemm":
        for n in args.thread_list:
            emit(run_sgemm(args, n))
        return 0

    t0 = time.perf_counter()
    data = load_fashion_mnist(args.data_dir, args.limit)
    log(f"loaded Fashion-MNIST: {data[0].shape[0]} train, {data[2].shape[0]} test "
        f"in {time.perf_counter() - t0:.2f} s")
    for n in args.thread_list:
        emit(run_train(args, n, data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
