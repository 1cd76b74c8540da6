"""The served OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount, Route

from flightlog.server.app import create_app
from flightlog.server.openapi import openapi_document


def test_every_route_is_documented_and_every_documented_path_served(tmp_path: Path) -> None:
    app = create_app(tmp_path / "home")
    served = {(r.path, m.lower()) for r in app.routes if isinstance(r, Route) for m in (r.methods or ()) if m != "HEAD"}
    # A Mount serves files below its path: documented as one GET with the file as a path parameter.
    served |= {(r.path + "/{path}", "get") for r in app.routes if isinstance(r, Mount)}
    assert all(isinstance(r, Route | Mount) for r in app.routes)
    documented = {(p, m) for p, ops in openapi_document()["paths"].items() for m in ops}
    assert served == documented
    assert openapi_document()["components"]["schemas"]["Event"]["title"] == "flightlog.event/v1"
