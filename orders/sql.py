"""Quoted names for the few statements the ORM cannot express (set-based writes, the placing statement),
taken from the models' own metadata so that they follow a renamed table or column."""

from __future__ import annotations

from django.db import connection
from django.db.models import Field, Model


def quoted_table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def quoted_column(model: type[Model], name: str) -> str:
    field = model._meta.get_field(name)
    assert isinstance(field, Field) and field.column, f"{model.__name__}.{name} has no column"
    return connection.ops.quote_name(field.column)
