"""The recharge order types (seed claim 2): mobile top-up and game currency, registered with orders."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from config import inputs
from orders import messages as order_messages
from orders.goods import ProductOrderType
from orders.models import Order, Product
from orders.money import to_money
from orders.registry import Description, ImportContext, OrderType, PlacingStatement, Quote, SubmissionContext
from orders.rows import RowCleaner, decimal_schema, text_schema
from orders.sql import quoted_table
from recharge import messages, services
from recharge.models import CarrierDiscount
from recharge.numbers import InvalidNumber, MobileNumber, parse_mobile

DEFAULT_ACCOUNT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.@-]{3,63}"
# A pasted line is a phone number when its first field looks like a number: digits, spaces and dashes, an
# optional "+", of any length (a number too short or too long stays a phone row and says what is wrong with it).
PHONE_LIKE = re.compile(r"^\+?[\d\s-]*\d[\d\s-]*$")
DEFAULT_IMPORT_FACE_VALUE = "50"
PHONE_MAX_LENGTH = 32
ACCOUNT_MAX_LENGTH = 64


def carrier_discounts() -> dict[str, Decimal]:
    return dict(CarrierDiscount.objects.values_list("carrier", "discount"))


def face_value_price(face_value: Decimal, carrier: str, discounts: dict[str, Decimal]) -> Decimal:
    """What a top-up costs: face value times the carrier's discount (no discount for a carrier not listed)."""
    return to_money(face_value * discounts.get(carrier, Decimal("1")))


class RechargeFulfilment:
    """After payment, a recharge order is topped up by the fulfilment tasks."""

    def after_payment(self, orders: list[Order]) -> None:
        services.fulfilment_start(orders=orders)


def carrier_and_region(details: dict) -> str:
    """Carrier and region (号码归属地) of a number, in the reader's language."""
    if get_language().startswith("zh"):
        return f"{details.get('carrier_zh', '')} · {details.get('region', '')}"
    return f"{details.get('carrier', '')} · {details.get('region_en', '')}"


def face_value_choices() -> list[tuple[str, str]]:
    return [("", "—")] + [(str(value), f"¥{value}") for value in settings.RECHARGE_FACE_VALUES]


class MobileTopUpType(RechargeFulfilment, OrderType):
    kind = "mobile"
    label = _("Mobile top-up")
    fields = ("phone", "face_value")
    menu_order = 10
    row_template = "recharge/_mobile_row.html"
    # After the product-backed types (a known SKU is stronger evidence), before goods takes the rest.
    import_order = 50
    import_hint = _("phone[,face value]")
    import_headers = ("phone", "手机号", "号码")

    def face_value_choices(self) -> list[tuple[str, str]]:
        return face_value_choices()

    def import_options(self) -> dict[str, forms.Field]:
        return {
            "default_face_value": forms.ChoiceField(
                label=_("Face value for numbers without one"),
                required=False,
                choices=face_value_choices,
                initial=DEFAULT_IMPORT_FACE_VALUE,
            )
        }

    def import_row(self, fields: list[str], context: ImportContext) -> dict | None:
        # A product's SKU made of digits is that product's line, whichever type sells it.
        if not PHONE_LIKE.match(fields[0]) or fields[0] in context.products:
            return None
        row = {"kind": self.kind, "phone": fields[0]}
        face_value = fields[1] if len(fields) > 1 else context.options.get(self.kind, {}).get("default_face_value")
        if face_value:
            row["face_value"] = face_value.lstrip("¥")
        return row

    def describe(self, order: Order) -> Description:
        details = order.details
        return Description(
            f"{details.get('phone', '')} · ¥{details.get('face_value', '')}", carrier_and_region(details)
        )

    def field_schemas(self) -> dict[str, dict]:
        offered = ", ".join(str(value) for value in settings.RECHARGE_FACE_VALUES)
        return {
            "phone": {**text_schema(max_length=PHONE_MAX_LENGTH), "description": "A mainland China mobile number."},
            "face_value": {**decimal_schema(), "description": f"One of the face values on offer: {offered}."},
        }

    def required_fields(self) -> tuple[str, ...]:
        return self.fields

    def example_row(self) -> dict:
        return {"kind": self.kind, "phone": "13800138000", "face_value": "50"}

    def describe_row(self, data: dict) -> Description:
        try:
            details = parse_mobile(data.get("phone", "")).as_details()
        except InvalidNumber:
            return super().describe_row(data)
        return Description(f"{details['phone']} · ¥{data.get('face_value', '')}", carrier_and_region(details))

    def clean_row(self, row: RowCleaner, context: SubmissionContext) -> None:
        phone = row.text("phone", max_length=PHONE_MAX_LENGTH)
        face_value = self._face_value(row)
        if phone is not None:
            try:
                # Kept even when the face value is wrong: the number alone tells its carrier and region.
                row.data["phone"] = parse_mobile(phone).national
            except InvalidNumber as invalid:
                row.error("phone", str(invalid))
        if face_value is not None:
            row.data["face_value"] = str(face_value)

    def note(self, data: dict, context: SubmissionContext) -> str:
        if "phone" not in data:
            return ""
        return carrier_and_region(parse_mobile(data["phone"]).as_details())

    def _face_value(self, row: RowCleaner) -> Decimal | None:
        raw = row.raw.get("face_value")
        if raw is None or raw == "":
            row.error("face_value", str(order_messages.REQUIRED))
            return None
        try:
            if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
                raise inputs.InputRefused(raw)
            value = inputs.decimal_from_text(raw if isinstance(raw, str) else str(raw))
        except (inputs.InputRefused, ValueError):  # str() of an int past 4,300 digits is a ValueError
            row.error("face_value", str(messages.FACE_VALUE_NOT_A_NUMBER))
            return None
        offered = settings.RECHARGE_FACE_VALUES
        if value not in offered:
            row.error(
                "face_value",
                str(messages.FACE_VALUE_NOT_OFFERED).format(value=value, values=", ".join(str(v) for v in offered)),
            )
            return None
        return offered[offered.index(value)]  # "50.00" and 50 are both stored as the offered "50"

    def quote(self, data: dict, context: SubmissionContext) -> Quote:
        number = parse_mobile(data["phone"])
        if "carrier_discounts" not in context.cache:  # one query per submission, not per row
            context.cache["carrier_discounts"] = carrier_discounts()
        price = face_value_price(Decimal(data["face_value"]), number.carrier, context.cache["carrier_discounts"])
        return Quote(price, carrier_and_region(number.as_details()))

    def warnings(self, rows):
        return _duplicates(rows, key=lambda data: data["phone"], field="phone")

    def new_order(self, *, batch, row, number: MobileNumber, price: Decimal | None) -> Order:
        """The order of a row, unsaved (without its price when the price is left to the database)."""
        prices = {"unit_price": price, "amount": price} if price is not None else {}
        return Order(
            owner_id=batch.owner_id,
            batch=batch,
            row_index=row.row_index,
            kind=self.kind,
            quantity=1,
            reference=row.reference,
            details={**number.as_details(), "face_value": row.data["face_value"]},
            **prices,
        )

    def place(self, *, batch, row) -> Order:
        number = parse_mobile(row.data["phone"])
        price = face_value_price(Decimal(row.data["face_value"]), number.carrier, carrier_discounts())
        order = self.new_order(batch=batch, row=row, number=number, price=price)
        order.save(force_insert=True)
        return order

    def placing_statement(self, *, batch, row) -> PlacingStatement:
        # face_value_price in SQL: the carrier's discount, none for a carrier not listed; round() rounds half
        # away from zero, to_money's ROUND_HALF_UP for a price.
        number = parse_mobile(row.data["phone"])
        discounts = quoted_table(CarrierDiscount)
        price = f"""round(
            CAST(%(face_value)s AS numeric)
            * coalesce((SELECT discount FROM {discounts} WHERE carrier = CAST(%(carrier)s AS text)), 1),
            2
        )"""
        return PlacingStatement(
            order=self.new_order(batch=batch, row=row, number=number, price=None),
            ctes=f"source AS (SELECT {price} AS price, CAST(NULL AS text) AS refusal)",
            params={"face_value": Decimal(row.data["face_value"]), "carrier": number.carrier},
            computed={"unit_price": "source.price", "amount": "source.price"},
        )


