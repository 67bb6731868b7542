"""The quality API, under /api/."""

urlpatterns: list = []
