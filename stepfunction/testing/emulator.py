"""A local AWS Step Functions with activities: moto 5.2.5 in server mode, completed.

moto's state-machine interpreter (``execute_state_machine``) runs executions for real, but
moto 5.2.5 cannot serve activity workers: every execution gets an empty activity store, there
is no GetActivityTask, and SendTask* answers do not follow AWS for tasks that timed out or were
already answered. :func:`install` monkey-patches exactly those gaps, in place, and
:class:`Emulator` runs the patched moto server in a thread for tests and the ``make serve`` demo.

The patches reach into moto internals, so they are pinned to moto 5.2.5 (checked at import).
moto keeps its state in process-wide globals: emulators running in one process share it (and
the recorded calls and injected faults); each serves it on its own port.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import defaultdict
from typing import Any, Self

import moto


MOTO_VERSION = "5.2.5"
if moto.__version__ != MOTO_VERSION:  # pragma: no cover
    raise RuntimeError(
        f"stepfunction.testing.emulator patches moto {MOTO_VERSION} internals, "
        f"but moto {moto.__version__} is installed: pin moto=={MOTO_VERSION}."
    )

import boto3
from moto.core.config import default_user_config
from moto.core.exceptions import AWSError, JsonRESTError
from moto.core.responses import ActionResult, EmptyResult
from moto.server import ThreadedMotoServer
from moto.stepfunctions import exceptions as sfn_exceptions
from moto.stepfunctions.parser import models as parser_models
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import (
    ExecutionState,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import (
    StateTask,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import (
    ActivityCallbackEndpoint,
    ActivityTaskStartEndpoint,
    CallbackConsumerLeft,
    CallbackConsumerTimeout,
    CallbackOutcomeFailure,
    CallbackOutcomeSuccess,
    CallbackPoolManager,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.backend import activity as parser_activity
from moto.stepfunctions.parser.backend import execution as parser_execution
from moto.stepfunctions.responses import StepFunctionResponse

from stepfunction.testing.workflows import activity_step, callback_step, one_step


__all__ = ["DEFAULT_POLL_SECONDS", "POLL_SECONDS_ENV", "Emulator", "install", "preload"]

log = logging.getLogger(__name__)

POLL_SECONDS_ENV = "STEPFUNCTION_EMULATOR_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 60.0  # GetActivityTask long-poll time on AWS.

_Backend = parser_models.StepFunctionsParserBackend
_ORIGINAL = {
    "call_action": StepFunctionResponse.call_action,
    "create_activity": _Backend.create_activity,
    "delete_activity": _Backend.delete_activity,
    "start_execution": _Backend.start_execution,
    "add_activity_task": CallbackPoolManager.add_activity_task,
    "open_frame": Environment.open_frame,
    "execution_start": parser_execution.Execution.start,
    "terminated": parser_execution.BaseExecutionWorkerCommunication.terminated,
    "describe_execution": StepFunctionResponse.describe_execution,
    "set_error": Environment.set_error,
}
_installed = False
_poll_seconds = DEFAULT_POLL_SECONDS
_lock = threading.Lock()  # guards _calls, _faults and task answers.
_start_lock = threading.Lock()  # StartExecution: one execution per name, as on AWS.
_calls: list[str] = []
_faults: dict[str, list[dict[str, Any]]] = defaultdict(list)
_status_queues: list[str] = []  # SQS queue URLs that get the status-change events.


# AWS errors. moto.stepfunctions.parser.api has these names too, but they cannot be raised:
# moto's AWSError needs a message and a TYPE, which those classes do not set.
class TaskDoesNotExist(AWSError):
    TYPE = "TaskDoesNotExist"


class TaskTimedOut(AWSError):
    TYPE = "TaskTimedOut"


class InvalidOutput(AWSError):
    TYPE = "InvalidOutput"


class _Activity(parser_activity.Activity):
    """The interpreter's activity, whose task queue long-pollers can wait on."""

    def __init__(self, arn: str, name: str):
        super().__init__(arn=arn, name=name)
        self.condition = threading.Condition()


