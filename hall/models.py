"""Imports every domain's models so that the metadata (and Alembic) sees all tables."""

from hall.accounts.models import Role, User  # noqa: F401
from hall.accounts.tokens import ApiToken  # noqa: F401
from hall.audit.models import AuditEvent, SignInAttempt  # noqa: F401
from hall.notifications.models import ChannelPreference, Delivery, Message, NotificationCursor  # noqa: F401
from hall.org.models import Membership, OrgUnit  # noqa: F401
from hall.processes.models import InstanceEvent, ProcessDefinition, ProcessInstance, ProcessVersion, Timer  # noqa: F401
from hall.quality.models import (  # noqa: F401
    Cycle,
    CycleUnit,
    Level,
    Measurement,
    MeasurementRevision,
    MonitoringPoint,
    PointOverride,
    QualityWarning,
    Standard,
    Subject,
    Target,
)
from hall.tasks.models import Attachment, Comment, HumanTask, TaskCandidate  # noqa: F401
