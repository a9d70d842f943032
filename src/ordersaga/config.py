"""Settings, read from ``ORDERSAGA_*`` environment variables or given by the caller.

Created once in the wiring and passed in; nothing reads the environment anywhere else.
"""

from datetime import timedelta
from decimal import Decimal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORDERSAGA_", extra="ignore")

    partitions: int = Field(6, ge=1, description="Partitions per topic.")
    max_quantity: int = Field(100, ge=1, description="Largest quantity one order may ask for.")
    reserve_timeout: float = Field(
        30.0, gt=0, description="Seconds the saga waits for stock to answer a step."
    )
    payment_timeout: float = Field(
        30.0, gt=0, description="Seconds the saga waits for payment to answer a step."
    )
    compensation_timeout: float = Field(
        30.0, gt=0, description="Seconds the saga waits for a compensation to be acknowledged."
    )
    max_compensation_attempts: int = Field(
        10,
        ge=1,
        description="Sends of a compensation (or of the final order-updated) without "
        "acknowledgement before its saga is PARKED for an operator (`ordersaga sagas retry`).",
    )
    reconcile_after: float = Field(
        300.0,
        gt=0,
        description="Seconds an order may stay ORDER_CREATED before the order service "
        "publishes its order-created again (and again after as long, until it ends).",
    )
    timer_interval: float = Field(0.5, gt=0, description="Seconds between deadline scans.")
    inbox_retention: float = Field(
        7 * 86400.0,
        gt=0,
        description="Seconds a handled message's id is kept to recognise a redelivery; "
        "longer than the topics' retention, past which nothing is redelivered.",
    )
    saga_retention: float = Field(
        30 * 86400.0,
        gt=0,
        description="Seconds a finished saga and its history are kept "
        "(`ordersaga sagas export` first, to keep them elsewhere).",
    )
    retention_interval: float = Field(
        60.0, gt=0, description="Seconds between two background pruning rounds."
    )
    relay_send_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds the outbox relay waits for the broker to acknowledge a batch "
        "before it abandons the send and releases the rows for another try.",
    )
    relay_lock_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds the outbox relay waits for a database lock before it gives "
        "up and tries again (whole seconds on MariaDB).",
    )
    api_host: str = "127.0.0.1"
    api_port: int = 8091
    api_keep_alive: float = Field(
        75.0,
        gt=0,
        description="Seconds the order API keeps an idle keep-alive connection open. Longer "
        "than clients and load balancers keep theirs (httpx 5 s, browsers about 60 s), so "
        "none reuses a connection at the moment the server closes it.",
    )
    shutdown_grace: float = Field(
        20.0,
        gt=0,
        le=25.0,
        description="Seconds a replica takes at most to stop on SIGTERM: answering the "
        "requests in flight, finishing its batch, draining its outbox. Under Kubernetes' "
        "default 30 s termination grace, with room to spare.",
    )

    # Distributed mode. The defaults are what `make infra-up` starts on this machine.
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_replication_factor: int = Field(
        1,
        ge=1,
        description="Copies of every partition of the topics the services create; checked "
        "at start against the topics as they are (with min.insync.replicas when over 1). "
        "1 for a single broker; 3 (with min.insync.replicas=2 on the cluster) in production.",
    )
    kafka_security_protocol: str = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. SCRAM-SHA-512, PLAIN.")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: str | None = Field(
        None, description="A file holding the SASL password (one line), instead of the variable."
    )
    kafka_service_sasl_username: str | None = Field(
        None,
        description="What a service replica logs in to Kafka as, instead of "
        "kafka_sasl_username; {service} is the service's name (e.g. `{service}`), so the "
        "replicas of one `ordersaga up` each log in as their own service.",
    )
    kafka_service_sasl_password_file: str | None = Field(
        None,
        description="The password file of a service replica; {service} is the service's "
        "name (e.g. `.cache/kafka-security/{service}.password`).",
    )
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    order_db_url: str = "mysql+aiomysql://ordersaga:ordersaga@127.0.0.1:3306/orders"
    # On the loopback interface TLS protects nothing and costs the services and
    # PostgreSQL a tenth of their CPU; asyncpg would otherwise negotiate it whenever the
    # server offers it. A remote database's URL should say ?ssl=require (or verify-full).
    orchestrator_db_url: str = (
        "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/orchestrator?ssl=disable"
    )
    stock_db_url: str = "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/stock?ssl=disable"
    payment_db_url: str = (
        "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/payment?ssl=disable"
    )

    @property
    def inbox_window(self) -> timedelta:
        return timedelta(seconds=self.inbox_retention)

    @property
    def saga_window(self) -> timedelta:
        return timedelta(seconds=self.saga_retention)


SAMPLE_PRICES: dict[int, tuple[str, Decimal]] = {
    1: ("Product 1", Decimal("20.00")),
    2: ("Product 2", Decimal("30.00")),
    3: ("Product 3", Decimal("50.00")),
}
"""The original demo's catalog: product id → (name, price)."""

SAMPLE_STOCK: dict[int, int] = {1: 5, 2: 5, 3: 3}
"""The original demo's stock: product id → quantity on hand."""

SAMPLE_BALANCES: dict[int, Decimal] = {
    1: Decimal("100.00"),
    2: Decimal("100.00"),
    3: Decimal("200.00"),
}
"""The original demo's balances: user id → balance."""
