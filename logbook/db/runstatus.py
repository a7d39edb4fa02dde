"""The states of a run, in one place (imported by the CLI, the engine, the verdicts and the app)."""

ACTIVE = ("queued", "running")
FINISHED = ("succeeded", "failed", "diverged", "crashed", "cancelled")
RETRYABLE = ("failed", "crashed", "cancelled", "diverged")  # ended without a usable value
RESULT = ("succeeded", "failed", "diverged", "crashed")  # ended on its own with an outcome; cancelled has none
COUNTED_ORIGINS = ("planned", "extra")  # the seed origins a verdict counts (audit and pilot seeds are not)

DEFAULT_BATCH = 32  # seeds of one arm a worker trains in one process, where the trainer can
