"""POST /api/v1/auth/login: email and password in, a bearer token out.

Failed sign-ins are throttled per account and per client address (api/limits.py): once
either budget is spent the answer is 429 with Retry-After, before any password is checked.
A bearer header on the request changes nothing (it is not looked at).
"""

from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from provisioner.api.access import load_json
from provisioner.api.errors import ApiError
from provisioner.api.limits import budgets, client_address
from provisioner.api.openapi import documented
from provisioner.extensions import db
from provisioner.models import User
from provisioner.schemas.auth import LoginSchema, TokenSchema
from provisioner.security import tokens

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
_DUMMY_HASH = generate_password_hash("not a real password")


@bp.post("/login")
@documented(body=LoginSchema, response=TokenSchema)
def login():
    """Exchange email and password for a bearer token."""
    data = load_json(LoginSchema())
    email = data["email"].lower()
    throttles = (
        (current_app.config["LOGIN_FAILURES_PER_ACCOUNT"], "login-account", email),
        (current_app.config["LOGIN_FAILURES_PER_ADDRESS"], "login-address", client_address()),
    )
    for limit, *key in throttles:
        budgets().check(limit, *key)
    user = db.session.execute(
        select(User).where(func.lower(User.email) == email)
    ).scalar_one_or_none()
    if user is None:
        check_password_hash(_DUMMY_HASH, data["password"])  # same time as a wrong password
    if user is None or not user.check_password(data["password"]):
        for limit, *key in throttles:
            budgets().spend(limit, *key)
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    if user.disabled:
        raise ApiError(403, "account_disabled", "this account is disabled")
    token, ttl = tokens.issue(user.id, user.token_version)
    return TokenSchema().dump({"access_token": token, "token_type": "Bearer", "expires_in": ttl})