def _activity_store(backend: _Backend) -> dict[str, _Activity]:
    """The interpreter activity store of one backend (account + region), created lazily."""
    return backend.__dict__.setdefault("_emulator_activity_store", {})


# --- Patched backend methods -------------------------------------------------------------


def _create_activity(self: _Backend, *args: Any, **kwargs: Any) -> Any:
    """Also register the activity in the interpreter's store, so Task states can queue on it."""
    activity = _ORIGINAL["create_activity"](self, *args, **kwargs)
    _activity_store(self)[activity.arn] = _Activity(arn=activity.arn, name=activity.name)
    return activity


def _delete_activity(self: _Backend, activity_arn: str) -> None:
    _ORIGINAL["delete_activity"](self, activity_arn)
    _activity_store(self).pop(activity_arn, None)


class _Execution(parser_models.Execution):
    """moto's start_execution passes ``activity_store={}``: substitute the backend's store."""

    def __init__(self, *, account_id: str, region_name: str, **kwargs: Any):
        backend = parser_models.stepfunctions_parser_backends[account_id][region_name]
        kwargs["activity_store"] = _activity_store(backend)
        super().__init__(account_id=account_id, region_name=region_name, **kwargs)


def _start_execution(self: _Backend, state_machine_arn: str, name=None, *args, **kwargs):
    """moto names an unnamed execution "None" (so a second one already exists): use a UUID,
    as AWS does. One start at a time: moto looks for an execution of that name, then adds
    its own, so two concurrent starts of one name made two executions (AWS makes one)."""
    with _start_lock:
        return _ORIGINAL["start_execution"](
            self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs
        )


def _add_activity_task(self: CallbackPoolManager, callback_id, activity_arn, activity_input):
    """Queue the task and register its callback endpoint atomically, then wake the pollers.

    moto queues the task before it registers the endpoint; holding the activity's condition
    keeps a poller from taking a task whose endpoint it cannot find yet.
    """
    activity = self._activity_store.get(activity_arn)
    if not isinstance(activity, _Activity):
        return _ORIGINAL["add_activity_task"](self, callback_id, activity_arn, activity_input)
    with activity.condition:
        endpoint = _ORIGINAL["add_activity_task"](self, callback_id, activity_arn, activity_input)
        activity.condition.notify_all()
    return endpoint


def _open_frame(self: Environment, *args: Any, **kwargs: Any) -> Environment:
    frame = _ORIGINAL["open_frame"](self, *args, **kwargs)
    frames = self.__dict__.get("_emulator_task_frames")
    if frames is not None:
        frames.append(frame)
    return frame


def _task_evaluate_with_timeout(self: StateTask, env: Environment) -> None:
    """Mark the task's callback endpoint once the Task state attempt ends.

    moto has the consumer-error machinery (CallbackConsumerTimeout/Left) but never reports it.
    Timed out (state or heartbeat timeout) -> later answers get TaskTimedOut; any other end
    (outcome received, failure, error) -> TaskDoesNotExist. The task token lives in the frame
    this method opens (activity tasks) or is inherited by it (``.waitForTaskToken`` tasks).
    """
    frames: list[Environment] = []
    env.__dict__["_emulator_task_frames"] = frames
    timed_out = False
    try:
        ExecutionState._evaluate_with_timeout(self, env)
    except TimeoutError:
        timed_out = True
        raise
    finally:
        env.__dict__.pop("_emulator_task_frames", None)
        for frame in frames:
            token = frame.states.context_object.context_object_data.get("Task", {}).get("Token")
            endpoint = env.callback_pool_manager.get(token) if token else None
            if endpoint is not None and endpoint.consumer_error is None:
                endpoint.report(CallbackConsumerTimeout() if timed_out else CallbackConsumerLeft())


