"""URLs of decision-log exports."""

urlpatterns = []
