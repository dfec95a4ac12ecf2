"""Prometheus metrics for ``GET /metrics`` (one registry per process, no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from bot.models import ProbeResult, State, Transition

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.probes = Counter("sora_probes", "Probe results by service and outcome",
                              ["service", "outcome"], registry=self.registry)
        self.latency = Histogram("sora_probe_latency_seconds", "Probe latency",
                                 ["service"], registry=self.registry,
                                 buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.state = Gauge("sora_service_state", "1 for the current state of each service",
                           ["service", "state"], registry=self.registry)
        self.transitions = Counter("sora_transitions", "State transitions",
                                   ["service", "to"], registry=self.registry)
        self.cycle_seconds = Gauge("sora_probe_cycle_seconds", "Wall time of the last cycle",
                                   registry=self.registry)
        self.last_cycle = Gauge("sora_probe_cycle_last_timestamp_seconds",
                                "Unix time the last probe cycle finished", registry=self.registry)
        self.posts = Counter("sora_chat_posts", "Outbox delivery attempts by platform and result"
                             " (sent, failed: will retry, dropped: given up)",
                             ["platform", "result"], registry=self.registry)
        self.commands = Counter("sora_chat_commands", "Slash commands received by platform and "
                                "subcommand", ["platform", "command"], registry=self.registry)
        self.generations = Counter("sora_generations", "Test generations by final status "
                                   "(completed, failed, refused, uncertain, unrouted, expired, "
                                   "error) and route", ["status", "service"],
                                   registry=self.registry)
        self.generation_spend = Counter("sora_generation_spend_usd", "Settled cost of test "
                                        "generations in USD", registry=self.registry)
        self.outbox_pending = Gauge("sora_outbox_pending", "Posts waiting in the outbox",
                                    registry=self.registry)

    def observe(self, result: ProbeResult, state: State, transition: Transition | None) -> None:
        self.probes.labels(result.service, result.outcome.value).inc()
        if result.latency_ms is not None and result.http_status is not None:
            self.latency.labels(result.service).observe(result.latency_ms / 1000)
        for s in State:
            self.state.labels(result.service, s.value).set(1 if s is state else 0)
        if transition is not None:
            self.transitions.labels(result.service, transition.to_state.value).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
