"""An event ticket with a seat: an order type that only the tests know. It supplies everything a type
supplies (row inputs, validation, import lines, descriptions, placing, what happens after payment), so
that it can go through the website, the API and the payment without `orders` knowing of it."""

from __future__ import annotations

import re
import secrets

from django.db import IntegrityError, transaction

from orders.goods import ProductOrderType
from orders.models import Order, Product
from orders.registry import Description, PlacementRefused
from orders.rows import RowCleaner
from tests.ticketing.models import Ticket

SEAT = re.compile(r"[A-Z]{1,2}[0-9]{1,3}")
BAD_SEAT = "Seat must be a row letter and a number, such as A12."
SEAT_TAKEN = "Seat {seat} of {event} is already sold."
SEAT_TWICE = "Seat {seat} is also on row {other}: one of the two will not be placed."


class EventTicketType(ProductOrderType):
    """The product is the event (its SKU names it); a row picks one seat."""

    kind = "ticket"
    label = "Event ticket"
    fields = ("sku", "seat")
    menu_order = 30
    row_template = "ticketing/_ticket_row.html"
    import_columns = ("sku", "seat")
    import_hint = "event SKU,seat"

    def clean_product_row(self, row: RowCleaner, product: Product) -> None:
        seat = row.text("seat", max_length=8)
        if seat is None:
            return
        seat = seat.upper()
        if not SEAT.fullmatch(seat):
            row.error("seat", BAD_SEAT)
            return
        row.data["seat"] = seat

    def warnings(self, rows):
        first_row: dict[tuple[str, str], int] = {}
        warnings = []
        for index, data in rows:
            key = (data["sku"], data["seat"])
            if key in first_row:
                message = SEAT_TWICE.format(seat=data["seat"], other=first_row[key] + 1)
                warnings.append({"index": index, "field": "seat", "message": message})
            else:
                first_row[key] = index
        return warnings

    def row_details(self, row) -> dict:
        return {"seat": row.data["seat"]}

    def place(self, *, batch, row) -> Order:
        order = super().place(batch=batch, row=row)
        event = order.product
        assert event is not None  # a product-backed order has its product
        try:
            with transaction.atomic():  # a savepoint: the caller's transaction survives the refusal
                Ticket.objects.create(order=order, event=event, seat=row.data["seat"])
        except IntegrityError:
            # The unique (event, seat) constraint, not a read before the write, decides a race for a seat.
            raise PlacementRefused("seat_taken", SEAT_TAKEN.format(seat=row.data["seat"], event=event.name)) from None
        return order

    def placing_statement(self, *, batch, row) -> None:
        # The seat is a row of its own, whose unique constraint decides a race: placed the locked way, by `place`.
        return None

    def release(self, order: Order) -> None:
        super().release(order)
        Ticket.objects.filter(order=order).delete()  # the seat is on sale again

    def after_payment(self, orders: list[Order]) -> None:
        for order in orders:
            Ticket.objects.filter(order=order).update(code=f"TKT-{secrets.token_hex(4).upper()}")
        Order.bulk_set_status(orders, Order.Status.FULFILLED, note="tickets issued")

    def describe(self, order: Order) -> Description:
        code = Ticket.objects.filter(order=order).values_list("code", flat=True).first()
        title = f"{order.details.get('name', '')} · seat {order.details.get('seat', '')}"
        return Description(title, f"ticket {code}" if code else "")
