"""The one place chatkeep leans on Powertools internals, where no public API does the job; each use says why.

aws-lambda-powertools is pinned to the tested minor range (pyproject.toml, layers/common/requirements.txt);
tests/unit/test_powertools_compat.py checks every assumption made here and fails when an upgrade breaks one.
Everything else chatkeep uses of Powertools is public API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ResponseBuilder

# ---------------------------------------------------------------- the REST response builder


class LazyCompressionResponseBuilder(ResponseBuilder):
    """Powertools' response builder, asking for the request's Accept-Encoding only when the route or the
    response asks for compression (only /docs does). Powertools reads it for every response, and that builds two
    case-insensitive copies of the request's headers: ~8 us of a ~70 us warm POST (CHANGELOG.md, 2026-12-02).
    Same answer in every case: without a compression request it is False whatever the header says.

    Private: `ResponseBuilder._has_compression_enabled(route_compression, response_compression, event)`, the
    static method the builder asks; no public option skips the header read."""

    @staticmethod
    def _has_compression_enabled(route_compression: bool, response_compression: bool | None, event: Any) -> bool:
        asked = response_compression if response_compression is not None else route_compression
        return bool(asked) and ResponseBuilder._has_compression_enabled(route_compression, response_compression,
                                                                         event)


def use_lazy_compression(app: Any) -> None:
    """Build every response of `app` with LazyCompressionResponseBuilder.

    Private: `ApiGatewayResolver._response_builder_class`, the class the resolver builds each response with; the
    constructor takes no builder."""
    app._response_builder_class = LazyCompressionResponseBuilder


# ---------------------------------------------------------------- the route, for request validation


def current_route(app: Any) -> Any:
    """The Route being resolved, from a middleware (chatkeep.rest.validation reads its declared parameters).

    Private: the resolver's context key `_route`. The public `app.request` gives the route's path and path
    parameters, not the Route with its signature."""
    return app.context["_route"]


def route_arguments(app: Any) -> dict[str, Any]:
    """The arguments the route will be called with (its path parameters until a middleware replaces them).

    Private: the context key `_route_args`, read by the adapter that calls the route; Powertools' own validation
    middleware hands the validated values over the same way."""
    arguments: dict[str, Any] = app.context["_route_args"]
    return arguments


def set_route_arguments(app: Any, arguments: dict[str, Any]) -> None:
    """Call the route with `arguments` (validated values, by parameter name): see route_arguments."""
    app.context["_route_args"] = arguments
