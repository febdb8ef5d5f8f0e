"""URLs for the engine benchmark's baseline: the whole console plus one bare view that inserts
one row, so the baseline goes through the same middleware stack as the API call it is compared
with."""

from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from console.models import WorkerHeartbeat


@login_not_required
@csrf_exempt
def insert_one_row(request):
    beat = WorkerHeartbeat.objects.create(
        hostname=f"bench-{timezone.now().timestamp()}", last_seen=timezone.now()
    )
    return JsonResponse({"id": beat.pk}, status=201)


urlpatterns = [
    path("bench/insert/", insert_one_row),
    path("", include("console.urls")),
]
