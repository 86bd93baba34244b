from django.urls import path

from accounts.api import ObtainTokenView

urlpatterns = [path("auth/token/", ObtainTokenView.as_view(), name="auth-token")]
