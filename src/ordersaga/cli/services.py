"""The SERVICE argument of the commands, with the choices the registry lists."""

from typing import Annotated

import typer

from ordersaga.services.registry import SERVICE_NAMES

CHOICES = ", ".join(SERVICE_NAMES)


def parse_service(text: str) -> str:
    """A service's name; a usage error naming the services for anything else."""
    if text not in SERVICE_NAMES:
        raise typer.BadParameter(f"unknown service {text!r}: one of {CHOICES}")
    return text


ServiceName = Annotated[str, typer.Argument(parser=parse_service, help=f"{CHOICES}.")]
"""One service, required."""

SomeService = Annotated[
    str | None,
    typer.Argument(parser=parse_service, help=f"{CHOICES}; all of them when omitted."),
]
"""One service, or every one when omitted."""


def chosen(service: str | None) -> tuple[str, ...]:
    """The services a command given ``service`` (or none) acts on."""
    return SERVICE_NAMES if service is None else (service,)
