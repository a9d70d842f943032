"""Where each replica's metrics are, and the gauges a replica reads from its database."""

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from ordersaga.messaging.outbox_rows import backlog
from ordersaga.messaging.port import Producer
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.base import ServiceSpec
from ordersaga.services.registry import SERVICE_NAMES

log = logging.getLogger(__name__)

MAX_REPLICAS_WITH_PORTS = 9
"""Replicas per service that get ports of their own under one base (10 ports a service)."""


def replica_metrics_port(base: int, service: str, replica: int) -> int:
    """The metrics port ``ordersaga up`` gives replica ``replica`` (1, 2...) of ``service``:
    ``base + 10*k + replica``, k the service's place (order 0, orchestrator 1, stock 2,
    payment 3). The embedded system serves all on ``base`` itself."""
    if not 1 <= replica <= MAX_REPLICAS_WITH_PORTS:
        raise ValueError(
            f"replica {replica}: metrics ports go to replicas 1..{MAX_REPLICAS_WITH_PORTS}"
        )
    return base + 10 * SERVICE_NAMES.index(service) + replica


async def sample_gauges(
    spec: ServiceSpec,
    engine: AsyncEngine,
    producer: Producer,
    metrics: ServiceMetrics,
    interval: float,
) -> None:
    """Every ``interval`` seconds until cancelled: the outbox's backlog, the service's
    own samplers (the orchestrator's sagas), and the producer's restarts. A reading that
    fails (the database away) is skipped: the next one tries again."""
    restarts = 0
    failing = False
    while True:
        try:
            async with engine.connect() as conn:
                found = await backlog(conn, spec.outbox)
                metrics.outbox(found.waiting, found.oldest_age, found.failed)
                for sampler in spec.samplers:
                    await sampler(conn)
            failing = False
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not failing:
                log.info("%s: reading the gauges failed (%r); trying again", spec.name, error)
            failing = True
        for _ in range(producer.replaced - restarts):
            metrics.producer_restarted()
        restarts = producer.replaced
        await asyncio.sleep(interval)
