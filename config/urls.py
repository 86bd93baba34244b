from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("orders.api.urls")),
    path("", include("payments.api.urls")),
    path("", include("recharge.api.urls")),
]

urlpatterns = [
    path("", include("accounts.urls")),
    path("", include("orders.web.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("captcha/", include("captcha.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("payments/", include("payments.urls")),
    path("gateway/sandbox/", include("payments.sandbox.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

# Error pages: HTML for the website, JSON in one shape for /api/ and /payments/webhooks/ (config/errors.py).
handler400 = "config.errors.bad_request"
handler403 = "config.errors.permission_denied"
handler404 = "config.errors.page_not_found"
handler500 = "config.errors.server_error"
