from django.contrib.auth import views as auth_views
from django.db import transaction

from governance import ledger


class PasswordChangeView(auth_views.PasswordChangeView):
    success_url = "/accounts/password/done/"

    @transaction.atomic
    def form_valid(self, form):
        response = super().form_valid(form)
        ledger.append("user.password_changed", actor=self.request.user, body={})
        return response
