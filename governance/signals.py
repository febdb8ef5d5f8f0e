"""After every migrate, the Admin role holds every model permission, including new models'.

Object-level access is decided elsewhere (governance.permissions); these global permissions
only let members of the Admin role use Django's admin site.
"""

from django.contrib.auth.models import Group, Permission
from django.db.models.signals import post_migrate
from django.dispatch import receiver

from governance.roles import Role


@receiver(post_migrate)
def give_admin_role_every_permission(sender, using="default", **kwargs) -> None:
    group = Group.objects.using(using).filter(name=Role.ADMIN.value).first()
    if group is not None:
        group.permissions.set(Permission.objects.using(using).all())
