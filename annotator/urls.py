from importlib import import_module

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import URLPattern, include, path
from drf_spectacular.views import SpectacularAPIView

from annotator.health import healthz
from annotator.passwords import PasswordChange
from annotator.token_view import ObtainToken

# Each app contributes its own API routes; all are mounted under /api/.
API_URLCONFS = [
    "feedback.api_urls",
    "feedback.projects.api_urls",
    "feedback.prompts.api_urls",
    "feedback.jobs.api_urls",
    "feedback.review.api_urls",
    "feedback.workers.api_urls",
    "exports.api_urls",
    "quality.api_urls",
]


def api_routes() -> list[URLPattern]:
    """The API's routes. The login-page middleware steps aside for them: DRF authenticates (token or session)."""
    routes = [
        path("auth/token/", ObtainToken.as_view(), name="api-token"),
        path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    ]
    for name in API_URLCONFS:
        routes += import_module(name).urlpatterns
    for route in routes:
        route.callback = login_not_required(route.callback)
    return routes


urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/password/", PasswordChange.as_view(), name="password_change"),
    path("admin/", admin.site.urls),
    path("api/", include(api_routes())),
    path("", include("feedback.urls")),
    path("", include("exports.urls")),
    path("", include("quality.urls")),
]

# An address under /api/ that matches no endpoint answers the API's error body, not an HTML page.
handler404 = "feedback.rest.errors.not_found"
