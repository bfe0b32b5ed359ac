"""grpc.health.v1 for module servers: SERVING once the module is ready."""

import threading

from gati_sdk.protocol.grpc.health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self):
        self._status = NOT_SERVING
        self._changed = threading.Condition()

    def set(self, status) -> None:
        with self._changed:
            self._status = status
            self._changed.notify_all()

    def Check(self, request, context):
        return health_pb2.HealthCheckResponse(status=self._status)

    def Watch(self, request, context):
        last = None
        while context.is_active():
            with self._changed:
                if self._status == last:
                    self._changed.wait(timeout=1.0)
                    continue
                last = self._status
            yield health_pb2.HealthCheckResponse(status=last)
