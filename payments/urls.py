from django.urls import path

from payments import views

app_name = "payments"
urlpatterns = [
    path("webhooks/<str:provider>/", views.webhook, name="webhook"),
    path("pay/<str:reference>/", views.pay, name="pay"),
    path("attempts/<str:reference>/", views.attempt_page, name="attempt"),
    path("attempts/<str:reference>/status/", views.attempt_status, name="attempt-status"),
    path("return/<str:reference>/", views.payment_return, name="return"),
]
