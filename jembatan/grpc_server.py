"""The gRPC server every service shares: auth, errors, health, reflection, metrics.

- Auth: ``authorization: Bearer <key>`` metadata, resolved by the service's own
  ``authenticate`` callback into a ``Principal``; each method needs a scope.
  The principal is available to servicers through ``current_principal()``.
- Errors: ``ApiError``/store/bus exceptions raised by servicers become status
  codes (INVALID_ARGUMENT with field violations, NOT_FOUND, FAILED_PRECONDITION,
  ALREADY_EXISTS, UNAUTHENTICATED, PERMISSION_DENIED, UNAVAILABLE).
- Deadlines: a call whose deadline has already passed is refused before any work;
  streams stop when the client goes away or its deadline passes.
- Limits per key (``KeyLimits``): calls per second with a burst, and open streams. A
  stream holds a worker thread while it is open, so without a cap one partner key could
  hold them all; past a limit the call gets RESOURCE_EXHAUSTED (with a retry delay).
- Health: the standard service, updated from the service's real readiness checks.
- Reflection, and Prometheus metrics per method and code.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from prometheus_client import Counter, Histogram

from jembatan.bus.port import BusUnavailable
from jembatan.http import ApiError, ReadinessCheck
from jembatan.metrics import LATENCY_BUCKETS, ServiceMetrics
from jembatan.periodic import PeriodicWorker
from jembatan.ratelimit import RateLimiter
from jembatan.store.port import StoreUnavailable

log = logging.getLogger(__name__)

PUBLIC_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a partner, an agency or an operator, with their scopes."""

    subject: str
    kind: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    agency_id: str | None = None


Authenticator = Callable[[str], Principal | None]


@dataclass(frozen=True)
class KeyLimits:
    """What one key may use of a service's gRPC face."""

    calls_per_second: float = 50.0
    burst: float = 100.0
    streams: int = 4


class _OpenStreams:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def enter(self, key: str) -> bool:
        with self._lock:
            if self._open.get(key, 0) >= self.limit:
                return False
            self._open[key] = self._open.get(key, 0) + 1
            return True

    def leave(self, key: str) -> None:
        with self._lock:
            left = self._open.get(key, 1) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)


_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "jembatan_grpc_principal", default=None
)


def current_principal() -> Principal:
    principal = _principal.get()
    if principal is None:  # only public methods run without one
        raise ApiError(401, "unauthenticated", "no caller")
    return principal


_HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.FAILED_PRECONDITION,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def status_for(exc: ApiError) -> grpc.StatusCode:
    if exc.status == 409 and exc.code in ("already_exists", "duplicate"):
        return grpc.StatusCode.ALREADY_EXISTS
    if exc.status == 409 and exc.code in ("version_conflict", "conflict"):
        return grpc.StatusCode.ABORTED
    return _HTTP_TO_GRPC.get(exc.status, grpc.StatusCode.UNKNOWN)


def _abort(
    context: grpc.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    fields: Mapping[str, str] | None = None,
) -> None:
    status = status_pb2.Status(code=code.value[0], message=message)
    if fields:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                for f, d in fields.items()
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad)
        status.details.append(detail)
    context.abort_with_status(rpc_status.to_status(status))


