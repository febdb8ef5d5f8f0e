from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and workflows"

    def ready(self) -> None:
        from agents import immutability
        from governance.immutability import EXTRA_SUSPENDERS

        if immutability.suspend_sql not in EXTRA_SUSPENDERS:
            EXTRA_SUSPENDERS.append(immutability.suspend_sql)
