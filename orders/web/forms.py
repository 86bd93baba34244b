"""The checkout's formset: one form per order component (seed step S101). The forms only carry what
was typed; every rule lives in the order types, so the website, the API and the admin agree."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.forms import formset_factory
from django.utils.translation import gettext_lazy as _

from orders import registry

ROW_FIELDS = ("kind", "sku", "quantity", "phone", "face_value", "account", "reference")
PREFIX = "rows"
FIRST_KINDS = ("goods", "mobile", "game")  # the usual order in the menu; other types follow


def kind_choices():
    kinds = [kind for kind in FIRST_KINDS if registry.get(kind)] + [k for k in registry.kinds() if k not in FIRST_KINDS]
    return [(kind, registry.get(kind).label or kind) for kind in kinds]


def face_value_choices():
    return [("", "—")] + [(str(value), f"¥{value}") for value in settings.RECHARGE_FACE_VALUES]


class RowForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=kind_choices, initial="goods")
    sku = forms.CharField(label=_("Product SKU"), required=False, max_length=64)
    quantity = forms.CharField(
        label=_("Quantity"),
        required=False,
        max_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "size": 4}),
    )
    phone = forms.CharField(
        label=_("Phone number"),
        required=False,
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    face_value = forms.ChoiceField(label=_("Face value"), required=False, choices=face_value_choices)
    account = forms.CharField(label=_("Game account"), required=False, max_length=64)
    reference = forms.CharField(label=_("Your reference"), required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Invalid choices are reported by the order type with the row's other problems, not here.
        self.fields["kind"].validators = []
        self.row_errors: dict[str, list[str]] = {}
        self.quote = None
        self.warnings: list[str] = []

    def raw_row(self) -> dict | None:
        """The row as the API would receive it, or None for a row left blank."""
        if not self.is_bound:
            return None
        values = {name: (self.data.get(self.add_prefix(name)) or "").strip() for name in ROW_FIELDS}
        kind = values.pop("kind") or "goods"
        order_type = registry.get(kind)
        wanted = order_type.fields if order_type else tuple(values)
        row = {"kind": kind, **{name: values[name] for name in wanted if values.get(name)}}
        if values["reference"]:
            row["reference"] = values["reference"]
        if len(row) == 1:
            return None  # nothing but the kind: an untouched row
        if kind == "goods" or kind == "game":
            row.setdefault("quantity", "1")
        return row

    @property
    def index(self) -> int:
        return int(self.prefix.rsplit("-", 1)[1])

    @property
    def values(self) -> dict[str, str]:
        """What to show in each input. Rendered by hand: a 500-row formset through widgets is too slow."""
        if not self.is_bound:
            return {name: self.initial.get(name, "") for name in ROW_FIELDS} | {
                "kind": self.initial.get("kind", "goods")
            }
        return {name: self.data.get(self.add_prefix(name), "") for name in ROW_FIELDS}

    @property
    def kind_value(self) -> str:
        return self.values.get("kind") or "goods"

    @property
    def other_errors(self) -> list[str]:
        """Problems not tied to one of the inputs (a row that is not an object, an unknown field)."""
        return [message for name, errors in self.row_errors.items() if name not in ROW_FIELDS for message in errors]


RowFormSet = formset_factory(RowForm, extra=0, max_num=settings.BATCH_MAX_ROWS, absolute_max=settings.BATCH_MAX_ROWS)


class ImportForm(forms.Form):
    text = forms.CharField(
        label=_("Paste rows"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=_("One per line: phone[,face value] or SKU,quantity or SKU,account,quantity."),
    )
    file = forms.FileField(label=_("or upload a CSV file"), required=False)
    default_face_value = forms.ChoiceField(
        label=_("Face value for numbers without one"), required=False, choices=face_value_choices, initial="50"
    )
