"""``ordersaga kafka acls``: the ACLs each service's Kafka principal needs, from the code."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from ordersaga.cli.errors import CommandGroup
from ordersaga.tools.kafka_acls import acl_arguments, registry_grants

console = Console()

kafka_app = typer.Typer(
    help="Kafka security: the ACLs of the services' principals.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)


@kafka_app.command("acls")
def acls_command(
    arguments: Annotated[
        bool,
        typer.Option(
            "--arguments",
            help="Only the arguments of each `kafka-acls --add`, one grant a line "
            "(what infra/kafka-security.sh runs).",
        ),
    ] = False,
) -> None:
    """The ACLs of each service's principal (User:<service>), derived from what it
    consumes and produces, as `kafka-acls` commands; `make infra-up` grants them."""
    grants = registry_grants()
    lines = acl_arguments(grants)
    if arguments:
        for line in lines:
            typer.echo(line)
        return
    if not console.is_terminal:
        for line in lines:
            typer.echo(
                "kafka-acls --bootstrap-server $KAFKA --command-config admin-client.properties "
                f"--add {line}"
            )
        return
    table = RichTable("principal", "operations", "topics", "groups")
    for grant in grants:
        table.add_row(
            f"User:{grant.principal}",
            ", ".join(grant.operations),
            "\n".join(grant.topics),
            ", ".join(grant.groups),
        )
    console.print(table)
