#!/usr/bin/python3
"""py_hello: a minimal tracim plugin in Python, speaking protocol v1 with grpcio only.

It shows that the wire contract (proto/, docs/protocol.md) is all a plugin author needs: no
SDK, just the generated stubs, grpcio and the standard library. tracim-plugin-broker starts it
(through tracim-plugin-runner) in its own folder with the TRACIM_PLUGIN_* environment; stdout
and stderr are logs only, never part of the handshake.

The plugin subscribes to on_plugins_loaded and on_user_created, logs every event it gets, says
hello once all plugins are loaded, and answers GET /plugins/py_hello/ping with {"pong": true}.

Exit codes: 0 after Plugin.Shutdown, SIGTERM or SIGINT; 1 when the handshake fails; 2 when it
was not started by the broker.
"""

import collections
import hmac
import json
import os
import signal
import sys
import threading
from collections.abc import Mapping
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

# The build copies the generated stubs (tracim_python_stubs) into gen/ next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent / "gen"))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tracim.plugin.v1 import broker_pb2, broker_pb2_grpc  # noqa: E402
from tracim.plugin.v1 import events_pb2, http_pb2, plugin_pb2, plugin_pb2_grpc  # noqa: E402

PLUGIN_NAME = "py_hello"
PLUGIN_VERSION = "1.0.0"  # Keep equal to "version" in plugin.json.
PLUGIN_DESCRIPTION = "Hello world plugin written in Python with grpcio only"

# Protocol versions this file implements; the broker offers its own in the environment.
SUPPORTED_PROTOCOL_VERSIONS = frozenset({1})

# Names fixed by the contract (proto/include/tracim/plugin/v1/handshake.h).
ENV_PLUGIN_SECRET = "TRACIM_PLUGIN_SECRET"
ENV_PLUGIN_SOCKET = "TRACIM_PLUGIN_SOCKET"
ENV_BROKER_SOCKET = "TRACIM_BROKER_SOCKET"
ENV_PROTOCOL_VERSIONS = "TRACIM_PLUGIN_PROTOCOL_VERSIONS"
ENV_PLUGIN_LAUNCH = "TRACIM_PLUGIN_LAUNCH"
SECRET_METADATA_KEY = "tracim-plugin-secret"
PLUGIN_SERVICE_NAME = "tracim.plugin.v1.Plugin"

# Register must answer well within the broker's start timeout (10 s by default).
REGISTER_TIMEOUT_S = 5.0
# How many recent event ids are remembered to drop redelivered duplicates.
DEDUPE_WINDOW = 4096
# One worker per concurrent RPC: the Events stream holds one for the whole launch.
MAX_WORKERS = 8


def log(message: str) -> None:
    """Writes one log line. The broker reads stdout line by line, so flush every line."""
    print(message, flush=True)


def log_error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Terminated(Exception):
    """Raised in the main thread by the SIGTERM handler, as SIGINT raises KeyboardInterrupt."""


# ---------------------------------------------------------------------------------------------
# Launch environment
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchEnvironment:
    """What the broker tells this launch through environment variables."""

    secret: str
    plugin_socket: str
    broker_socket: str
    offered_protocol_versions: tuple[int, ...]
    launch: str

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "LaunchEnvironment":
        """Raises KeyError naming the first required variable that is missing."""
        required = (ENV_PLUGIN_SOCKET, ENV_BROKER_SOCKET, ENV_PLUGIN_SECRET)
        for variable in required:
            if not environ.get(variable):
                raise KeyError(variable)
        return cls(
            secret=environ[ENV_PLUGIN_SECRET],
            plugin_socket=environ[ENV_PLUGIN_SOCKET],
            broker_socket=environ[ENV_BROKER_SOCKET],
            offered_protocol_versions=_parse_versions(environ.get(ENV_PROTOCOL_VERSIONS, "")),
            launch=environ.get(ENV_PLUGIN_LAUNCH, "?"),
        )

    def choose_protocol_version(self) -> int | None:
        """The highest version both sides speak, or None when there is none."""
        common = SUPPORTED_PROTOCOL_VERSIONS.intersection(self.offered_protocol_versions)
        return max(common, default=None)


def _parse_versions(text: str) -> tuple[int, ...]:
    """Parses "1,2" into (1, 2), skipping entries that are not numbers: they cannot match."""
    versions = []
    for item in text.split(","):
        try:
            versions.append(int(item))
        except ValueError:
            pass
    return tuple(versions)


# ---------------------------------------------------------------------------------------------
# Services served on TRACIM_PLUGIN_SOCKET
# ---------------------------------------------------------------------------------------------


