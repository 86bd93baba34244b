from django.urls import path

from recharge.api.views import phone_lookup

urlpatterns = [path("recharge/lookup/", phone_lookup, name="recharge-lookup")]
