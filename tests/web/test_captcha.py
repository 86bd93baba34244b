"""The checkout's captcha (django-simple-captcha): a picture whose answer is not in the page, a new picture on
request with or without JavaScript, a spoken version, and one answer per batch."""

import re
import shutil
from decimal import Decimal

import pytest
from captcha.conf import settings as captcha_settings
from captcha.models import CaptchaStore

from orders.models import Batch
from orders.web import captcha
from tests.orders.factories import ProductFactory
from tests.web.test_checkout import form_data

IMAGE_URL = re.compile(r'<img class="captcha" id="captcha-image" src="(/captcha/image/(\w+)/)"')


@pytest.fixture
def shopper(client, user):
    ProductFactory(sku="TSHIRT-M", unit_price=Decimal("59.00"))
    client.force_login(user)
    return client


@pytest.fixture
def real_captcha(monkeypatch):
    """Answers are checked for real: the test-only answer is switched off."""
    monkeypatch.setattr(captcha_settings, "CAPTCHA_TEST_MODE", False)


def shown_challenge(client) -> CaptchaStore:
    page = client.get("/checkout/").content.decode()
    key = IMAGE_URL.search(page).group(2)
    assert client.session[captcha.SESSION_KEY] == key
    return CaptchaStore.objects.get(hashkey=key)


def test_the_answer_is_drawn_in_a_picture_and_never_written_in_the_page(shopper, monkeypatch):
    monkeypatch.setattr(captcha_settings, "CAPTCHA_CHALLENGE_FUNCT", lambda: ("QZXJ", "qzxj"))

    page = shopper.get("/checkout/").content.decode()

    assert "qzxj" not in page.lower()
    image_url = IMAGE_URL.search(page).group(1)
    image = shopper.get(image_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert shopper.get(image_url.rstrip("/") + "@2/").content.startswith(b"\x89PNG")  # the sharp one for 2x screens


def test_the_right_answer_places_the_batch(shopper, real_captcha):
    challenge = shown_challenge(shopper)

    response = shopper.post(
        "/checkout/", form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha=challenge.response.upper())
    )

    assert response.status_code == 302
    assert Batch.objects.count() == 1


def test_a_wrong_answer_spends_the_challenge_and_shows_a_new_one(shopper, real_captcha):
    challenge = shown_challenge(shopper)
    rows = [{"kind": "goods", "sku": "TSHIRT-M"}]

    wrong = shopper.post("/checkout/", form_data(rows, submit="1", captcha="nope"))
    late_right = shopper.post("/checkout/", form_data(rows, submit="1", captcha=challenge.response))

    assert wrong.status_code == late_right.status_code == 400
    assert "The answer to the check was wrong" in wrong.content.decode()
    assert not CaptchaStore.objects.filter(hashkey=challenge.hashkey).exists()
    assert not Batch.objects.exists()


def test_the_test_answer_is_refused_outside_test_mode(shopper, real_captcha):
    shown_challenge(shopper)

    response = shopper.post(
        "/checkout/", form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha="passed")
    )

    assert response.status_code == 400
    assert not Batch.objects.exists()


def test_a_new_picture_with_htmx_replaces_the_challenge(shopper, real_captcha):
    old = shown_challenge(shopper)

    partial = shopper.get("/checkout/captcha/", HTTP_HX_REQUEST="true").content.decode()

    new_key = IMAGE_URL.search(partial).group(2)
    assert new_key != old.hashkey
    assert shopper.session[captcha.SESSION_KEY] == new_key
    response = shopper.post(
        "/checkout/", form_data([{"kind": "goods", "sku": "TSHIRT-M"}], submit="1", captcha=old.response)
    )
    assert response.status_code == 400  # the old picture's answer no longer counts


def test_a_new_picture_without_javascript_keeps_the_rows(shopper):
    old = shown_challenge(shopper)
    rows = [{"kind": "goods", "sku": "TSHIRT-M", "quantity": "2"}]

    page = shopper.post("/checkout/", form_data(rows, refresh_captcha="1"))

    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="rows-0-goods-sku" value="TSHIRT-M"' in html
    assert IMAGE_URL.search(html).group(2) not in (old.hashkey, "")
    assert not Batch.objects.exists()


@pytest.mark.skipif(not shutil.which("flite"), reason="the spoken captcha needs flite (apt-get install flite)")
def test_the_challenge_can_be_heard(shopper, monkeypatch):
    monkeypatch.setattr(captcha_settings, "CAPTCHA_FLITE_PATH", shutil.which("flite"))

    page = shopper.get("/checkout/").content.decode()

    audio_url = re.search(r'<a href="(/captcha/audio/\w+\.wav)" id="captcha-audio">', page).group(1)
    audio = b"".join(shopper.get(audio_url).streaming_content)
    assert audio.startswith(b"RIFF") and b"WAVE" in audio[:16]


def test_without_flite_the_page_offers_the_picture_alone(shopper, monkeypatch):
    monkeypatch.setattr(captcha_settings, "CAPTCHA_FLITE_PATH", None)

    page = shopper.get("/checkout/").content.decode()

    assert 'id="captcha-image"' in page
    assert 'id="captcha-audio"' not in page


def test_one_answer_covers_one_batch_and_the_next_batch_asks_again(shopper):
    rows = [{"kind": "goods", "sku": "TSHIRT-M"}]
    shopper.get("/checkout/")
    shopper.post("/checkout/", form_data(rows, submit="1", captcha="passed", submission_key="first"))

    page = shopper.get("/checkout/").content.decode()

    assert Batch.objects.count() == 1
    assert 'id="captcha-image"' in page
    response = shopper.post("/checkout/", form_data(rows, submit="1", submission_key="second"))
    assert response.status_code == 400
    assert Batch.objects.count() == 1
