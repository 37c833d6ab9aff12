#!/usr/bin/python3
"""Plays tracim-plugin-broker against the assembled py_hello folder (protocol v1).

A fake Registrar serves on a temporary Unix socket; the plugin is spawned as the runner would
(manifest command, cwd = its folder, stdin /dev/null, a reduced environment) and its output is
read line by line. Every wait has a deadline; nothing sleeps.

Run (ctest: python_plugin_handshake):
  /usr/bin/python3 test_handshake.py --stubs-dir BUILD/python_stubs \
      --plugin-dir BUILD/test_plugins/tracim_backend_py_hello [-v] [unittest arguments]
"""

import argparse
import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from concurrent import futures
from pathlib import Path


def _parse_args() -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stubs-dir", required=True, type=Path,
                        help="the generated Python stubs (build/python_stubs)")
    parser.add_argument("--plugin-dir", required=True, type=Path,
                        help="the assembled tracim_backend_py_hello folder")
    args, unittest_args = parser.parse_known_args()
    return args, [sys.argv[0], *unittest_args]


ARGS, UNITTEST_ARGV = _parse_args()
sys.path.insert(0, str(ARGS.stubs_dir))

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from tracim.plugin.v1 import broker_pb2, broker_pb2_grpc, entities_pb2  # noqa: E402
from tracim.plugin.v1 import events_pb2, http_pb2, plugin_pb2, plugin_pb2_grpc  # noqa: E402

# Upper bound for every wait: generous for a loaded 2-core machine, still a failure not a hang.
DEADLINE_S = 10.0
SECRET_KEY = "tracim-plugin-secret"
REFUSAL = "missing or wrong tracim-plugin-secret"
PING_ROUTE = "/plugins/py_hello/ping"
SETTINGS = {"language": "fr", "greeting": "Bonjour"}


