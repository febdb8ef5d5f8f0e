"""Export pages: /decisions/export/ (the current filter's summary, the formats, the POST that
starts an export) and /decisions/exports/<id>/ (a background export's progress and download).

Anyone signed in may export what `visible_decisions` shows them; compliance officers and admins
see, and so export, the whole log. Small exports stream straight back as the download; large
ones (more than STEWARD_EXPORT_INLINE_MAX records, counted no further than that) become an
ExportJob run by a Celery task. A job is visible to its owner, compliance officers and admins
only: anyone else gets a 404, as for a job that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_safe

from governance.decisions import DecisionFilterForm, may_see_everything
from governance.exports import jobs
from governance.exports.selection import ExportError, Selection, select
from governance.exports.service import (
    CONTENT_TYPES,
    Export,
    download_name,
    stream_and_record,
)
from governance.models import ExportJob

DEFAULT_INLINE_MAX = 10_000
FILTER_KEYS = tuple(DecisionFilterForm.base_fields)
RECENT_JOBS = 10


@dataclass(frozen=True)
class FormatChoice:
    value: str
    label: str
    help: str


FORMAT_CHOICES = (
    FormatChoice(
        "csv",
        "CSV",
        "One row per record with its columns, hashes and canonical JSON; opens in a spreadsheet.",
    ),
    FormatChoice(
        "jsonl",
        "JSON Lines",
        "One JSON object per record (the canonical record itself), for scripts and jq.",
    ),
    FormatChoice(
        "bundle",
        "Evidence bundle (zip)",
        "Records with their exact bytes, the hash skeleton of the range, signed checkpoints, "
        "a signed manifest and the public key; anyone can verify it offline with "
        "python -m governance.verify_bundle.",
    ),
)


class ExportFormatForm(forms.Form):
    format = forms.ChoiceField(choices=ExportJob.Format.choices)


def inline_max() -> int:
    return int(getattr(settings, "STEWARD_EXPORT_INLINE_MAX", DEFAULT_INLINE_MAX))


def runs_inline(selection: Selection, fmt: str) -> bool:
    """Small enough to stream in the request? Cheap: counts no further than the threshold."""
    limit = inline_max()
    count = selection.count_up_to(limit)
    if count > limit:
        return False
    if fmt == "bundle" and count:
        # The skeleton covers the whole span of the selection, selected or not.
        span = selection.upper_seq - selection.first_seq() + 1
        return span <= 10 * limit
    return True


@require_http_methods(["GET", "POST"])
def export_decisions(request):
    data = request.POST if request.method == "POST" else request.GET
    filter_form = DecisionFilterForm(data={key: data.get(key, "") for key in FILTER_KEYS})
    format_form = ExportFormatForm(data=request.POST) if request.method == "POST" else None
    problem = None
    if filter_form.is_valid() and request.method == "POST" and format_form.is_valid():
        fmt = format_form.cleaned_data["format"]
        try:
            selection = select(filter_form.to_filter(), exporter=request.user)
            if runs_inline(selection, fmt):
                return _stream(selection, fmt)
            job = jobs.start_export_job(selection.filter, fmt, actor=request.user)
        except ExportError as exc:
            problem = str(exc)
        else:
            return redirect("decision-export-job", job.pk, permanent=False)
    status = 200
    if filter_form.errors or (format_form is not None and format_form.errors) or problem:
        status = 400
    return render(
        request,
        "governance/exports/export.html",
        _page_context(request, filter_form, format_form, problem),
        status=status,
    )


def _stream(selection: Selection, fmt: str) -> StreamingHttpResponse:
    export = Export(selection, fmt, via="page")
    response = StreamingHttpResponse(stream_and_record(export), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{download_name(fmt)}"'
    response["Cache-Control"] = "no-store"
    return response


def _page_context(request, filter_form, format_form, problem) -> dict:
    user = request.user
    valid = filter_form.is_valid()
    context = {
        "filter_form": filter_form,
        "format_form": format_form,
        "formats": FORMAT_CHOICES,
        "selected_format": (format_form.data.get("format") if format_form else "") or "csv",
        "problem": problem,
        "everything": may_see_everything(user),
        "inline_max": inline_max(),
        "log_url": _log_url(request.GET.urlencode() if request.method == "GET" else ""),
        "jobs": _jobs_for(user)[:RECENT_JOBS],
        "can_export": valid,
    }
    if valid:
        decision_filter = filter_form.to_filter()
        context["summary"] = filter_summary(decision_filter.as_dict())
        context["hidden_filters"] = [
            (key, filter_form.data[key]) for key in FILTER_KEYS if filter_form.data.get(key)
        ]
        try:
            selection = select(decision_filter, exporter=user)
        except ExportError as exc:
            context["can_export"] = False
            context["problem"] = str(exc)
        else:
            context["estimate"] = selection.count_up_to(inline_max())
    return context


def filter_summary(filters: dict) -> list[tuple[str, str]]:
    """(label, value) for each filter that is set, from `DecisionFilter.as_dict()`."""
    fields = DecisionFilterForm.base_fields
    rows = []
    for key, value in (filters or {}).items():
        field = fields.get(key)
        label = (field.label if field is not None else None) or key.replace("_", " ").capitalize()
        rows.append((label, str(value)))
    return rows


def _log_url(query: str) -> str | None:
    # The log browser is another module's page; the export page works without it.
    try:
        url = reverse("decision-list")
    except NoReverseMatch:
        return None
    return f"{url}?{query}" if query else url


def _jobs_for(user):
    queryset = ExportJob.objects.select_related("owner")
    return queryset if may_see_everything(user) else queryset.filter(owner=user)


def _job_or_404(user, job_id: int) -> ExportJob:
    return get_object_or_404(_jobs_for(user), pk=job_id)


@require_safe
def export_job(request, job_id: int):
    job = _job_or_404(request.user, job_id)
    context = {
        "job": job,
        "stalled": jobs.is_stalled(job),
        "summary": filter_summary(job.filters),
        "retention_hours": settings.STEWARD_EXPORT_RETENTION_HOURS,
    }
    partial = bool(getattr(request, "htmx", False)) and not request.htmx.history_restore_request
    template = "governance/exports/_job_status.html" if partial else "governance/exports/job.html"
    response = render(request, template, context)
    patch_vary_headers(response, ("HX-Request",))
    response["Cache-Control"] = "no-store"
    return response


@require_safe
def download_export(request, job_id: int):
    job = _job_or_404(request.user, job_id)
    if job.status == ExportJob.Status.EXPIRED:  # its page says why and what to do
        messages.info(request, "This export's file was removed after the retention period.")
        return redirect(job)
    if job.status != ExportJob.Status.DONE or not job.file_path:
        raise Http404("This export has no file yet.")
    path = Path(job.file_path)
    # Only files the task wrote under the export folder are ever served.
    if path.resolve().parent != jobs.export_dir().resolve() or not path.is_file():
        raise Http404("The export's file is no longer on the server.")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=download_name(job.format, job.finished_at or job.created_at),
        content_type=CONTENT_TYPES[job.format],
    )
    response["Cache-Control"] = "no-store"
    return response
