from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from config.errors import api_error
from config.inputs import text_problem
from config.openapi import error_response
from config.throttling import BatchSubmitThrottle, UserThrottle
from orders import export, messages, registry, selectors, services
from orders.api.renderers import CSVRenderer, FileFormatNegotiation, XLSXRenderer
from orders.api.serializers import (
    BatchAcceptedSerializer,
    BatchDetailSerializer,
    BatchSubmitSerializer,
    BatchSummarySerializer,
    OrderSerializer,
    ProductSerializer,
)
from orders.models import Batch, Order, Product

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class BatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batches of order rows: submit one, follow its placing, see its orders and merged payment."""

    serializer_class = BatchDetailSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return Batch.objects.none()
        batches = Batch.objects.filter(owner_id=self.request.user.pk)
        return selectors.batches_with_progress(batches).order_by("-created_at")

    def get_serializer_class(self):
        return BatchSummarySerializer if self.action == "list" else BatchDetailSerializer

    def get_throttles(self):
        # Placing thousands of orders per request has a budget of its own, besides the per-user one.
        if self.action in ("create", "retry_failed"):
            return [UserThrottle(), BatchSubmitThrottle()]
        return super().get_throttles()

    @extend_schema(
        request=BatchSubmitSerializer,
        examples=[
            OpenApiExample(
                "One row of each kind",
                request_only=True,
                value={
                    "rows": [row for row in (t.example_row() for t in registry.all_types()) if row is not None],
                    "skip_invalid": False,
                },
            )
        ],
        responses={
            202: BatchAcceptedSerializer,
            400: error_response(400, "Nothing was created: the rows (each by index and field) or the envelope."),
            409: error_response(409, "This Idempotency-Key was used with a different body."),
        },
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                {"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
                OpenApiParameter.HEADER,
                required=False,
                description="The same key with the same body returns the same batch.",
            )
        ],
    )
    def create(self, request):
        submit = BatchSubmitSerializer(data=request.data)
        submit.is_valid(raise_exception=True)
        key = request.headers.get(IDEMPOTENCY_HEADER) or None
        if key is not None and len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            return api_error(400, messages.IDEMPOTENCY_KEY_TOO_LONG, "invalid")
        if key is not None and text_problem(key):
            return api_error(400, text_problem(key), "invalid")
        try:
            submission = services.batch_submit(
                owner=request.user,
                rows=submit.validated_data["rows"],
                skip_invalid=submit.validated_data["skip_invalid"],
                source=Batch.Source.API,
                idempotency_key=key,
                language=request.LANGUAGE_CODE,  # from Accept-Language: the shopper's receipts are written in it
            )
        except services.SubmissionRejected as rejected:
            return _refused(rejected)
        except services.IdempotencyConflict:
            return api_error(409, messages.IDEMPOTENCY_CONFLICT, "idempotency_conflict")
        return self._accepted(request, submission)

    @extend_schema(
        request=None,
        responses={
            202: BatchAcceptedSerializer,
            400: error_response(400, "The batch is still placing, has no failed rows, or none can be placed again."),
        },
    )
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request, pk=None):
        """Place this batch's failed rows again, as a new batch linked to this one."""
        try:
            submission = services.batch_retry_failed(
                batch=self.get_object(), source=Batch.Source.API, language=request.LANGUAGE_CODE
            )
        except services.SubmissionRejected as rejected:
            return _refused(rejected)
        return self._accepted(request, submission)

    @extend_schema(
        request=None,
        responses={
            200: BatchDetailSerializer,
            409: error_response(409, "Only a batch awaiting payment can be cancelled."),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a batch that is awaiting payment: its orders are cancelled and their stock released."""
        batch = self.get_object()
        try:
            services.batch_cancel(batch_id=batch.pk, owner=request.user)
        except services.BatchError as refused:
            return api_error(409, refused, "conflict")
        return Response(BatchDetailSerializer(self.get_object(), context={"request": request}).data)

    @extend_schema(
        summary="Download the batch's orders and outcomes",
        description=(
            "One line per submitted row, in row order: row (from 1), order number, reference, kind, what, detail, "
            "amount, status, the reason a row failed, was skipped or was refunded, and the amount refunded. "
            "CSV is UTF-8 with a byte order mark (Excel opens Chinese text cleanly) and is streamed; XLSX is one "
            "worksheet. Texts are in the language of the request (Accept-Language). Another user's batch: 404."
        ),
        parameters=[
            OpenApiParameter(
                "format", str, OpenApiParameter.QUERY, enum=list(export.FORMATS), default="csv", required=False
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            (200, export.XLSX_CONTENT_TYPE): OpenApiTypes.BINARY,
            # Errors are JSON, not the file's type.
            (404, "application/json"): error_response(
                404, "No such batch of yours, or a format other than csv or xlsx."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[CSVRenderer, XLSXRenderer],
        content_negotiation_class=FileFormatNegotiation,
    )
    def export(self, request, pk=None):
        batch = get_object_or_404(Batch.objects.filter(owner=request.user), pk=pk)
        return export.batch_export_response(batch, request.accepted_renderer.format)

    def _accepted(self, request, submission):
        body = BatchAcceptedSerializer(submission, context={"request": request}).data
        headers = {"Location": reverse("api:batch-detail", args=[submission.batch.pk])}
        if submission.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


def _refused(rejected: services.SubmissionRejected) -> Response:
    errors = dict(rejected.errors)
    return api_error(400, errors.pop("detail", None) or messages.ROWS_REFUSED, "invalid", **errors)


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = OrderSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Order.objects.none()
        return (
            Order.objects.filter(owner_id=self.request.user.pk)
            .select_related("product")
            .order_by("-created_at", "row_index")
        )


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProductSerializer
    queryset = Product.objects.filter(active=True).order_by("sku")
    lookup_field = "sku"
