"""One way to change status, for every model that has one (batches, rows, orders, payments, refunds, and the
records other apps keep per order).

A model lists its allowed moves in `TRANSITIONS` and names its audit model; `set_status` (one object) and
`bulk_set_status` (many, one UPDATE and one INSERT) are the only ways its status changes, and each move writes an
audit row. The shape is django-oscar's `set_status` + `OrderStatusChange`, shared instead of written per model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from django.db import models
from django.utils import timezone

from orders.sql import quoted_column, quoted_table


class InvalidTransition(Exception):
    """A status change that the model's lifecycle does not allow."""


class StatusChange(models.Model):
    """The audit row of one status change. Concrete subclasses add the foreign key to their subject."""

    old_status = models.CharField(max_length=20, blank=True)
    new_status = models.CharField(max_length=20)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["created_at", "id"]  # noqa: RUF012 - a Django Meta option, read once (see pyproject)

    def __str__(self) -> str:
        return f"{self.old_status or '∅'} → {self.new_status}"


class Stateful(models.Model):
    """Mixin for a model with a status: the lifecycle table and the one guarded way through it."""

    # {status: {statuses it may move to}}; a status missing from the table is final.
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {}
    # The field that holds the status (a batch row calls it `outcome`).
    STATUS_FIELD: ClassVar[str] = "status"
    # The audit model, as "app_label.ModelName"; its foreign key to this model is found by type.
    STATUS_LOG: ClassVar[str] = ""

    class Meta:
        abstract = True

    @property
    def current_status(self) -> str:
        status: str = getattr(self, self.STATUS_FIELD)
        return status

    def can_transition(self, new_status: str) -> bool:
        return new_status in self.TRANSITIONS.get(self.current_status, set())

    def set_status(self, new_status: str, *, note: str = "", also: Iterable[str] = ()) -> None:
        """Move to `new_status`, saving it with the fields named in `also`, and write the audit row."""
        type(self).bulk_set_status([self], new_status, note=note, also=also)

    @classmethod
    def bulk_set_status(
        cls, objects: Sequence[Stateful], new_status: str, *, note: str = "", also: Iterable[str] = ()
    ) -> None:
        """Move many objects at once: every move is checked before anything is written.

        With `also`, each object is saved on its own (the extra fields may differ per object); without, one
        UPDATE serves them all.
        """
        if not objects:
            return
        for obj in objects:
            if not obj.can_transition(new_status):
                raise InvalidTransition(f"{cls._meta.verbose_name} {obj}: {obj.current_status} → {new_status}")
        log_model, subject_field = cls._status_log()
        changes = [
            log_model(**{subject_field: obj}, old_status=obj.current_status, new_status=new_status, note=note[:255])
            for obj in objects
        ]
        for obj in objects:
            setattr(obj, cls.STATUS_FIELD, new_status)
        also = tuple(also)
        if also:
            for obj in objects:
                obj.save(update_fields=cls._fields_to_save(also))
        else:
            updates: dict[str, Any] = {cls.STATUS_FIELD: new_status}
            if "updated_at" in {field.name for field in cls._meta.concrete_fields}:
                updates["updated_at"] = timezone.now()
            cls._default_manager.filter(pk__in=[obj.pk for obj in objects]).update(**updates)
        log_model._default_manager.bulk_create(changes, batch_size=1000)

    @classmethod
    def statuses_before(cls, *new_statuses: str) -> list[str]:
        """The statuses from which every one of `new_statuses` may be reached (the guard of a move written in SQL)."""
        wanted = set(new_statuses)
        return sorted(status for status, targets in cls.TRANSITIONS.items() if wanted <= targets)

    @classmethod
    def status_move_sql(cls, *, name: str, source: str, also: Sequence[str] = ()) -> tuple[str, dict[str, Any]]:
        """`bulk_set_status` as two CTEs of one data-modifying PostgreSQL statement, and their parameters.

        For a statement that decides a status and writes it in one round trip (orders/services/placing_statement.py).
        `source` names a CTE with one row per object to move, already locked: `id`, `old_status`, `new_status`,
        `note`, `changed_at`, and a column named after each field in `also` (saved with the status, as `also` is
        by `set_status`). `{name}` moves an object only if TRANSITIONS allows its old → new status (one that may
        not is left as it is and not returned); `{name}_log` writes the audit row of each object moved. `{name}`
        returns `id` and `status`.
        """
        log_model, subject_field = cls._status_log()
        table, log_table = quoted_table(cls), quoted_table(log_model)
        pk = f"{table}.{quoted_column(cls, cls._meta.pk.name)}"
        status = quoted_column(cls, cls.STATUS_FIELD)
        values = {cls.STATUS_FIELD: "new_status", **{field: field for field in also}, "updated_at": "changed_at"}
        assignments = ", ".join(
            f"{quoted_column(cls, field)} = {source}.{values[field]}" for field in cls._fields_to_save(tuple(also))
        )
        log_columns = ", ".join(
            quoted_column(log_model, field)
            for field in (subject_field, "old_status", "new_status", "note", "created_at")
        )
        moves = [(old, new) for old, targets in cls.TRANSITIONS.items() for new in sorted(targets)]
        sql = f"""{name} AS (
            UPDATE {table} SET {assignments}
            FROM {source}
            WHERE {pk} = {source}.id
                AND ({source}.old_status, {source}.new_status) IN (
                    SELECT * FROM unnest(CAST(%({name}_from)s AS text[]), CAST(%({name}_to)s AS text[]))
                )
            RETURNING {pk} AS id, {table}.{status} AS status
        ),
        {name}_log AS (
            INSERT INTO {log_table} ({log_columns})
            SELECT {name}.id, {source}.old_status, {name}.status, {source}.note, {source}.changed_at
            FROM {name} JOIN {source} ON {source}.id = {name}.id
        )"""
        return sql, {f"{name}_from": [old for old, _ in moves], f"{name}_to": [new for _, new in moves]}

    @classmethod
    def _fields_to_save(cls, also: tuple[str, ...]) -> list[str]:
        fields = [cls.STATUS_FIELD, *also]
        if "updated_at" in {field.name for field in cls._meta.concrete_fields}:
            fields.append("updated_at")
        return fields

    @classmethod
    def _status_log(cls) -> tuple[type[models.Model], str]:
        log_model = cls._meta.apps.get_model(cls.STATUS_LOG)
        for field in log_model._meta.concrete_fields:
            if field.is_relation and field.related_model is cls:
                return log_model, field.name
        raise LookupError(f"{cls.STATUS_LOG} has no foreign key to {cls.__name__}")
