"""The render market, sans-I/O: volunteer policies, job specs, leases, quorum and reputation.

Everything here is pure (records in, decisions out); ``daemon/market_service.py`` is the trio
adapter that moves these decisions over gossip and bitswap.
"""

from .jobspec import JobCaps, JobError, JobInput, JobSpec, job_for_step
from .leases import Grant, JobBook, LeaseError, Offer, Slot, SlotState, choose_volunteers
from .policy import (
    JobFacts,
    PolicyError,
    VolunteerPolicy,
    machine_load_per_cpu,
    refuse_job,
    refuse_now,
)
from .quorum import SlotResult, Verdict, decide, quorum_size, replicas_after_first_grant
from .reputation import Credit, is_avoided, is_trusted, reputation
from .volunteer import Held, KnownJob, LeaseAnswer, VolunteerBook

__all__ = [
    "Credit",
    "Grant",
    "Held",
    "JobBook",
    "JobCaps",
    "JobError",
    "JobFacts",
    "JobInput",
    "JobSpec",
    "KnownJob",
    "LeaseAnswer",
    "LeaseError",
    "Offer",
    "PolicyError",
    "Slot",
    "SlotResult",
    "SlotState",
    "Verdict",
    "VolunteerBook",
    "VolunteerPolicy",
    "choose_volunteers",
    "decide",
    "is_avoided",
    "is_trusted",
    "job_for_step",
    "machine_load_per_cpu",
    "quorum_size",
    "refuse_job",
    "refuse_now",
    "replicas_after_first_grant",
    "reputation",
]
