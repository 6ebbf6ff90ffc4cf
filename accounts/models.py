"""Users: email login, an API role, a status, and a transaction PIN.

``role`` decides what the API allows (user/admin); ``is_staff`` and Django
permissions decide what the admin site allows (operations and compliance staff).
``status`` is the money gate: a suspended user may read but not move money.
"""

import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields):
        fields.setdefault("role", User.Role.USER)
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields):
        fields.setdefault("role", User.Role.ADMIN)
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        fields.setdefault("full_name", "Administrator")
        return self._create_user(email, password, **fields)

    def get_by_natural_key(self, email):
        return self.get(email__iexact=email)


class User(AbstractBaseUser, PermissionsMixin):
    class Role(models.TextChoices):
        USER = "user", "User"
        ADMIN = "admin", "Admin"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.USER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    pin_hash = models.CharField(max_length=128, blank=True, default="", editable=False)
    failed_pin_attempts = models.PositiveSmallIntegerField(default=0, editable=False)
    is_staff = models.BooleanField(default=False, help_text="May log in to the admin back office.")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(condition=models.Q(role__in=["user", "admin"]), name="accounts_user_role_valid"),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "suspended"]), name="accounts_user_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"], name="accounts_user_status_idx")]

    def __str__(self) -> str:
        return self.email

    @property
    def pin_set(self) -> bool:
        return bool(self.pin_hash)

    @property
    def is_admin(self) -> bool:
        return self.role == self.Role.ADMIN

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED
