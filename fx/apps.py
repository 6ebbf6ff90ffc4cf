from django.apps import AppConfig


class FxConfig(AppConfig):
    name = "fx"
    verbose_name = "Currency conversion"
