"""Number validation and 号码归属地 as the phonenumbers library reports them (pure logic, no database)."""

import pytest

from recharge.numbers import InvalidNumber, parse_mobile


@pytest.mark.parametrize(
    "raw, carrier, carrier_zh, region, region_en",
    [
        ("13800138000", "China Mobile", "中国移动", "北京市", "Beijing"),
        ("13912345678", "China Mobile", "中国移动", "江苏省常州市", "Changzhou, Jiangsu"),
        ("18612345678", "China Unicom", "中国联通", "北京市", "Beijing"),
        ("13012345678", "China Unicom", "中国联通", "重庆市", "Chongqing"),
        ("18912345678", "China Telecom", "中国电信", "江苏省常州市", "Changzhou, Jiangsu"),
        ("15300000000", "China Telecom", "中国电信", "北京市", "Beijing"),
    ],
)
def test_carrier_and_region_of_real_prefixes(raw, carrier, carrier_zh, region, region_en):
    number = parse_mobile(raw)

    assert (number.carrier, number.carrier_zh, number.region, number.region_en) == (
        carrier,
        carrier_zh,
        region,
        region_en,
    )


@pytest.mark.parametrize(
    "raw", ["+86 138 0013 8000", "138-0013-8000", " 13800138000 ", "+8613800138000", "0086 13800138000"]
)
def test_country_code_spaces_and_dashes_are_normalised(raw):
    assert parse_mobile(raw).national == "13800138000"


@pytest.mark.parametrize(
    "raw, message",
    [
        ("010 1234 5678", "010 1234 5678 is not a mobile number (a landline cannot be topped up)."),
        ("1380013800", "1380013800 is not a valid mainland China phone number."),
        ("12345678901", "12345678901 is not a valid mainland China phone number."),
        ("hello", "hello is not a valid mainland China phone number."),
        ("+1 650 253 0000", "+1 650 253 0000 is not a valid mainland China phone number."),
    ],
)
def test_invalid_numbers_and_landlines_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(InvalidNumber) as refused:
        parse_mobile(raw)

    assert str(refused.value) == message