def _live_task(backend: _Backend, task_token: str):
    """The callback endpoint of a task still waiting for its answer, else the AWS error."""
    for execution in backend._get_executions():
        env = execution.exec_worker.env if execution.exec_worker else None
        endpoint = env.callback_pool_manager.get(task_token) if env else None
        if endpoint is None:
            continue
        if isinstance(endpoint.consumer_error, CallbackConsumerTimeout):
            raise TaskTimedOut("Task Timed Out: the task's state timed out.")
        if endpoint.consumer_error or endpoint.get_outcome() or not env.is_running():
            raise TaskDoesNotExist("Task Does Not Exist: it was answered or its execution ended.")
        return endpoint
    raise sfn_exceptions.InvalidToken()


def _send_task_success(self: _Backend, task_token: str, outcome: str) -> None:
    try:
        json.loads(outcome)
    except (TypeError, ValueError):
        raise InvalidOutput("Invalid Output: the output must be valid JSON.") from None
    with _lock:
        endpoint = _live_task(self, task_token)
        endpoint.notify(CallbackOutcomeSuccess(callback_id=task_token, output=outcome))


def _send_task_failure(self: _Backend, task_token: str, error=None, cause=None) -> None:
    with _lock:
        endpoint = _live_task(self, task_token)
        endpoint.notify(CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause))


def _send_task_heartbeat(self: _Backend, task_token: str) -> None:
    """AWS accepts a heartbeat for any live task, with or without HeartbeatSeconds."""
    _live_task(self, task_token).notify_heartbeat()


def _set_error(self: Environment, error: Any) -> None:
    """An execution stopped stays ABORTED: the task that StopExecution interrupted fails it
    no more (its history shows the task's end, then ExecutionAborted)."""
    if not isinstance(self._program_state, ProgramStopped):
        _ORIGINAL["set_error"](self, error)


def _stop_execution(self: _Backend, execution_arn: str, error=None, cause=None):
    """moto stops the interpreter but leaves the execution RUNNING while its task waits, and
    drops ``error`` and ``cause``: as on AWS, the waiting task ends and the execution is
    ABORTED before the reply (stopDate, error and cause in DescribeExecution, ExecutionAborted
    in its history). Stopping an execution that already ended changes nothing."""
    execution = self.describe_execution(execution_arn)  # ExecutionDoesNotExist, InvalidArn
    with _lock:
        if execution.status != "RUNNING":
            return execution
        execution.error, execution.cause = error, cause  # in its ABORTED status event too
        execution.stop(stop_date=datetime.datetime.now(datetime.UTC), error=error, cause=cause)
        env = execution.exec_worker.env if execution.exec_worker else None
        for endpoint in list(env.callback_pool_manager._pool.values()) if env else ():
            endpoint.report(CallbackConsumerLeft())  # later answers: TaskDoesNotExist
            endpoint.interrupt_all()  # a task waiting for its answer
            if isinstance(endpoint, ActivityCallbackEndpoint):  # or for a worker to take it
                endpoint.get_activity_task_start_endpoint()._next_activity_task_start_event.set()
    deadline = time.monotonic() + 5
    while execution.status == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.005)  # the interpreter ends the execution (ExecutionAborted, stopDate)
    if execution.status == "RUNNING":  # pragma: no cover (an interpreter that never ends)
        execution.exec_status = ExecutionStatus.ABORTED
        execution.stop_date = datetime.datetime.now(datetime.UTC)
    execution.error, execution.cause = error, cause  # DescribeExecution shows them, as on AWS
    return execution


def _get_activity_task(self: _Backend, activity_arn: str, worker_name: str | None) -> dict:
    """Long-poll the activity: hand each live task out once, or ``{}`` after the poll time."""
    self._validate_activity_arn(activity_arn)  # InvalidArn, as on AWS.
    activity = _activity_store(self).get(activity_arn)
    if activity is None:
        raise sfn_exceptions.ActivityDoesNotExist(f"Activity Does Not Exist: '{activity_arn}'")
    deadline = time.monotonic() + _poll_seconds
    with activity.condition:
        while True:
            while activity._tasks:
                task = activity._tasks.popleft()
                try:
                    endpoint = _live_task(self, task.task_token)
                except AWSError:  # its state timed out or its execution ended: skip it.
                    continue
                endpoint.notify_activity_task_start(worker_name)
                return {"taskToken": task.task_token, "input": task.task_input}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {}
            activity.condition.wait(remaining)


