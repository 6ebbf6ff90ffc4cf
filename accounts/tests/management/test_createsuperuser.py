from django.core.management import call_command

from accounts.models import User


def test_noinput_with_only_email_and_password_makes_an_admin(db, monkeypatch, api_client):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "root-password-2026")
    monkeypatch.delenv("DJANGO_SUPERUSER_FULL_NAME", raising=False)

    call_command("createsuperuser", interactive=False, verbosity=0)

    user = User.objects.get()
    assert (user.email, user.full_name, user.role, user.is_staff, user.is_superuser) == (
        "root@example.com",
        "Administrator",
        "admin",
        True,
        True,
    )
    response = api_client.post(
        "/api/v1/auth/login", {"email": "root@example.com", "password": "root-password-2026"}, format="json"
    )
    assert response.status_code == 200


def test_noinput_takes_the_full_name_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "ops@example.com")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "ops-password-2026")
    monkeypatch.setenv("DJANGO_SUPERUSER_FULL_NAME", "Ops Team")

    call_command("createsuperuser", interactive=False, verbosity=0)

    assert User.objects.values_list("full_name", "role").get() == ("Ops Team", "admin")
