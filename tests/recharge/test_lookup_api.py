def test_lookup_answers_carrier_region_and_priced_face_values(api_client):
    response = api_client.get("/api/v1/recharge/lookup/", {"phone": "+86 186 1234 5678"})

    assert response.status_code == 200
    body = response.json()
    assert (body["phone"], body["carrier"], body["carrier_zh"], body["region"]) == (
        "18612345678",
        "China Unicom",
        "中国联通",
        "北京市",
    )
    assert body["face_values"][3] == {"face_value": "50", "price": "49.25"}
    assert len(body["face_values"]) == 8


def refusal(message: str) -> dict:
    return {"detail": message, "code": "invalid", "phone": [message]}


def test_lookup_of_a_landline_or_nothing_is_400_naming_the_phone(api_client):
    assert api_client.get("/api/v1/recharge/lookup/", {"phone": "01012345678"}).json() == refusal(
        "01012345678 is not a mobile number (a landline cannot be topped up)."
    )
    missing = api_client.get("/api/v1/recharge/lookup/")
    assert missing.status_code == 400 and missing.json() == refusal("This field is required.")
    assert api_client.get("/api/v1/recharge/lookup/", {"phone": "1" * 40}).json() == refusal("At most 32 characters.")


def test_a_carrier_discount_edited_by_staff_changes_the_price(api_client):
    from recharge.models import CarrierDiscount

    CarrierDiscount.objects.filter(carrier="China Unicom").update(discount="0.950")

    body = api_client.get("/api/v1/recharge/lookup/", {"phone": "18612345678"}).json()

    assert body["face_values"][3] == {"face_value": "50", "price": "47.50"}
