#!/usr/bin/python3
"""Train the reference hard-threshold MLP on Fashion-MNIST from Python.

784-512-512-10 with sign hidden units (soft-hinge per-layer loss, FTPROP-MB),
Adam lr 1e-3, batch 100, 10 epochs: the settings of `htnn train
--fashion-mnist`.  Prints the test accuracy, saves the model and two PNGs:
the training loss and test accuracy per epoch, and a grid of misclassified
test images.  Ctrl-C stops training after the current batch and still
reports, saves and plots.

    PYTHONPATH=python HTNN_BUILD_DIR=build /usr/bin/python3 python/examples/fashion_mnist.py
    (add --epochs 2 --limit 10000 for a quick run)

With --arch it trains a convolutional net instead, given in the grammar of
`htnn train --arch` (the images keep their 1 x 28 x 28 shape), e.g. the
paper's convnet with batch norm:

    ... fashion_mnist.py --threads 2 \
        --arch conv5x5:32,pool2,bn,sign,conv5x5:64,pool2,bn,sign,dense:1024,bn,sign,dense:10

Needs the dataset-fashion-mnist package (or HTNN_FASHION_MNIST_DIR) and
python3-matplotlib.
"""
import argparse
import os
import time

import numpy as np

import htnn


def parse_args():
    ap = argparse.ArgumentParser(description="Train the reference MLP on Fashion-MNIST.")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--layers", default="512,512", help="hidden widths (default 512,512)")
    ap.add_argument("--arch", help="a whole (convolutional) net in the grammar of htnn train "
                    "--arch, e.g. conv5x5:32,pool2,bn,sign,dense:10; replaces --layers")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--limit", type=int, help="use the first N training images")
    ap.add_argument("--test-limit", type=int, help="use the first N test images")
    ap.add_argument("--out", default="fashion.htnn", help="model file to write")
    ap.add_argument("--plots", default=".", help="directory for the PNG files")
    return ap.parse_args()


def plot_history(history, title, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    epochs = [h["epoch"] + 1 for h in history]
    fig, ax1 = plt.subplots(figsize=(7, 4))
    ax1.plot(epochs, [h["loss"] for h in history], "o-", color="tab:blue",
             label="training loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss (cross-entropy)", color="tab:blue")
    ax2 = ax1.twinx()
    ax2.plot(epochs, [100 * h["val_accuracy"] for h in history], "s-", color="tab:red",
             label="test accuracy")
    ax2.set_ylabel("test accuracy (%)", color="tab:red")
    ax1.set_title(title, fontsize=10)
    ax1.grid(alpha=0.3)
    if epochs:
        ax1.set_xticks(epochs)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_misclassified(x, y, pred, proba, path, rows=4, cols=8):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = htnn.FASHION_MNIST_CLASSES
    wrong = np.flatnonzero(pred != y)
    # the most confident mistakes first
    wrong = wrong[np.argsort(-proba[wrong, pred[wrong]])][: rows * cols]
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9))
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.imshow(x[i].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title("%s\nas %s (%.0f%%)" % (names[y[i]], names[pred[i]],
                                            100 * proba[i, pred[i]]), fontsize=7)
    fig.suptitle("Misclassified test images (true label, predicted label)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    a = parse_args()
    start = time.perf_counter()
    train = htnn.load_fashion_mnist("train", limit=a.limit)
    test = htnn.load_fashion_mnist("test", limit=a.test_limit)
    print("train: %d images, test: %d images (loaded in %.2f s)"
          % (len(train), len(test), time.perf_counter() - start))

    if a.arch:  # the input shape comes from the data: 1 x 28 x 28
        layers, shape = a.arch, train.shape
    else:
        layers, shape = [int(w) for w in a.layers.split(",") if w] + [10], None
    with htnn.Net(784, layers, input_shape=shape, seed=a.seed, threads=a.threads) as net, \
            htnn.Optimizer.adam(lr=a.lr) as opt:
        print(net.summary())
        res = net.fit(train.x, train.y, epochs=a.epochs, batch_size=a.batch, optimizer=opt,
                      validation_data=(test.x, test.y), callback=htnn.ProgressBar(),
                      on_interrupt="return")
        if res.interrupted:
            print("interrupted after %d batches; the net is valid, reporting it"
                  % res.batches_run)
        loss, accuracy = net.evaluate(test.x, test.y)
        print("test accuracy: %.2f%% (%d examples), loss %.4f"
              % (100 * accuracy, len(test), loss))
        net.save(a.out)
        print("model saved to %s" % a.out)

        # load it back and check it predicts the same
        with htnn.Net.load(a.out) as again:
            assert np.array_equal(again.predict(test.x), net.predict(test.x))

        os.makedirs(a.plots, exist_ok=True)
        hist_png = os.path.join(a.plots, "fashion_mnist_history.png")
        grid_png = os.path.join(a.plots, "fashion_mnist_misclassified.png")
        if res.history:
            title = "%s, FTPROP-MB (soft hinge), Fashion-MNIST" % net.architecture
            plot_history(res.history, title, hist_png)
            print("wrote %s" % hist_png)
        proba = net.predict_proba(test.x)
        plot_misclassified(test.x, test.y, proba.argmax(axis=1), proba, grid_png)
        print("wrote %s" % grid_png)


if __name__ == "__main__":
    main()
