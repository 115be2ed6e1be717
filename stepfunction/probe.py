"""Is Step Functions there, and is mail going out? Asked once at start-up, and by Kinto's
``/__heartbeat__`` (its ``stepfunction`` check).

Start-up goes on whatever the answer (AWS may be unreachable at boot): one WARNING names the
endpoint that does not answer as Step Functions.
"""

import logging
import threading

from stepfunction import notices


logger = logging.getLogger(__name__)

# Each question to Step Functions waits this long at most (connection, then reply).
PROBE_SECONDS = 3


def endpoint(settings):
    """The endpoint's name, for operators (never with credentials)."""
    return (
        settings.aws_endpoint_url
        or f"AWS Step Functions ({settings.aws_region or 'default region'})"
    )


def step_functions_problem(registry):
    """Why the endpoint does not answer as Step Functions, or None when it does."""
    return registry.stepfunction_client.probe(PROBE_SECONDS)


def warn_unless_step_functions(registry):
    """Ask the endpoint once, on a thread: start-up waits for its answer, briefly."""

    def ask():
        problem = step_functions_problem(registry)
        if problem is not None:
            logger.warning(
                "stepfunction: %s does not answer as Step Functions (%s): answers will be "
                "refused (502) until it does; check stepfunction.aws_endpoint_url",
                endpoint(registry.stepfunction_settings),
                problem,
            )

    thread = threading.Thread(target=ask, name="stepfunction-probe", daemon=True)
    thread.start()
    thread.join(2 * PROBE_SECONDS + 1)


def heartbeat(request):
    """Kinto's ``stepfunction`` heartbeat: Step Functions answers as itself and, with mail on,
    no mail is overdue by more than ``notices.OVERDUE_SECONDS``."""
    registry = request.registry
    problem = step_functions_problem(registry)
    if problem is not None:
        logger.warning("heartbeat: %s: %s", endpoint(registry.stepfunction_settings), problem)
        return False
    if registry.stepfunction_settings.mail_enabled:
        late = notices.overdue_notices(request, limit=1)
        if late:
            logger.warning("heartbeat: the mail of %s is overdue", late[0]["uri"])
            return False
    return True


def includeme(config):
    config.registry.heartbeats["stepfunction"] = heartbeat
    warn_unless_step_functions(config.registry)
