"""marshmallow schemas: one module per resource; every request and response body is one."""
