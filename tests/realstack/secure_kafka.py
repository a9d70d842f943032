"""The real-stack tests run on Kafka's SASL_SSL listener, as `make infra-up` sets it up.

`infra/with-infra.sh` exports its settings (``infra/infra.sh env``): the secure
listener's address, the CA, ``admin``'s credentials for the tests themselves and each
service's for the replicas they start.
"""

import os
from collections.abc import Mapping

SECURE_LISTENER_NEEDED = (
    "the real-stack tests run on Kafka's SASL_SSL listener: run them through "
    'infra/with-infra.sh, or `eval "$(bash infra/infra.sh env)"` first (or set '
    "ORDERSAGA_KAFKA_SECURITY_PROTOCOL and the rest of the Kafka settings yourself)"
)


def require_secure_listener(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse to run the tests on an environment that names no security protocol."""
    if not environ.get("ORDERSAGA_KAFKA_SECURITY_PROTOCOL"):
        raise RuntimeError(SECURE_LISTENER_NEEDED)
