"""The API's listening socket, bound before anything announces that the system is up."""

import socket

API_PORT_CHOICE = "ORDERSAGA_API_PORT (`up --embedded` also takes --port)"
ADMIN_PORT_CHOICE = "ORDERSAGA_ADMIN_PORT (`up --embedded` also takes --admin-port)"


class PortInUse(OSError):
    """The API's address is taken; the message says by what it may be and what to do."""

    def __init__(
        self, host: str, port: int, reason: OSError, choose: str = API_PORT_CHOICE
    ) -> None:
        super().__init__(
            f"port {port} on {host} is in use ({reason.strerror or reason}): another "
            "`ordersaga up` or another program listens there. Stop it, or choose another "
            f"port with {choose}."
        )
        self.host = host
        self.port = port


def bind_api(
    host: str, port: int, *, shared: bool = False, choose: str = API_PORT_CHOICE
) -> socket.socket:
    """A socket bound to ``host:port``, not yet listening; :class:`PortInUse` if taken.

    ``shared`` sets SO_REUSEPORT, so order replicas on one host share the port (the kernel
    spreads connections over them); anything else listening there still makes it taken.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise PortInUse(host, port, error, choose) from None
    return sock


def check_port(host: str, port: int, choose: str = API_PORT_CHOICE) -> None:
    """Raise :class:`PortInUse` unless ``host:port`` can be bound now."""
    bind_api(host, port, choose=choose).close()
