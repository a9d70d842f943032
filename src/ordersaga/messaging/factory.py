"""The broker of the distributed mode, chosen in one place.

The embedded mode builds its :class:`~ordersaga.messaging.memory.InProcessBroker` itself.
"""

from ordersaga.config import Settings
from ordersaga.messaging.kafka import KafkaBroker
from ordersaga.messaging.port import Broker


def make_broker(settings: Settings) -> Broker:
    """The Kafka cluster at ``settings.kafka_bootstrap_servers``, with its security options;
    the topics it creates have ``settings.kafka_replication_factor`` replicas."""
    return KafkaBroker(settings, replication_factor=settings.kafka_replication_factor)
