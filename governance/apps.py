from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance"

    def ready(self) -> None:
        # Signal receivers: post_migrate housekeeping and sign-in events for the ledger.
        from governance import auth_events, signals  # noqa: F401
