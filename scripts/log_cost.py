"""What a log line on the hot path costs: written at INFO (JSON, with a saga's context,
as a service logs), dropped (a DEBUG line at INFO), and the per-message log context
the handlers bind alone.

    .venv/bin/python scripts/log_cost.py [--calls 20000]
"""

import argparse
import io
import logging
import timeit
from collections.abc import Callable

from ordersaga.observability.logs import configure_logging, log_context

log = logging.getLogger("ordersaga.saga.runner")


def written() -> None:
    with log_context(saga_id="3f1c", order_id="3f1c", message_id="m1", topic="t", offset=7):
        log.info("saga %s: %s -> %s", "3f1c", "STOCK_RESERVED", "PAYMENT_PENDING")


def dropped() -> None:
    log.debug("saga %s: %s -> %s", "3f1c", "STOCK_RESERVED", "PAYMENT_PENDING")


def context_only() -> None:
    with log_context(saga_id="3f1c", order_id="3f1c", message_id="m1", topic="t", offset=7):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    configure_logging("json", "orchestrator", "1", stream=io.StringIO())

    def per_call(what: Callable[[], None]) -> float:
        return min(timeit.repeat(what, number=calls, repeat=5)) / calls * 1e6

    print(f"a line written at INFO (JSON, with its context): {per_call(written):6.2f} µs")
    print(f"a DEBUG line dropped at INFO:                    {per_call(dropped):6.2f} µs")
    print(f"the per-message log context alone:               {per_call(context_only):6.2f} µs")


if __name__ == "__main__":
    main()
