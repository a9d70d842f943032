"""The ``ordersaga`` command line: every typer and rich command, one module per group."""


def main() -> None:
    """The console entry point (``ordersaga``)."""
    from ordersaga.cli.app import app

    app()
