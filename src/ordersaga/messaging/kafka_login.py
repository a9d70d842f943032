"""Why Kafka refuses a client for good, as opposed to not answering yet.

aiokafka's clients report any failure to reach the bootstrap servers as "unable to
bootstrap", so a replica with a wrong password would wait for Kafka forever. One direct
connection tells the two apart: a refused SASL login, or a broker certificate the
configured CA does not vouch for, will not get better by waiting.
"""

import ssl

from aiokafka.conn import create_conn  # type: ignore[import-untyped]
from aiokafka.errors import KafkaError, SaslAuthenticationFailed  # type: ignore[import-untyped]

from ordersaga.config import Settings
from ordersaga.messaging.kafka_config import client_options

PROBE_TIMEOUT_MS = 10_000


async def login_refusal(settings: Settings) -> str | None:
    """What the first bootstrap server that answers says against these settings' login
    (never the password), or ``None`` when it accepts it or none answers."""
    options = client_options(settings)
    servers: list[str] = options.pop("bootstrap_servers")
    for server in servers:
        host, _, port = server.rpartition(":")
        try:
            conn = await create_conn(
                host, int(port), **options, request_timeout_ms=PROBE_TIMEOUT_MS
            )
        except SaslAuthenticationFailed as refused:
            user = settings.kafka_sasl_username
            return f"Kafka at {server} refused the login of user {user!r}: {refused}"
        except ssl.SSLCertVerificationError as untrusted:
            return (
                f"Kafka at {server} presented a certificate that is not trusted "
                f"({untrusted.verify_message}): check ORDERSAGA_KAFKA_SSL_CAFILE"
            )
        except (TimeoutError, OSError, KafkaError, ValueError):
            continue  # not up yet, or not this one: the next server may answer
        conn.close()
        return None
    return None
