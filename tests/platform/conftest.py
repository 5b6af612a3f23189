"""The platform tests share the integration fixtures (a signed-in admin, a quiet database)."""

from tests.integration.conftest import admin_api, quiet  # noqa: F401 - fixtures
