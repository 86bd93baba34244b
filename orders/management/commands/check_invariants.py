import json

from django.core.management.base import BaseCommand, CommandError

from orders.invariants import DEFAULT_SAMPLE, invariants_check, registered


class Command(BaseCommand):
    help = (
        "Check the database against the invariants of SPEC section 7: one line per kind of violation, "
        "exit status 1 if there is any."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the report as JSON.")
        parser.add_argument(
            "--show",
            type=int,
            default=DEFAULT_SAMPLE,
            metavar="N",
            help=f"Ids shown per kind of violation (default {DEFAULT_SAMPLE}); the count is always complete.",
        )
        parser.add_argument(
            "--only",
            action="append",
            default=[],
            metavar="NAME",
            choices=sorted(invariant.name for invariant in registered()),
            help="Run only this check (repeatable).",
        )

    def handle(self, *args, as_json=False, show=DEFAULT_SAMPLE, only=(), **options):
        report = invariants_check(sample=max(show, 0), names=only)
        if as_json:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        elif report.ok:
            self.stdout.write(report.summary())
        else:
            for violation in report.violations:
                self.stdout.write(violation.line())
        if not report.ok:
            raise CommandError(
                f"{len(report.violations)} of {report.checked} invariant checks failed ({report.seconds:.2f} s)",
                returncode=1,
            )
