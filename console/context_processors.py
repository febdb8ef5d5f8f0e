from console.navigation import navigation_for
from governance.roles import roles_of


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "nav_sections": navigation_for(user, request.path),
        "user_roles": sorted(role.value for role in roles_of(user)),
    }
