from django.db import models


class Ticket(models.Model):
    """One seat of one event, sold by one order; the database refuses to sell a seat twice."""

    order = models.OneToOneField("orders.Order", on_delete=models.CASCADE, related_name="ticket")
    event = models.ForeignKey("orders.Product", on_delete=models.PROTECT, related_name="tickets")
    seat = models.CharField(max_length=8)
    code = models.CharField(max_length=32, blank=True)  # issued after payment

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "seat"], name="ticket_unique_event_seat")]

    def __str__(self):
        return f"{self.event_id} seat {self.seat}"
