"""Every Redis key name the job system uses, in one place."""

from __future__ import annotations

# Seed-defined names: `redis-cli HGETALL herojobs:default:email:42` shows a live job.
JOB_PREFIX = "herojobs"
QUEUE_PREFIX = "heroqueue"

# Everything else lives under heroagent:.
QUEUES = "heroagent:queues"  # set of "<circle>:<topic>" that ever had a queue
JOB_LOCATION = "heroagent:jobloc"  # hash: job id -> "<circle>:<topic>", for get_job(id)
DOORBELL = "heroagent:doorbell"  # list: one token per enqueue; idle workers block on it
ROUND_ROBIN = "heroagent:rr"  # the place, among the sorted queues, where the next fetch starts
FENCE = "heroagent:fence"  # counter: a fresh token for each hand-out of a job
WORKERS = "heroagent:workers"  # set of watchdog ids that may hold jobs
STREAM = "heroagent:stream"  # job versions reported by workers, persisted by the engine
STREAM_GROUP = "persist"
EVENTS_CHANNEL = "heroagent:events"  # pub/sub: JSON job events for other processes
EPOCH = "heroagent:epoch"  # set by the engine; gone means the server lost its data
# the highest job id ever queued: a start never hands it out again, whatever OurDB lost
LAST_ID = "heroagent:last_id"
PAUSED = "heroagent:paused"  # set of "<circle>:<topic>" queues not handed out
# sorted set: ids of jobs waiting for a time (score: run_at); no worker holds them.
SCHEDULED = "heroagent:scheduled"
# list: a token per newly scheduled job, so the promoter wakes for an earlier due time.
SCHEDULE_BELL = "heroagent:schedbell"
# a leased lock (SET NX PX): the one promoter that moves due jobs to their queues.
PROMOTER_LOCK = "heroagent:promoter"
# pub/sub: the id of a job the engine ended by hand; the watchdog running it stops it.
CANCEL_CHANNEL = "heroagent:cancel"
# Priority levels: 0 (the default) waits in the seed's `heroqueue:<circle>:<topic>` list;
# level N > 0 in `heroqueue:<circle>:<topic>:p<N>`. A level's queues are in a set, and
# the levels that may have waiting jobs in another, so a fetch with no priorities in use
# looks at one empty set more and nothing else.
MAX_PRIORITY = 9
LEVELS = "heroagent:levels"  # set of levels 1-9 whose queue set is not empty
# hash: "<circle>:<topic>" -> JSON limits ({"max_active": N, "interval": seconds, ...})
LIMITS = "heroagent:limits"
# hash: "<circle>:<topic>" -> the server time (seconds) from which its next job may start
RATE_NEXT = "heroagent:ratenext"


def queue_name(circle: str, topic: str) -> str:
    """The "<circle>:<topic>" name of a queue."""
    return f"{circle}:{topic}"


def job_key(circle: str, topic: str, job_id: int) -> str:
    """The hash that holds a live job."""
    return f"{JOB_PREFIX}:{circle}:{topic}:{job_id}"


def queue_key(circle: str, topic: str, priority: int = 0) -> str:
    """The list of job ids waiting in a queue at one priority level."""
    base = f"{QUEUE_PREFIX}:{circle}:{topic}"
    return f"{base}:p{priority}" if priority else base


def level_queues_key(priority: int) -> str:
    """The set of "<circle>:<topic>" queues that may have jobs waiting at a level above 0."""
    return f"heroagent:queues:p{priority}"


def active_key(queue: str) -> str:
    """The set of ids of a "<circle>:<topic>" queue's active jobs, kept while it has max_active."""
    return f"heroagent:active:{queue}"


def processing_key(worker: str) -> str:
    """The list of job ids a watchdog holds while it runs them."""
    return f"heroagent:processing:{worker}"


def worker_key(worker: str) -> str:
    """A watchdog's record for people: host, pid, slots, busy slots, times, version."""
    return f"heroagent:worker:{worker}"


# set of watchdog ids that wrote a record; readers drop ids whose record expired.
WORKER_RECORDS = "heroagent:workerrecs"


def heartbeat_key(worker: str) -> str:
    """A key with a TTL that a live watchdog keeps renewing."""
    return f"heroagent:heartbeat:{worker}"


REQUESTS = "heroagent:requests"  # list: JSON requests from `heroagent submit|job|jobs`


def reply_key(token: str) -> str:
    """Where the engine puts the answer to one request."""
    return f"heroagent:reply:{token}"


def fired_key(schedule: str, fire_time: float) -> str:
    """The claim on one fire of a schedule: whoever sets it first creates that fire's job."""
    return f"heroagent:fired:{schedule}:{fire_time:.3f}"


def schedule_mark_key(schedule: str) -> str:
    """The newest fire time any engine claimed for a schedule (guards fires whose claim expired)."""
    return f"heroagent:schedule:{schedule}:newest"


def unique_claim_key(circle: str, topic: str, unique_key: str) -> str:
    """Who holds a unique key: a job id, or a submit's placeholder while it stores its job."""
    return f"heroagent:unique:{circle}:{topic}:{unique_key}"


# Set by job id: the dependants waiting for that job (kept in step by the Lua scripts).
CHILDREN_PREFIX = "heroagent:children:"
# Set by job id: the parents a dependant still waits for.
PARENTS_PREFIX = "heroagent:parents:"
