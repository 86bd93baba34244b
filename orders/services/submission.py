"""Accepting a batch: validate every row (claim 3), record the batch and its rows in one transaction,
and start placing once that transaction has committed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import translation

from config import inputs
from orders import messages, registry
from orders.models import Batch, BatchRow, Order, Product
from orders.outbox import queue_task
from orders.registry import Quote, RowErrors, SubmissionContext
from orders.rows import REFERENCE_MAX_LENGTH, RowCleaner

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Named, not imported: tasks import services, never the reverse.
DISPATCH_TASK = "orders.tasks.dispatch_batch"

COMMON_FIELDS = {"kind", "reference"}


class SubmissionRejected(Exception):
    """Nothing was created. `errors` has the DRF shape: {"rows": [...]} or {"rows": [{"index", "errors"}]}."""

    def __init__(self, errors: dict[str, Any]):
        super().__init__(errors)
        self.errors = errors


class IdempotencyConflict(Exception):
    """The same Idempotency-Key came back with a different request body."""


@dataclass
class RowVerdict:
    index: int
    kind: str
    data: dict[str, Any]
    reference: str | None
    errors: RowErrors
    raw: object
    quote: Quote | None = None  # filled for valid rows when asked for
    note: str = ""  # filled for invalid rows when asked for: what their valid fields already tell

    @property
    def is_valid(self) -> bool:
        return not self.errors


@dataclass
class Submission:
    batch: Batch
    rejected: list[RowVerdict] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False  # an Idempotency-Key replay: nothing new was created


def rows_validate(
    *, owner: User, rows: list[Any], with_quotes: bool = False
) -> tuple[list[RowVerdict], list[dict[str, Any]]]:
    """Validate every row of a submission without writing anything. Returns verdicts and warnings.

    With quotes, each valid row also carries its current price and a note (what the checkout shows), and
    each invalid row of a known kind the note its type can give already.
    """
    context = SubmissionContext(owner=owner, products=_products_for(rows))
    verdicts = [_row_validate(index, raw, context) for index, raw in enumerate(rows)]
    _check_references(owner, verdicts)
    if with_quotes:
        for verdict in verdicts:
            order_type = registry.get(verdict.kind)
            if verdict.is_valid:
                verdict.quote = registry.require(verdict.kind).quote(verdict.data, context)
            elif order_type is not None:
                verdict.note = order_type.note(verdict.data, context)
    return verdicts, _warnings(verdicts)


def batch_submit(
    *,
    owner: User,
    rows: Any,  # as received: the envelope is checked first
    skip_invalid: bool = False,
    source: str = Batch.Source.API,
    idempotency_key: str | None = None,
    retry_of: Batch | None = None,
    language: str | None = None,
) -> Submission:
    """Validate and record a batch; placing starts after commit. Raises SubmissionRejected or IdempotencyConflict.

    `language` is the one the shopper submitted in (their receipts are written in it); the site's default
    when not given or not offered.
    """
    _check_envelope(rows)
    fingerprint = _fingerprint(rows, skip_invalid)
    if idempotency_key:
        replay = _replay(owner, idempotency_key, fingerprint)
        if replay is not None:
            return replay

    verdicts, warnings = rows_validate(owner=owner, rows=rows)
    invalid = [verdict for verdict in verdicts if not verdict.is_valid]
    if len(invalid) == len(verdicts):
        raise SubmissionRejected({"detail": str(messages.ALL_ROWS_INVALID), "rows": _row_errors(invalid)})
    if invalid and not skip_invalid:
        raise SubmissionRejected(
            {
                "detail": str(messages.ROWS_INVALID).format(count=len(invalid), total=len(verdicts)),
                "rows": _row_errors(invalid),
            }
        )

    errors_by_language = _errors_in_every_language(owner, rows, invalid) if invalid else {}
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                owner=owner,
                source=source,
                language=_supported_language(language),
                row_count=len(verdicts),
                accepted_rows=len(verdicts) - len(invalid),
                idempotency_key=idempotency_key or None,
                request_fingerprint=fingerprint,
                retry_of=retry_of,
            )
            BatchRow.objects.bulk_create(
                [_row_record(batch, verdict, errors_by_language.get(verdict.index, {})) for verdict in verdicts],
                batch_size=1000,
            )
            queue_task(DISPATCH_TASK, str(batch.pk))  # placing starts once this commits
    except IntegrityError:
        # Two requests with one Idempotency-Key raced; the other one created the batch.
        if idempotency_key:
            replay = _replay(owner, idempotency_key, fingerprint)
            if replay is not None:
                return replay
        raise
    return Submission(batch=batch, rejected=invalid, warnings=warnings)


def batch_retry_failed(*, batch: Batch, source: str = Batch.Source.API, language: str | None = None) -> Submission:
    """Place a finished batch's failed rows again, as a new batch linked to the first."""
    if batch.status == Batch.Status.PLACING:
        raise SubmissionRejected({"detail": str(messages.BATCH_NOT_FINISHED)})
    failed = list(batch.rows.filter(outcome=BatchRow.Outcome.FAILED).order_by("row_index"))
    if not failed:
        raise SubmissionRejected({"detail": str(messages.NOTHING_TO_RETRY)})
    rows = [_resubmittable(row) for row in failed]
    return batch_submit(
        owner=batch.owner,
        rows=rows,
        skip_invalid=True,
        source=source,
        retry_of=batch,
        language=language or batch.language,
    )


