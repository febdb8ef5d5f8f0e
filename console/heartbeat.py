from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from console.models import WorkerHeartbeat

STALE_AFTER = timedelta(minutes=2)


@transaction.atomic
def record_heartbeat(hostname: str) -> WorkerHeartbeat:
    now = timezone.now()
    beat, created = WorkerHeartbeat.objects.select_for_update().get_or_create(
        hostname=hostname, defaults={"last_seen": now, "beats": 1}
    )
    if not created:
        WorkerHeartbeat.objects.filter(pk=beat.pk).update(last_seen=now, beats=F("beats") + 1)
        beat.refresh_from_db()
    return beat


def latest_heartbeat() -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.order_by("-last_seen").first()


def is_stale(beat: WorkerHeartbeat | None) -> bool:
    return beat is None or timezone.now() - beat.last_seen > STALE_AFTER
