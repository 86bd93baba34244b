from django.core.management.base import BaseCommand

from orders.tasks import recover_stuck_batches


class Command(BaseCommand):
    help = "Re-drive batches stuck in placing (what the periodic recovery job does), now."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=None,
            metavar="SECONDS",
            help=(
                "Treat a batch as stuck after this many seconds without progress "
                "(default: BATCH_PLACING_TIMEOUT_SECONDS)."
            ),
        )

    def handle(self, *args, older_than=None, **options):
        outcome = recover_stuck_batches(timeout_seconds=older_than)
        self.stdout.write(
            f"finished {len(outcome['finished'])} batch(es) from the database, "
            f"dispatched {len(outcome['redispatched'])} again"
        )
