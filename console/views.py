from django.contrib.auth.decorators import login_not_required
from django.shortcuts import render
from django.views.decorators.http import require_safe

from console.dashboard import panels_for


@require_safe
def home(request):
    return render(request, "console/home.html", {"panels": panels_for(request.user)})


# Error pages rendered with the product's layout. They receive no view-specific context and
# must never fail themselves.
@login_not_required
def bad_request(request, exception=None):
    return render(request, "400.html", status=400)


@login_not_required
def permission_denied(request, exception=None):
    return render(request, "403.html", status=403)


@login_not_required
def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


@login_not_required
def server_error(request):
    # Rendered without request context: a failing context processor must not hide the page.
    from django.http import HttpResponseServerError
    from django.template import loader

    return HttpResponseServerError(loader.get_template("500.html").render())
