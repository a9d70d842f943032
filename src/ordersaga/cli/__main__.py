"""``python -m ordersaga.cli``."""

from ordersaga.cli import main

main()
