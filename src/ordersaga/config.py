"""Settings, read from ``ORDERSAGA_*`` environment variables or given by the caller.

Created once in the wiring and passed in; nothing reads the environment anywhere else.
"""

from decimal import Decimal

from pydantic import Field
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
    timer_interval: float = Field(0.5, gt=0, description="Seconds between deadline scans.")
    api_host: str = "127.0.0.1"
    api_port: int = 8091


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
