"""Demo data: teams, personas and (as later parts land) published agents and workflows.

Idempotent: a second run changes nothing. Existing users keep their passwords.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from governance import roles as role_service
from governance import teams as team_service
from governance.models import Team
from governance.roles import Role

TEAMS = {
    "Onboarding": "Customer onboarding: KYC and credit decisions.",
    "Support": "Customer support: ticket triage and answers.",
}

# username: (first name, last name, roles, teams)
PERSONAS: dict[str, tuple[str, str, tuple[Role, ...], tuple[str, ...]]] = {
    "admin": ("Ada", "Admin", (Role.ADMIN,), ()),
    "builder": ("Bea", "Builder", (Role.BUILDER,), ("Onboarding",)),
    "builder2": ("Ben", "Builder", (Role.BUILDER,), ("Support",)),
    "approver": ("Alex", "Approver", (Role.APPROVER,), ("Onboarding", "Support")),
    "operator": ("Olu", "Operator", (Role.OPERATOR,), ("Onboarding", "Support")),
    "compliance": ("Chloe", "Compliance", (Role.COMPLIANCE,), ()),
}


class Command(BaseCommand):
    help = (
        "Create the demo teams, users, published agents of every kind and one workflow per "
        "orchestration pattern (idempotent); --runs N also starts N runs of each."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--runs", type=int, default=0, help="start N runs of each demo workflow"
        )
        parser.add_argument("--people-only", action="store_true", help="only the teams and users")

    def handle(self, *args, runs: int = 0, people_only: bool = False, **options):
        if runs < 0 or runs > 1000:
            raise CommandError("--runs: a number from 0 to 1000")
        password = settings.STEWARD_DEMO_PASSWORD
        if not password:
            raise CommandError(
                "STEWARD_DEMO_PASSWORD is not set: with DEBUG off the demo users need a "
                "password of your choosing."
            )
        created = seed_people(password)
        verb = "created" if created else "already present"
        self.stdout.write(
            f"Demo teams and users {verb}: {', '.join(PERSONAS)} (teams: {', '.join(TEAMS)})."
        )
        if people_only:
            return
        from console.demo import seed_definitions, start_demo_runs

        flows = seed_definitions()
        self.stdout.write(
            f"Demo agents and workflows published: {len(flows)} workflows ({', '.join(flows)})."
        )
        if runs:
            started = start_demo_runs(flows, runs)
            self.stdout.write(f"Started {started} demo runs; workers carry them out.")


@transaction.atomic
def seed_people(password: str) -> list[str]:
    """Create what is missing; returns the usernames created."""
    user_model = get_user_model()
    system = None  # the seeding itself is the actor: no person did it
    teams = {}
    for name, description in TEAMS.items():
        team = Team.objects.filter(name=name).first()
        if team is None:
            team = team_service.create_team(name, description=description, actor=system)
        teams[name] = team

    created = []
    for username, (first, last, roles, team_names) in PERSONAS.items():
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model(
                username=username,
                first_name=first,
                last_name=last,
                email=f"{username}@steward.example",
                is_superuser=Role.ADMIN in roles,
                is_staff=Role.ADMIN in roles,
            )
            user.set_password(password)
            user.save()
            created.append(username)
        for role in roles:
            role_service.assign_role(user, role, actor=system)
        for team_name in team_names:
            team_service.add_member(teams[team_name], user, actor=system)
    return created
