"""Plain goods: the order type that `orders` ships itself, and the base of every product-backed type."""

from django.db.models import F
from django.utils.translation import gettext_lazy as _

from config import inputs
from orders import messages
from orders.models import Order, Product
from orders.money import to_money
from orders.registry import (
    Description,
    ImportContext,
    OrderType,
    PlacementRefused,
    PlacingStatement,
    Quote,
    SubmissionContext,
)
from orders.rows import RowCleaner, text_schema, whole_number_schema
from orders.sql import quoted_table

MAX_QUANTITY = 999
SKU_MAX_LENGTH = 64


class ProductOrderType(OrderType):
    """A row that buys `quantity` of one product by SKU, reserving stock when the product tracks it."""

    fields: tuple[str, ...] = ("sku", "quantity")
    row_template = "orders/_product_row.html"
    # A product-backed type claims a pasted line whose first field is the SKU of one of its products:
    # the strongest evidence a line can give, so these types are asked early.
    import_order = 10
    import_headers = ("sku",)
    # The fields of a pasted line, in order; the first is the SKU.
    import_columns: tuple[str, ...] = ("sku", "quantity")

    def field_schemas(self) -> dict[str, dict]:
        return {
            "sku": text_schema(max_length=SKU_MAX_LENGTH),
            "quantity": whole_number_schema(min_value=1, max_value=MAX_QUANTITY, default=1),
        }

    def required_fields(self) -> tuple[str, ...]:
        return ("sku",)

    def skus(self, raw: dict):
        sku = raw.get("sku")
        # Looked up before the row is checked: text the database refuses is left to the check to name.
        return (sku.strip(),) if isinstance(sku, str) and not inputs.text_problem(sku) else ()

    def clean_row(self, row: RowCleaner, context: SubmissionContext) -> None:
        sku = row.text("sku", max_length=SKU_MAX_LENGTH)
        quantity = row.whole_number("quantity", min_value=1, max_value=MAX_QUANTITY, default=1)
        product = self._product(row, sku, context)
        if product is not None:
            row.data["sku"] = product.sku  # for the row's note, even when the quantity is wrong
        if product is None or quantity is None:
            return
        row.data["quantity"] = quantity
        self.clean_product_row(row, product)

    def clean_product_row(self, row: RowCleaner, product: Product) -> None:
        """Type-specific checks of a row whose product and quantity are valid."""

    def _product(self, row: RowCleaner, sku: str | None, context: SubmissionContext) -> Product | None:
        if sku is None:
            return None
        product = context.products.get(sku)
        if product is None:
            row.error("sku", str(messages.UNKNOWN_SKU).format(sku=sku))
        elif product.kind != self.kind:
            row.error("sku", str(messages.WRONG_KIND_SKU).format(sku=sku, kind=self.label))
        elif not product.active:
            row.error("sku", str(messages.PRODUCT_INACTIVE).format(sku=sku))
        else:
            return product
        return None

    def quote(self, data: dict, context: SubmissionContext) -> Quote:
        product = context.products[data["sku"]]
        return Quote(to_money(product.unit_price * data["quantity"]), product.name)

    def note(self, data: dict, context: SubmissionContext) -> str:
        # The product is known when only a later field (the quantity, an account) is wrong.
        product = context.products.get(data.get("sku", ""))
        return product.name if product is not None else ""

    def order_details(self, row, product: Product) -> dict:
        """What the order keeps: the product as it was sold, and what the type adds from the row."""
        return {"sku": product.sku, "name": product.name, **self.row_details(row)}

    def row_details(self, row) -> dict:
        """What a type keeps on the order from the row itself, beside the product (such as an account to credit)."""
        return {}

    def new_order(self, *, batch, row, product: Product | None) -> Order:
        """The order of a row, unsaved; without the product, its product, prices and product details are left out."""
        quantity = row.data["quantity"]
        sold = (
            {
                "product": product,
                "unit_price": product.unit_price,
                "amount": to_money(product.unit_price * quantity),
                "details": self.order_details(row, product),
            }
            if product is not None
            else {"details": self.row_details(row)}
        )
        return Order(
            owner_id=batch.owner_id,
            batch=batch,
            row_index=row.row_index,
            kind=self.kind,
            quantity=quantity,
            reference=row.reference,
            **sold,
        )

    def place(self, *, batch, row) -> Order:
        quantity = row.data["quantity"]
        product = Product.objects.get(sku=row.data["sku"])
        if product.stock is None:
            if not product.active:
                raise PlacementRefused("inactive", str(messages.NOT_ON_SALE_ANYMORE).format(sku=product.sku))
        else:
            # One conditional UPDATE both checks and takes the stock, so two batches racing for the
            # last unit cannot both get it.
            reserved = Product.objects.filter(pk=product.pk, active=True, stock__gte=quantity).update(
                stock=F("stock") - quantity
            )
            if not reserved:
                if not Product.objects.filter(pk=product.pk, active=True).exists():
                    raise PlacementRefused("inactive", str(messages.NOT_ON_SALE_ANYMORE).format(sku=product.sku))
                raise PlacementRefused("out_of_stock", str(messages.OUT_OF_STOCK).format(sku=product.sku))
        order = self.new_order(batch=batch, row=row, product=product)
        order.save(force_insert=True)
        return order

    def placing_statement(self, *, batch, row) -> PlacingStatement | None:
        # `place` in one statement: the product, its stock taken by the same conditional UPDATE (only once the
        # row is locked and pending), the refusals in the same order of checks.
        products = quoted_table(Product)
        sku = row.data["sku"]
        return PlacingStatement(
            order=self.new_order(batch=batch, row=row, product=None),
            ctes=f"""
                product AS (
                    SELECT id, sku, name, unit_price, stock, active FROM {products} WHERE sku = CAST(%(sku)s AS text)
                ),
                reserved AS (
                    UPDATE {products} AS p SET stock = p.stock - CAST(%(quantity)s AS integer)
                    FROM product, locked
                    WHERE p.id = product.id AND p.active AND p.stock >= CAST(%(quantity)s AS integer)
                    RETURNING p.id
                ),
                source AS (
                    SELECT
                        product.*,
                        CASE
                            WHEN NOT product.active THEN 'inactive'
                            WHEN product.stock IS NOT NULL AND NOT EXISTS (SELECT FROM reserved) THEN 'out_of_stock'
                        END AS refusal
                    FROM product
                )""",
            params={"sku": sku, "quantity": row.data["quantity"]},
            computed={
                "product": "source.id",
                "unit_price": "source.unit_price",
                # numeric arithmetic is exact and round() rounds half away from zero: to_money's ROUND_HALF_UP.
                "amount": "round(source.unit_price * CAST(%(quantity)s AS integer), 2)",
                "details": "jsonb_build_object('sku', source.sku, 'name', source.name) || {value}",
            },
            refusals={
                "inactive": str(messages.NOT_ON_SALE_ANYMORE).format(sku=sku),
                "out_of_stock": str(messages.OUT_OF_STOCK).format(sku=sku),
            },
        )

    def release(self, order: Order) -> None:
        if order.product_id is None:
            return
        Product.objects.filter(pk=order.product_id, stock__isnull=False).update(stock=F("stock") + order.quantity)

    def describe(self, order: Order) -> Description:
        return Description(f"{order.details.get('name') or order.details.get('sku', '')} × {order.quantity}")

    def describe_row(self, data: dict) -> Description:
        return Description(f"{data.get('sku', '')} × {data.get('quantity', 1)}")

    def import_row(self, fields: list[str], context: ImportContext) -> dict | None:
        product = context.products.get(fields[0])
        if product is None or product.kind != self.kind:
            return None
        return self.import_columns_row(fields)

    def import_columns_row(self, fields: list[str]) -> dict:
        row = {"kind": self.kind, **dict(zip(self.import_columns, fields, strict=False))}
        if "quantity" in self.fields:
            row.setdefault("quantity", "1")
        return row


class GoodsOrderType(ProductOrderType):
    kind = "goods"
    label = _("Goods")
    menu_order = 0
    import_hint = _("SKU,quantity")
    # Asked last, goods takes every line no other type claimed, so that a SKU nobody sells is shown on
    # its row as "No product has the SKU …" instead of vanishing from the list.
    import_order = 1000

    def import_row(self, fields: list[str], context: ImportContext) -> dict | None:
        return self.import_columns_row(fields)

    def example_row(self) -> dict:
        return {"kind": self.kind, "sku": "TSHIRT-M", "quantity": 2}
