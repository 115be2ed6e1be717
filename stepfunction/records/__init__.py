"""Steps in Kinto: the only package that touches Kinto's resources and storage.

Each submodule has one job: ``resource`` (records read, and written through Kinto's ``Record``
resource), ``uris`` (where a record lives), ``locks`` (one record's read and write serialised),
``races`` (Kinto's timestamp race), ``private`` (private storage objects) and its kinds:
``tasks`` (task tokens), ``notices`` (mail notices and the outbox's index), ``escalations``,
``names`` (people's names), ``deliveries`` (webhooks' signed bodies); ``acl`` (who may read
or write records) and ``queries`` (records listed by status). Callers use ``records.<name>``:
every name is exported here.
"""

from stepfunction.records.acl import (
    answering_principals,
    author_principals,
    is_author,
    may_read_all,
    readable_record_ids,
    record_writers,
    writable_record_ids,
)
from stepfunction.records.deliveries import (
    DELIVERY,
    first_delivery,
    put_delivery,
)
from stepfunction.records.escalations import (
    ESCALATION,
    ESCALATIONS_PARENT,
    drop_escalation,
    due_escalations,
    get_escalation,
    put_escalation,
    scheduled_uris,
)
from stepfunction.records.locks import (
    SAVEPOINT,
    delivery_lock,
    hide_sql_parameters,
    record_lock,
    rollback_to_savepoint,
    sql_engine,
    take_savepoint,
)
from stepfunction.records.names import (
    PEOPLE,
    PERSON,
    get_names,
    person_id,
    put_name,
)
from stepfunction.records.notices import (
    ALL_RECORDS,
    NEVER_DUE,
    NOTICE,
    NOTICE_ID,
    OUTBOX,
    OUTBOX_PARENT,
    drop_notice,
    due_notices,
    get_notice,
    index_open_notices,
    put_notice,
)
from stepfunction.records.queries import (
    CLOSED,
    execution_steps,
    pending_records,
    records_with_status,
    steps,
)
from stepfunction.records.races import (
    RACE_LOGGER,
    retried_race,
)
from stepfunction.records.resource import (
    PLUGIN_WRITES,
    TRUSTED,
    WRITE_ATTEMPTS,
    collection_exists,
    ensure_collection,
    read_record,
    read_step,
    validate_new_record,
    write_record,
    written_by_plugin,
)
from stepfunction.records.tasks import (
    TASK,
    TASK_ID,
    claim_task,
    close_task,
    drop_task,
    get_task,
    pending_tasks,
    put_task,
)
from stepfunction.records.uris import (
    RECORD_ID,
    RECORD_PATH,
    collection_uri,
    parse_record_uri,
    record_uri,
)


__all__ = [
    "is_author",
    "answering_principals",
    "writable_record_ids",
    "may_read_all",
    "readable_record_ids",
    "record_writers",
    "author_principals",
    "DELIVERY",
    "first_delivery",
    "put_delivery",
    "delivery_lock",
    "ESCALATION",
    "ESCALATIONS_PARENT",
    "get_escalation",
    "put_escalation",
    "drop_escalation",
    "due_escalations",
    "scheduled_uris",
    "SAVEPOINT",
    "rollback_to_savepoint",
    "take_savepoint",
    "sql_engine",
    "record_lock",
    "hide_sql_parameters",
    "PERSON",
    "PEOPLE",
    "person_id",
    "get_names",
    "put_name",
    "NOTICE",
    "NOTICE_ID",
    "ALL_RECORDS",
    "OUTBOX",
    "OUTBOX_PARENT",
    "NEVER_DUE",
    "get_notice",
    "put_notice",
    "drop_notice",
    "due_notices",
    "index_open_notices",
    "CLOSED",
    "pending_records",
    "execution_steps",
    "records_with_status",
    "steps",
    "RACE_LOGGER",
    "retried_race",
    "WRITE_ATTEMPTS",
    "PLUGIN_WRITES",
    "TRUSTED",
    "read_record",
    "read_step",
    "write_record",
    "collection_exists",
    "validate_new_record",
    "written_by_plugin",
    "ensure_collection",
    "TASK",
    "TASK_ID",
    "get_task",
    "claim_task",
    "put_task",
    "close_task",
    "drop_task",
    "pending_tasks",
    "RECORD_PATH",
    "RECORD_ID",
    "record_uri",
    "collection_uri",
    "parse_record_uri",
]
