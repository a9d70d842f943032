"""The answer to a request whose bearer token is missing or not accepted."""


class NotAuthenticated(Exception):
    """No token, or one that is not accepted; answered 401 with ``WWW-Authenticate``.

    ``invalid`` says a token was sent (RFC 6750: ``error="invalid_token"``); a request
    without one gets the challenge alone. ``realm`` names the API asked."""

    def __init__(self, reason: str, *, invalid: bool, realm: str = "ordersaga") -> None:
        super().__init__(reason)
        self.reason = reason
        self.invalid = invalid
        self.realm = realm

    @property
    def challenge(self) -> str:
        if not self.invalid:
            return f'Bearer realm="{self.realm}"'
        description = self.reason.replace('"', "'")
        return (
            f'Bearer realm="{self.realm}", error="invalid_token", error_description="{description}"'
        )
