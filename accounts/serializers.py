"""Shape-only request/response serializers for the identity API.

They check types and presence; every rule (PIN strength, password policy,
email uniqueness) lives in accounts.services.
"""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A JSON string and nothing else: DRF's CharField would turn 1234 into "1234"."""

    default_error_messages = {"not_a_string": "Must be a JSON string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class RegisterInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = StrictCharField(max_length=4096)
    full_name = StrictCharField(max_length=200, trim_whitespace=True)


class LoginInput(serializers.Serializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=4096)


class RefreshInput(serializers.Serializer):
    refresh = StrictCharField(max_length=4096)


class PasswordChangeInput(serializers.Serializer):
    current_password = StrictCharField(max_length=4096)
    new_password = StrictCharField(max_length=4096)


class PinSetInput(serializers.Serializer):
    pin = StrictCharField(min_length=4, max_length=6, help_text="4 to 6 ASCII digits, as a string.")
    password = StrictCharField(max_length=4096)


class TokenPairOutput(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class UserOutput(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    full_name = serializers.CharField()
    role = serializers.ChoiceField(choices=["user", "admin"])
    status = serializers.ChoiceField(choices=["active", "suspended"])
    pin_set = serializers.BooleanField()
