"""The connection form. It only collects values: `agents.connections` checks and saves them, and
its errors come back onto the fields. The secret is write-only: never rendered back."""

from __future__ import annotations

from django import forms

from agents.models import Connection
from governance.roles import Role, has_role

# Help for the write-only credential input, by what is stored.
CREDENTIAL_HELP = {
    "new": "The API key, token, password or OAuth2 client secret. Stored encrypted; "
    "never shown again.",
    "saved": "A secret is saved. Leave blank to keep it; type a new one to replace it.",
    "none": "No secret is saved yet.",
}


class ConnectionForm(forms.Form):
    name = forms.CharField(max_length=100)
    team = forms.ModelChoiceField(queryset=None, empty_label=None, help_text="The owning team.")
    kind = forms.ChoiceField(
        choices=Connection.Kind.choices,
        help_text="A model endpoint serves OpenAI-compatible chat completions "
        "(OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio, LiteLLM); an HTTP endpoint is any "
        "REST API an http agent or an llm tool calls.",
    )
    description = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    base_url = forms.CharField(
        label="Base URL",
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://api.example.com/v1"}),
        help_text="Requests go to paths under this URL. Private, loopback and link-local "
        "addresses are refused unless an admin marks the connection internal.",
    )
    model = forms.CharField(
        required=False,
        max_length=200,
        help_text="Model endpoints: the default model name (e.g. gpt-4o-mini, llama3.1).",
    )
    auth_method = forms.ChoiceField(label="Method", choices=Connection.Auth.choices)
    header_name = forms.CharField(
        label="Header name",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "X-API-Key"}),
        help_text="The request header that carries the API key.",
    )
    username = forms.CharField(
        label="User name or client id",
        required=False,
        max_length=200,
        help_text="Basic auth: the user name. OAuth2: the client id.",
    )
    token_url = forms.CharField(
        label="Token URL",
        required=False,
        max_length=500,
        widget=forms.URLInput(attrs={"placeholder": "https://auth.example.com/oauth2/token"}),
        help_text="OAuth2 client credentials: the token endpoint.",
    )
    secret = forms.CharField(
        required=False,
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    timeout_seconds = forms.FloatField(
        label="Timeout (seconds)", initial=30.0, min_value=1, max_value=300
    )
    allow_internal = forms.BooleanField(
        label="May reach internal addresses",
        required=False,
        help_text="Admins only. Lets this connection reach private and loopback addresses at "
        "its own base URL (an Ollama on the same host, a service on the intranet). Cloud "
        "metadata addresses stay refused.",
    )

    def __init__(self, *args, user, teams, instance: Connection | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                field: getattr(instance, field)
                for field in (
                    "name",
                    "kind",
                    "description",
                    "base_url",
                    "model",
                    "auth_method",
                    "header_name",
                    "username",
                    "token_url",
                    "timeout_seconds",
                    "allow_internal",
                )
            } | {"team": instance.team_id}
        super().__init__(*args, **kwargs)
        self.instance = instance
        team_field = self.fields["team"]
        team_field.queryset = teams
        if instance is not None:
            # The current team stays selectable even if the editor may not create for it.
            current = type(instance.team).objects.filter(pk=instance.team_id)
            team_field.queryset = (teams | current).distinct()
            del self.fields["kind"]
            stored = "saved" if instance.has_secret else "none"
            self.fields["secret"].help_text = CREDENTIAL_HELP[stored]
        else:
            self.fields["secret"].help_text = CREDENTIAL_HELP["new"]
        if not has_role(user, Role.ADMIN):
            del self.fields["allow_internal"]
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("class", f"input-{name}")

    def service_values(self) -> dict:
        """The cleaned values as `agents.connections.create/update` take them."""
        data = dict(self.cleaned_data)
        data.pop("kind", None)
        return data
