"""The body of ``shop/cart``: one cart per customer (the function id is the customer).

An item added to the cart is first reserved with ``shop/inventory`` (one address per sku);
the cart keeps it as *pending* until the inventory answers, and only reserved lines are
sold. A checkout that arrives while reservations are still pending waits for them, so a
shopper who clicks "add" twice and then "checkout" gets both items, whatever order the
messages are processed in.

Each change to the cart (re)arms a reminder the cart sends itself (by default an hour later,
the manifest's ``delay``); checkout cancels it, so only abandoned carts are reminded.

statefun-codegen created this file once; it is handwritten from here on.
"""

from __future__ import annotations

from datetime import timedelta

from .generated import CartContext, CartHandler, shop_pb2
from .generated.types import Cart, CartLine, Notification

Message = (
    shop_pb2.AddToCart
    | shop_pb2.RemoveFromCart
    | shop_pb2.CheckoutCart
    | shop_pb2.StockReserved
    | shop_pb2.StockUnavailable
    | shop_pb2.CartReminder
)


def money(cents: int) -> str:
    """``1250`` → ``"12.50 EUR"`` (integer cents: no float rounding in prices)."""
    return f"{cents // 100}.{cents % 100:02d} EUR"


def item_count(state: Cart) -> int:
    """Units in the cart, reserved or still pending."""
    return sum(line["quantity"] for line in state["lines"]) + sum(
        pending["quantity"] for pending in state["pending"]
    )


def add_line(state: Cart, reserved: shop_pb2.StockReserved) -> None:
    """Add reserved units, merged with a line of the same item at the same price; lines stay
    sorted by sku, so an order does not depend on which reservation was answered first."""
    for line in state["lines"]:
        if line["sku"] == reserved.sku and line["unit_price_cents"] == reserved.unit_price_cents:
            line["quantity"] += reserved.quantity
            return
    new_line: CartLine = {
        "sku": reserved.sku,
        "quantity": reserved.quantity,
        "unit_price_cents": reserved.unit_price_cents,
    }
    state["lines"].append(new_line)
    state["lines"].sort(key=lambda line: (line["sku"], line["unit_price_cents"]))


def take_pending(state: Cart, sku: str, quantity: int) -> bool:
    """Remove the pending reservation the inventory just answered; False if there is none
    (the item was taken out of the cart in the meantime)."""
    for index, pending in enumerate(state["pending"]):
        if pending["sku"] == sku and pending["quantity"] == quantity:
            del state["pending"][index]
            return True
    return False


def make_cart(reminder_after: timedelta | None = None) -> CartHandler:
    """The body of ``shop/cart``; ``reminder_after`` overrides the manifest's reminder delay
    (the tests and demos use seconds instead of an hour)."""

    def arm_reminder(ctx: CartContext) -> None:
        # A second pending message with the same token is an error in StateFun (the job
        # fails), so the previous reminder is cancelled first: the reminder counts from the
        # last change to the cart.
        ctx.cancel_send_after_cart()
        reminder = shop_pb2.CartReminder(customer=ctx.address.id)
        if reminder_after is None:
            ctx.send_after_cart(ctx.address.id, reminder)
        else:
            ctx.send_after_cart(ctx.address.id, reminder, delay=reminder_after)

    def notify(ctx: CartContext, notification: Notification) -> None:
        ctx.send_notifications(notification)

    def reject_checkout(ctx: CartContext, text: str) -> None:
        notify(ctx, {"customer": ctx.address.id, "kind": "checkout-rejected", "text": text})

    def complete_checkout(ctx: CartContext, state: Cart) -> Cart | None:
        """Hand the cart to checkout once nothing is pending; the cart left afterwards."""
        checkout = state.get("checkout")
        if checkout is None or state["pending"]:
            return state
        if not state["lines"]:
            reject_checkout(ctx, "none of the items in your cart could be reserved")
            ctx.cancel_send_after_cart()
            return None
        order = shop_pb2.PlaceOrder(customer=ctx.address.id, coupon=checkout["coupon"])
        for line in state["lines"]:
            order.lines.add(
                sku=line["sku"],
                quantity=line["quantity"],
                unit_price_cents=line["unit_price_cents"],
            )
        ctx.send_checkout(ctx.address.id, order)
        ctx.cancel_send_after_cart()
        return None

    async def cart(ctx: CartContext, message: Message) -> None:
        customer = ctx.address.id
        stored = ctx.storage.cart
        state: Cart = stored or {"customer": customer, "lines": [], "pending": []}
        left: Cart | None = state  # what is stored afterwards; None or empty deletes the cart
        if isinstance(message, shop_pb2.AddToCart):
            if message.quantity < 1:
                return  # a click without a quantity changes nothing
            state["pending"].append({"sku": message.sku, "quantity": message.quantity})
            ctx.send_inventory_reserve_stock(
                message.sku, shop_pb2.ReserveStock(customer=customer, quantity=message.quantity)
            )
            arm_reminder(ctx)
        elif isinstance(message, shop_pb2.RemoveFromCart):
            held = sum(line["quantity"] for line in state["lines"] if line["sku"] == message.sku)
            state["lines"] = [line for line in state["lines"] if line["sku"] != message.sku]
            # A reservation still on its way is given back when it arrives (take_pending).
            state["pending"] = [p for p in state["pending"] if p["sku"] != message.sku]
            if held:
                ctx.send_inventory_release_stock(
                    message.sku, shop_pb2.ReleaseStock(customer=customer, quantity=held)
                )
            if item_count(state):
                arm_reminder(ctx)
            else:
                ctx.cancel_send_after_cart()
        elif isinstance(message, shop_pb2.CheckoutCart):
            if not state["lines"] and not state["pending"]:
                reject_checkout(ctx, "your cart is empty")
                return
            state["checkout"] = {"coupon": message.coupon}
            left = complete_checkout(ctx, state)
        elif isinstance(message, shop_pb2.StockReserved):
            if take_pending(state, message.sku, message.quantity):
                add_line(state, message)
            else:
                ctx.send_inventory_release_stock(
                    message.sku, shop_pb2.ReleaseStock(customer=customer, quantity=message.quantity)
                )
            left = complete_checkout(ctx, state)
        elif isinstance(message, shop_pb2.StockUnavailable):
            if take_pending(state, message.sku, message.requested):
                notify(
                    ctx,
                    {
                        "customer": customer,
                        "kind": "out-of-stock",
                        "text": f"{message.sku}: you asked for {message.requested}, "
                        f"{message.available} left",
                    },
                )
            left = complete_checkout(ctx, state)
        else:  # the abandoned-cart reminder
            if stored is not None and item_count(stored):
                total = sum(line["quantity"] * line["unit_price_cents"] for line in stored["lines"])
                notify(
                    ctx,
                    {
                        "customer": customer,
                        "kind": "cart-reminder",
                        "text": f"you left {item_count(stored)} item(s) worth {money(total)} "
                        "in your cart",
                    },
                )
            return
        if left is not None and item_count(left):
            ctx.storage.cart = left
        elif stored is not None:
            del ctx.storage.cart

    return cart


#: The body with the manifest's reminder delay (an hour).
cart = make_cart()
