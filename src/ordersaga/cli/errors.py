"""One way for every command to fail: a short message on stderr and a documented exit code.

Exit codes: 0 ok; 1 a check failed or the command's work was refused; 2 a usage error
(as click reports its own); 3 a server the command needs (Kafka, a database, the order
API) is unreachable. A server that is away is answered in one paragraph naming it, its
address and the command that starts it, never with a traceback; ``ordersaga --debug``
lets the exception through.
"""

import socket
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer._click.core import Context  # typer's own copy of click: its groups take this

from ordersaga.cli.help import TerminalGroup
from ordersaga.config import SettingFileError, Settings
from ordersaga.services.registry import SERVICES

OK = 0
FAILED = 1
USAGE = 2
UNREACHABLE = 3

START_SERVERS = "Start the local servers with `make infra-up`"

BACKENDS = {"postgresql": "PostgreSQL", "mysql": "MariaDB", "sqlite": "SQLite"}

# MySQL client errors that mean the server was never reached or went away.
_MYSQL_AWAY = {2002, 2003, 2005, 2006, 2013}


def fail(message: str, code: int = FAILED) -> NoReturn:
    """End the command: ``Error: message`` on stderr, exit ``code``."""
    Console(stderr=True, soft_wrap=True).print(Text(f"Error: {message}", style="red"))
    raise typer.Exit(code)


class ServerUnreachable(Exception):
    """A server a command needs is away; the message says which and what to do. The
    root command turns it into exit 3, or with ``--debug`` shows its cause's traceback."""


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            yield current.orig
        current = current.__cause__ or current.__context__


def _kind(error: BaseException) -> str | None:
    """``"kafka"``, ``"database"``, ``"api"`` when ``error`` says that server is away."""
    for link in _chain(error):
        module = type(link).__module__
        if module.startswith("aiokafka") and type(link).__name__ in (
            "KafkaConnectionError",
            "NodeNotReadyError",
            "RequestTimedOutError",
        ):
            return "kafka"
        if module.startswith("httpx") and type(link).__name__ in (
            "ConnectError",
            "ConnectTimeout",
        ):
            return "api"
        if module.startswith("pymysql") and link.args and link.args[0] in _MYSQL_AWAY:
            return "database"
        if isinstance(link, (ConnectionError, socket.gaierror, TimeoutError)) or (
            isinstance(link, OSError) and "connect call failed" in str(link).lower()
        ):
            return "database"
    return None


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` means a server was unreachable (rather than refusing the work)."""
    return _kind(error) is not None


def _reason(error: BaseException) -> str:
    if isinstance(error, DBAPIError):
        error = error.orig if isinstance(error.orig, BaseException) else error
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def address(url: str) -> str:
    """``host:port`` of a database URL (the backend's default port when none is given)."""
    parsed = make_url(url)
    default = {"postgresql": 5432, "mysql": 3306}.get(parsed.get_backend_name())
    return f"{parsed.host or 'localhost'}:{parsed.port or default}"


def database_unreachable(service: str, url: str, error: BaseException) -> str:
    """The paragraph for one service's database being away."""
    backend = BACKENDS.get(make_url(url).get_backend_name(), "the database server")
    variable = f"ORDERSAGA_{service.upper()}_DB_URL"
    return (
        f"cannot reach {service}'s database ({backend} at {address(url)}): "
        f"{_reason(error)}.\n{START_SERVERS}, or point {variable} at a running server."
    )


def kafka_unreachable(bootstrap: str, error: BaseException) -> str:
    return (
        f"cannot reach Kafka at {bootstrap}: {_reason(error)}.\n"
        f"{START_SERVERS}, or point ORDERSAGA_KAFKA_BOOTSTRAP_SERVERS at a running broker."
    )


def _answers(host_port: str, timeout: float = 0.3) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def api_unreachable(api_url: str, error: BaseException, settings: Settings) -> str:
    """The paragraph for the order API being away, naming the mode that seems in use:
    when the configured Kafka answers the real stack is up and only its services are
    missing; otherwise either mode may be meant."""
    first_broker = settings.kafka_bootstrap_servers.split(",")[0].strip()
    if _answers(first_broker):
        hint = (
            f"Kafka answers at {first_broker}, so the real stack is up: start its "
            "services with `ordersaga up`."
        )
    else:
        hint = (
            "Start it with `ordersaga up --embedded`, or the real stack with "
            "`make infra-up` then `ordersaga up`."
        )
    return f"cannot reach the order API at {api_url}: {_reason(error)}.\n{hint}"


def database_failed(service: str, url: str, error: BaseException) -> NoReturn:
    """End a command whose work on ``service``'s database at ``url`` raised ``error``:
    exit 3 with the paragraph when the server is away, 1 with the driver's message
    otherwise (a missing schema, a refused statement)."""
    if unreachable(error):
        raise ServerUnreachable(database_unreachable(service, url, error)) from error
    where = make_url(url).render_as_string(hide_password=True)
    fail(
        f"{service}: the database at {where} failed: {_reason(error)}.\n"
        f"Is its schema in place (`ordersaga db upgrade {service}`; from empty: "
        "`make infra-reset`)?",
        FAILED,
    )


def _servers_unreachable(error: BaseException, settings: Settings) -> str:
    """The paragraph for an error that reached the top without naming its service."""
    kind = _kind(error)
    if kind == "kafka":
        return kafka_unreachable(settings.kafka_bootstrap_servers, error)
    if kind == "api":
        return api_unreachable(f"http://{settings.api_host}:{settings.api_port}", error, settings)
    places: dict[str, list[str]] = {}
    for service in SERVICES:
        url = service.database_url(settings)
        backend = BACKENDS.get(make_url(url).get_backend_name(), "database")
        places.setdefault(f"{backend} at {address(url)}", []).append(service.name)
    servers = "; ".join(f"{where} ({', '.join(names)})" for where, names in places.items())
    return (
        f"cannot reach a database: {_reason(error)}.\nConfigured: {servers}.\n"
        f"{START_SERVERS}, or point the ORDERSAGA_*_DB_URL settings at running servers."
    )


def _debug(ctx: Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


class CommandGroup(TerminalGroup):
    """The command line and its groups: a server found unreachable anywhere below ends
    the command with exit 3 and one paragraph (with ``--debug``, the traceback instead).
    Each group is one, so a group run on its own (as the tests do) answers the same."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except ServerUnreachable as error:
            if _debug(ctx) and error.__cause__ is not None:
                raise error.__cause__ from None
            fail(str(error), UNREACHABLE)
        except (typer.Exit, typer.Abort):
            raise
        except SettingFileError as error:
            fail(str(error), USAGE)
        except Exception as error:
            if _debug(ctx) or not unreachable(error):
                raise
            fail(_servers_unreachable(error, Settings()), UNREACHABLE)
