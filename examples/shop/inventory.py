"""The body of ``shop/inventory``: the stock of one item (the function id is its sku).

Units move from *available* to *reserved* when a cart reserves them, back when the cart
gives them up, and out of *reserved* into *sold* when checkout sells them. The price is the
warehouse's: a cart is quoted the price at the moment its units are reserved.

statefun-codegen created this file once; it is handwritten from here on.
"""

from __future__ import annotations

from .generated import InventoryContext, shop_pb2


async def inventory(
    ctx: InventoryContext,
    message: shop_pb2.Restock | shop_pb2.ReserveStock | shop_pb2.ReleaseStock | shop_pb2.StockSold,
) -> None:
    sku = ctx.address.id
    level = ctx.storage.level or shop_pb2.StockLevel()
    if isinstance(message, shop_pb2.Restock):
        # A negative quantity writes stock off (damaged, lost); what is held for carts stays.
        level.available = max(0, level.available + message.quantity)
        if message.unit_price_cents > 0:
            level.unit_price_cents = message.unit_price_cents
    elif isinstance(message, shop_pb2.ReserveStock):
        # An item the warehouse never priced is not for sale, whatever the count says.
        sellable = level.available if level.unit_price_cents > 0 else 0
        if 0 < message.quantity <= sellable:
            level.available -= message.quantity
            level.reserved += message.quantity
            ctx.send_cart_stock_reserved(
                message.customer,
                shop_pb2.StockReserved(
                    sku=sku, quantity=message.quantity, unit_price_cents=level.unit_price_cents
                ),
            )
        else:
            ctx.send_cart_stock_unavailable(
                message.customer,
                shop_pb2.StockUnavailable(sku=sku, requested=message.quantity, available=sellable),
            )
            return  # nothing changed
    elif isinstance(message, shop_pb2.ReleaseStock):
        released = min(message.quantity, level.reserved)
        level.reserved -= released
        level.available += released
    else:
        sold = min(message.quantity, level.reserved)
        level.reserved -= sold
        level.sold += sold
    ctx.storage.level = level
