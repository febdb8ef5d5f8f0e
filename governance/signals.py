"""post_migrate housekeeping that must also hold after a test database is flushed.

- The five role groups exist (the data migration creates them; a flush between
  transactional tests removes them).
- The Admin role holds every model permission, new models' included (for Django's admin
  site only; object access is decided by governance.permissions).
- The ledger's chain head row exists, rebuilt from the last record if it was lost.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from governance.roles import Role


@receiver(post_migrate)
def ensure_roles_and_ledger_head(sender, using="default", **kwargs) -> None:
    # Runs after every app's migrate so the Admin role also gets permissions created later.
    for role in Role:
        Group.objects.using(using).get_or_create(name=role.value)
    Group.objects.using(using).get(name=Role.ADMIN.value).permissions.set(
        Permission.objects.using(using).all()
    )
    from governance.ledger import CHAIN, GENESIS_HASH
    from governance.models import DecisionRecord, LedgerHead

    if not LedgerHead.objects.using(using).filter(chain=CHAIN).exists():
        last = DecisionRecord.objects.using(using).order_by("-seq").first()
        LedgerHead.objects.using(using).create(
            chain=CHAIN,
            seq=last.seq if last else 0,
            hash=last.hash if last else GENESIS_HASH,
        )
