"""The body of ``shop/checkout``: places a customer's orders (the function id is the customer).

It numbers the customer's orders, prices the reserved lines the cart hands over, applies a
discount code, and writes the order (topic ``orders-placed``, keyed by customer) and the
receipt (topic ``receipts``, keyed by order id) to the one ``shop/orders`` egress; then it
tells the inventory of each item that the units it held are sold.

statefun-codegen created this file once; it is handwritten from here on.
"""

from __future__ import annotations

from .generated import CheckoutContext, shop_pb2
from .generated.types import Receipt, ReceiptLine

#: Discount codes and their percentage off the subtotal.
COUPONS: dict[str, int] = {"WELCOME10": 10, "VIP25": 25}


async def checkout(
    ctx: CheckoutContext,
    message: shop_pb2.PlaceOrder,
) -> None:
    customer = ctx.address.id
    if not message.lines:
        return  # the cart refuses to check out empty; nothing to place
    history = ctx.storage.orders or shop_pb2.CustomerOrders()
    history.placed += 1
    order_id = f"{customer}-{history.placed}"

    lines: list[ReceiptLine] = [
        {
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price_cents": line.unit_price_cents,
            "line_total_cents": line.quantity * line.unit_price_cents,
        }
        for line in message.lines
    ]
    subtotal = sum(line["line_total_cents"] for line in lines)
    code = message.coupon.strip().upper()
    percent = COUPONS.get(code, 0)
    # Rounded down: the customer never pays more than the advertised percentage says.
    discount = subtotal * percent // 100
    total = subtotal - discount
    history.lifetime_cents += total
    ctx.storage.orders = history

    ctx.send_orders_orders_placed(
        shop_pb2.OrderPlaced(
            order_id=order_id, customer=customer, lines=message.lines, total_cents=total
        )
    )
    receipt: Receipt = {
        "order_id": order_id,
        "customer": customer,
        "lines": lines,
        "subtotal_cents": subtotal,
        "discount_cents": discount,
        "total_cents": total,
    }
    if percent:
        receipt["coupon"] = code
    ctx.send_orders_receipts(receipt)
    for line in message.lines:
        ctx.send_inventory(line.sku, shop_pb2.StockSold(order_id=order_id, quantity=line.quantity))
