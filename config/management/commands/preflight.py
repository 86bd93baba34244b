from django.core.management.base import BaseCommand, CommandError

from config.health import broker_problem, database_problem, results_problem


class Command(BaseCommand):
    help = "Check that the database, the broker and the result backend named by the environment are reachable."

    def handle(self, *args, **options):
        problems = [p for p in (database_problem(), broker_problem(), results_problem()) if p]
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write("preflight: database, broker and result backend reachable")
