"""The checkout page: a formset of order rows, grown one or many at a time, validated as the user types,
submitted with one captcha; invalid rows are shown and the user chooses to fix or skip them (claim 3).

Every action works as a plain form POST (no JavaScript); with htmx the same actions swap only what
changed. The rules of each row live in its order type, reached through `rows_validate`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from orders import services
from orders.models import Batch, Product
from orders.web import captcha, importing
from orders.web.forms import COMMON_INPUTS, DEFAULT_KIND, PREFIX, ImportForm, RowForm, RowFormSet, row_inputs

INITIAL_ROWS = 3
MAX_ADD_AT_ONCE = 500


@dataclass
class CheckoutState:
    formset: object
    rows: list[dict] = field(default_factory=list)  # the non-blank rows, as the API would receive them
    forms_of_rows: list[RowForm] = field(default_factory=list)
    valid_count: int = 0
    invalid_count: int = 0
    total: Decimal = Decimal("0.00")
    warnings: list[str] = field(default_factory=list)


def _blank_formset(count: int):
    return RowFormSet(prefix=PREFIX, initial=[{"kind": DEFAULT_KIND}] * count)


def _bound_formset(data):
    formset = RowFormSet(data, prefix=PREFIX)
    if not formset.management_form.is_valid():
        return None
    return formset


def _evaluate(request, formset) -> CheckoutState:
    """Validate every non-blank row and attach errors, prices and warnings to their forms."""
    state = CheckoutState(formset=formset)
    for form in formset.forms:
        raw = form.raw_row()
        if raw is not None:
            state.rows.append(raw)
            state.forms_of_rows.append(form)
    if not state.rows:
        return state
    verdicts, warnings = services.rows_validate(owner=request.user, rows=state.rows, with_quotes=True)
    for form, verdict in zip(state.forms_of_rows, verdicts, strict=True):
        form.row_errors = verdict.errors
        form.quote = verdict.quote
        form.note = verdict.quote.note if verdict.quote is not None else verdict.note
        if verdict.is_valid:
            state.valid_count += 1
            assert verdict.quote is not None, "rows_validate(with_quotes=True) quotes every valid row"
            state.total += verdict.quote.price
        else:
            state.invalid_count += 1
    for warning in warnings:
        form = state.forms_of_rows[warning["index"]]
        form.warnings.append(warning["message"])
        state.warnings.append(warning["message"])
    return state


def _page(
    request, state: CheckoutState, *, captcha_error: str = "", form_error: str = "", import_form=None, status=200
):
    captcha_needed = not captcha.passed_recently(request.session)
    context = {
        "formset": state.formset,
        "state": state,
        "import_form": import_form or ImportForm(),
        "captcha_needed": captcha_needed,
        "captcha": captcha.challenge_new(request.session) if captcha_needed else None,
        "captcha_error": captcha_error,
        "form_error": form_error,
        "submission_key": request.POST.get("submission_key") or uuid.uuid4().hex,
        "max_rows": settings.BATCH_MAX_ROWS,
        "products": Product.objects.filter(active=True).only("sku", "name", "unit_price").order_by("sku"),
    }
    return render(request, "orders/checkout.html", context, status=status)


@login_required
@vary_on_headers("HX-Request")
@require_http_methods(["GET", "POST"])
def checkout(request):
    if request.method == "GET":
        return _page(request, CheckoutState(formset=_blank_formset(INITIAL_ROWS)))
    formset = _bound_formset(request.POST)
    if formset is None:
        return HttpResponseBadRequest(_("The checkout form was incomplete; reload the page."))
    if "add_rows" in request.POST:
        # "Add a row" adds one; "Add rows" adds as many as the number beside it says.
        count = request.POST.get("add_count") if request.POST["add_rows"] == "many" else "1"
        return _page(request, _evaluate(request, _with_added_rows(formset, count)))
    if "remove_row" in request.POST:
        return _page(request, _evaluate(request, _without_row(formset, request.POST.get("remove_row"))))
    if "import" in request.POST:
        return _import(request, formset)
    if "refresh_captcha" in request.POST:  # "New picture" without JavaScript: the same page, a new challenge
        return _page(request, _evaluate(request, formset))
    return _submit(request, formset)


def _submit(request, formset):
    state = _evaluate(request, formset)
    if not captcha.passed_recently(request.session) and not captcha.challenge_check(
        request.session, request.POST.get("captcha", "")
    ):
        return _page(request, state, captcha_error=_("The answer to the check was wrong; try the new one."), status=400)
    if not state.rows:
        return _page(request, state, form_error=_("Fill in at least one row."), status=400)
    skip_invalid = "submit_skip" in request.POST
    # The page's own key: a double click or a resent form places the batch once.
    submission_key = request.POST.get("submission_key", "")[:64]
    if state.invalid_count and not skip_invalid:
        return _page(request, state, status=400)
    try:
        submission = services.batch_submit(
            owner=request.user,
            rows=state.rows,
            skip_invalid=skip_invalid,
            source=Batch.Source.WEB,
            idempotency_key=f"web:{submission_key}" if submission_key else None,
            language=request.LANGUAGE_CODE,
        )
    except services.SubmissionRejected:
        return _page(
            request, state, form_error=_("These rows cannot be placed; correct them and try again."), status=400
        )
    except services.IdempotencyConflict:
        # This page was submitted before (the back button) and has been changed since.
        return _page(
            request,
            state,
            status=409,
            form_error=_("This order form was already placed; start a new order from the menu."),
        )
    captcha.forget(request.session)
    return redirect("web:batch-detail", batch_id=submission.batch.pk)


def _with_added_rows(formset, count_text):
    count = _count(count_text)
    data = formset.data.copy()
    total = formset.total_form_count()
    for index in range(total, total + count):
        data[f"{PREFIX}-{index}-kind"] = DEFAULT_KIND
    data[f"{PREFIX}-TOTAL_FORMS"] = str(min(total + count, settings.BATCH_MAX_ROWS))
    return RowFormSet(data, prefix=PREFIX)


def _without_row(formset, index_text):
    """Drop one row and renumber the rest: a formset's rows are numbered without gaps."""
    try:
        removed = int(index_text)
    except (TypeError, ValueError):
        return formset
    data = formset.data.copy()
    total = formset.total_form_count()
    inputs = row_inputs()
    for index in range(removed, total - 1):
        for name in inputs:
            data[f"{PREFIX}-{index}-{name}"] = formset.data.get(f"{PREFIX}-{index + 1}-{name}", "")
    for name in inputs:
        data.pop(f"{PREFIX}-{total - 1}-{name}", None)
    data[f"{PREFIX}-TOTAL_FORMS"] = str(max(total - 1, 0))
    return RowFormSet(data, prefix=PREFIX)