# --- Execution status-change events (EventBridge, to SQS) --------------------------------

STATUS_CHANGE = "Step Functions Execution Status Change"


def _epoch_millis(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def status_event(execution: parser_execution.Execution) -> dict[str, Any]:
    """The EventBridge event AWS sends for the execution's current status (its real shape:
    dates in epoch milliseconds, ``input``/``output`` as JSON text, null when absent)."""
    status = execution.exec_status.value
    output = None
    if status == "SUCCEEDED":
        output = json.dumps(execution.output, separators=(",", ":"))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": execution.account_id,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": execution.region_name,
        "resources": [execution.exec_arn],
        "detail": {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": status,
            "startDate": _epoch_millis(execution.start_date),
            "stopDate": _epoch_millis(execution.stop_date),
            "input": execution.execution_input,
            "output": output,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
            "redriveCount": 0,
            "redriveStatus": "NOT_REDRIVABLE" if status != "RUNNING" else None,
        },
    }


def _emit(execution: parser_execution.Execution) -> None:
    """Send the execution's status-change event to every configured queue (in-process, to
    moto's SQS); a missing queue is skipped, as EventBridge drops what it can't deliver."""
    from moto.sqs.models import sqs_backends

    with _lock:
        queues = list(_status_queues)
    if not queues or execution.exec_status is None:
        return
    body = json.dumps(status_event(execution))
    for url in queues:
        account, name = urllib.parse.urlparse(url).path.strip("/").split("/")[-2:]
        try:
            sqs_backends[account][execution.region_name].send_message(name, body)
        except Exception as e:  # the queue was deleted or reset meanwhile
            log.warning("status event for %s not sent to %s: %s", execution.exec_arn, url, e)


def _execution_start(self: parser_execution.Execution) -> None:
    _ORIGINAL["execution_start"](self)
    _emit(self)


def _terminated(self: parser_execution.BaseExecutionWorkerCommunication) -> None:
    _ORIGINAL["terminated"](self)
    _emit(self.execution)


def _response_describe_execution(self: StepFunctionResponse) -> ActionResult:
    """moto leaves out a TIMED_OUT execution's ``stopDate``, which AWS gives."""
    result = _ORIGINAL["describe_execution"](self)
    described = result.result
    if described.get("status") == "TIMED_OUT" and "stopDate" not in described:
        execution = self.stepfunction_backend.describe_execution(described["executionArn"])
        described["stopDate"] = execution.stop_date
    return result


def install_status_events() -> None:
    """Patch moto's executions to send status-change events when they start and end."""
    parser_execution.Execution.start = _execution_start
    parser_execution.BaseExecutionWorkerCommunication.terminated = _terminated
    StepFunctionResponse.describe_execution = _response_describe_execution


# --- Patched responses -------------------------------------------------------------------


def _response_get_activity_task(self: StepFunctionResponse) -> ActionResult:
    return ActionResult(
        self.stepfunction_backend.get_activity_task(
            self._get_param("activityArn"), self._get_param("workerName")
        )
    )


