"""How often the cyclic garbage collector runs in a process that serves."""

import gc

GC_THRESHOLDS = (50_000, 20, 10)
"""The collector's thresholds in a process that serves (see :func:`collect_garbage_less`)."""


def collect_garbage_less() -> None:
    """Let the cyclic garbage collector run less often in this process, and never over
    what exists once it has started.

    The services allocate a few hundred short-lived objects per message (records,
    messages, rows, contexts), and the embedded system keeps the broker's log in memory:
    with Python's default thresholds (700, 10, 10) the collector ran about 50 times a second and its
    older generations went through an ever larger heap. Freezing what start-up made
    and a young generation of 50,000 objects keep it to a few runs a second. Nothing in
    the services relies on cycles being freed early. For a process that serves (``ordersaga
    up --embedded``, ``ordersaga serve``) once it has started, not for tests that start
    many systems in one process.
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
