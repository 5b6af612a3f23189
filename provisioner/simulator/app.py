"""The simulator as a WSGI app: Frappe's REST surface plus an admin API under
`/__simulator__/` (faults, reset, call log, sites)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from provisioner.simulator import methods
from provisioner.simulator.documents import meta
from provisioner.simulator.engine import Simulator
from provisioner.simulator.errors import (
    AuthenticationError,
    FrappeError,
    PermissionError_,
    ServerError,
    server_messages,
)
from provisioner.simulator.faults import Fault, FaultSpecError
from provisioner.simulator.store import SiteData

EXTENSION = "erpnext_simulator"
ADMIN = "/__simulator__"


class Dropped(Exception):
    """The connection is closed without an answer."""


def create_simulator(api_key: str, api_secret: str, **options: Any) -> Flask:
    app = Flask("erpnext_simulator")
    app.extensions[EXTENSION] = Simulator(api_key, api_secret, **options)
    app.register_blueprint(admin)
    app.add_url_rule(
        "/api/<path:_rest>", "api", handle_api, methods=["GET", "POST", "PUT", "DELETE"]
    )
    return app


def simulator() -> Simulator:
    return current_app.extensions[EXTENSION]


# -- the Frappe API ----------------------------------------------------------------------


def handle_api(_rest: str) -> Response:
    sim = simulator()
    path = raw_path()
    started, generation = time.perf_counter(), sim.generation
    call: dict[str, Any] = {
        "method": request.method,
        "path": path,
        "site": None,
        "status": None,
        "fault": None,
        "correlation_id": request.headers.get("X-Correlation-ID"),
    }
    dropped = False
    try:
        response = answer(sim, call, path)
        call["status"] = response.status_code
    except Dropped:
        dropped = True
    finally:
        # Logged before the connection closes: a client that saw it close finds the call.
        call["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        sim.record(call, generation)
    if dropped:
        drop_connection()
        return Response(status=204)
    return response


def answer(sim: Simulator, call: dict[str, Any], path: str) -> Response:
    host = request.headers.get("X-Frappe-Site-Name") or request.host
    site = sim.site_for(host)
    if site is None:
        name = host.split(":")[0]
        return Response(f"<html><body><h1>{name} does not exist</h1></body></html>", 404,
                        mimetype="text/html")  # fmt: skip
    call["site"] = site.name
    fault = sim.faults.take(request.method, path, site.name)
    if fault is not None:
        call["fault"] = fault.kind
        early = before_work(sim, fault)
        if early is not None:
            return early
    sim.pause(sim.latency.of_request(request.method, path))
    response = frappe_response(sim, site, path)
    if response.status_code < 400 and request.method != "GET":
        sim.save()  # committed, whether or not the answer gets through
    if fault is not None and fault.kind.startswith("commit_then_"):
        if fault.kind == "commit_then_timeout":
            sim.pause(fault.delay(sim.faults.rng))
        raise Dropped
    return response


def before_work(sim: Simulator, fault: Fault) -> Response | None:
    """Faults that act before the request is handled; None lets it go on."""
    if fault.kind == "latency":
        sim.pause(fault.delay(sim.faults.rng))
        return None
    if fault.kind == "error":
        return fault_error(fault)
    if fault.kind == "timeout":
        sim.pause(fault.delay(sim.faults.rng))
        raise Dropped
    if fault.kind == "drop":
        raise Dropped
    return None


def fault_error(fault: Fault) -> Response:
    if fault.exc_type is None and fault.status in (502, 503, 504):
        body = f"<html><body><h1>{fault.status} Gateway error</h1></body></html>"
        response = Response(body, fault.status, mimetype="text/html")
    else:
        exc_type = fault.exc_type or "Exception"
        message = fault.message or f"{exc_type} injected by the simulator"
        payload = {
            "exc_type": exc_type,
            "exception": f"frappe.exceptions.{exc_type}: {message}",
            "exc": json.dumps([f"Traceback (most recent call last):\n{exc_type}"]),
            "_server_messages": server_messages(message),
        }
        response = jsonify(payload)
        response.status_code = fault.status
    for name, value in fault.headers.items():
        response.headers[name] = value
    return response


def frappe_response(sim: Simulator, site: SiteData, path: str) -> Response:
    try:
        parts = [unquote(p) for p in path.split("/")[2:]]  # after "", "api"
        if parts[:1] == ["method"] and len(parts) == 2:
            return call_method(sim, site, parts[1])
        authenticate(site, doctype=parts[1] if len(parts) > 1 else "")
        if parts[:1] == ["resource"] and len(parts) == 2:
            return resource_list(sim, site, parts[1])
        if parts[:1] == ["resource"] and len(parts) == 3:
            return resource_doc(sim, site, parts[1], parts[2])
        return Response("<html><body><h1>Page not found</h1></body></html>", 404,
                        mimetype="text/html")  # fmt: skip
    except FrappeError as exc:
        response = jsonify(exc.body())
        response.status_code = exc.status
        return response


def authenticate(site: SiteData, doctype: str) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if not value:
        raise PermissionError_(f"No permission for {doctype or 'this resource'}")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value).decode()
        except ValueError:
            raise AuthenticationError("") from None
    key, _, secret = value.partition(":")
    if scheme.lower() not in ("token", "basic") or site.keys.get(key) != secret:
        raise AuthenticationError("")


def body_json() -> dict[str, Any]:
    raw = request.get_data(as_text=True)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ServerError("JSONDecodeError", "Expecting value: line 1 column 1 (char 0)") from None
    if not isinstance(data, dict):
        raise ServerError("AttributeError", "'list' object has no attribute 'get'")
    return data


def call_method(sim: Simulator, site: SiteData, name: str) -> Response:
    method = methods.find(name)
    if name not in methods.NO_AUTH:
        authenticate(site, doctype="")
    params: dict[str, Any] = dict(request.args)
    if request.method in ("POST", "PUT"):
        params.update(body_json())
    return jsonify({"message": method(methods.MethodCall(sim, site, params))})


def resource_list(sim: Simulator, site: SiteData, doctype: str) -> Response:
    if request.method == "POST":
        doc, remark = sim.documents(site).insert(doctype, body_json())
        payload: dict[str, Any] = {"data": doc}
        if remark:
            payload["_server_messages"] = server_messages(remark, indicator="orange")
        return jsonify(payload)
    if request.method != "GET":
        raise ServerError("MethodNotAllowed", f"{request.method} is not allowed here")
    spec = meta(doctype)
    if spec.single:
        raise ServerError("AttributeError", "'NoneType' object has no attribute 'get'")
    args = request.args
    try:
        start = int(args.get("limit_start", 0))
        length = int(args.get("limit_page_length", args.get("limit", 20)))
    except ValueError:
        raise ServerError("ValueError", "invalid literal for int() with base 10") from None
    with site.lock:
        rows = site.query(
            doctype,
            filters=methods.json_param(args.get("filters")),
            fields=methods.json_param(args.get("fields")),
            order_by=args.get("order_by"),
            start=start,
            length=length,
        )
    return jsonify({"data": rows})


def resource_doc(sim: Simulator, site: SiteData, doctype: str, name: str) -> Response:
    documents = sim.documents(site)
    if request.method == "GET":
        return jsonify({"data": documents.get(doctype, name)})
    if request.method == "PUT":
        return jsonify({"data": documents.update(doctype, name, body_json())})
    if request.method == "DELETE":
        documents.delete(doctype, name)
        response = jsonify({"data": "ok"})
        response.status_code = 202
        return response
    raise ServerError("MethodNotAllowed", f"{request.method} is not allowed here")


def raw_path() -> str:
    """The path as sent: a document name may hold an encoded "/" (Gain/Loss accounts)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return urlsplit(raw).path.replace("%20", " ")
    return request.path