def _import(request, formset):
    import_form = ImportForm(request.POST, request.FILES)
    if not import_form.is_valid():
        return _page(request, _evaluate(request, formset), import_form=import_form, status=400)
    try:
        text = import_form.cleaned_data["text"] or ""
        if import_form.cleaned_data["file"]:
            text += "\n" + importing.text_from_upload(import_form.cleaned_data["file"])
    except ValueError:
        import_form.add_error("file", _("The file must be a CSV text file of at most 2 MB."))
        return _page(request, _evaluate(request, formset), import_form=import_form, status=400)
    try:
        imported = importing.rows_from_text(text, options=import_form.options())
    except ValueError:
        import_form.add_error("text", _("Each line must be at most 128 KiB of comma-separated fields."))
        return _page(request, _evaluate(request, formset), import_form=import_form, status=400)
    return _page(request, _evaluate(request, _with_rows(formset, imported)))


def _with_rows(formset, rows: list[dict]):
    """Put imported rows into the untouched rows first, then after the last one."""
    data = formset.data.copy()
    free = [form for form in formset.forms if form.raw_row() is None]
    indexes = [int(form.prefix.rsplit("-", 1)[1]) for form in free]
    next_index = formset.total_form_count()
    room = settings.BATCH_MAX_ROWS - next_index + len(indexes)
    inputs = row_inputs()
    for row in rows[:room]:
        if indexes:
            index = indexes.pop(0)
        else:
            index, next_index = next_index, next_index + 1
        for name in inputs:  # an untouched row may still hold text in another kind's inputs
            data.pop(f"{PREFIX}-{index}-{name}", None)
        kind = row["kind"]
        data[f"{PREFIX}-{index}-kind"] = kind
        for name, value in row.items():
            if name != "kind":
                data[f"{PREFIX}-{index}-{name if name in COMMON_INPUTS else f'{kind}-{name}'}"] = str(value)
    data[f"{PREFIX}-TOTAL_FORMS"] = str(next_index)
    return RowFormSet(data, prefix=PREFIX)


def _count(text) -> int:
    try:
        return max(1, min(int(text), MAX_ADD_AT_ONCE))
    except (TypeError, ValueError):
        return 1


# --- htmx partials -------------------------------------------------------------------------------


@login_required
def checkout_rows(request):
    """New blank rows after the last one, with the formset's row count updated out of band."""
    try:
        start = max(0, int(request.GET.get(f"{PREFIX}-TOTAL_FORMS", "0")))
    except ValueError:
        return HttpResponseBadRequest(_("The checkout form was incomplete; reload the page."))
    count = max(0, min(_count(request.GET.get("add_count")), settings.BATCH_MAX_ROWS - start))
    forms = [
        RowForm(prefix=f"{PREFIX}-{index}", initial={"kind": DEFAULT_KIND}) for index in range(start, start + count)
    ]
    return render(request, "orders/_new_rows.html", {"forms": forms, "total_forms": start + count})


@login_required
@require_POST
def checkout_row(request, index: int):
    """Validate one row as it is typed: its errors, its type's note, price and duplicates, out of band."""
    formset = _bound_formset(request.POST)
    if formset is None or index >= formset.total_form_count():
        return HttpResponseBadRequest(_("The checkout form was incomplete; reload the page."))
    state = _evaluate(request, formset)
    form = formset.forms[index]
    return render(request, "orders/_row_feedback.html", {"form": form, "state": state})
