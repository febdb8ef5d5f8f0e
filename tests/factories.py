from __future__ import annotations

import factory

from governance import roles as role_service
from governance import teams as team_service
from governance.models import Team, User

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"person{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for role in extracted or ():
            role_service.assign_role(self, role, actor=None)
        self.save()

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        for team in extracted or ():
            team_service.add_member(team, self, actor=None)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return team_service.create_team(kwargs["name"], actor=None)
