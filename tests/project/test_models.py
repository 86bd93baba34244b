"""Every model of ours says what it is in the admin and in logs, instead of "Order object (13)"."""

import pytest
from django.apps import apps
from django.db import models

OUR_APPS = {"accounts", "project", "orders", "payments", "sandbox_gateway", "recharge"}


@pytest.mark.parametrize(
    "model",
    [model for model in apps.get_models() if model._meta.app_label in OUR_APPS],
    ids=lambda model: model._meta.label,
)
def test_every_model_has_its_own_str(model):
    assert model.__str__ is not models.Model.__str__
