from django.utils.functional import SimpleLazyObject

from console.navigation import navigation_for
from governance.roles import roles_of


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        # Worked out when a template shows the sidebar: htmx partials never do. (Its counts
        # load after the page, from their own URLs: console.navigation.)
        "nav_sections": SimpleLazyObject(lambda: navigation_for(user, request.path)),
        "user_roles": sorted(role.value for role in roles_of(user)),
    }
