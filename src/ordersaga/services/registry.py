"""The four services, listed once.

Everything that acts on every service, or on one chosen by name — the runtime, the
supervisor, the migrations runner, the command line's choices, the settings' database
URLs, the tests — takes its list from here.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType

from pydantic import SecretStr
from sqlalchemy import MetaData, make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from ordersaga.config import Settings
from ordersaga.observability.recorders import ServiceMetrics
from ordersaga.services.base import ServiceSpec
from ordersaga.services.orchestrator import tables as orchestrator_tables
from ordersaga.services.orchestrator import wiring as orchestrator_wiring
from ordersaga.services.order import tables as order_tables
from ordersaga.services.order import wiring as order_wiring
from ordersaga.services.payment import tables as payment_tables
from ordersaga.services.payment import wiring as payment_wiring
from ordersaga.services.stock import tables as stock_tables
from ordersaga.services.stock import wiring as stock_wiring


@dataclass(frozen=True)
class Service:
    """One service: what its database holds and where its schema's history is, its
    sample data, how it is wired, and which setting names its database."""

    name: str
    metadata: MetaData
    migrations: str
    """The package of its Alembic history (``env.py`` and ``versions/``)."""
    seed: Callable[[AsyncConnection], Awaitable[None]]
    wiring: Callable[..., ServiceSpec]
    """Its subscriptions (handlers), background loops and pruning, for these settings;
    called as ``wiring(settings, metrics=...)``."""
    url_setting: str
    """The :class:`~ordersaga.config.Settings` field holding its database's URL."""

    def spec(self, settings: Settings, metrics: ServiceMetrics | None = None) -> ServiceSpec:
        """Its wiring, recording into ``metrics`` (by default, figures nothing serves)."""
        return self.wiring(settings, metrics=metrics or ServiceMetrics.detached(self.name))

    def database_url(self, settings: Settings) -> str:
        """The URL the service logs in with: its setting, with the password of
        ``<name>_db_password`` (or its ``_FILE``) in place of the URL's when set."""
        url = getattr(settings, self.url_setting)
        if not isinstance(url, str):
            raise TypeError(f"Settings.{self.url_setting} is not a database URL")
        return with_password(url, getattr(settings, f"{self.name}_db_password"))

    def owner_url(self, settings: Settings) -> str:
        """The URL of the login that owns the database, which migrations use: the
        ``<name>_db_owner_url`` setting, or the service's own URL when it is unset."""
        url = getattr(settings, f"{self.name}_db_owner_url")
        if url is None:
            return self.database_url(settings)
        return with_password(url, getattr(settings, f"{self.name}_db_owner_password"))

    @property
    def url_variable(self) -> str:
        """The environment variable that sets its database's URL."""
        return f"ORDERSAGA_{self.url_setting.upper()}"


def with_password(url: str, password: SecretStr | None) -> str:
    """``url`` with ``password`` in place of its own (``url`` as it is when ``None``)."""
    if password is None:
        return url
    return (
        make_url(url)
        .set(password=password.get_secret_value())
        .render_as_string(hide_password=False)
    )


def _service(name: str, tables: ModuleType, wiring: ModuleType) -> Service:
    """A service laid out as every one is: ``services/<name>/{tables,wiring}.py``,
    ``migrations/<name>/``, its URL in ``Settings.<name>_db_url``."""
    return Service(
        name=name,
        metadata=tables.metadata,
        migrations=f"ordersaga.migrations.{name}",
        seed=wiring.seed,
        wiring=wiring.spec,
        url_setting=f"{name}_db_url",
    )


SERVICES: tuple[Service, ...] = (
    _service("order", order_tables, order_wiring),
    _service("orchestrator", orchestrator_tables, orchestrator_wiring),
    _service("stock", stock_tables, stock_wiring),
    _service("payment", payment_tables, payment_wiring),
)
"""In the order they are started and reported."""

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)


class UnknownService(ValueError):
    """A name that is none of the services'."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unknown service {name!r}; one of {', '.join(SERVICE_NAMES)}")


def service(name: str) -> Service:
    """The service called ``name``; :class:`UnknownService` for any other name."""
    for found in SERVICES:
        if found.name == name:
            return found
    raise UnknownService(name)


def service_spec(
    name: str, settings: Settings, metrics: ServiceMetrics | None = None
) -> ServiceSpec:
    """The wiring of the service called ``name``, for ``settings``, recording into ``metrics``."""
    return service(name).spec(settings, metrics)


def database_url(settings: Settings, name: str) -> str:
    """The URL of the database of the service called ``name``, from ``settings``."""
    return service(name).database_url(settings)
