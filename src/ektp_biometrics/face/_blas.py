"""Keep BLAS on one thread around the face package's small matrix products.

The descriptor network's layers and the index's block products are small; OpenBLAS's helper
threads gain little on them and, on a machine whose cores are shared, spin while they wait: on
the project's 2-core build machine they multiplied the CPU time of a descriptor tenfold.  The
callers parallelize at a coarser grain themselves (FaceIndex splits the gallery between threads).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Iterator

__all__ = ["single_threaded_blas"]


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # installed with the face extra; without it BLAS keeps its own thread count
        return None
    import numpy  # noqa: F401 - the controller lists the BLAS libraries loaded when it is made

    return ThreadpoolController()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (process-wide; restored on exit).

    Examples
    --------
    >>> import numpy as np
    >>> with single_threaded_blas():
    ...     float((np.ones((64, 64)) @ np.ones(64))[0])
    64.0
    """
    controller = _controller()
    if controller is None:
        yield
        return
    with controller.limit(limits=1, user_api="blas"):
        yield
