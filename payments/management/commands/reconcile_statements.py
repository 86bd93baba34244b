from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payments import services
from payments.providers import ProviderError, ProviderUnavailable, UnknownProvider, configured_providers


class Command(BaseCommand):
    help = (
        "Compare the rails' bills of one day (Asia/Shanghai) with our records and note what differs in the admin "
        "(what the daily job does). Running a day again notes nothing twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("--day", required=True, type=date.fromisoformat, metavar="YYYY-MM-DD")
        parser.add_argument(
            "--provider",
            action="append",
            metavar="NAME",
            help="A rail to reconcile (wechat, alipay, sandbox); again for more. Default: every configured rail.",
        )

    def handle(self, *args, day, provider=None, **options):
        names = provider or [rail.name for rail in configured_providers()]
        failed = []
        for name in names:
            try:
                outcome = services.statement_reconcile(provider_name=name, day=day)
            except UnknownProvider as unknown:
                raise CommandError(str(unknown)) from None
            except (ProviderUnavailable, ProviderError, NotImplementedError) as error:
                failed.append(name)
                self.stderr.write(f"{name} {day}: not reconciled: {error or 'this rail has no daily bill'}")
                continue
            self.stdout.write(str(outcome))
        if failed:
            raise CommandError(f"not reconciled: {', '.join(failed)}")
