from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and identity"

    def ready(self):
        # Registers the OpenAPI extension for our JWT authentication class.
        from accounts import schema  # noqa: F401
