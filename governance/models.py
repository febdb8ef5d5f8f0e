from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.db import models
from django.urls import reverse


class User(AbstractUser):
    """A person who signs in to Steward. Roles are Django groups; teams are `Team` rows."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        ordering = ["username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username


class TeamQuerySet(models.QuerySet):
    def of_user(self, user) -> TeamQuerySet:
        return self.filter(group__user=user)


class Team(models.Model):
    """A business team that owns agents and workflows.

    Membership is the membership of the team's own auth group, so a grant to a team is an
    ordinary guardian group grant and every member holds it.
    """

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    group = models.OneToOneField(Group, on_delete=models.PROTECT, related_name="team")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("admin:governance_team_change", args=[self.pk])

    @property
    def members(self):
        return self.group.user_set.all()
