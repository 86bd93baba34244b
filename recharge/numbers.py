"""Mainland China mobile numbers: validation, normalisation, carrier and region (号码归属地)."""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType, carrier, geocoder

from recharge import messages

MOBILE_TYPES = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class InvalidNumber(ValueError):
    pass


@dataclass(frozen=True)
class MobileNumber:
    national: str  # 11 digits, e.g. "13800138000"
    carrier: str  # as the library names it in English, e.g. "China Mobile": the key of CarrierDiscount
    carrier_zh: str
    region: str  # 号码归属地, e.g. "北京市"
    region_en: str

    def as_details(self) -> dict:
        return {
            "phone": self.national,
            "carrier": self.carrier,
            "carrier_zh": self.carrier_zh,
            "region": self.region,
            "region_en": self.region_en,
        }


def parse_mobile(raw: str) -> MobileNumber:
    """Accepts "13800138000", "+86 138 0013 8000", "138-0013-8000"; raises InvalidNumber with a message for people."""
    text = raw.strip()
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise InvalidNumber(str(messages.NOT_A_PHONE_NUMBER).format(phone=text)) from None
    if number.country_code != 86 or not phonenumbers.is_valid_number(number):
        raise InvalidNumber(str(messages.NOT_A_PHONE_NUMBER).format(phone=text))
    if phonenumbers.number_type(number) not in MOBILE_TYPES:
        raise InvalidNumber(str(messages.NOT_A_MOBILE_NUMBER).format(phone=text))
    national = str(number.national_number)
    if len(national) != 11:
        raise InvalidNumber(str(messages.NOT_A_PHONE_NUMBER).format(phone=text))
    return MobileNumber(
        national=national,
        carrier=carrier.name_for_number(number, "en") or "",
        carrier_zh=carrier.name_for_number(number, "zh") or "",
        region=geocoder.description_for_number(number, "zh") or "",
        region_en=geocoder.description_for_number(number, "en") or "",
    )
