"""A batch's orders and outcomes as a file to take away: CSV (streamed, UTF-8 with BOM) or XLSX, from the batch
page and the API, only for the batch's owner."""

import csv
import io
import time
from decimal import Decimal

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from orders import export
from orders.models import Batch, BatchRow, Order
from payments.models import Payment, PaymentAllocation, PaymentAttempt, Refund
from tests.factories import UserFactory
from tests.orders.factories import ProductFactory
from tests.orders.flows import batch_paid, batch_placed, refunds_confirmed, top_ups_run

ROWS = [
    {"kind": "goods", "sku": "TSHIRT-M", "quantity": 2, "reference": "=HYPERLINK(1)"},
    {"kind": "mobile", "phone": "13800138000", "face_value": "50", "reference": "po-7"},
    {"kind": "mobile", "phone": "13800000000", "face_value": "20"},  # the upstream refuses it: refunded
    {"kind": "goods", "sku": "LAST-ONE"},  # out of stock by the time it is placed
    {"kind": "mobile", "phone": "12345", "face_value": "50"},  # skipped at submission
]


@pytest.fixture
def catalogue(db, carrier_discounts):
    ProductFactory(sku="TSHIRT-M", name="T-shirt M", unit_price=Decimal("59.00"))
    ProductFactory(sku="LAST-ONE", name="Last one", unit_price=Decimal("5.00"), stock=1)


@pytest.fixture
def finished(user, catalogue):
    """A paid batch with one of everything: fulfilled, paid, refunded, failed at placing, skipped."""
    batch_placed(UserFactory(), [{"kind": "goods", "sku": "LAST-ONE"}])  # someone else buys the last one
    batch = batch_placed(user, ROWS, skip_invalid=True)
    batch_paid(batch)
    top_ups_run(batch)
    refunds_confirmed(batch)
    return batch


def lines_of(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # Excel reads the file as UTF-8 only with the BOM
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def number(batch, row_index) -> str:
    return Order.objects.get(batch=batch, row_index=row_index).number


def test_the_api_streams_one_line_per_row_with_how_it_ended(api_client, finished):
    response = api_client.get(f"/api/v1/batches/{finished.pk}/export/?format=csv")

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="batch-')
    assert lines_of(b"".join(response.streaming_content)) == [
        ["Row", "Order", "Reference", "Kind", "What", "Detail", "Amount", "Status", "Reason", "Refunded"],
        ["1", number(finished, 0), "'=HYPERLINK(1)", "Goods", "T-shirt M × 2", "", "118.00", "paid", "", ""],
        [
            "2",
            number(finished, 1),
            "po-7",
            "Mobile top-up",
            "13800138000 · ¥50",
            "China Mobile · Beijing",
            "49.50",
            "fulfilled",
            "",
            "",
        ],
        [
            "3",
            number(finished, 2),
            "",
            "Mobile top-up",
            "13800000000 · ¥20",
            "China Mobile · Beijing",
            "19.80",
            "refunded",
            "The top-up provider could not top up this account, after several attempts.",
            "19.80",
        ],
        ["4", "", "", "Goods", "LAST-ONE × 1", "", "", "could not be placed", "LAST-ONE is out of stock.", ""],
        [
            "5",
            "",
            "",
            "Mobile top-up",
            "12345 · 50",
            "",
            "",
            "skipped",
            "12345 is not a valid mainland China phone number.",
            "",
        ],
    ]


def test_the_file_is_written_in_the_readers_language_whatever_the_batch_was_submitted_in(api_client, finished):
    response = api_client.get(f"/api/v1/batches/{finished.pk}/export/", HTTP_ACCEPT_LANGUAGE="zh-CN")

    lines = lines_of(b"".join(response.streaming_content))
    assert lines[0] == ["行", "订单号", "参考号", "类型", "内容", "详情", "金额", "状态", "原因", "已退款"]
    assert lines[2][3:5] == ["话费充值", "13800138000 · ¥50"] and lines[2][5] == "中国移动 · 北京市"
    assert lines[3][7:] == ["已退款", "充值服务商多次尝试后仍未能为该账户充值。", "19.80"]
    assert lines[4][7:9] == ["未能下单", "LAST-ONE 库存不足。"]
    # skipped in English, read in Chinese
    assert lines[5][7:9] == ["已跳过", "12345 不是有效的中国大陆电话号码。"]


def test_the_same_lines_come_as_an_excel_workbook(api_client, finished):
    response = api_client.get(f"/api/v1/batches/{finished.pk}/export/?format=xlsx")

    assert response.status_code == 200
    assert response["Content-Type"] == export.XLSX_CONTENT_TYPE
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 6
    assert rows[3][:4] == (3, number(finished, 2), None, "Mobile top-up")
    assert rows[3][6] == 19.8 and rows[3][9] == 19.8  # amounts are numbers a spreadsheet can add up


def test_only_the_owner_gets_the_file(client, finished):
    other = UserFactory()
    client.force_login(other)

    response = client.get(f"/api/v1/batches/{finished.pk}/export/?format=csv")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert client.get(f"/batches/{finished.pk}/export/?format=csv").status_code == 404
    assert client.get("/api/v1/batches/not-a-batch/export/").status_code == 404


def test_a_format_other_than_csv_or_xlsx_is_not_found(api_client, finished, client, user):
    assert api_client.get(f"/api/v1/batches/{finished.pk}/export/?format=pdf").status_code == 404
    assert api_client.get(f"/api/v1/batches/{finished.pk}/export/?format=").status_code == 404
    client.force_login(user)
    assert client.get(f"/batches/{finished.pk}/export/?format=pdf").status_code == 404


def test_the_batch_page_offers_the_downloads(client, user, finished):
    client.force_login(user)

    html = client.get(f"/batches/{finished.pk}/").content.decode()
    response = client.get(f"/batches/{finished.pk}/export/?format=csv")

    assert f'href="/batches/{finished.pk}/export/?format=csv"' in html
    assert f'href="/batches/{finished.pk}/export/?format=xlsx"' in html
    assert response.streaming and len(lines_of(b"".join(response.streaming_content))) == 6


def test_the_export_is_in_the_api_schema(api_client):
    schema = api_client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/batches/{id}/export/"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/csv", export.XLSX_CONTENT_TYPE}
    assert "404" in operation["responses"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "format"]
    assert parameter["schema"]["enum"] == ["csv", "xlsx"]


