"""POST /api/v1/auth/login: email and password in, a bearer token out."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from provisioner.api.access import load_json
from provisioner.api.errors import ApiError
from provisioner.api.limits import mutating
from provisioner.api.openapi import documented
from provisioner.extensions import db
from provisioner.models import User
from provisioner.schemas.auth import LoginSchema, TokenSchema
from provisioner.security import tokens

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")
_DUMMY_HASH = generate_password_hash("not a real password")


@bp.post("/login")
@documented(body=LoginSchema, response=TokenSchema)
@mutating
def login():
    """Exchange email and password for a bearer token."""
    data = load_json(LoginSchema())
    user = db.session.execute(
        select(User).where(func.lower(User.email) == data["email"].lower())
    ).scalar_one_or_none()
    if user is None:
        check_password_hash(_DUMMY_HASH, data["password"])  # same time as a wrong password
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    if not user.check_password(data["password"]):
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    token, ttl = tokens.issue(user.id)
    return TokenSchema().dump({"access_token": token, "token_type": "Bearer", "expires_in": ttl})
