from django.core.management.base import BaseCommand, CommandError

from config.health import broker_problem, database_problem, results_problem
from payments import providers


class Command(BaseCommand):
    help = (
        "Check that the database, the broker and the result backend named by the environment are reachable, and "
        "that every payment rail that is configured is configured well."
    )

    def handle(self, *args, **options):
        problems = [p for p in (database_problem(), broker_problem(), results_problem()) if p]
        # One line per problem of each configured rail (never a secret): a malformed key stops the site here
        # rather than at the first shopper's payment.
        rail_problems = [
            f"{provider.name}: {problem}"
            for provider in providers.configured_providers()
            for problem in provider.config_problems()
        ]
        if problems or rail_problems:
            raise CommandError("\n".join(problems + rail_problems))
        self.stdout.write("preflight: database, broker and result backend reachable")
        offered = ", ".join(provider.name for provider in providers.offered_providers())
        self.stdout.write(f"preflight: payment rails on offer: {offered}")
