"""Property-based fuzzing of the gateway webhook (issue 12), unsigned and signed with the real secret: never a
5xx, every refusal JSON in the one error shape, and the payment, its orders and the event log unchanged by it."""

import time

import pytest
from django.conf import settings
from hypothesis import given
from hypothesis import strategies as st

from orders.models import Order
from payments import signing
from payments.models import GatewayEvent, Payment
from tests.fuzz import NASTY_CHARACTERS, dumps, fuzz_settings, json_values, raw_bodies, texts
from tests.payments.conftest import WEBHOOK_URL, gateway_event


@pytest.fixture
def payment(placed_batch):
    return placed_batch().payment


def state(payment):
    return (
        Payment.objects.get(pk=payment.pk).status,
        sorted(Order.objects.filter(batch_id=payment.batch_id).values_list("status", flat=True)),
        GatewayEvent.objects.count(),
    )


def assert_answer(response, before, payment):
    assert response.status_code < 500, response.content[:500]
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert isinstance(body["detail"], str) and isinstance(body["code"], str)
        assert state(payment) == before


header_texts = st.one_of(
    texts.map(lambda text: text.encode("utf-8", "surrogatepass").decode("latin-1")),  # as a server decodes bytes
    st.builds(
        lambda stamp, sig: f"t={stamp},v1={sig}",
        st.one_of(st.integers(-(10**500), 10**500), texts),
        st.one_of(texts, st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    ),
)


@fuzz_settings("webhook_unsigned")
@given(body=raw_bodies, header=st.one_of(st.none(), header_texts))
def test_any_unsigned_request_is_refused_in_json(client, payment, body, header):
    before = state(payment)
    extra = {} if header is None else {"HTTP_SANDBOX_SIGNATURE": header}

    response = client.post(WEBHOOK_URL, body, content_type="application/json", **extra)

    assert_answer(response, before, payment)
    assert response.status_code >= 400


def mutations(payment):
    """A genuine event with one or two parts replaced by something hostile."""
    fields = ["id", "type", "data", "data.reference", "data.amount", "data.currency", "data.refund_reference", "extra"]
    hostile = st.one_of(texts, json_values, st.sampled_from(NASTY_CHARACTERS))

    def mutate(event, changes):
        for field, value in changes:
            target, _, key = field.rpartition(".")
            (event["data"] if target == "data" and isinstance(event["data"], dict) else event)[key or field] = value
        return event

    return st.builds(
        mutate,
        st.builds(lambda: gateway_event(payment)),
        st.lists(st.tuples(st.sampled_from(fields), hostile), min_size=1, max_size=2),
    )


@fuzz_settings("webhook_signed")
@given(data=st.data())
def test_any_signed_body_is_applied_or_refused_never_a_5xx(client, payment, data):
    event = data.draw(st.one_of(mutations(payment), json_values))
    raw = data.draw(st.one_of(st.just(dumps(event).encode()), raw_bodies))
    before = state(payment)

    response = client.post(
        WEBHOOK_URL,
        raw,
        content_type="application/json",
        HTTP_SANDBOX_SIGNATURE=signing.sign(settings.SANDBOX_WEBHOOK_SECRET, raw, timestamp=int(time.time())),
    )

    assert_answer(response, before, payment)
