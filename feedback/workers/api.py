"""Workers in the REST API: ``GET /api/workers/`` for platform admins."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .selectors import workers_list
from .views import check_admin


class WorkerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Celery's node name, e.g. llm@host.")
    host = serializers.CharField()
    pid = serializers.IntegerField()
    queues = serializers.ListField(child=serializers.CharField())
    pool = serializers.CharField()
    concurrency = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    seconds_since = serializers.FloatField(help_text="Seconds since its last heartbeat.")
    state = serializers.ChoiceField(
        choices=["alive", "stale", "stopped"],
        help_text="stale: not seen within ANNOTATOR_WORKER_STALE_AFTER; stopped: shut down cleanly.",
    )


class WorkerList(APIView):
    @extend_schema(responses=WorkerSerializer(many=True))
    def get(self, request):
        check_admin(request.user)
        return Response(WorkerSerializer(workers_list(), many=True).data)
