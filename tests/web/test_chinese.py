"""The site in Simplified Chinese (zh-hans): chosen from Accept-Language or the language switcher, and
reaching the pages, the labels and the validation messages. Needs locale/zh_Hans/LC_MESSAGES/django.mo."""

from django.conf import settings
from django.utils import translation

from recharge import messages as recharge_messages

ZH = "zh-CN,zh;q=0.9"


def test_an_anonymous_visitor_asking_for_chinese_gets_the_home_page_in_chinese(client, db):
    page = client.get("/", HTTP_ACCEPT_LANGUAGE=ZH)

    assert page.status_code == 200
    html = page.content.decode()
    assert 'lang="zh-hans"' in html
    assert "登录" in html  # Log in
    assert "注册" in html  # Sign up
    assert "多笔订单，一次支付" in html  # Many orders, one payment
    assert ">Log in<" not in html


def test_english_stays_the_default(client, db):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()

    assert 'lang="en"' in html
    assert "Log in" in html
    assert "登录" not in html


def test_a_logged_in_shopper_sees_the_checkout_in_chinese(shopper):
    page = shopper.get("/checkout/", HTTP_ACCEPT_LANGUAGE=ZH)

    assert page.status_code == 200
    html = page.content.decode()
    assert 'lang="zh-hans"' in html
    assert "新建订单" in html  # New order
    assert "提交订单，一次支付" in html  # Place orders and pay once
    assert "我的订单" in html  # My orders
    assert "话费充值" in html and "游戏币充值" in html  # the kinds of row (form choices)
    assert "手机号码" in html and "面值" in html  # Phone number, Face value
    assert "Place orders and pay once" not in html


def test_the_language_switcher_sets_chinese_for_the_following_requests(shopper):
    before = shopper.get("/checkout/").content.decode()
    assert "Place orders and pay once" in before

    switched = shopper.post("/i18n/setlang/", {"language": "zh-hans", "next": "/checkout/"})

    assert switched.status_code == 302
    assert switched["Location"] == "/checkout/"
    assert shopper.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    html = shopper.get("/checkout/").content.decode()  # no Accept-Language: the cookie decides
    assert 'lang="zh-hans"' in html
    assert "新建订单" in html
    assert "提交订单，一次支付" in html

    shopper.post("/i18n/setlang/", {"language": "en", "next": "/checkout/"})
    assert "Place orders and pay once" in shopper.get("/checkout/").content.decode()


def test_a_row_validation_message_reaches_the_shopper_in_chinese(shopper):
    page = shopper.post(
        "/checkout/rows/0/",
        {
            "rows-TOTAL_FORMS": "1",
            "rows-INITIAL_FORMS": "0",
            "rows-0-kind": "mobile",
            "rows-0-mobile-phone": "010 1234 5678",
            "rows-0-mobile-face_value": "50",
        },
        HTTP_HX_REQUEST="true",
        HTTP_ACCEPT_LANGUAGE="zh-CN",
    )

    assert page.status_code == 200
    html = page.content.decode()
    expected = "010 1234 5678 不是手机号码（固定电话无法充值）。"
    with translation.override("zh-hans"):
        assert str(recharge_messages.NOT_A_MOBILE_NUMBER).format(phone="010 1234 5678") == expected
    assert expected in html
    assert "is not a mobile number" not in html
