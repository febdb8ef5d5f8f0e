"""Pages for access: an object's Access tab (who has what, grant and revoke with htmx) and the
access review for compliance officers (every person x object x permission, CSV, sign-off)."""

from __future__ import annotations

import csv

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from governance import access_review, authz_failures, grants, ledger
from governance.access import object_or_404
from governance.htmx import render_page_or_partial, wants_partial
from governance.models import Team
from governance.permissions import allowed_actions, denied
from governance.roles import Role, has_role

REVIEW_PAGE_SIZE = 200


def _model(label: str):
    try:
        return grants.model_by_label(label)
    except LookupError:
        raise Http404("no such kind of object") from None


class GrantForm(forms.Form):
    action = forms.ChoiceField()
    principal = forms.ChoiceField(help_text="A person or a whole team")

    def __init__(self, *args, model, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [(a, a.replace("_", " ")) for a in model.ACTIONS]
        users = get_user_model().objects.filter(is_active=True).order_by("username")
        self.fields["principal"].choices = [
            ("Teams", [(f"team:{t.pk}", t.name) for t in Team.objects.order_by("name")]),
            ("People", [(f"user:{u.pk}", f"{u.get_username()} ({u})") for u in users]),
        ]

    def principal_kwargs(self) -> dict:
        kind, _, pk = self.cleaned_data["principal"].partition(":")
        if kind == "team":
            return {"team": Team.objects.get(pk=pk)}
        return {"user": get_user_model().objects.get(pk=pk, is_active=True)}


def _context(request, obj, form=None):
    model = type(obj)
    actions = allowed_actions(request.user, obj)
    return {
        "object": obj,
        "model_label": model._meta.label_lower,
        "model_name": model._meta.verbose_name,
        "holders": grants.holders(obj),
        "may_manage": "manage_access" in actions,
        "form": form or GrantForm(model=model),
    }


@require_http_methods(["GET", "POST"])
def object_access(request, label: str, pk: int):
    """The Access tab: view holders (anyone who may view the object); grant (managers)."""
    model = _model(label)
    obj = object_or_404(request.user, model, "view", path=request.path, pk=pk)
    form = None
    if request.method == "POST":
        _require_manager(request, obj)
        form = GrantForm(request.POST, model=model)
        if form.is_valid():
            try:
                created = grants.grant(
                    obj,
                    actor=request.user,
                    action=form.cleaned_data["action"],
                    **form.principal_kwargs(),
                )
            except PermissionDenied as exc:
                authz_failures.record_denied(request, exc)
                raise
            except grants.GrantError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Access granted." if created else "They already had it.")
                if not wants_partial(request):
                    return redirect(request.path)
                form = None
    return render_page_or_partial(
        request,
        "governance/access/object_access.html",
        "governance/access/_holders.html",
        _context(request, obj, form),
    )


@require_POST
def revoke_access(request, label: str, pk: int):
    model = _model(label)
    obj = object_or_404(request.user, model, "view", path=request.path, pk=pk)
    _require_manager(request, obj)
    form = GrantForm(request.POST, model=model)
    if form.is_valid():
        try:
            removed = grants.revoke(
                obj,
                actor=request.user,
                action=form.cleaned_data["action"],
                **form.principal_kwargs(),
            )
        except PermissionDenied as exc:
            authz_failures.record_denied(request, exc)
            raise
        messages.success(request, "Access revoked." if removed else "There was no such grant.")
    else:
        messages.error(request, "Choose the permission and the person or team to revoke.")
    if not wants_partial(request):
        return redirect("object-access", label=label, pk=pk)
    return render(request, "governance/access/_holders.html", _context(request, obj))


def _require_manager(request, obj) -> None:
    """Checked before the form is read: who may not manage access gets 403 (they can see it)."""
    if "manage_access" not in allowed_actions(request.user, obj):
        exc = denied(obj, "manage_access")
        authz_failures.record_denied(request, exc)
        raise exc


# --- The access review ---------------------------------------------------------------------
class ReviewForm(forms.Form):
    user = forms.CharField(required=False, max_length=150, label="Person (username)")
    team = forms.ChoiceField(required=False)
    object_type = forms.ChoiceField(required=False, label="Kind of object")
    object = forms.CharField(required=False, max_length=100, label="Object name contains")
    permission = forms.ChoiceField(required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "Any team")] + [
            (t.name, t.name) for t in Team.objects.order_by("name")
        ]
        self.fields["object_type"].choices = [("", "Any kind"), *access_review.object_types()]
        actions = sorted({a for m in grants.grant_bearing_models() for a in m.ACTIONS})
        self.fields["permission"].choices = [("", "Any permission")] + [
            (a, a.replace("_", " ")) for a in actions
        ]

    def to_filter(self) -> access_review.ReviewFilter:
        return access_review.ReviewFilter(
            **{k: (v or "").strip() for k, v in self.cleaned_data.items()}
        )


def _require_reviewer(request) -> None:
    if not has_role(request.user, Role.COMPLIANCE, Role.ADMIN):
        exc = PermissionDenied("the access review is for compliance officers and admins")
        authz_failures.record_denied(request, exc)
        raise exc


@require_safe
def review(request):
    _require_reviewer(request)
    form = ReviewForm(request.GET or None)
    review_filter = form.to_filter() if form.is_valid() else access_review.ReviewFilter()
    rows, more = [], False
    if form.is_bound and not form.is_valid():
        rows = []
    else:
        for index, row in enumerate(access_review.rows(review_filter)):
            if index >= REVIEW_PAGE_SIZE:
                more = True
                break
            rows.append(row)
    context = {
        "form": form,
        "rows": rows,
        "more": more,
        "page_size": REVIEW_PAGE_SIZE,
        "query": request.GET.urlencode(),
        "failures": authz_failures.repeated(),
        "last_signoff": _last_signoff(),
    }
    return render_page_or_partial(
        request, "governance/access/review.html", "governance/access/_review_rows.html", context
    )


class _Echo:
    def write(self, value):
        return value


@require_safe
def review_csv(request):
    _require_reviewer(request)
    form = ReviewForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect("access-review")
    review_filter = form.to_filter() if form.is_bound else access_review.ReviewFilter()
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(access_review.COLUMNS)
        count = 0
        for row in access_review.rows(review_filter):
            count += 1
            yield writer.writerow(row.as_list())
        with transaction.atomic():
            ledger.append(
                "export.made",
                actor=request.user,
                body={
                    "format": "csv",
                    "kind": "access_review",
                    "filters": _filters(review_filter),
                    "rows": count,
                },
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="steward-access-review.csv"'
    return response


@require_POST
def review_signoff(request):
    _require_reviewer(request)
    form = ReviewForm(request.POST)
    note = (request.POST.get("note") or "").strip()
    if not form.is_valid() or len(note) > 2000:
        messages.error(request, "The sign-off note is at most 2000 characters.")
        return redirect("access-review")
    review_filter = form.to_filter()
    count = sum(1 for _ in access_review.rows(review_filter))
    with transaction.atomic():
        ledger.append(
            "access_review.completed",
            actor=request.user,
            body={
                "filters": _filters(review_filter),
                "rows": count,
                "note": note,
            },
        )
    messages.success(request, f"Review signed off: {count} access rows, recorded in the log.")
    return redirect("access-review")


def _filters(review_filter) -> dict:
    return {k: v for k, v in review_filter.__dict__.items() if v}


def _last_signoff():
    from governance.models import DecisionRecord

    return (
        DecisionRecord.objects.filter(event="access_review.completed")
        .order_by("-seq")
        .only("seq", "recorded_at", "actor_name")
        .first()
    )
