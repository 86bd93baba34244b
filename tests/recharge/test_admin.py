from tests.factories import UserFactory
from tests.recharge.test_fulfilment import paid_top_up


def test_staff_see_a_fulfilment_with_its_upstream_attempts_and_can_edit_discounts(client, user):
    from recharge import services
    from recharge.models import Fulfilment

    order = paid_top_up(user, phone="13800000000")  # ...0000 always fails upstream
    services.fulfilment_attempt(order_id=order.pk)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    fulfilment = Fulfilment.objects.get(order=order)

    page = client.get(f"/admin/recharge/fulfilment/{fulfilment.pk}/change/")

    assert page.status_code == 200
    assert "the carrier refused the top-up" in page.content.decode()
    assert client.get("/admin/recharge/fulfilment/").status_code == 200
    assert client.get("/admin/recharge/carrierdiscount/").status_code == 200


def test_the_fulfilment_page_names_the_order_by_its_number_and_each_attempt_readably(client, user):
    from recharge import services
    from recharge.models import Fulfilment

    order = paid_top_up(user, phone="13800000000")
    services.fulfilment_attempt(order_id=order.pk)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    fulfilment = Fulfilment.objects.get(order=order)

    html = client.get(f"/admin/recharge/fulfilment/{fulfilment.pk}/change/").content.decode()

    assert f"Fulfilment of order {order.number}" in html
    assert f"top-up for order {order.number}: failure" in html
    assert "object (" not in html
    assert f"Fulfilment of {fulfilment.order_id} " not in html