class SecretCheck(grpc.ServerInterceptor):
    """Refuses with UNAUTHENTICATED every call that does not carry this launch's secret.

    The broker sends the secret on every call (Plugin and Health alike); anything else reaching
    the socket is not the broker.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or self._carries_secret(handler_call_details.invocation_metadata):
            return handler
        log_error(f"{PLUGIN_NAME} refused a call to {handler_call_details.method}: "
                  f"missing or wrong {SECRET_METADATA_KEY}")
        return _refusing_handler_like(handler)

    def _carries_secret(self, metadata) -> bool:
        for key, value in metadata or ():
            if key == SECRET_METADATA_KEY:
                # Constant time, so the secret cannot be guessed byte by byte.
                return hmac.compare_digest(str(value).encode(), self._secret)
        return False


def _refusing_handler_like(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same streaming shape as `handler` that fails with UNAUTHENTICATED."""

    def refuse(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or wrong {SECRET_METADATA_KEY}")

    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[(handler.request_streaming, handler.response_streaming)]
    return make(refuse, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


class Health(health_pb2_grpc.HealthServicer):
    """grpc.health.v1: the broker checks "" and "tracim.plugin.v1.Plugin" after Register.

    Watch is left unimplemented (UNIMPLEMENTED): the broker only calls Check.
    """

    SERVICES = frozenset({"", PLUGIN_SERVICE_NAME})

    def Check(self, request, context):
        if request.service not in self.SERVICES:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(
            status=health_pb2.HealthCheckResponse.SERVING)


class RecentIds:
    """The last `capacity` ids added, to recognise redelivered events. Thread-safe."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, event_id: int) -> bool:
        """Returns False when the id was seen already."""
        with self._lock:
            if event_id in self._ids:
                return False
            self._ids[event_id] = None
            if len(self._ids) > self._capacity:
                self._ids.popitem(last=False)
            return True


class HelloPlugin(plugin_pb2_grpc.PluginServicer):
    """The plugin itself: hook handlers, route handlers, and the three Plugin RPCs.

    RPCs run on the gRPC server's worker threads. They wait until Register has answered, so
    that handlers always see the settings.
    """

    def __init__(self, request_stop) -> None:
        # request_stop(grace_s) asks main() to stop the server and exit 0.
        self._request_stop = request_stop
        self._registered = threading.Event()
        self.settings: dict[str, str] = {}
        self._handled = RecentIds(DEDUPE_WINDOW)
        self._streams_lock = threading.Lock()
        self._event_streams: set[grpc.ServicerContext] = set()
        # The subscriptions and routes registered are exactly the handlers below.
        self.hooks = {
            "on_plugins_loaded": self.on_plugins_loaded,
            "on_user_created": self.on_user_created,
        }
        self.routes = {
            ("GET", f"/plugins/{PLUGIN_NAME}/ping"): self.ping,
        }

    def registered(self, settings: dict[str, str]) -> None:
        """Called once by main() when Register succeeded: lets the RPCs through."""
        self.settings = dict(settings)
        self._registered.set()

    # -- Hooks ----------------------------------------------------------------------------------

    def on_plugins_loaded(self, event: events_pb2.Event) -> None:
        log(f"{PLUGIN_NAME}: Hello World !")

    def on_user_created(self, event: events_pb2.Event) -> None:
        log(f"{PLUGIN_NAME}: welcome {event.user.public_name} (user {event.user.user_id})")

    # -- Routes: (request head, body) -> (status, JSON-serialisable body) -----------------------

    def ping(self, head: http_pb2.HttpRequestHead, body: bytes) -> tuple[int, object]:
        return 200, {"pong": True}

    # -- Plugin service -------------------------------------------------------------------------

    def Events(self, request_iterator, context):
        """Handles each batch in order and acknowledges it once every handler returned."""
        self._registered.wait()
        with self._streams_lock:
            self._event_streams.add(context)
        try:
            for batch in request_iterator:
                for event in batch.events:
                    self._handle_event(event)
                yield events_pb2.EventAck(event_ids=[event.event_id for event in batch.events])
        finally:
            with self._streams_lock:
                self._event_streams.discard(context)

    def _handle_event(self, event: events_pb2.Event) -> None:
        # Delivery is at-least-once: an event seen before in this launch is acknowledged again
        # but not handled twice.
        if not self._handled.add(event.event_id):
            log(f"{PLUGIN_NAME} skipped {event.hook} {event.event_id} (already handled)")
            return
        log(f"{PLUGIN_NAME} got {event.hook} {event.event_id}")
        handler = self.hooks.get(event.hook)
        if handler is None:
            return  # The broker only sends registered hooks; ignore anything else.
        try:
            handler(event)
        except Exception as error:  # noqa: BLE001 - one bad event must not end the stream.
            # Acknowledged anyway: redelivering an event that always fails would loop forever.
            log_error(f"{PLUGIN_NAME} failed to handle {event.hook} {event.event_id}: {error!r}")

    def HandleHttp(self, request_iterator, context):
        """Reads the head and the body up to the broker's half-close, then answers in 2 parts."""
        self._registered.wait()
        first = next(request_iterator, None)
        if first is None or first.WhichOneof("part") != "head":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "the first HttpRequestPart must be the head")
        head = first.head
        body = b"".join(part.body for part in request_iterator)
        handler = self.routes.get((head.method, head.route))
        if handler is None:
            # The broker only forwards registered routes; answer sensibly all the same.
            status, payload = 404, {"error": f"no route {head.method} {head.route}"}
        else:
            status, payload = handler(head, body)
        yield http_pb2.HttpResponsePart(head=http_pb2.HttpResponseHead(
            status=status,
            headers=[http_pb2.HttpHeader(name="Content-Type", value="application/json")]))
        yield http_pb2.HttpResponsePart(body=json.dumps(payload).encode())

    def Shutdown(self, request, context):
        """Answers at once; main() stops the server once the answer has left."""
        log(f"{PLUGIN_NAME} stopping: {request.reason or 'no reason given'} "
            f"(grace {request.grace_ms} ms)")
        # Half the grace period for calls in flight, the other half is the safety margin
        # before the broker's SIGTERM.
        grace_s = request.grace_ms / 2000

        def stop() -> None:
            self._request_stop(grace_s)

        if not context.add_callback(stop):  # The call already ended: stop right away.
            stop()
        return plugin_pb2.ShutdownResponse()

    def close_event_streams(self) -> None:
        """Ends the Events streams when stopping: the broker would keep them open until the
        grace period ends. Events not acknowledged yet are redelivered to the next launch."""
        with self._streams_lock:
            for context in self._event_streams:
                context.cancel()


# ---------------------------------------------------------------------------------------------
# Lifecycle
# ---------------------------------------------------------------------------------------------


class StopRequest:
    """Set once by Plugin.Shutdown (from a gRPC thread); main() waits for it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.grace_s = 0.0

    def set(self, grace_s: float) -> None:
        if not self._event.is_set():
            self.grace_s = grace_s
            self._event.set()

    def wait(self) -> float:
        self._event.wait()
        return self.grace_s


def register(env: LaunchEnvironment, plugin: HelloPlugin,
             protocol_version: int) -> broker_pb2.RegisterResponse:
    """Calls Registrar.Register on the broker's control socket. Raises grpc.RpcError."""
    request = broker_pb2.RegisterRequest(
        # The broker finds this launch by name: it must equal TRACIM_PLUGIN_NAME, the folder
        # name, so a plugin deployed under another folder is refused.
        name=PLUGIN_NAME,
        version=PLUGIN_VERSION,
        protocol_version=protocol_version,
        hooks=list(plugin.hooks),
        routes=[broker_pb2.Route(method=method, path=path) for method, path in plugin.routes],
        description=PLUGIN_DESCRIPTION,
    )
    with grpc.insecure_channel(f"unix:{env.broker_socket}") as channel:
        return broker_pb2_grpc.RegistrarStub(channel).Register(
            request, metadata=((SECRET_METADATA_KEY, env.secret),), timeout=REGISTER_TIMEOUT_S)


def run(env: LaunchEnvironment) -> int:
    """Serves, registers, then waits for Shutdown. Returns the exit code."""
    log(f"{PLUGIN_NAME} starting (launch {env.launch}, pid {os.getpid()})")
    protocol_version = env.choose_protocol_version()
    if protocol_version is None:
        log_error(f"{PLUGIN_NAME}: the broker offers protocol versions "
                  f"{list(env.offered_protocol_versions)}, this plugin speaks "
                  f"{sorted(SUPPORTED_PROTOCOL_VERSIONS)}")
        return 1

    stop = StopRequest()
    plugin = HelloPlugin(request_stop=stop.set)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS),
                         interceptors=[SecretCheck(env.secret)])
    plugin_pb2_grpc.add_PluginServicer_to_server(plugin, server)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    try:
        server.add_insecure_port(f"unix:{env.plugin_socket}")
    except RuntimeError as error:
        log_error(f"{PLUGIN_NAME}: cannot serve on {env.plugin_socket}: {error}")
        return 1

    # Serve before registering: the broker connects back as soon as Register returns.
    server.start()
    try:
        try:
            response = register(env, plugin, protocol_version)
        except grpc.RpcError as error:
            log_error(f"{PLUGIN_NAME}: registration failed: "
                      f"{error.code().name}: {error.details()}")
            return 1
        if response.protocol_version not in SUPPORTED_PROTOCOL_VERSIONS:
            log_error(f"{PLUGIN_NAME}: the broker answered protocol version "
                      f"{response.protocol_version}, this plugin asked for {protocol_version}")
            return 1
        plugin.registered(response.settings)
        log(f"{PLUGIN_NAME} registered (protocol {response.protocol_version}, "
            f"settings: {', '.join(sorted(response.settings)) or 'none'})")

        grace_s = stop.wait()
        plugin.close_event_streams()
        server.stop(grace_s).wait()
        return 0
    finally:
        server.stop(None)  # Idempotent; cancels whatever is left on early returns and signals.


def main() -> int:
    try:
        env = LaunchEnvironment.from_environ(os.environ)
    except KeyError as missing:
        log_error(f"{PLUGIN_NAME}: {missing.args[0]} is not set: this is a tracim plugin, it "
                  f"must be started by tracim-plugin-broker (see docs/protocol.md)")
        return 2

    def on_sigterm(signum, frame):
        raise Terminated()

    # The broker sends SIGTERM when Shutdown was not enough; leaving promptly is a clean stop.
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return run(env)
    except (Terminated, KeyboardInterrupt):
        log(f"{PLUGIN_NAME} stopped by a signal")
        return 0


if __name__ == "__main__":
    sys.exit(main())
