from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from accounts import messages
from accounts.lockout import login_seconds_to_wait


class LoginForm(AuthenticationForm):
    """Django's login form, which refuses to check a password while this account and address are slowed."""

    def clean(self):
        username = self.cleaned_data.get("username")
        if username and self.request is not None:
            seconds = login_seconds_to_wait(request=self.request, username=username)
            if seconds:
                raise ValidationError(messages.LOGIN_SLOWED, code="slowed", params={"seconds": seconds})
        return super().clean()