class GameCurrencyType(RechargeFulfilment, ProductOrderType):
    kind = "game"
    label = _("Game currency")
    fields = ("sku", "account", "quantity")
    menu_order = 20
    row_template = "recharge/_game_row.html"
    import_columns = ("sku", "account", "quantity")
    import_hint = _("SKU,account,quantity")

    def field_schemas(self) -> dict[str, dict]:
        return {
            **super().field_schemas(),
            "account": {**text_schema(max_length=ACCOUNT_MAX_LENGTH), "description": "The game account to credit."},
        }

    def required_fields(self) -> tuple[str, ...]:
        return ("sku", "account")

    def example_row(self) -> dict:
        return {"kind": self.kind, "sku": "GAME-GOLD-60", "account": "user-123456", "quantity": 3}

    def clean_product_row(self, row: RowCleaner, product: Product) -> None:
        account = row.text("account", max_length=ACCOUNT_MAX_LENGTH)
        if account is None:
            return
        pattern = product.attributes.get("account_pattern") or DEFAULT_ACCOUNT_PATTERN
        if not re.fullmatch(pattern, account):
            row.error("account", str(messages.ACCOUNT_DOES_NOT_FIT).format(account=account, product=product.name))
            return
        row.data["account"] = account

    def warnings(self, rows):
        return _duplicates(
            rows,
            key=lambda data: f"{data['sku']}/{data['account']}",
            field="account",
            shown=lambda data: data["account"],
        )

    def row_details(self, row) -> dict:
        return {"account": row.data["account"]}

    def describe(self, order: Order) -> Description:
        details = order.details
        return Description(f"{details.get('name', '')} × {order.quantity} → {details.get('account', '')}")

    def describe_row(self, data: dict) -> Description:
        return Description(f"{data.get('sku', '')} × {data.get('quantity', 1)} → {data.get('account', '')}")


def _duplicates(rows, *, key, field, shown=None) -> list[dict]:
    shown = shown or key
    first_row: dict[str, int] = {}
    warnings = []
    for index, data in rows:
        value = key(data)
        if value in first_row:
            warnings.append(
                {
                    "index": index,
                    "field": field,
                    "message": str(messages.DUPLICATE_ACCOUNT).format(account=shown(data), other=first_row[value] + 1),
                }
            )
        else:
            first_row[value] = index
    return warnings
