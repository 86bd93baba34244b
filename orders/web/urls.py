from django.urls import path

from orders.web import batches, captcha, checkout

app_name = "web"
urlpatterns = [
    path("checkout/", checkout.checkout, name="checkout"),
    path("checkout/rows/", checkout.checkout_rows, name="checkout-rows"),
    path("checkout/rows/<int:index>/", checkout.checkout_row, name="checkout-row"),
    path("checkout/captcha/", captcha.challenge_refresh, name="checkout-captcha"),
    path("batches/", batches.batch_list, name="batch-list"),
    path("batches/<uuid:batch_id>/", batches.batch_detail, name="batch-detail"),
    path("batches/<uuid:batch_id>/cancel/", batches.batch_cancel, name="batch-cancel"),
    path("batches/<uuid:batch_id>/export/", batches.batch_export, name="batch-export"),
]
