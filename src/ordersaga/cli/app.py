"""The ``ordersaga`` command line: every command group, put together."""

from typing import Annotated

import typer

from ordersaga.cli.auth import auth_app, token_command
from ordersaga.cli.bench import bench_command
from ordersaga.cli.chaos import chaos_command
from ordersaga.cli.db import db_app, seed_command
from ordersaga.cli.demo import demo_command
from ordersaga.cli.dlq import dlq_app
from ordersaga.cli.errors import CommandGroup
from ordersaga.cli.help import for_terminal
from ordersaga.cli.kafka import kafka_app
from ordersaga.cli.orders import orders_command, place_order_command
from ordersaga.cli.outbox import outbox_app
from ordersaga.cli.prune import prune_command
from ordersaga.cli.sagas import sagas_app
from ordersaga.cli.top import top_command
from ordersaga.cli.up import serve_command, up_command
from ordersaga.cli.verify import verify_command

app = typer.Typer(
    help="The place-order saga, orchestrated over Kafka: order, stock, payment, orchestrator.",
    no_args_is_help=True,
    add_completion=False,
    cls=CommandGroup,
)


@app.callback()
def options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback behind an error message.")
    ] = False,
) -> None:
    """The place-order saga, orchestrated over Kafka: order, stock, payment, orchestrator.

    Exit codes: 0 ok; 1 a check failed or the work was refused; 2 a usage error; 3 Kafka,
    a database or the order API is unreachable."""


app.command("demo")(demo_command)
app.command("up")(up_command)
app.command("serve")(serve_command)
app.command("place-order")(place_order_command)
app.command("orders")(orders_command)
app.command("verify")(verify_command)
app.command("token")(token_command)
app.add_typer(auth_app, name="auth")
app.add_typer(db_app, name="db")
app.add_typer(dlq_app, name="dlq")
app.add_typer(sagas_app, name="sagas")
app.add_typer(outbox_app, name="outbox")
app.add_typer(kafka_app, name="kafka")
app.command("seed")(seed_command)
app.command("chaos")(chaos_command)
app.command("prune")(prune_command)
app.command("bench")(bench_command)
app.command("top")(top_command)
for_terminal([app])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
