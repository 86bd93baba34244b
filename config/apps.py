from django.apps import AppConfig


class ProjectConfig(AppConfig):
    """Project-wide pieces that belong to no business app: health checks, preflight, API glue."""

    name = "config"
    label = "project"
