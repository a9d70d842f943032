"""The Kafka ACLs each service needs, derived from its wiring, so they cannot drift from
the code: what it consumes (its subscriptions), what it produces (``ServiceSpec.produces``)
and the dead-letter topics of what it consumes.

Each service is its own principal, named after it, with exactly:

- Read and Describe on the topics it consumes and on its consumer group
  (``<service>-service``);
- Write and Describe on the topics it produces and on the dead-letter topics of what it
  consumes (a poison record is forwarded there by the consumer);
- Create and DescribeConfigs on every topic it uses: a replica creates the ones that are
  absent and checks their replication (``min.insync.replicas``) at start.

``infra/kafka-security.sh`` runs one ``kafka-acls --add`` per line of
:func:`acl_arguments`; ``ordersaga kafka acls`` prints them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ordersaga.config import Settings
from ordersaga.contracts import topics
from ordersaga.contracts.topics import dead_letter
from ordersaga.messaging.dead_letters import INSPECTOR_GROUP_PREFIX
from ordersaga.services.base import ServiceSpec
from ordersaga.services.registry import SERVICES

DEAD_LETTER_ADMIN = "orchestrator"
"""The service whose replicas serve the admin API, which reads every dead-letter topic
(as a consumer group of its own, ``dlq-inspector-<uuid>``) and replays a dead letter to
its source topic. Every source topic it does not write for the saga anyway is one only
the orchestrator consumes, so the right forges nothing another service reads."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Operations a principal may perform on some topics and consumer groups, each
    resource named literally (or, when ``prefixed``, every name starting so)."""

    principal: str
    operations: tuple[str, ...]
    topics: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    prefixed: bool = False

    def arguments(self) -> list[str]:
        """The arguments of ``kafka-acls --add`` that grant it."""
        return [
            "--allow-principal",
            f"User:{self.principal}",
            *(a for op in self.operations for a in ("--operation", op)),
            *(a for topic in self.topics for a in ("--topic", topic)),
            *(a for group in self.groups for a in ("--group", group)),
            *(("--resource-pattern-type", "prefixed") if self.prefixed else ()),
        ]


def service_grants(spec: ServiceSpec) -> list[Grant]:
    """What the principal named after ``spec``'s service may do, and nothing else."""
    name = spec.name
    writes = tuple(dict.fromkeys((*spec.produces, *spec.dead_letters)))
    grants = [
        Grant(name, ("Read", "Describe"), spec.consumes, (spec.group,)) if spec.consumes else None,
        Grant(name, ("Write", "Describe"), writes) if writes else None,
        Grant(name, ("Create", "DescribeConfigs"), spec.topics) if spec.topics else None,
    ]
    return [grant for grant in grants if grant is not None]


def dead_letter_grants(principal: str) -> list[Grant]:
    """What the admin API needs to list, read and replay dead letters."""
    letters = tuple(dead_letter(topic) for topic in topics.ALL)
    return [
        Grant(principal, ("Read", "Describe"), letters),
        Grant(principal, ("Read",), groups=(INSPECTOR_GROUP_PREFIX,), prefixed=True),
        Grant(principal, ("Write", "Describe"), topics.ALL),
    ]


def all_grants(specs: Iterable[ServiceSpec]) -> list[Grant]:
    """Every service's grants, service by service."""
    return [grant for spec in specs for grant in service_grants(spec)]


def registry_grants(settings: Settings | None = None) -> list[Grant]:
    """The grants of the services of the registry, wired with ``settings``."""
    settings = settings or Settings()
    saga = all_grants(service.spec(settings) for service in SERVICES)
    return [*saga, *dead_letter_grants(DEAD_LETTER_ADMIN)]


def acl_arguments(grants: Sequence[Grant]) -> list[str]:
    """One line of ``kafka-acls --add`` arguments per grant (names hold no spaces)."""
    return [" ".join(grant.arguments()) for grant in grants]
