"""OWASP API5, broken function-level authorization, on the admin API: only a token with
the operator role reads or acts, and what it does is audited under its subject."""

from pathlib import Path

from ordersaga.auth import setup as auth_setup
from ordersaga.auth.local_key import load_or_create
from ordersaga.auth.tokens import mint
from tests.api.admin_support import place_one_of_each, running
from tests.auth_support import bearer

ADMIN_ROUTES = (
    ("GET", "/admin/v1/sagas"),
    ("GET", "/admin/v1/sagas/counts"),
    ("GET", "/admin/v1/audit"),
    ("GET", "/admin/v1/dead-letters"),
)


async def test_api5_function_level_authorization_a_customer_token_is_403(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        saga_id = await run.place(1, 3, 3)  # 150 > 100: cancelled
        await run.wait_for_status(saga_id, "CANCELLED")
        customer = bearer(run.system.tokens.for_user(1))

        reads = [
            await run.admin.request(method, path, headers=customer)
            for method, path in ADMIN_ROUTES
        ]
        action = await run.admin.post(
            f"/admin/v1/sagas/{saga_id}/retry", json={"reason": "mine"}, headers=customer
        )
        audit = await run.get("/admin/v1/audit")

    assert [r.status_code for r in reads] == [403] * len(ADMIN_ROUTES)
    assert action.status_code == 403
    assert "operator" in action.json()["detail"]
    assert audit == []  # nothing was done, so nothing is recorded


async def test_api5_function_level_authorization_no_token_is_401(tmp_path: Path) -> None:
    async with running(tmp_path) as run:
        anonymous = {"Authorization": ""}
        answers = [
            await run.admin.request(method, path, headers=anonymous)
            for method, path in ADMIN_ROUTES
        ]
        forged = await run.admin.get("/admin/v1/sagas", headers=bearer("a.b.c"))

    assert [a.status_code for a in answers] == [401] * len(ADMIN_ROUTES)
    assert all(a.headers["WWW-Authenticate"].startswith("Bearer") for a in answers)
    assert "--role operator" in answers[0].json()["detail"]
    assert forged.status_code == 401
    assert 'error="invalid_token"' in forged.headers["WWW-Authenticate"]


async def test_api5_function_level_authorization_an_operator_reads_and_acts_audited(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as run:
        placed = await place_one_of_each(run)
        settings, data_dir = run.system.settings, run.system.data_dir
        key = load_or_create(auth_setup.local_key_file(settings, data_dir))
        bob = bearer(mint(key, auth_setup.audience_of(settings), "ops-bob", roles=["operator"]))

        reads = [
            await run.admin.request(method, path, headers=bob) for method, path in ADMIN_ROUTES
        ]
        retried = await run.admin.post(
            f"/admin/v1/sagas/{placed.parked}/retry", json={"reason": "stock is back"}, headers=bob
        )
        audit = await run.get("/admin/v1/audit")

    assert [r.status_code for r in reads] == [200] * len(ADMIN_ROUTES)
    assert retried.status_code == 200, retried.text
    assert [(a["actor"], a["action"], a["saga_id"]) for a in audit] == [
        ("ops-bob", "retry", placed.parked)
    ]
