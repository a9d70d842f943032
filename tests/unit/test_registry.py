"""The registry of services is the one list: everything else agrees with it."""

import pytest

from ordersaga.config import Settings
from ordersaga.db.migrate import head_revision
from ordersaga.services.registry import (
    SERVICE_NAMES,
    SERVICES,
    UnknownService,
    database_url,
    service,
    service_spec,
)


def test_each_service_is_listed_once_in_start_order() -> None:
    assert SERVICE_NAMES == ("order", "orchestrator", "stock", "payment")


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_a_service_wiring_uses_its_registered_tables_and_seed(name: str) -> None:
    spec = service_spec(name, Settings())
    assert spec.name == name
    assert spec.metadata is service(name).metadata
    assert spec.seed is service(name).seed
    assert spec.inbox.metadata is spec.metadata and spec.outbox.metadata is spec.metadata


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_a_service_has_a_migration_history(name: str) -> None:
    assert head_revision(service(name)).isdigit()


def test_each_service_database_url_comes_from_its_own_setting() -> None:
    urls = {s.url_setting: f"sqlite+aiosqlite:///{s.name}.db" for s in SERVICES}
    settings = Settings.model_validate(urls)
    assert {name: database_url(settings, name) for name in SERVICE_NAMES} == {
        name: f"sqlite+aiosqlite:///{name}.db" for name in SERVICE_NAMES
    }
    assert service("stock").url_variable == "ORDERSAGA_STOCK_DB_URL"


def test_an_unknown_name_is_refused_with_the_choices() -> None:
    with pytest.raises(UnknownService, match="'shipping'; one of order, orchestrator"):
        service("shipping")
