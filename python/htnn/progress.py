"""A text progress bar for Net.fit: ``net.fit(x, y, callback=ProgressBar())``."""

import sys
import time

__all__ = ["ProgressBar"]


class ProgressBar:
    """Draws one line per epoch (bar, loss, accuracy, validation accuracy,
    examples/s), redrawn in place on a terminal at most every ``interval``
    seconds; on a pipe, only the finished epoch lines are printed."""

    def __init__(self, stream=None, width=30, interval=0.1):
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.interval = interval
        self._last = 0.0
        self._start = None
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def __call__(self, p):
        now = time.monotonic()
        if self._start is None or p.batch == 0:
            self._start = now
        if not p.end_of_epoch and (not self._tty or now - self._last < self.interval):
            return False
        self._last = now
        done = (p.batch + 1) / p.batches
        fill = int(round(self.width * done))
        bar = "#" * fill + "." * (self.width - fill)
        line = "epoch %*d/%d [%s] loss %.4f acc %.4f" % (
            len(str(p.epochs)), p.epoch + 1, p.epochs, bar, p.loss, p.accuracy)
        if p.end_of_epoch and p.val_accuracy == p.val_accuracy:  # not NaN
            line += " val acc %.4f" % p.val_accuracy
        line += "  %.1fs" % (now - self._start)
        if self._tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if p.end_of_epoch else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        return False
