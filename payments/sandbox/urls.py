from django.urls import path

from payments.sandbox import views

app_name = "sandbox"
urlpatterns = [
    path("pay/<str:reference>/", views.pay_page, name="pay"),
]
