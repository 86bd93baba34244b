import pytest


@pytest.fixture
def shopper(client, user):
    """The test client, logged in as the test's user."""
    client.force_login(user)
    return client
