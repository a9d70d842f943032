"""``/api/v1/products``: the catalog, so a client knows which products and prices exist."""

from fastapi import APIRouter, Depends

from ordersaga.services.order import repository
from ordersaga.services.order.deps import EngineDep, get_principal
from ordersaga.services.order.routers.responses import error_responses
from ordersaga.services.order.schemas import Catalog, ProductOut

router = APIRouter(
    prefix="/api/v1/products", tags=["products"], dependencies=[Depends(get_principal)]
)


@router.get("", summary="The product catalog", responses=error_responses(401, 503))
async def list_products(engine: EngineDep) -> Catalog:
    async with engine.connect() as conn:
        found = await repository.list_products(conn)
    return Catalog(items=[ProductOut.of(p) for p in found])
