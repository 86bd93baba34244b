"""`orders` knows order types only through the registry: its code and templates name none of the types
that other apps (or tests) plug in, so a new type never means editing `orders`."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# "fulfilling" and "fulfilled" are order statuses of the lifecycle (SPEC section 4) and stay.
RECHARGE_WORDS = re.compile(r"phone|carrier|recharge|fulfil(?!l(?:ing|ed)\b)", re.IGNORECASE)
PRODUCT_CODE = ["config", "orders", "payments", "recharge", "templates", "static", "bench"]


def files_under(*folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".html", ".css", ".js", ".txt"}:
                yield path


def test_orders_and_its_templates_name_no_recharge_concept():
    mentions = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files_under("orders", "templates/orders")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if RECHARGE_WORDS.search(line)
    ]

    assert mentions == []


def test_no_product_code_knows_the_test_only_ticket_type():
    mentions = [str(path.relative_to(ROOT)) for path in files_under(*PRODUCT_CODE) if "ticket" in path.read_text()]

    assert mentions == []
