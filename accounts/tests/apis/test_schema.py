"""The OpenAPI schema documents the identity endpoints and their error responses."""

import pytest

PATHS = {
    "/api/v1/auth/register": ("post", {"201", "400", "409", "429", "503"}),
    "/api/v1/auth/login": ("post", {"200", "400", "401", "429", "503"}),
    "/api/v1/auth/refresh": ("post", {"200", "400", "401", "429", "503"}),
    "/api/v1/auth/logout": ("post", {"204", "400", "401", "429"}),
    "/api/v1/me": ("get", {"200", "401", "429"}),
    "/api/v1/me/password": ("put", {"204", "400", "401", "429", "503"}),
    "/api/v1/me/pin": ("put", {"204", "400", "401", "429", "503"}),
}


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize("path", sorted(PATHS))
def test_identity_paths_are_documented(schema, path):
    method, statuses = PATHS[path]
    operation = schema["paths"][path][method]
    assert set(operation["responses"]) == statuses
    assert operation["responses"]["429"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    if "503" in statuses:
        assert operation["responses"]["503"]["headers"]["Retry-After"]["schema"]["type"] == "integer"
    public = path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh")
    assert operation.get("security") == (None if public else [{"bearerAuth": []}])


def test_bearer_scheme_is_declared(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }


def test_user_schema_matches_the_contract(schema):
    user = schema["components"]["schemas"]["UserOutput"]
    assert set(user["properties"]) == {"id", "email", "full_name", "role", "status", "pin_set"}
    assert set(user["required"]) == {"id", "email", "full_name", "role", "status", "pin_set"}
