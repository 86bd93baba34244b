"""The home page, sign-up, logging in, and the "API access" page; logging out is Django's own view."""

from django.contrib import messages as flash
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from accounts import messages, services
from accounts.forms import LoginForm, SignupForm

# The key of a token just created, kept in the session only until the page that shows it once.
NEW_TOKEN_SESSION_KEY = "api_token_new"


def home(request):
    if request.user.is_authenticated:
        return redirect("web:checkout")
    return render(request, "home.html")


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("web:checkout")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class LoginView(auth_views.LoginView):
    form_class = LoginForm


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def api_access(request):
    """Create, show once, rotate and revoke the user's API token, with plain forms (no JavaScript needed)."""
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "create":
            if Token.objects.filter(user=request.user).exists():
                flash.error(request, messages.TOKEN_ALREADY_EXISTS)
            else:
                _show_once(request, services.api_token_get_or_create(user=request.user), messages.TOKEN_CREATED)
        elif action == "rotate":
            _show_once(request, services.api_token_rotate(user=request.user), messages.TOKEN_ROTATED)
        elif action == "revoke":
            if services.api_token_revoke(user=request.user):
                flash.success(request, messages.TOKEN_REVOKED)
            else:
                flash.error(request, messages.NO_TOKEN)
        # After a POST, a redirect: reloading the page must not rotate the token again.
        return redirect("api-access")
    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    context = {
        "token": token,
        "new_key": new_key if token is not None and new_key == token.key else None,
        "key_hint": token.key[-4:] if token is not None else "",
    }
    return render(request, "accounts/api_access.html", context)


def _show_once(request, token, message) -> None:
    request.session[NEW_TOKEN_SESSION_KEY] = token.key
    flash.success(request, message)