EXPORT_ROWS = 5000


def five_thousand_row_batch(owner) -> Batch:
    """A paid 5,000-row batch written with bulk inserts (placing 5,000 rows one by one takes minutes)."""
    now = timezone.now()
    batch = Batch.objects.create(
        owner=owner, status=Batch.Status.PAID, row_count=EXPORT_ROWS, accepted_rows=EXPORT_ROWS - 50, placed_at=now
    )
    phones = [f"1380013{n:04d}" for n in range(EXPORT_ROWS)]
    rows, orders = [], []
    for index, phone in enumerate(phones):
        if index % 100 == 99:  # 50 skipped rows
            rows.append(
                BatchRow(
                    batch=batch,
                    row_index=index,
                    kind="mobile",
                    data={"kind": "mobile", "phone": "1"},
                    outcome="rejected",
                    errors={"phone": ["1 is not a valid mainland China phone number."]},
                )
            )
            continue
        data = {"phone": phone, "face_value": "50"}
        rows.append(BatchRow(batch=batch, row_index=index, kind="mobile", data=data, outcome="placed", settled_at=now))
        details = {
            **data,
            "carrier": "China Mobile",
            "carrier_zh": "中国移动",
            "region": "北京市",
            "region_en": "Beijing",
        }
        orders.append(
            Order(
                owner=owner,
                batch=batch,
                row_index=index,
                kind="mobile",
                unit_price=Decimal("49.50"),
                amount=Decimal("49.50"),
                status="fulfilled",
                details=details,
                reference=f"ref-{index}",
            )
        )
    BatchRow.objects.bulk_create(rows, batch_size=1000)
    Order.objects.bulk_create(orders, batch_size=1000)
    payment = Payment.objects.create(
        batch=batch, owner=owner, amount=Decimal("49.50") * len(orders), status="succeeded"
    )
    PaymentAllocation.objects.bulk_create(
        [PaymentAllocation(payment=payment, order=order, amount=order.amount) for order in orders], batch_size=1000
    )
    attempt = PaymentAttempt.objects.create(
        payment=payment, provider="sandbox", method="page", amount=payment.amount, status="succeeded"
    )
    Refund.objects.bulk_create(
        [
            Refund(
                payment=payment,
                attempt=attempt,
                order=order,
                amount=order.amount,
                status="succeeded",
                reason="upstream refused",
            )
            for order in orders[::100]
        ]
    )
    return batch


def test_a_5000_row_batch_is_exported_in_under_two_seconds(client, user, capsys):
    batch = five_thousand_row_batch(user)
    client.force_login(user)

    started = time.perf_counter()
    response = client.get(f"/api/v1/batches/{batch.pk}/export/?format=csv")
    content = b"".join(response.streaming_content)
    elapsed = time.perf_counter() - started

    lines = lines_of(content)
    assert len(lines) == EXPORT_ROWS + 1
    assert sum(line[7] == "skipped" for line in lines) == 50
    assert sum(line[9] == "49.50" for line in lines) == 50
    with capsys.disabled():
        print(f"\nexport of a {EXPORT_ROWS}-row batch: {elapsed:.2f} s, {len(content) / 1e6:.1f} MB of CSV")
    assert elapsed < 2.0
