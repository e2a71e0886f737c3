#!/usr/bin/python3
"""Interop checks of sharebuy servers from an independent gRPC implementation (Debian's python3-grpcio).

Each target is checked over plain gRPC, with message classes that protoc generates from protos/ at run time:

  * Health/Check ""                          -> SERVING
  * Health/Check <service name> (if given)   -> SERVING
  * Health/Check "no.such.Service"           -> NOT_FOUND with a message
  * an unknown method path                   -> UNIMPLEMENTED with a message, well before the deadline
  * a v1 method without a handler (if given) -> UNIMPLEMENTED with a message
  * a payload that is not protobuf           -> INVALID_ARGUMENT with a message
  * a request over the server's size limit   -> RESOURCE_EXHAUSTED
  * Health/Watch with a 0.5 s deadline       -> first message SERVING, then DEADLINE_EXCEEDED

Prints one PASS/FAIL line per check; exits 0 when all pass, 1 when any fails, 2 on a usage or setup error.
Run it with /usr/bin/python3 (the interpreter that has python3-grpcio); tests/interop/run does.
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

try:
    import grpc
except ImportError:
    sys.stderr.write("interop: this interpreter has no grpc module; run it with /usr/bin/python3 "
                     "(Debian's python3-grpcio)\n")
    sys.exit(2)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEALTH_PROTO = "grpc/health/v1/health.proto"
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
UNKNOWN_METHOD = "/sharebuy.nosuch.v1.Nothing/Nope"


def identity(b):
    return b


def load_health(protos_dir, out_dir):
    """protoc --python_out, then load the module under a private name (a package named "grpc" would clash with
    grpcio's own)."""
    try:
        subprocess.run(["protoc", "--python_out=" + out_dir, "--proto_path=" + protos_dir,
                        os.path.join(protos_dir, HEALTH_PROTO)], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        sys.stderr.write("interop: protoc failed on %s: %s\n" % (HEALTH_PROTO, e))
        sys.exit(2)
    path = os.path.join(out_dir, "grpc", "health", "v1", "health_pb2.py")
    spec = importlib.util.spec_from_file_location("sb_interop_health_pb2", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Checker:
    def __init__(self, target, pb, deadline):
        self.target = target
        self.pb = pb
        self.deadline = deadline
        self.failures = 0
        self.passes = 0
        self.channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 64 << 20),
        ])

    def report(self, name, ok, detail):
        if ok:
            self.passes += 1
        else:
            self.failures += 1
        print("%s  %-22s %-28s %s" % ("PASS" if ok else "FAIL", self.target, name, detail), flush=True)

    def check_rpc(self):
        return self.channel.unary_unary(CHECK, request_serializer=self.pb.HealthCheckRequest.SerializeToString,
                                        response_deserializer=self.pb.HealthCheckResponse.FromString)

    def status_name(self, value):
        return self.pb.HealthCheckResponse.ServingStatus.Name(value)

    def expect_error(self, name, fn, want, want_in_message=None, max_seconds=None):
        """Run fn(); it must raise an RpcError with code `want` and a non-empty message."""
        t0 = time.monotonic()
        try:
            resp = fn()
        except grpc.RpcError as e:
            took = time.monotonic() - t0
            code, msg = e.code(), e.details() or ""
            if code != want:
                self.report(name, False, "got %s (%r), wanted %s" % (code.name, msg, want.name))
            elif not msg:
                self.report(name, False, "%s without a message" % code.name)
            elif want_in_message and want_in_message not in msg:
                self.report(name, False, "%s, but the message %r does not mention %r" %
                            (code.name, msg, want_in_message))
            elif max_seconds is not None and took > max_seconds:
                self.report(name, False, "%s after %.3f s: slower than %.1f s" % (code.name, took, max_seconds))
            else:
                self.report(name, True, "%s %r (%.0f ms)" % (code.name, msg[:100], took * 1000))
            return
        self.report(name, False, "answered OK (%s), wanted %s" % (str(resp).strip().replace("\n", " "), want.name))

    def run(self, service_name, max_request_bytes, unimplemented):
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.deadline)
        except grpc.FutureTimeoutError:
            self.report("connect", False, "not reachable within %.0f s" % self.deadline)
            return
        self.report("connect", True, "channel ready")

        check = self.check_rpc()
        names = [("health ''", "")]
        if service_name:
            names.append(("health %s" % service_name.rsplit(".", 1)[-1], service_name))
        for label, svc in names:
            try:
                resp = check(self.pb.HealthCheckRequest(service=svc), timeout=self.deadline)
                ok = resp.status == self.pb.HealthCheckResponse.SERVING
                self.report(label, ok, "status %s" % self.status_name(resp.status))
            except grpc.RpcError as e:
                self.report(label, False, "%s %r" % (e.code().name, e.details()))

        self.expect_error("health unknown service",
                          lambda: check(self.pb.HealthCheckRequest(service="no.such.Service"), timeout=self.deadline),
                          grpc.StatusCode.NOT_FOUND)

        # UNIMPLEMENTED must come at once, not when the client gives up: a 5 s deadline, answered within 1 s.
        unknown = self.channel.unary_unary(UNKNOWN_METHOD, request_serializer=identity,
                                           response_deserializer=identity)
        self.expect_error("unknown method", lambda: unknown(b"", timeout=5.0), grpc.StatusCode.UNIMPLEMENTED,
                          want_in_message=UNKNOWN_METHOD, max_seconds=1.0)
        for path in unimplemented:
            rpc = self.channel.unary_unary(path, request_serializer=identity, response_deserializer=identity)
            self.expect_error("v1 unimplemented " + path.rsplit("/", 1)[-1], lambda: rpc(b"", timeout=5.0),
                              grpc.StatusCode.UNIMPLEMENTED, want_in_message=path, max_seconds=1.0)

        # 0xff starts a field with an unterminated varint key: no protobuf parser accepts it.
        raw_check = self.channel.unary_unary(CHECK, request_serializer=identity, response_deserializer=identity)
        self.expect_error("garbage payload", lambda: raw_check(b"\xff\xff\xff", timeout=self.deadline),
                          grpc.StatusCode.INVALID_ARGUMENT)

        big = self.pb.HealthCheckRequest(service="x" * (2 * max_request_bytes))
        self.expect_error("oversized request (%d MiB)" % (2 * max_request_bytes >> 20),
                          lambda: check(big, timeout=self.deadline), grpc.StatusCode.RESOURCE_EXHAUSTED)

        watch = self.channel.unary_stream(WATCH, request_serializer=self.pb.HealthCheckRequest.SerializeToString,
                                          response_deserializer=self.pb.HealthCheckResponse.FromString)
        t0 = time.monotonic()
        stream = watch(self.pb.HealthCheckRequest(service=""), timeout=0.5)
        try:
            first = next(stream)
        except grpc.RpcError as e:
            self.report("watch first message", False, "%s %r before any message" % (e.code().name, e.details()))
            return
        except StopIteration:
            self.report("watch first message", False, "the stream ended without a message")
            return
        self.report("watch first message", first.status == self.pb.HealthCheckResponse.SERVING,
                    "status %s" % self.status_name(first.status))
        try:
            more = next(stream)
            self.report("watch deadline", False, "a second message (%s) while nothing changed" %
                        self.status_name(more.status))
        except StopIteration:
            self.report("watch deadline", False, "the server ended the stream with OK before the deadline")
        except grpc.RpcError as e:
            took = time.monotonic() - t0
            ok = e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and 0.4 <= took < 3.0
            self.report("watch deadline", ok, "%s after %.0f ms" % (e.code().name, took * 1000))

    def close(self):
        self.channel.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", required=True, metavar="HOST:PORT",
                    help="a server to check (repeatable)")
    ap.add_argument("--service-name", action="append", default=[], metavar="NAME",
                    help="the full service name the target at the same position serves, e.g. "
                         "sharebuy.region.v1.Region (repeatable, in the order of --target)")
    ap.add_argument("--unimplemented", action="append", default=[], metavar="/pkg.Service/Method",
                    help="a v1 method the targets do not implement yet: expect UNIMPLEMENTED (repeatable)")
    ap.add_argument("--max-request-bytes", type=int, default=1 << 20,
                    help="the servers' request size limit (default 1 MiB); twice this is sent")
    ap.add_argument("--deadline", type=float, default=5.0, help="seconds per call (default 5)")
    ap.add_argument("--protos", default=os.path.join(REPO, "protos"), help="the protos folder")
    args = ap.parse_args()
    if len(args.service_name) > len(args.target):
        ap.error("more --service-name than --target")

    with tempfile.TemporaryDirectory(prefix="sb-interop-") as tmp:
        pb = load_health(args.protos, tmp)
    failures = passes = 0
    for i, target in enumerate(args.target):
        name = args.service_name[i] if i < len(args.service_name) else None
        c = Checker(target, pb, args.deadline)
        try:
            c.run(name, args.max_request_bytes, args.unimplemented)
        finally:
            c.close()
        failures += c.failures
        passes += c.passes
    print("interop: %d passed, %d failed, %d target(s)" % (passes, failures, len(args.target)), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
