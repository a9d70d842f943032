"""``ordersaga token`` (mint a token with the local key) and ``ordersaga auth rotate-key``."""

import datetime as dt
from pathlib import Path
from typing import Annotated

import jwt
import typer

from ordersaga.auth import local_key
from ordersaga.auth import setup as auth_setup
from ordersaga.auth.principal import OPERATOR
from ordersaga.auth.tokens import mint, parse_ttl
from ordersaga.cli.errors import USAGE, fail
from ordersaga.cli.json_output import JsonFlag, echo_json
from ordersaga.config import Settings

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="Where the local signing key is kept (auth/signing-key.pem), unless "
        "ORDERSAGA_AUTH_KEY_FILE says where.",
    ),
]

auth_app = typer.Typer(help="The local signing key that `ordersaga token` mints with.")


def token_command(
    user: Annotated[
        int | None, typer.Option("--user", min=1, help="The customer's userID: the token's sub.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Any other sub, e.g. an operator's name.")
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="A role to grant (repeatable): operator.")
    ] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="How long it is valid: 90s, 30m, 1h.")] = "1h",
    data_dir: DataDir = auth_setup.DEFAULT_DATA_DIR,
    as_json: JsonFlag = False,
) -> None:
    """Print a bearer token signed with the local key (created on first use), which the
    API started on the same data directory accepts:

    curl -H "Authorization: Bearer $(ordersaga token --user 1)" http://127.0.0.1:8091/api/v1/orders
    """
    if (user is None) == (subject is None):
        fail("give the token's subject: --user N for a customer, or --subject NAME", USAGE)
    roles = sorted(set(role or ()))
    unknown = [r for r in roles if r != OPERATOR]
    if unknown:
        fail(f"unknown role {', '.join(unknown)}; the roles are: {OPERATOR}", USAGE)
    try:
        lifetime = parse_ttl(ttl)
        settings = Settings()
        key_file = auth_setup.local_key_file(settings, data_dir)
        key = local_key.load_or_create(key_file)
        sub = str(user) if user is not None else str(subject)
        token = mint(key, auth_setup.audience_of(settings), sub, roles=roles, ttl=lifetime)
    except ValueError as error:
        fail(f"--ttl: {error}", USAGE)
    if not as_json:
        typer.echo(token)
        return
    claims = jwt.decode(token, options={"verify_signature": False})
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    echo_json(
        {"token": token, "subject": sub, "roles": roles, "expiresAt": expires, "kid": key.kid}
    )


@auth_app.command("rotate-key")
def rotate_key_command(data_dir: DataDir = auth_setup.DEFAULT_DATA_DIR) -> None:
    """Sign new tokens with a new key; the old key stays in the JWKS until its tokens
    have expired (24 h at most), so nobody is logged out by the rotation."""
    key_file = auth_setup.local_key_file(Settings(), data_dir)
    new = local_key.rotate(key_file)
    published = local_key.published_kids(key_file)
    typer.echo(f"signing with key {new.kid} ({key_file})")
    typer.echo(f"published in {local_key.jwks_file(key_file)}: {', '.join(published)}")
