"""htmx without ceremony: one rule for when a request gets a partial instead of the page.

A page template and its partial sit side by side; the page includes the partial, so both
render the same markup. A request gets the partial only when htmx asked for it to swap into
the page (not for a boosted navigation, and not when htmx restores a history entry it no longer
has cached, which needs the whole page).
"""

from __future__ import annotations

from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def wants_partial(request) -> bool:
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page_or_partial(request, page: str, partial: str, context: dict, status: int = 200):
    """Render `partial` for htmx swaps and `page` otherwise; caches keep the two apart."""
    template = partial if wants_partial(request) else page
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request", "HX-History-Restore-Request"))
    return response
