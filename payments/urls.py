from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("webhooks/sandbox/", views.sandbox_webhook, name="sandbox-webhook"),
    path("pay/<str:reference>/", views.pay, name="pay"),
    path("return/<str:reference>/", views.payment_return, name="return"),
]
