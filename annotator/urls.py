from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", include("feedback.api.urls")),
    path("", include("feedback.urls")),
    path("", include("exports.urls")),
]

# An address under /api/ that matches no endpoint answers the API's error body, not an HTML page.
handler404 = "feedback.api.errors.not_found"