class PluginProcess:
    """The plugin as the runner starts it, with its stdout and stderr read as log lines."""

    def __init__(self, plugin_dir: Path, env: dict[str, str]) -> None:
        manifest = json.loads((plugin_dir / "plugin.json").read_text())
        self._process = subprocess.Popen(
            manifest["command"], cwd=plugin_dir, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # Its own process group, as the runner does.
        self._lines: list[str] = []
        self._eof = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    @property
    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def wait_for_line(self, expected: str) -> None:
        """Waits until the plugin printed `expected` as a whole line; fails at the deadline."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: expected in self._lines or self._eof, timeout=DEADLINE_S)
            if not found or expected not in self._lines:
                raise AssertionError(f"no line {expected!r} in the plugin's output:\n"
                                     + "\n".join(self._lines))

    def wait_exit(self) -> int:
        """The exit code, once the process ended and its output was read to the end."""
        code = self._process.wait(timeout=DEADLINE_S)
        self._reader.join(timeout=DEADLINE_S)
        return code

    def is_running(self) -> bool:
        return self._process.poll() is None

    def send_signal(self, signum: int) -> None:
        self._process.send_signal(signum)

    def kill(self) -> None:
        if self.is_running():
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=DEADLINE_S)
        self._reader.join(timeout=DEADLINE_S)  # EOF follows the exit; then the pipe can go.
        self._process.stdout.close()


class FakeRegistrar(broker_pb2_grpc.RegistrarServicer):
    """Records each Register call and answers with `reply(request, context)`."""

    def __init__(self, reply) -> None:
        self.calls: queue.Queue = queue.Queue()
        self._reply = reply

    def Register(self, request, context):
        self.calls.put((request, dict(context.invocation_metadata())))
        return self._reply(request, context)

    def next_call(self, plugin: PluginProcess) -> tuple[broker_pb2.RegisterRequest, dict]:
        """The next Register call and its metadata; fails at the deadline."""
        try:
            return self.calls.get(timeout=DEADLINE_S)
        except queue.Empty:
            raise AssertionError("the plugin did not call Register; its output:\n"
                                 + "\n".join(plugin.lines)) from None


def accept_with_settings(request, context) -> broker_pb2.RegisterResponse:
    return broker_pb2.RegisterResponse(protocol_version=1, settings=SETTINGS,
                                       broker_version="fake")


def refuse_with(code: grpc.StatusCode, details: str):
    def reply(request, context):
        context.abort(code, details)
    return reply


class EventStream:
    """The broker's side of Plugin.Events: send a batch, read the ack."""

    def __init__(self, stub: plugin_pb2_grpc.PluginStub, metadata) -> None:
        self._batches: queue.Queue = queue.Queue()
        # The plugin reads batches until the None sentinel half-closes the stream.
        self.acks = stub.Events(iter(self._batches.get, None), metadata=metadata,
                                timeout=3 * DEADLINE_S)

    def send(self, *events: events_pb2.Event) -> events_pb2.EventAck:
        self._batches.put(events_pb2.EventBatch(events=events))
        return next(self.acks)

    def close(self) -> None:
        self._batches.put(None)
        self.acks.cancel()


def user_created(event_id: int, public_name: str, user_id: int,
                 redelivered: bool = False) -> events_pb2.Event:
    return events_pb2.Event(
        event_id=event_id, hook="on_user_created", event_type="user.created",
        redelivered=redelivered,
        user=entities_pb2.User(user_id=user_id, public_name=public_name))


class PyHelloHandshakeTest(unittest.TestCase):

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="pyhello-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.secret = secrets.token_hex(32)
        self.metadata = ((SECRET_KEY, self.secret),)
        self.plugin_socket = self.dir / "plugin.sock"
        self.broker_socket = self.dir / "broker.sock"
        self.manifest = json.loads((ARGS.plugin_dir / "plugin.json").read_text())

    # -- Helpers -------------------------------------------------------------------------------

    def broker_env(self, protocol_versions: str = "1") -> dict[str, str]:
        """The allow-listed environment plus the TRACIM_PLUGIN_* variables, as the broker sets."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.dir),
            "PYTHONUNBUFFERED": "1",
            "TRACIM_PLUGIN_NAME": "py_hello",
            "TRACIM_PLUGIN_SECRET": self.secret,
            "TRACIM_PLUGIN_SOCKET": str(self.plugin_socket),
            "TRACIM_BROKER_SOCKET": str(self.broker_socket),
            "TRACIM_PLUGIN_PROTOCOL_VERSIONS": protocol_versions,
            "TRACIM_PLUGIN_LAUNCH": "1",
        }

    def start_broker(self, reply=accept_with_settings) -> FakeRegistrar:
        registrar = FakeRegistrar(reply)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        broker_pb2_grpc.add_RegistrarServicer_to_server(registrar, server)
        server.add_insecure_port(f"unix:{self.broker_socket}")
        server.start()
        self.addCleanup(server.stop, None)
        return registrar

    def spawn(self, env: dict[str, str]) -> PluginProcess:
        plugin = PluginProcess(ARGS.plugin_dir, env)
        self.addCleanup(plugin.kill)
        return plugin

    def start_registered(self) -> tuple[PluginProcess, FakeRegistrar]:
        registrar = self.start_broker()
        plugin = self.spawn(self.broker_env())
        registrar.next_call(plugin)
        plugin.wait_for_line("py_hello registered (protocol 1, settings: greeting, language)")
        return plugin, registrar

    def plugin_channel(self) -> grpc.Channel:
        channel = grpc.insecure_channel(f"unix:{self.plugin_socket}")
        self.addCleanup(channel.close)
        return channel

    def open_events(self, channel: grpc.Channel) -> EventStream:
        stream = EventStream(plugin_pb2_grpc.PluginStub(channel), self.metadata)
        self.addCleanup(stream.close)
        return stream

    def assert_rpc_error(self, call, code: grpc.StatusCode, details: str) -> None:
        with self.assertRaises(grpc.RpcError) as raised:
            call()
        self.assertEqual(raised.exception.code(), code)
        self.assertEqual(raised.exception.details(), details)

    def http(self, channel: grpc.Channel, *parts: http_pb2.HttpRequestPart):
        responses = plugin_pb2_grpc.PluginStub(channel).HandleHttp(
            iter(parts), metadata=self.metadata, timeout=DEADLINE_S)
        return list(responses)

    # -- Handshake -----------------------------------------------------------------------------

    def test_registers_name_version_hooks_and_route_with_the_secret(self) -> None:
        registrar = self.start_broker()
        plugin = self.spawn(self.broker_env(protocol_versions="1"))

        request, metadata = registrar.next_call(plugin)

        self.assertEqual(metadata.get(SECRET_KEY), self.secret)
        self.assertEqual(request.name, "py_hello")
        self.assertEqual(request.version, self.manifest["version"])
        self.assertEqual(request.protocol_version, 1)
        self.assertEqual(list(request.hooks), ["on_plugins_loaded", "on_user_created"])
        self.assertEqual(list(request.routes), [broker_pb2.Route(method="GET", path=PING_ROUTE)])
        plugin.wait_for_line("py_hello registered (protocol 1, settings: greeting, language)")

    def test_picks_the_highest_common_protocol_version(self) -> None:
        registrar = self.start_broker()
        plugin = self.spawn(self.broker_env(protocol_versions="3, 1,x,2"))

        request, _ = registrar.next_call(plugin)

        self.assertEqual(request.protocol_version, 1)

    def test_reports_serving_for_the_plugin_service_and_not_found_otherwise(self) -> None:
        self.start_registered()
        health = health_pb2_grpc.HealthStub(self.plugin_channel())
        serving = health_pb2.HealthCheckResponse.SERVING

        for service in ("", "tracim.plugin.v1.Plugin"):
            with self.subTest(service=service):
                response = health.Check(health_pb2.HealthCheckRequest(service=service),
                                        metadata=self.metadata, timeout=DEADLINE_S)
                self.assertEqual(response.status, serving)
        self.assert_rpc_error(
            lambda: health.Check(health_pb2.HealthCheckRequest(service="other"),
                                 metadata=self.metadata, timeout=DEADLINE_S),
            grpc.StatusCode.NOT_FOUND, "unknown service 'other'")

    def test_refuses_calls_without_the_launch_secret(self) -> None:
        plugin, _ = self.start_registered()
        channel = self.plugin_channel()
        health = health_pb2_grpc.HealthStub(channel)
        stub = plugin_pb2_grpc.PluginStub(channel)
        wrong = ((SECRET_KEY, secrets.token_hex(32)),)

        for metadata in ((), wrong):
            with self.subTest(metadata=metadata):
                self.assert_rpc_error(
                    lambda: health.Check(health_pb2.HealthCheckRequest(), metadata=metadata,
                                         timeout=DEADLINE_S),
                    grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
                self.assert_rpc_error(
                    lambda: stub.Shutdown(plugin_pb2.ShutdownRequest(grace_ms=1000),
                                          metadata=metadata, timeout=DEADLINE_S),
                    grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
                self.assert_rpc_error(
                    lambda: next(stub.Events(iter(()), metadata=metadata, timeout=DEADLINE_S)),
                    grpc.StatusCode.UNAUTHENTICATED, REFUSAL)
        self.assertTrue(plugin.is_running())

    # -- Events --------------------------------------------------------------------------------

    def test_acknowledges_events_and_says_hello_on_plugins_loaded(self) -> None:
        plugin, _ = self.start_registered()
        events = self.open_events(self.plugin_channel())

        loaded = events_pb2.Event(
            event_id=1, hook="on_plugins_loaded", event_type="plugins.loaded",
            plugins_loaded=events_pb2.PluginsLoaded(ready=["py_hello"]))
        self.assertEqual(list(events.send(loaded).event_ids), [1])
        self.assertEqual(list(events.send(user_created(2, "Alice", 7)).event_ids), [2])

        plugin.wait_for_line("py_hello got on_plugins_loaded 1")
        plugin.wait_for_line("py_hello: Hello World !")
        plugin.wait_for_line("py_hello got on_user_created 2")
        plugin.wait_for_line("py_hello: welcome Alice (user 7)")

    def test_acknowledges_a_batch_as_a_whole(self) -> None:
        self.start_registered()
        events = self.open_events(self.plugin_channel())

        ack = events.send(user_created(3, "Bob", 8), user_created(4, "Carol", 9))

        self.assertEqual(list(ack.event_ids), [3, 4])

    def test_acknowledges_a_redelivered_event_without_handling_it_twice(self) -> None:
        plugin, _ = self.start_registered()
        events = self.open_events(self.plugin_channel())

        events.send(user_created(5, "Dan", 10))
        ack = events.send(user_created(5, "Dan", 10, redelivered=True))
        events.send(user_created(6, "Eve", 11))

        self.assertEqual(list(ack.event_ids), [5])
        # Output is ordered: once event 6 shows, everything about event 5 has been read.
        plugin.wait_for_line("py_hello got on_user_created 6")
        self.assertEqual(plugin.lines.count("py_hello got on_user_created 5"), 1)
        self.assertIn("py_hello skipped on_user_created 5 (already handled)", plugin.lines)

    # -- HTTP ----------------------------------------------------------------------------------

    def test_answers_the_ping_route_with_pong(self) -> None:
        self.start_registered()
        head = http_pb2.HttpRequestHead(method="GET", path=PING_ROUTE, route=PING_ROUTE,
                                        request_id="req-1", content_length=-1)

        parts = self.http(self.plugin_channel(), http_pb2.HttpRequestPart(head=head),
                          http_pb2.HttpRequestPart(body=b"ignored"))

        self.assertEqual([part.WhichOneof("part") for part in parts], ["head", "body"])
        self.assertEqual(parts[0].head.status, 200)
        self.assertEqual(list(parts[0].head.headers),
                         [http_pb2.HttpHeader(name="Content-Type", value="application/json")])
        self.assertEqual(json.loads(parts[1].body), {"pong": True})

    def test_answers_404_for_a_route_it_did_not_register(self) -> None:
        self.start_registered()
        route = "/plugins/py_hello/other"
        head = http_pb2.HttpRequestHead(method="POST", path=route, route=route)

        parts = self.http(self.plugin_channel(), http_pb2.HttpRequestPart(head=head))

        self.assertEqual(parts[0].head.status, 404)
        self.assertEqual(json.loads(parts[1].body), {"error": f"no route POST {route}"})

    def test_fails_a_request_stream_that_does_not_start_with_the_head(self) -> None:
        self.start_registered()
        channel = self.plugin_channel()

        self.assert_rpc_error(
            lambda: self.http(channel, http_pb2.HttpRequestPart(body=b"x")),
            grpc.StatusCode.INVALID_ARGUMENT, "the first HttpRequestPart must be the head")

    # -- Stopping ------------------------------------------------------------------------------

    def test_answers_shutdown_then_closes_events_and_exits_0_within_the_grace_period(self):
        plugin, _ = self.start_registered()
        channel = self.plugin_channel()
        events = self.open_events(channel)
        events.send(user_created(1, "Fay", 12))  # The stream is open and in use.
        grace_ms = 4000

        plugin_pb2_grpc.PluginStub(channel).Shutdown(
            plugin_pb2.ShutdownRequest(reason="test over", grace_ms=grace_ms),
            metadata=self.metadata, timeout=DEADLINE_S)
        answered = time.monotonic()

        self.assertEqual(plugin.wait_exit(), 0)
        self.assertLess(time.monotonic() - answered, grace_ms / 1000)
        self.assertIn("py_hello stopping: test over (grace 4000 ms)", plugin.lines)
        with self.assertRaises(grpc.RpcError) as ended:
            next(events.acks)
        self.assertEqual(ended.exception.code(), grpc.StatusCode.CANCELLED)

    def test_exits_0_on_sigterm(self) -> None:
        plugin, _ = self.start_registered()

        plugin.send_signal(signal.SIGTERM)

        self.assertEqual(plugin.wait_exit(), 0)
        self.assertEqual(plugin.lines[-1], "py_hello stopped by a signal")

    # -- Failed handshakes ---------------------------------------------------------------------

    def test_exits_1_with_one_line_when_the_broker_refuses_registration(self) -> None:
        refusals = (
            (grpc.StatusCode.UNAUTHENTICATED, "missing or wrong secret"),
            (grpc.StatusCode.FAILED_PRECONDITION, "protocol version 1 is not supported"),
            (grpc.StatusCode.INVALID_ARGUMENT, "unknown hook \"on_user_created\""),
        )
        for code, details in refusals:
            with self.subTest(code=code.name):
                self.broker_socket = self.dir / f"broker-{code.name}.sock"
                self.plugin_socket = self.dir / f"plugin-{code.name}.sock"
                registrar = self.start_broker(reply=refuse_with(code, details))
                plugin = self.spawn(self.broker_env())

                registrar.next_call(plugin)

                self.assertEqual(plugin.wait_exit(), 1)
                self.assertEqual(plugin.lines[-1],
                                 f"py_hello: registration failed: {code.name}: {details}")

    def test_exits_1_without_registering_when_no_protocol_version_is_common(self) -> None:
        registrar = self.start_broker()
        plugin = self.spawn(self.broker_env(protocol_versions="2,3"))

        self.assertEqual(plugin.wait_exit(), 1)
        self.assertEqual(
            plugin.lines[-1],
            "py_hello: the broker offers protocol versions [2, 3], this plugin speaks [1]")
        self.assertTrue(registrar.calls.empty())

    def test_exits_2_with_one_line_when_not_started_by_the_broker(self) -> None:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        plugin = self.spawn(env)

        self.assertEqual(plugin.wait_exit(), 2)
        self.assertEqual(plugin.lines, [
            "py_hello: TRACIM_PLUGIN_SOCKET is not set: this is a tracim plugin, it must be "
            "started by tracim-plugin-broker (see docs/protocol.md)"])


if __name__ == "__main__":
    unittest.main(argv=UNITTEST_ARGV)
