"""Data and messaging building blocks: databases, an event bus, an event store, CQRS read
models, sagas (orchestrated and choreographed) and an API gateway.

Each block is built from core parts (services, endpoints, pools, nodes, links, scheduled
callbacks) and fails the way the real thing fails: pools fill, nodes crash, replicas lag,
messages are duplicated and redelivered, clocks disagree. Metrics go under ``db.<name>.*``,
``bus.<name>.*``, ``saga.<name>.*``, ``gateway.<name>.*`` and ``anomaly.*``.
"""

from sim.data.bus import Delivery, EventBus, Message, Subscription
from sim.data.choreography import ChoreographedSaga, ChoreographyStep, SagaEvent
from sim.data.cqrs import Query, ReadModel, View
from sim.data.database import (
    MONGODB,
    POSTGRESQL,
    PROFILES,
    REDIS,
    Apply,
    Database,
    DatabaseProfile,
    Put,
    Row,
    Scan,
    is_conflict,
)
from sim.data.eventstore import ANY, NO_STREAM, Append, Appended, EventStore, RecordedEvent
from sim.data.gateway import FanOut, Gateway, GatewayReply, GatewayRequest, Part, Route
from sim.data.inbox import EffectLog, Inbox
from sim.data.participant import Participant, StepRequest
from sim.data.publisher import Publisher
from sim.data.saga import (
    COMMITTED,
    COMPENSATED,
    SagaOrchestrator,
    SagaRecord,
    SagaStep,
    SagaTracker,
)
from sim.data.tables import Table, database_tables

__all__ = [
    "ANY",
    "COMMITTED",
    "COMPENSATED",
    "MONGODB",
    "NO_STREAM",
    "POSTGRESQL",
    "PROFILES",
    "REDIS",
    "Append",
    "Appended",
    "Apply",
    "ChoreographedSaga",
    "ChoreographyStep",
    "Database",
    "DatabaseProfile",
    "Delivery",
    "EffectLog",
    "EventBus",
    "EventStore",
    "FanOut",
    "Gateway",
    "GatewayReply",
    "GatewayRequest",
    "Inbox",
    "Message",
    "Part",
    "Participant",
    "Publisher",
    "Put",
    "Query",
    "ReadModel",
    "RecordedEvent",
    "Route",
    "Row",
    "SagaEvent",
    "SagaOrchestrator",
    "SagaRecord",
    "SagaStep",
    "SagaTracker",
    "Scan",
    "StepRequest",
    "Subscription",
    "Table",
    "View",
    "database_tables",
    "is_conflict",
]
