"""Settings, read from ``ORDERSAGA_*`` environment variables or given by the caller.

Created once in the wiring and passed in; nothing reads the environment anywhere else.
"""

import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

PREFIX = "ORDERSAGA_"
FILE_SUFFIX = "_FILE"


class SettingFileError(ValueError):
    """A ``ORDERSAGA_*_FILE`` variable names a file that cannot be read, or is set
    beside the variable it stands for."""


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
    batch_linger: float = Field(
        0.001,
        ge=0,
        le=1,
        description="Seconds a consumer that polled fewer records than a batch holds, or "
        "an outbox relay woken after a short round, waits for more before it handles or "
        "publishes them, so that messages close together share one transaction, offset "
        "commit and produce request; 0 turns it off.",
    )
    offset_commit_interval: float = Field(
        0.5,
        ge=0,
        le=60,
        description="Seconds a consumer may hold the offsets of records it has handled "
        "(their transaction committed) before it commits them to the broker, so that a "
        "lightly loaded consumer commits twice a second rather than once per message; a "
        "crash or a rebalance meanwhile has those records delivered again, which the "
        "inbox skips. 0 commits after every batch.",
    )
    log_format: Literal["json", "console"] | None = Field(
        None,
        description="How a replica writes its log: `json`, one JSON object per line (the "
        "default when standard error is not a terminal), or `console`, readable lines (the "
        "default on a terminal). `ordersaga up` shows its replicas' lines readably on a "
        "terminal and passes their JSON lines on as they are elsewhere.",
    )
    api_rate_limit: float = Field(
        20.0,
        ge=0,
        description="Orders a second one client (a token's subject) may place on one API "
        "replica, on average; over it the API answers 429 with Retry-After. 0 turns it off.",
    )
    api_rate_limit_burst: int = Field(
        40, ge=1, description="Orders a client may place at once before the rate applies."
    )

    # Authentication of the HTTP APIs (docs/security.md).
    auth: Literal["enabled", "disabled"] = Field(
        "enabled",
        description="`disabled` lets anyone who reaches the API act as an operator; "
        "logged as a warning at every start.",
    )
    auth_issuer: str = Field("ordersaga", description="The `iss` every token must carry.")
    auth_audience: str = Field("ordersaga-api", description="The `aud` every token must carry.")
    auth_leeway: float = Field(
        30.0, ge=0, le=300, description="Seconds of clock skew allowed on `exp`, `nbf`, `iat`."
    )
    auth_jwks_url: str | None = Field(
        None, description="An identity provider's JWKS URL; tokens are verified against it."
    )
    auth_jwks_file: Path | None = Field(
        None, description="A JWKS file to verify tokens against (when no URL is set)."
    )
    auth_jwks_min_refresh: float = Field(
        30.0,
        ge=1,
        description="Seconds between two fetches of the JWKS URL at the least, however many "
        "tokens name a key it does not know.",
    )
    auth_key_file: Path | None = Field(
        None,
        description="The local signing key (`ordersaga token`); by default "
        "data/auth/signing-key.pem under the data directory, created on first use. Its "
        "JWKS beside it is what tokens are verified against when no JWKS is set.",
    )

    api_host: str = "127.0.0.1"
    api_port: int = 8091
    admin_host: str = Field(
        "127.0.0.1",
        description="Address the orchestrator's admin API listens on: a loopback address "
        "only, as it has no authentication.",
    )
    admin_port: int = Field(8092, description="Port of the orchestrator's admin API.")
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
    metrics_host: str = Field(
        "127.0.0.1", description="Address the metrics port (Prometheus' /metrics) listens on."
    )
    metrics_port: int = Field(
        9100,
        ge=0,
        le=65535,
        description="Port of a replica's /metrics (Prometheus text format); 0: none. "
        "`ordersaga up` gives replica r of the k-th service (order 0, orchestrator 1, stock "
        "2, payment 3) this port + 10*k + r; `serve` uses it as given; the embedded "
        "system serves every service's metrics on it. The order API also has /metrics.",
    )
    metrics_interval: float = Field(
        5.0,
        gt=0,
        description="Seconds between two readings of the gauges taken from a service's "
        "database (outbox rows waiting, sagas parked and unfinished).",
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
    kafka_sasl_password: SecretStr | None = Field(
        None, description="ORDERSAGA_KAFKA_SASL_PASSWORD_FILE: from a file."
    )
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    order_kafka_sasl_username: str | None = Field(
        None,
        description="The Kafka user the order service's replicas log in as, in place of "
        "kafka_sasl_username (which the commands keep using).",
    )
    order_kafka_sasl_password: SecretStr | None = Field(
        None,
        description="Its password (ORDERSAGA_ORDER_KAFKA_SASL_PASSWORD_FILE: from a file).",
    )
    orchestrator_kafka_sasl_username: str | None = Field(
        None,
        description="The Kafka user the orchestrator's replicas log in as, in place of "
        "kafka_sasl_username (which the commands keep using).",
    )
    orchestrator_kafka_sasl_password: SecretStr | None = Field(
        None,
        description="Its password (ORDERSAGA_ORCHESTRATOR_KAFKA_SASL_PASSWORD_FILE: from a file).",
    )
    stock_kafka_sasl_username: str | None = Field(
        None,
        description="The Kafka user the stock service's replicas log in as, in place of "
        "kafka_sasl_username (which the commands keep using).",
    )
    stock_kafka_sasl_password: SecretStr | None = Field(
        None,
        description="Its password (ORDERSAGA_STOCK_KAFKA_SASL_PASSWORD_FILE: from a file).",
    )
    payment_kafka_sasl_username: str | None = Field(
        None,
        description="The Kafka user the payment service's replicas log in as, in place of "
        "kafka_sasl_username (which the commands keep using).",
    )
    payment_kafka_sasl_password: SecretStr | None = Field(
        None,
        description="Its password (ORDERSAGA_PAYMENT_KAFKA_SASL_PASSWORD_FILE: from a file).",
    )
    order_db_url: str = "mysql+aiomysql://ordersaga:ordersaga@127.0.0.1:3306/orders"
    order_db_password: SecretStr | None = Field(
        None,
        description="The order service's database password, in place of the one in "
        "ORDERSAGA_ORDER_DB_URL (ORDERSAGA_ORDER_DB_PASSWORD_FILE: from a "
        "file).",
    )
    order_db_owner_url: str | None = Field(
        None,
        description="The login owning the order database: `ordersaga db upgrade` "
        "migrates with it and grants the service's login (ORDERSAGA_ORDER_DB_URL) only "
        "what it needs. Unset: the service's own URL does both.",
    )
    order_db_owner_password: SecretStr | None = Field(
        None, description="The owner login's password, in place of the one in its URL."
    )
    # On the loopback interface TLS protects nothing and costs the services and
    # PostgreSQL a tenth of their CPU; asyncpg would otherwise negotiate it whenever the
    # server offers it. A remote database's URL should say ?ssl=require (or verify-full).
    orchestrator_db_url: str = (
        "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/orchestrator?ssl=disable"
    )
    orchestrator_db_password: SecretStr | None = Field(
        None,
        description="The orchestrator's database password, in place of the one in "
        "ORDERSAGA_ORCHESTRATOR_DB_URL (ORDERSAGA_ORCHESTRATOR_DB_PASSWORD_FILE: from a "
        "file).",
    )
    orchestrator_db_owner_url: str | None = Field(
        None,
        description="The login owning the orchestrator database: `ordersaga db upgrade` "
        "migrates with it and grants the service's login only what it needs. Unset: the "
        "service's own URL does both.",
    )
    orchestrator_db_owner_password: SecretStr | None = Field(
        None, description="The owner login's password, in place of the one in its URL."
    )
    stock_db_url: str = "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/stock?ssl=disable"
    stock_db_password: SecretStr | None = Field(
        None,
        description="The stock service's database password, in place of the one in "
        "ORDERSAGA_STOCK_DB_URL (ORDERSAGA_STOCK_DB_PASSWORD_FILE: from a "
        "file).",
    )
    stock_db_owner_url: str | None = Field(
        None,
        description="The login owning the stock database: `ordersaga db upgrade` "
        "migrates with it and grants the service's login only what it needs. Unset: the "
        "service's own URL does both.",
    )
    stock_db_owner_password: SecretStr | None = Field(
        None, description="The owner login's password, in place of the one in its URL."
    )
    payment_db_url: str = (
        "postgresql+asyncpg://ordersaga:ordersaga@127.0.0.1:5432/payment?ssl=disable"
    )
    payment_db_password: SecretStr | None = Field(
        None,
        description="The payment service's database password, in place of the one in "
        "ORDERSAGA_PAYMENT_DB_URL (ORDERSAGA_PAYMENT_DB_PASSWORD_FILE: from a "
        "file).",
    )
    payment_db_owner_url: str | None = Field(
        None,
        description="The login owning the payment database: `ordersaga db upgrade` "
        "migrates with it and grants the service's login only what it needs. Unset: the "
        "service's own URL does both.",
    )
    payment_db_owner_password: SecretStr | None = Field(
        None, description="The owner login's password, in place of the one in its URL."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SettingFiles(settings_cls), dotenv_settings)

    @property
    def inbox_window(self) -> timedelta:
        return timedelta(seconds=self.inbox_retention)

    @property
    def saga_window(self) -> timedelta:
        return timedelta(seconds=self.saga_retention)


class SettingFiles(PydanticBaseSettingsSource):
    """Any setting from a file: ``ORDERSAGA_<NAME>_FILE=/run/secrets/x`` sets
    ``ORDERSAGA_<NAME>`` to the file's content, without its final line break. Meant for
    passwords and keys mounted as files (Kubernetes and Compose secrets), so they never
    sit in a process's environment."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return _from_file(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for name in self.settings_cls.model_fields:
            value = _from_file(name)
            if value is not None:
                values[name] = value
        return values


def _from_file(name: str) -> str | None:
    variable = f"{PREFIX}{name.upper()}{FILE_SUFFIX}"
    path = os.environ.get(variable)
    if not path:
        return None
    if f"{PREFIX}{name.upper()}" in os.environ:
        raise SettingFileError(
            f"{variable} and {PREFIX}{name.upper()} are both set: keep one of them"
        )
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise SettingFileError(f"{variable}: cannot read {path}: {reason}") from None


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