class _Interceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        service: str,
        metrics: ServiceMetrics,
        authenticate: Authenticator,
        scopes: Mapping[str, str],
        limits: KeyLimits,
    ) -> None:
        self.service = service
        self.authenticate = authenticate
        self.scopes = scopes
        self.calls = RateLimiter(limits.burst, limits.calls_per_second)
        self.streams = _OpenStreams(limits.streams)
        self.requests = Counter(
            "jembatan_grpc_requests_total",
            "gRPC calls by method and status code.",
            ["service", "method", "code"],
            registry=metrics.registry,
        )
        self.latency = Histogram(
            "jembatan_grpc_request_duration_seconds",
            "gRPC call latency by method (streams: until the stream ends).",
            ["service", "method"],
            buckets=LATENCY_BUCKETS,
            registry=metrics.registry,
        )

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = continuation(details)
        method = details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        metadata = dict(details.invocation_metadata or ())
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap(method, metadata, handler.unary_unary, streaming=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap(method, metadata, handler.unary_stream, streaming=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # client streaming is not part of our contract

    def _wrap(
        self,
        method: str,
        metadata: Mapping[str, Any],
        behaviour: Callable[..., Any],
        streaming: bool,
    ) -> Callable[..., Any]:
        short = method.rsplit("/", 1)[-1]

        def prepare(context: grpc.ServicerContext) -> contextvars.Token[Principal | None]:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                _abort(context, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline already passed")
            raw = str(metadata.get("authorization", ""))
            if not raw.lower().startswith("bearer ") or not raw[7:].strip():
                _abort(
                    context,
                    grpc.StatusCode.UNAUTHENTICATED,
                    "send 'authorization: Bearer <api key>' metadata",
                )
            try:
                principal = self.authenticate(raw[7:].strip())
            except Exception as exc:  # the key store is down: retryable, not UNKNOWN
                log.warning("gRPC authentication unavailable: %s", exc)
                _abort(context, grpc.StatusCode.UNAVAILABLE, "authentication is unavailable; retry")
            if principal is None:
                _abort(context, grpc.StatusCode.UNAUTHENTICATED, "unknown or revoked API key")
            assert principal is not None
            needed = self.scopes.get(method)
            if needed is None or needed not in principal.scopes:
                _abort(
                    context,
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"this key lacks the scope {needed!r} needed by {short}",
                )
            wait = self.calls.acquire(f"{principal.kind}:{principal.subject}")
            if wait > 0:
                _abort(
                    context,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "too many calls for this key; retry in "
                    f"{RateLimiter.retry_after_header(wait)} s",
                )
            return _principal.set(principal)

        def translate(exc: Exception, context: grpc.ServicerContext) -> None:
            if isinstance(exc, ApiError):
                _abort(context, status_for(exc), exc.message, exc.fields)
            if isinstance(exc, StoreUnavailable | BusUnavailable):
                _abort(context, grpc.StatusCode.UNAVAILABLE, "a dependency is unavailable; retry")
            log.exception("unexpected gRPC error", extra={"method": method})
            _abort(context, grpc.StatusCode.INTERNAL, "unexpected error; it has been logged")

        def record(context: grpc.ServicerContext, start: float) -> None:
            code = context.code() if hasattr(context, "code") else None
            name = (code or grpc.StatusCode.OK).name
            self.requests.labels(self.service, short, name).inc()
            self.latency.labels(self.service, short).observe(time.perf_counter() - start)

        if not streaming:

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                try:
                    token = prepare(context)
                    try:
                        return behaviour(request, context)
                    except Exception as exc:
                        if context.code() is not None:  # already aborted by the servicer
                            raise
                        translate(exc, context)
                    finally:
                        _principal.reset(token)
                finally:
                    record(context, start)

            return unary

        def stream(request: Any, context: grpc.ServicerContext) -> Iterable[Any]:
            start = time.perf_counter()
            try:
                token = prepare(context)
                who = current_principal()
                key = f"{who.kind}:{who.subject}"
                if not self.streams.enter(key):
                    _principal.reset(token)
                    _abort(
                        context,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"this key already has {self.streams.limit} open streams",
                    )
                try:
                    yield from behaviour(request, context)
                except Exception as exc:
                    if context.code() is not None:
                        raise
                    translate(exc, context)
                finally:
                    self.streams.leave(key)
                    _principal.reset(token)
            finally:
                record(context, start)

        return stream


class GrpcServer(PeriodicWorker):
    """A service's gRPC face, run as a worker of its ServiceRuntime: it binds and starts
    when the worker starts, refreshes the health service every two seconds from the
    runtime's readiness, and shuts down gracefully when the worker stops."""

    retry_on = ()  # nothing to wait out: a failure ends the run (the runtime restarts it)

    def __init__(
        self,
        service: str,
        host: str,
        port: int,
        metrics: ServiceMetrics,
        authenticate: Authenticator,
        scopes: Mapping[str, str],
        register: Iterable[tuple[Callable[[Any, grpc.Server], None], Any, str]],
        readiness: Callable[[], Mapping[str, ReadinessCheck]],
        max_workers: int = 16,
        limits: KeyLimits | None = None,
    ) -> None:
        """``register``: (add_XServicer_to_server, servicer, full service name) triples;
        ``scopes``: full method name (``/pkg.Service/Method``) to required scope."""
        super().__init__(f"grpc-{service}", 2.0)
        self.address = f"{host}:{port}"
        self._readiness = readiness
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
            interceptors=[
                _Interceptor(service, metrics, authenticate, scopes, limits or KeyLimits())
            ],
            # Without this, two processes could silently share the port.
            options=[("grpc.so_reuseport", 0)],
            # past the worker threads a call is refused (RESOURCE_EXHAUSTED), not queued
            maximum_concurrent_rpcs=max_workers,
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = [
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        self._service_names = []
        for add, servicer, full_name in register:
            add(servicer, self.server)
            names.append(full_name)
            self._service_names.append(full_name)
        reflection.enable_server_reflection(names, self.server)
        self._bound = False

    def _update_health(self) -> None:
        problems = []
        for name, check in self._readiness().items():
            if name == self.name:
                continue
            try:
                check()
            except Exception as exc:
                problems.append(f"{name}: {exc}")
        status = (
            health_pb2.HealthCheckResponse.NOT_SERVING
            if problems
            else health_pb2.HealthCheckResponse.SERVING
        )
        self.health.set("", status)
        for name in self._service_names:
            self.health.set(name, status)

    def starting(self) -> None:
        """Bind (here, not at construction: building a service must not take its port)
        and serve."""
        if not self._bound:
            if self.server.add_insecure_port(self.address) == 0:
                raise OSError(f"gRPC cannot listen on {self.address}")
            self._bound = True
        # Health is known before the first call can arrive: a check right after start
        # must answer SERVING or NOT_SERVING, never NOT_FOUND.
        self._update_health()
        self.server.start()
        log.info("gRPC listening", extra={"grpc": self.address})

    def tick(self) -> None:
        self._update_health()

    def closing(self) -> None:
        self.health.enter_graceful_shutdown()
        self.server.stop(grace=5).wait(10)


def field_errors_from(exc: Exception) -> dict[str, str]:
    """Field violations of a pydantic ValidationError, keyed by dotted path."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return {"request": str(exc)}
    return {".".join(str(p) for p in e["loc"]) or "request": e["msg"] for e in errors()}


__all__ = [
    "Authenticator",
    "GrpcServer",
    "Principal",
    "current_principal",
    "field_errors_from",
    "status_for",
]