def _response_send_task_failure(self: StepFunctionResponse) -> EmptyResult:
    """moto drops ``cause``; pass it through."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"),
        error=self._get_param("error"),
        cause=self._get_param("cause"),
    )
    return EmptyResult()


def _response_stop_execution(self: StepFunctionResponse) -> ActionResult:
    """moto drops ``error`` and ``cause``; pass them through."""
    execution = self.stepfunction_backend.stop_execution(
        self._get_param("executionArn"),
        error=self._get_param("error"),
        cause=self._get_param("cause"),
    )
    return ActionResult({"stopDate": execution.stop_date})


def _call_action(self: StepFunctionResponse):
    """Record the action name and answer an injected fault instead, if one is pending."""
    action = self._get_action()
    with _lock:
        _calls.append(action)
        pending = _faults.get(action)
        fault = pending.pop(0) if pending else None
    if fault is None:
        return _ORIGINAL["call_action"](self)
    if fault["applied"]:  # the call takes effect, and its reply is lost
        _ORIGINAL["call_action"](self)
    error = JsonRESTError(fault["code"], fault["message"])
    # AWS names every reply, errors included, with a request id.
    headers = {**dict(error.get_headers()), "x-amzn-RequestId": str(uuid.uuid4())}
    return fault["status"], headers, error.get_body()


def install(poll_seconds: float | None = None) -> None:
    """Apply the patches (idempotent). ``poll_seconds``: GetActivityTask long-poll time;
    default: $STEPFUNCTION_EMULATOR_POLL_SECONDS, else 60 as on AWS."""
    global _installed, _poll_seconds
    if poll_seconds is None:
        poll_seconds = float(os.environ.get(POLL_SECONDS_ENV) or DEFAULT_POLL_SECONDS)
    _poll_seconds = float(poll_seconds)
    if _installed:
        return
    _Backend.create_activity = _create_activity
    _Backend.delete_activity = _delete_activity
    _Backend.start_execution = _start_execution
    _Backend.get_activity_task = _get_activity_task
    _Backend.send_task_success = _send_task_success
    _Backend.send_task_failure = _send_task_failure
    _Backend.send_task_heartbeat = _send_task_heartbeat
    _Backend.stop_execution = _stop_execution
    Environment.set_error = _set_error
    parser_models.Execution = _Execution
    CallbackPoolManager.add_activity_task = _add_activity_task
    Environment.open_frame = _open_frame
    StateTask._evaluate_with_timeout = _task_evaluate_with_timeout
    # An activity task never started before its timeout reads an unset _outcome (AttributeError,
    # so States.Runtime instead of States.Timeout).
    ActivityTaskStartEndpoint._outcome = None
    StepFunctionResponse.get_activity_task = _response_get_activity_task
    StepFunctionResponse.send_task_failure = _response_send_task_failure
    StepFunctionResponse.stop_execution = _response_stop_execution
    StepFunctionResponse.call_action = _call_action
    install_status_events()
    _installed = True


class Emulator:
    """moto's server with the patches, on ``host:port`` (port 0: a free one), in a thread.

    ``poll_seconds``: GetActivityTask long-poll time (None: $STEPFUNCTION_EMULATOR_POLL_SECONDS,
    else 60). Clients long-polling 60 s need a read timeout above that (botocore's is 60 s).
    """

    def __init__(
        self,
        port: int = 0,
        poll_seconds: float | None = None,
        host: str = "127.0.0.1",
        status_queues: tuple[str, ...] = (),
    ):
        self.host = host
        self.port = port
        self.poll_seconds = poll_seconds
        self.status_queues = tuple(status_queues)
        self._server: ThreadedMotoServer | None = None
        self._previous_config: dict | None = None
        self._previous_moto_port: str | None = None

    def start(self) -> Self:
        install(self.poll_seconds)
        if self.status_queues:
            self.set_status_queues(self.status_queues)
        sfn_config = default_user_config.setdefault("stepfunctions", {})
        self._previous_config = dict(sfn_config)
        sfn_config["execute_state_machine"] = True
        # werkzeug binds the socket itself: port 0 gets a free port with no race.
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # The interpreter calls other services (SQS, ...) on http://localhost:$MOTO_PORT.
        self._previous_moto_port = os.environ.get("MOTO_PORT")
        os.environ["MOTO_PORT"] = str(self.port)
        log.info("Step Functions emulator listening on %s", self.endpoint_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            default_user_config["stepfunctions"] = self._previous_config or {}
            if self._previous_moto_port is None:
                os.environ.pop("MOTO_PORT", None)
            else:
                os.environ["MOTO_PORT"] = self._previous_moto_port

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, region: str = "us-west-2", service: str = "stepfunctions", **kwargs: Any):
        """A boto3 client on the emulator, with dummy credentials."""
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )

    def reset(self) -> None:
        """Clear all moto state (every service), the recorded calls and pending faults.

        Executions still waiting keep their (daemon) interpreter threads until their own
        timeouts; their state is unreachable after the reset.
        """
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        self.reset_calls()
        with _lock:
            _faults.clear()
            _status_queues.clear()

    @property
    def calls(self) -> list[str]:
        """Step Functions action names received so far (a snapshot), e.g. ["StartExecution"]."""
        with _lock:
            return list(_calls)

    def set_poll_seconds(self, seconds: float) -> None:
        """Change the GetActivityTask long-poll time (60 s on AWS) from now on."""
        install(seconds)
        self.poll_seconds = seconds

    def set_status_queues(self, queue_urls: Any) -> None:
        """Send EventBridge "Step Functions Execution Status Change" events (RUNNING, then
        SUCCEEDED, FAILED, TIMED_OUT or ABORTED) to these SQS queues of this emulator, from
        now on (shared by the emulators of this process; ``reset()`` clears it)."""
        with _lock:
            _status_queues[:] = list(queue_urls)
        self.status_queues = tuple(queue_urls)

    def reset_calls(self) -> None:
        with _lock:
            _calls.clear()

    def inject_fault(
        self,
        action: str,
        code: str = "ServiceUnavailable",
        status: int = 503,
        message: str = "Injected fault",
        count: int = 1,
        applied: bool = False,
    ) -> None:
        """Answer the next ``count`` calls of ``action`` (e.g. "SendTaskSuccess") with this AWS
        error, without running them (``applied``: after running them, as when a reply is
        lost on its way back)."""
        fault = {"code": code, "status": status, "message": message, "applied": applied}
        with _lock:
            _faults[action].extend(dict(fault) for _ in range(count))


MANUAL_STEP_ACTIVITY = "ManualStepTest"
MANUAL_STEP_STATE_MACHINE = "AddonSigningManualStep"
CALLBACK_STATE_MACHINE = "AddonSigningCallbackStep"
CALLBACK_QUEUE = "ManualStepCallbacks"
STATUS_QUEUE = "ExecutionStatus"
ROLE_ARN = "arn:aws:iam::123456789012:role/stepfunction-emulator"


def preload(client: Any, region: str = "us-west-2") -> dict[str, str]:
    """Create the demo resources: the activity ``ManualStepTest``, the state machine
    ``AddonSigningManualStep`` waiting on it (the README example) and a callback variant
    ``AddonSigningCallbackStep`` that sends its task token to the SQS queue
    ``ManualStepCallbacks``, both passing ``$$.Execution.Id`` to their step; and the queue
    ``ExecutionStatus`` for the executions' status-change events (see
    ``Emulator.set_status_queues``). ``client`` is a Step Functions client on the emulator.
    Returns the ARNs/URL by key.
    """
    activity_arn = client.create_activity(name=MANUAL_STEP_ACTIVITY)["activityArn"]
    manual = one_step(
        activity_step(activity_arn, 3600, execution=True), "A test using a manual step"
    )
    sqs = boto3.client(
        "sqs",
        region_name=region,
        endpoint_url=client.meta.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    queue_url = sqs.create_queue(QueueName=CALLBACK_QUEUE)["QueueUrl"]
    callback = one_step(
        callback_step(queue_url, 3600, execution=True), "A test using a callback manual step"
    )
    status_queue_url = sqs.create_queue(QueueName=STATUS_QUEUE)["QueueUrl"]
    arns = {"activity": activity_arn, "queue_url": queue_url, "status_queue_url": status_queue_url}
    for key, name, definition in (
        ("state_machine", MANUAL_STEP_STATE_MACHINE, manual),
        ("callback_state_machine", CALLBACK_STATE_MACHINE, callback),
    ):
        arns[key] = client.create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=ROLE_ARN
        )["stateMachineArn"]
    return arns