def _check_envelope(rows: object) -> None:
    if not isinstance(rows, list):
        raise SubmissionRejected({"rows": [str(messages.ROWS_NOT_LIST)]})
    if not rows:
        raise SubmissionRejected({"rows": [str(messages.NO_ROWS)]})
    if len(rows) > settings.BATCH_MAX_ROWS:
        raise SubmissionRejected(
            {"rows": [str(messages.TOO_MANY_ROWS).format(max=settings.BATCH_MAX_ROWS, count=len(rows))]}
        )


def _supported_language(language: str | None) -> str:
    try:
        return translation.get_supported_language_variant(language or settings.LANGUAGE_CODE)
    except LookupError:
        return settings.LANGUAGE_CODE


def _errors_in_every_language(
    owner: User, rows: list[Any], invalid: list[RowVerdict]
) -> dict[int, dict[str, RowErrors]]:
    """{row index: {language: errors}} for the rows about to be skipped, in every language of the site.

    Messages are formatted when a row is checked, so the only way to have them in another language later is
    to check the rows in it now; every row, because a message may name another row ("also on row 3").
    """
    current = translation.get_language()
    by_row: dict[int, dict[str, RowErrors]] = {verdict.index: {} for verdict in invalid}
    for code, _name in settings.LANGUAGES:
        if code == current:
            verdicts = invalid
        else:
            with translation.override(code):
                verdicts = [verdict for verdict in rows_validate(owner=owner, rows=rows)[0] if verdict.index in by_row]
        for verdict in verdicts:
            by_row[verdict.index][code] = verdict.errors
    return by_row


