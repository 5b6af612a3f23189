"""Part 5: no forgeable tokens by default, and the key of secrets at rest can rotate.

The attack: without SECRET_KEY the service started with a published default; an admin
token signed with it was accepted, and the Fernet key of engine secrets derived from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import text

from provisioner.engine import EngineCredentials
from provisioner.extensions import db
from provisioner.orchestration import engines
from provisioner.security import crypto, startup
from tests.helpers import new_tenant
from tests.integration.conftest import make_user

pytestmark = pytest.mark.integration
PUBLISHED = "dev-only-secret-change-me"


def start_service(**env: str) -> subprocess.CompletedProcess[str]:
    """`flask --app wsgi users list` (it builds the app as gunicorn and celery do)."""
    environ = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"} | env
    flask = os.path.join(os.path.dirname(sys.executable), "flask")
    return subprocess.run([flask, "--app", "wsgi", "users", "list"], env=environ,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({}, "SECRET_KEY is not set"),
        ({"SECRET_KEY": PUBLISHED}, "SECRET_KEY is too weak"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too weak"),
        ({"ENCRYPTION_KEY": "not-a-key"}, "ENCRYPTION_KEY must hold Fernet keys"),
    ],
    ids=["missing", "published default", "short", "bad encryption key"],
)
def test_the_service_refuses_to_start_without_its_secrets(database_url, env, says):
    if "SECRET_KEY" not in env and "ENCRYPTION_KEY" in env:
        env = {**env, "SECRET_KEY": os.environ["SECRET_KEY"]}
    done = start_service(**env)
    assert done.returncode != 0
    assert says in done.stderr


def test_a_token_signed_with_the_published_default_is_refused(app_ctx, client):
    admin = make_user(admin=True)
    now = datetime.now(UTC)
    claims = {"sub": str(admin.id), "ver": admin.token_version, "exp": now + timedelta(hours=1)}
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # PyJWT agrees: too short
        forged = jwt.encode(claims, PUBLISHED, algorithm="HS256")
    answer = client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {forged}"})
    assert answer.status_code == 401


def test_encryption_keys_rotate_without_losing_a_secret(app, app_ctx, monkeypatch):
    # The session's other secrets use the key derived from SECRET_KEY: it stays listed last,
    # and everything is put back under it at the end.
    session_key = crypto.derived_key(app.config["SECRET_KEY"])
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", f"{old},{session_key}")
    tenant = new_tenant()
    engines.assign_site(tenant, EngineCredentials("http://127.0.0.1:9", "the-key", "the-secret"))
    db.session.commit()
    runner = app.test_cli_runner()
    try:
        monkeypatch.setitem(app.config, "ENCRYPTION_KEY", f"{new},{old},{session_key}")
        assert engines.credentials_for(tenant).api_secret == "the-secret"  # old still decrypts
        done = runner.invoke(args=["secrets", "reencrypt"])
        assert done.exit_code == 0, done.output
        assert "re-encrypted" in done.output

        monkeypatch.setitem(app.config, "ENCRYPTION_KEY", new)  # the old keys are gone
        db.session.expire_all()
        assert engines.credentials_for(tenant).api_secret == "the-secret"
        stored = db.session.execute(
            text("SELECT engine_api_secret_enc FROM tenants WHERE id = :id"), {"id": tenant.id}
        ).scalar_one()
        with pytest.raises(InvalidToken):  # re-encrypted: the old key no longer opens it
            Fernet(old.encode()).decrypt(stored.encode())
    finally:
        monkeypatch.setitem(app.config, "ENCRYPTION_KEY", f"{session_key},{new},{old}")
        assert runner.invoke(args=["secrets", "reencrypt"]).exit_code == 0


def test_the_derived_key_can_be_named_to_rotate_away_from_it(app, app_ctx, monkeypatch):
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", "")
    token = crypto.encrypt("made with the derived key")
    derived = app.test_cli_runner().invoke(args=["secrets", "derived-key"]).output.strip()
    fresh = app.test_cli_runner().invoke(args=["secrets", "new-key"]).output.strip()
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", f"{fresh},{derived}")
    assert crypto.decrypt(crypto.reencrypted(token)) == "made with the derived key"
    monkeypatch.setitem(app.config, "ENCRYPTION_KEY", fresh)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        crypto.decrypt(token)


def test_startup_checks_name_what_is_wrong():
    config = {
        "SECRET_KEY": uuid.uuid4().hex,
        "ENCRYPTION_KEY": "",
        "OUTBOUND_ALLOWED_NETWORKS": ("10.0.0.0/33",),
        "RATE_LIMIT_PER_USER": "1/minute",
        "RATE_LIMIT_PER_TENANT": "1/minute",
        "LOGIN_FAILURES_PER_ACCOUNT": "1/minute",
        "LOGIN_FAILURES_PER_ADDRESS": "1/minute",
        "BULK_CONTINUE_RATE_LIMIT": "1/minute",
        "PROXY_FIX_HOPS": 0,
    }
    with pytest.raises(startup.InsecureSettings, match="OUTBOUND_ALLOWED_NETWORKS"):
        startup.check(config)
    config["OUTBOUND_ALLOWED_NETWORKS"] = ()
    config["RATE_LIMIT_PER_USER"] = "lots"
    with pytest.raises(startup.InsecureSettings, match="RATE_LIMIT_PER_USER"):
        startup.check(config)
