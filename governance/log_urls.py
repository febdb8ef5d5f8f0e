"""URLs of the decision log browser."""

urlpatterns = []
