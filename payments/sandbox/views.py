from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from payments.sandbox import gateway
from payments.sandbox.models import SandboxCharge


@require_http_methods(["GET", "POST"])
def pay_page(request, reference):
    """The gateway's hosted page: what is being paid, and Pay / Decline."""
    charge = get_object_or_404(SandboxCharge, reference=reference)
    if request.method == "POST" and charge.status == SandboxCharge.Status.OPEN:
        decision = request.POST.get("decision")
        if decision in ("pay", "decline"):
            charge = gateway.charge_decide(charge_reference=reference, pay=decision == "pay")
            if charge.return_url:
                return redirect(charge.return_url)
            return redirect(request.path)
    return render(request, "sandbox/pay.html", {"charge": charge})
