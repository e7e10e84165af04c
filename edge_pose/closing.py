"""`Closing`: the base of objects that hold a resource (a source, a model, a detector) and close it at the end of
a `with` block."""
from __future__ import annotations


class Closing:
    """`close()` releases the resource (the default does nothing); `with obj:` closes it on the way out."""

    def close(self):
        """Release the resource; the default does nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
