"""Sign-up and the home page; logging in and out are Django's own views."""

from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods


def home(request):
    if request.user.is_authenticated:
        return redirect("web:checkout")
    return render(request, "home.html")


@require_http_methods(["GET", "POST"])
def signup(request):
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("web:checkout")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)