def _fingerprint(rows: list[Any], skip_invalid: bool) -> str:
    canonical = json.dumps({"rows": rows, "skip_invalid": skip_invalid}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(owner: User, idempotency_key: str, fingerprint: str) -> Submission | None:
    batch = Batch.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
    if batch is None:
        return None
    if batch.request_fingerprint != fingerprint:
        raise IdempotencyConflict(idempotency_key)
    rejected = [
        RowVerdict(row.row_index, row.kind, {}, row.reference, row.errors, row.data)
        for row in batch.rows.filter(outcome=BatchRow.Outcome.REJECTED)
    ]
    return Submission(batch=batch, rejected=rejected, replayed=True)


def _products_for(rows: list[Any]) -> dict[str, Product]:
    skus: set[str] = set()
    for raw in rows:
        if isinstance(raw, dict):
            kind = raw.get("kind")
            order_type = registry.get(kind) if isinstance(kind, str) else None
            if order_type is not None:
                skus.update(order_type.skus(raw))
    return {product.sku: product for product in Product.objects.filter(sku__in=skus)} if skus else {}


def _row_validate(index: int, raw: object, context: SubmissionContext) -> RowVerdict:
    if not isinstance(raw, dict):
        return RowVerdict(index, "", {}, None, {"non_field_errors": [str(messages.ROW_NOT_OBJECT)]}, raw)
    row = RowCleaner(index, raw)
    kind = row.text("kind", max_length=32)
    order_type = registry.get(kind) if kind else None
    if kind and order_type is None:
        row.error("kind", str(messages.UNKNOWN_KIND).format(kind=kind, kinds=", ".join(registry.kinds())))
    reference = row.text("reference", max_length=REFERENCE_MAX_LENGTH, required=False)
    if order_type is not None:
        row.reject_unknown_fields(COMMON_FIELDS | set(order_type.fields))
        order_type.clean_row(row, context)
    return RowVerdict(index, kind or "", row.data, reference, row.errors, raw)


def _check_references(owner: User, verdicts: list[RowVerdict]) -> None:
    first_row_of: dict[str, int] = {}
    for verdict in verdicts:
        if verdict.reference is None:
            continue
        if verdict.reference in first_row_of:
            message = str(messages.REFERENCE_REPEATED).format(
                reference=verdict.reference, other=first_row_of[verdict.reference] + 1
            )
            verdict.errors.setdefault("reference", []).append(message)
        else:
            first_row_of[verdict.reference] = verdict.index
    if not first_row_of:
        return
    # A reference is taken by an order, or by a row that may still become one.
    taken = set(
        Order.objects.filter(owner=owner, reference__in=first_row_of).values_list("reference", flat=True)
    ) | set(
        BatchRow.objects.filter(
            batch__owner=owner, reference__in=first_row_of, outcome=BatchRow.Outcome.PENDING
        ).values_list("reference", flat=True)
    )
    for verdict in verdicts:
        if (
            verdict.reference is not None
            and verdict.reference in taken
            and first_row_of.get(verdict.reference) == verdict.index
        ):
            verdict.errors.setdefault("reference", []).append(
                str(messages.REFERENCE_USED).format(reference=verdict.reference)
            )


def _warnings(verdicts: list[RowVerdict]) -> list[dict[str, Any]]:
    by_kind: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for verdict in verdicts:
        if verdict.is_valid:
            by_kind.setdefault(verdict.kind, []).append((verdict.index, verdict.data))
    warnings: list[dict[str, Any]] = []
    for kind, rows in by_kind.items():
        warnings.extend(registry.require(kind).warnings(rows))
    return warnings


def _row_errors(invalid: list[RowVerdict]) -> list[dict[str, Any]]:
    return [{"index": verdict.index, "errors": verdict.errors} for verdict in invalid]


def _row_record(batch: Batch, verdict: RowVerdict, errors_by_language: dict[str, RowErrors]) -> BatchRow:
    if verdict.is_valid:
        return BatchRow(
            batch=batch, row_index=verdict.index, kind=verdict.kind, data=verdict.data, reference=verdict.reference
        )
    # A skipped row keeps what was sent, so that staff can see it and the user can fix it later.
    raw = verdict.raw if isinstance(verdict.raw, dict) else {"value": verdict.raw}
    raw = inputs.storable(raw)  # a row refused for a NUL character is kept with it escaped
    return BatchRow(
        batch=batch,
        row_index=verdict.index,
        kind=verdict.kind[:32],
        data=raw,
        outcome=BatchRow.Outcome.REJECTED,
        errors=verdict.errors,
        errors_by_language=errors_by_language,
    )


def _resubmittable(row: BatchRow) -> dict[str, Any]:
    raw = {"kind": row.kind, **row.data}
    if row.reference:
        raw["reference"] = row.reference
    return raw
