"""The one shared piece of every order type's row partial: a labelled input with its error span.

A tag rather than an included template, and plain string building rather than format_html: a 500-row
checkout renders some 4,500 of these, and either of the others costs several times as much.
"""

from html import escape

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def row_input(context, name, label, choices=None, value=None, errors=None, **attrs):
    """`{% row_input "sku" _("Product SKU") maxlength=64 %}` inside a type's row partial.

    The input is named `<p>-<name>` (p: the row's prefix for this type, e.g. "rows-3-goods"), shows
    `v[name]` and lists `errors[name]` in the span `<p>-<name>-errors`, which validation as the user types
    replaces (p, v and errors are what the row gives every partial; `value` and `errors` override the
    last two). With `choices` ((value, label) pairs) it is a select; other keyword arguments become
    attributes of the input.
    """
    input_name = escape(f"{context['p']}-{name}")
    if value is None:
        value = context.get("v", {}).get(name, "")
    if errors is None:
        errors = context.get("errors", {}).get(name, ())
    value = "" if value is None else str(value)
    extra = "".join(f' {escape(key)}="{escape(str(attr))}"' for key, attr in attrs.items())
    if choices:
        options = "".join(
            f'<option value="{escape(str(option))}"{" selected" if str(option) == value else ""}>'
            f"{escape(str(text))}</option>"
            for option, text in choices
        )
        control = f'<select name="{input_name}"{extra}>{options}</select>'
    else:
        control = f'<input name="{input_name}" value="{escape(value)}"{extra}>'
    messages = "".join(f"{escape(str(error))} " for error in errors or ())
    # Every piece above is escaped.
    return mark_safe(
        f'<label class="f f-{escape(name)}">{escape(str(label))}\n    {control}\n'
        f'    <span class="field-errors" id="{input_name}-errors">{messages}</span></label>'
    )
