"""Connection pages: list, detail, create, edit and "test connection".

Objects come only from `Connection.objects.restrict(user, action)` (through `object_or_404`):
a connection someone may not see is a 404. Writes go through `agents.connections`.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from agents import connections as service
from agents.forms.connections import ConnectionForm
from agents.models import Connection
from agents.views.common import may_create, shown_actions
from governance.access import object_or_404
from governance.htmx import wants_partial


@require_safe
def connection_list(request):
    rows = Connection.objects.restrict(request.user, "view").select_related("team")
    return render(
        request,
        "agents/connection_list.html",
        {"connections": rows, "may_create": may_create(request.user)},
    )


def _form_errors(form: ConnectionForm, exc: Exception) -> None:
    if isinstance(exc, service.ConnectionFieldError):
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, exc.message)
    else:
        form.add_error(None, str(exc))


@require_http_methods(["GET", "POST"])
def connection_create(request):
    teams = service.teams_for_new(request.user)
    if not may_create(request.user):
        raise PermissionDenied("only builders and admins create connections")
    data = request.POST if request.method == "POST" else None
    form = ConnectionForm(data, user=request.user, teams=teams)
    if request.method == "POST" and form.is_valid():
        values = form.service_values()
        try:
            connection = service.create(
                actor=request.user, kind=form.cleaned_data["kind"], **values
            )
        except (service.ConnectionFieldError, PermissionDenied) as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Connection {connection.name} saved.")
            return redirect(connection)
    return render(request, "agents/connection_form.html", {"form": form, "connection": None})


@require_http_methods(["GET", "POST"])
def connection_edit(request, pk: int):
    connection = object_or_404(request.user, Connection, "change", pk=pk)
    teams = service.teams_for_new(request.user)
    form = ConnectionForm(request.POST or None, user=request.user, teams=teams, instance=connection)
    if request.method == "POST" and form.is_valid():
        try:
            connection = service.update(connection, actor=request.user, **form.service_values())
        except (service.ConnectionFieldError, PermissionDenied) as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Connection {connection.name} saved.")
            return redirect(connection)
    return render(request, "agents/connection_form.html", {"form": form, "connection": connection})


@require_safe
def connection_detail(request, pk: int):
    connection = object_or_404(request.user, Connection, "view", pk=pk)
    return render(request, "agents/connection_detail.html", _detail_context(request, connection))


def _detail_context(request, connection, **extra) -> dict:
    return {
        "connection": connection,
        "actions": shown_actions(request.user, connection),
        **extra,
    }


@require_POST
def connection_test(request, pk: int):
    """One guarded request through agents.outbound; the result (or refusal) is shown."""
    connection = object_or_404(request.user, Connection, "use", pk=pk)
    result = service.check(connection, actor=request.user)
    if wants_partial(request):
        return render(
            request, "agents/_connection_test.html", {"result": result, "connection": connection}
        )
    return render(
        request,
        "agents/connection_detail.html",
        _detail_context(request, connection, result=result),
    )
