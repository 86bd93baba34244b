from django.core.management.base import BaseCommand, CommandError

from config.health import broker_problem, database_problem


class Command(BaseCommand):
    help = "Check that the database and the broker named by the environment are reachable."

    def handle(self, *args, **options):
        problems = [p for p in (database_problem(), broker_problem()) if p]
        if problems:
            raise CommandError("; ".join(problems))
        self.stdout.write("preflight: database and broker reachable")
