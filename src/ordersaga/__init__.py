"""ordersaga: the place-order saga, orchestrated over Kafka."""

__version__ = "0.1.0"
