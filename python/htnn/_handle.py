"""Base class of the objects that own a C handle."""

from ._errors import StateError
from . import _lib


class Handle:
    """Owns one C handle; freed by close(), by leaving a ``with`` block, or
    (as a fallback) when garbage-collected."""

    _free_name = None  # name of the htnn_*_free function
    _ptr = None

    def _set_handle(self, ptr):
        self._ptr = ptr

    @property
    def _h(self):
        p = self._ptr
        if not p:
            raise StateError("%s is closed" % type(self).__name__)
        return p

    @property
    def closed(self):
        return not self._ptr

    def close(self):
        """Frees the C object now; later calls raise StateError.  Idempotent."""
        p, self._ptr = self._ptr, None
        if p:
            getattr(_lib.lib, self._free_name)(p)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __reduce__(self):
        # Copying the handle would free it twice: only types that can
        # rebuild themselves (Net, Optimizer) support pickle and copy.
        raise TypeError("cannot pickle or copy an htnn.%s" % type(self).__name__)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass
