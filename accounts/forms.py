from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

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


class SignupForm(UserCreationForm):
    """Django's sign-up form with the e-mail address the shop sends receipts to."""

    email = forms.EmailField(label=_("E-mail address"), help_text=_("Your receipts are sent here."))

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")