def drop_connection() -> None:
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


# -- the admin API -------------------------------------------------------------------------

admin = Blueprint("simulator_admin", __name__, url_prefix=ADMIN)


def bad_request(field: str, message: str) -> tuple[Response, int]:
    return jsonify({"error": "invalid", "field": field, "message": message}), 400


@admin.get("/health")
def health() -> Response:
    sim = simulator()
    return jsonify({"status": "ok", "sites": sorted(sim.sites), "default_site": sim.default_site})


@admin.get("/faults")
def list_faults() -> Response:
    return jsonify({"faults": simulator().faults.list()})


@admin.post("/faults")
def add_fault() -> tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        return bad_request("body", "a JSON object describing the fault is required")
    try:
        return jsonify(simulator().add_fault(**spec)), 201
    except FaultSpecError as exc:
        return bad_request(exc.field, str(exc))


@admin.delete("/faults")
def clear_faults() -> Response:
    simulator().clear_faults()
    return jsonify({"faults": []})


@admin.delete("/faults/<int:fault_id>")
def remove_fault(fault_id: int) -> tuple[Response, int]:
    removed = simulator().faults.remove(fault_id)
    return jsonify({"removed": removed}), 200 if removed else 404


@admin.post("/reset")
def reset() -> Response:
    fresh = bool((request.get_json(silent=True) or {}).get("fresh_site"))
    sim = simulator()
    sim.reset(fresh_site=fresh)
    sim.clear_faults()
    return jsonify({"status": "ok", "fresh_site": fresh})


@admin.get("/calls")
def calls() -> Response:
    since = request.args.get("since", 0, type=int)
    return jsonify({"calls": simulator().calls(since)})


@admin.get("/sites")
def sites() -> Response:
    sim = simulator()
    return jsonify({"sites": sorted(sim.sites), "archived": sim.archived})


@admin.post("/sites")
def new_site() -> tuple[Response, int]:
    data = request.get_json(silent=True) or {}
    name = data.get("site")
    if not isinstance(name, str) or not name.strip():
        return bad_request("site", "a site name is required")
    try:
        made = simulator().new_site(name.strip().lower(), fresh=data.get("fresh", True))
    except ValueError as exc:
        return jsonify({"error": "conflict", "field": "site", "message": str(exc)}), 409
    return jsonify(made), 201


def site_job(job: str, name: str) -> tuple[Response, int]:
    sim = simulator()
    action = {"keys": sim.generate_keys, "backup": sim.backup, "drop": sim.drop_site}[job]
    try:
        return jsonify(action(name)), 200
    except LookupError as exc:
        return jsonify({"error": "not_found", "field": "site", "message": str(exc)}), 404


@admin.post("/sites/<name>/keys")
def site_keys(name: str) -> tuple[Response, int]:
    return site_job("keys", name)


@admin.post("/sites/<name>/backup")
def site_backup(name: str) -> tuple[Response, int]:
    return site_job("backup", name)


@admin.delete("/sites/<name>")
def drop_site(name: str) -> tuple[Response, int]:
    return site_job("drop", name)
