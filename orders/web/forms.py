"""The checkout's formset: one form per order component (seed step S101). The forms only carry what
was typed; every rule lives in the order types, so the website, the API and the admin agree.

A row offers the inputs of every registered order type, each group rendered by its type's own partial
and named with its kind ("rows-3-goods-sku", "rows-3-game-sku"), so that two types with a field of the
same name never collide. The row reads only the inputs of the kind chosen in its menu.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.forms import formset_factory
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from orders import registry
from orders.registry import OrderType

PREFIX = "rows"
DEFAULT_KIND = "goods"
# Inputs of a row that belong to no order type.
COMMON_INPUTS = ("kind", "reference")


def kind_choices():
    return [(order_type.kind, order_type.label or order_type.kind) for order_type in registry.menu()]


def row_inputs() -> list[str]:
    """Every input name of one row, after its prefix: "kind", "reference", "goods-sku", ..."""
    return [*COMMON_INPUTS, *(f"{t.kind}-{name}" for t in registry.menu() for name in t.fields)]


@dataclass
class KindGroup:
    """One order type's inputs in one row, as its partial renders them."""

    order_type: OrderType
    prefix: str
    values: dict[str, str]
    errors: dict[str, list[str]]
    chosen: bool

    @property
    def kind(self) -> str:
        return self.order_type.kind

    @property
    def field_errors(self) -> list[tuple[str, list[str]]]:
        """(field, errors) for every field of the type, for the out-of-band error spans."""
        return [(name, self.errors.get(name, [])) for name in self.order_type.fields]


class RowForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=kind_choices, initial=DEFAULT_KIND)
    reference = forms.CharField(label=_("Your reference"), required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Invalid choices are reported by the order type with the row's other problems, not here.
        self.fields["kind"].validators = []
        self.row_errors: dict[str, list[str]] = {}
        self.quote = None
        self.note = ""  # what the row's type can tell already, valid or not
        self.warnings: list[str] = []

    def _value(self, name: str) -> str:
        """What is in one input, by its name after the row's prefix ("kind", "goods-sku")."""
        if not self.is_bound:
            return self.initial.get(name, "")
        return self.data.get(f"{self.prefix}-{name}", "")

    def raw_row(self) -> dict | None:
        """The row as the API would receive it, or None for a row left blank."""
        if not self.is_bound:
            return None
        kind = self.kind_value
        row = {"kind": kind}
        order_type = registry.get(kind)
        if order_type is None:
            return row  # a kind no longer on offer: validation says so on the row
        for name in order_type.fields:
            value = self._value(f"{kind}-{name}").strip()
            if value:
                row[name] = value
        reference = self._value("reference").strip()
        if reference:
            row["reference"] = reference
        if len(row) == 1:
            return None  # nothing but the kind: an untouched row
        return row

    @property
    def index(self) -> int:
        assert self.prefix is not None, "a formset gives each of its forms a prefix"
        return int(self.prefix.rsplit("-", 1)[1])

    @property
    def kind_value(self) -> str:
        return self._value("kind").strip() or DEFAULT_KIND

    @property
    def reference_value(self) -> str:
        return self._value("reference")

    @property
    def reference_errors(self) -> list[str]:
        return self.row_errors.get("reference", [])

    @property
    def kind_groups(self) -> list[KindGroup]:
        """Every type's inputs, hand-rendered by its partial: a 500-row formset through widgets is too slow."""
        chosen = self.kind_value
        return [
            KindGroup(
                order_type=order_type,
                prefix=f"{self.prefix}-{order_type.kind}",
                values={name: self._value(f"{order_type.kind}-{name}") for name in order_type.fields},
                errors=self.row_errors if order_type.kind == chosen else {},
                chosen=order_type.kind == chosen,
            )
            for order_type in registry.menu()
        ]

    @property
    def other_errors(self) -> list[str]:
        """Problems not tied to one of the chosen type's inputs (an unknown kind, a row that is not an object)."""
        order_type = registry.get(self.kind_value)
        inputs = {"reference", *(order_type.fields if order_type else ())}
        return [message for name, errors in self.row_errors.items() if name not in inputs for message in errors]


RowFormSet = formset_factory(RowForm, extra=0, max_num=settings.BATCH_MAX_ROWS, absolute_max=settings.BATCH_MAX_ROWS)


class ImportForm(forms.Form):
    text = forms.CharField(label=_("Paste rows"), required=False, widget=forms.Textarea(attrs={"rows": 5}))
    file = forms.FileField(label=_("or upload a CSV file"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hints = [str(t.import_hint) for t in registry.menu() if t.import_hint]
        self.fields["text"].help_text = gettext("One per line: %(formats)s.") % {"formats": " · ".join(hints)}
        # Each type's own options, named with its kind like the row inputs.
        self.option_names: list[tuple[str, str, str]] = []  # (input name, kind, option name)
        for order_type in registry.menu():
            for name, option in order_type.import_options().items():
                self.fields[f"{order_type.kind}-{name}"] = option
                self.option_names.append((f"{order_type.kind}-{name}", order_type.kind, name))

    @property
    def option_fields(self):
        return [self[input_name] for input_name, _kind, _name in self.option_names]

    def options(self) -> dict[str, dict]:
        """The cleaned options by kind, as the order types read them."""
        options: dict[str, dict] = {}
        for input_name, kind, name in self.option_names:
            options.setdefault(kind, {})[name] = self.cleaned_data.get(input_name)
        return options
