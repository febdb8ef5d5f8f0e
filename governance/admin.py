"""Django's admin for admins: users with their roles and teams, and teams with their members.

Roles and team memberships are saved through the role and team services, never by writing
the group tables directly, so every change takes the same path as everywhere else.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm

from governance import roles as role_service
from governance import teams as team_service
from governance.models import Team, User
from governance.roles import Role


def _role_choices():
    return [(role.value, role.value) for role in Role]


class RolesAndTeamsMixin(forms.Form):
    roles = forms.MultipleChoiceField(
        choices=_role_choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    teams = forms.ModelMultipleChoiceField(
        queryset=Team.objects.all(), required=False, widget=forms.CheckboxSelectMultiple
    )


class StewardUserChangeForm(RolesAndTeamsMixin, UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = [
                role.value for role in role_service.roles_of_stored(self.instance)
            ]
            self.fields["teams"].initial = list(Team.objects.of_user(self.instance))


class StewardUserCreationForm(RolesAndTeamsMixin, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email", "first_name", "last_name")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = StewardUserChangeForm
    add_form = StewardUserCreationForm
    list_display = ("username", "get_full_name", "email", "role_list", "is_active", "last_login")
    list_filter = ("is_active", "is_superuser", "groups")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email")}),
        ("Roles and teams", {"fields": ("roles", "teams")}),
        ("Status", {"fields": ("is_active", "is_superuser", "last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "email",
                    "first_name",
                    "last_name",
                    "password1",
                    "password2",
                    "roles",
                    "teams",
                ),
            },
        ),
    )
    readonly_fields = ("last_login", "date_joined")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    @admin.display(description="Roles")
    def role_list(self, obj) -> str:
        names = sorted(g.name for g in obj.groups.all() if g.name in role_service.ROLE_NAMES)
        return ", ".join(names) or "none"

    def save_related(self, request, form, formsets, change):
        # Group membership is written by the services below, not by the default m2m save.
        form.cleaned_data.pop("groups", None)
        super().save_related(request, form, formsets, change)
        user = form.instance
        wanted_roles = {Role(name) for name in form.cleaned_data.get("roles", [])}
        held_roles = role_service.roles_of_stored(user)
        for role in wanted_roles - held_roles:
            role_service.assign_role(user, role, actor=request.user)
        for role in held_roles - wanted_roles:
            role_service.revoke_role(user, role, actor=request.user)
        wanted_teams = set(form.cleaned_data.get("teams", []))
        held_teams = set(Team.objects.of_user(user))
        for team in wanted_teams - held_teams:
            team_service.add_member(team, user, actor=request.user)
        for team in held_teams - wanted_teams:
            team_service.remove_member(team, user, actor=request.user)


class TeamForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        widget=admin.widgets.FilteredSelectMultiple("members", is_stacked=False),
    )

    class Meta:
        model = Team
        fields = ("name", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = list(self.instance.members)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamForm
    list_display = ("name", "slug", "created_at")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name", "description"])
        else:
            created = team_service.create_team(
                form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                actor=request.user,
            )
            obj.pk = created.pk
            obj.slug = created.slug
            obj.group = created.group

    def save_related(self, request, form, formsets, change):
        team = Team.objects.get(pk=form.instance.pk)
        wanted = set(form.cleaned_data.get("members", []))
        held = set(team.members)
        for user in wanted - held:
            team_service.add_member(team, user, actor=request.user)
        for user in held - wanted:
            team_service.remove_member(team, user, actor=request.user)

    def has_delete_permission(self, request, obj=None):
        # Teams are named in the decision log and own definitions: retire them, never delete.
        return False
