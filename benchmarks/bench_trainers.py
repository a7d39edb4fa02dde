"""Trainers for benchmarks/engine.py: one that does nothing, one with fixed work per step."""


def nothing(config, ctx):
    return {"score": 0.0}


def busy(config, ctx):
    """``steps`` steps of fixed arithmetic; reports one metric per step unless report is false."""
    report = config.get("report", True)
    work = config.get("work", 2000)
    total = 0.0
    for step in range(config.get("steps", 2000)):
        for i in range(work):
            total += (i * 0.5) ** 0.5
        if report:
            ctx.log(step, loss=total / (step + 1))
    return {"score": total}


def clock(config, ctx):
    """Logs the wall-clock time as its metric every ``every`` seconds, ``steps`` times."""
    import time

    for step in range(config.get("steps", 300)):
        ctx.log(step, t=time.time())
        time.sleep(config.get("every", 0.02))
    return {"score": 0.0}
