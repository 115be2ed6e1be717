"""The boto3 clients: one session (the settings' keys, else boto3's chain), and one client per
service and region made from it, shared by threads."""

import threading

import boto3
from botocore.config import Config


# GetActivityTask holds the connection for up to 60 s when nothing is pending: the read
# timeout must outlast that long poll, or every empty poll would look like an outage.
LONG_POLL_READ_TIMEOUT = 70
# botocore's default: connections kept per client, for answers and heartbeats.
POOL_CONNECTIONS = 10


def pool_connections(settings):
    """Connections each client keeps: one per poller (each holds one through its long
    poll), on top of botocore's default 10 for answers and heartbeats."""
    pollers = len(settings.activities) * settings.pollers_per_activity + len(settings.queues)
    return POOL_CONNECTIONS + pollers


class BotoClients:
    """boto3 clients by service and region, made once each from one session."""

    def __init__(self, settings):
        self.settings = settings
        self._clients = {}
        self._lock = threading.Lock()
        self._session = boto3.session.Session(
            aws_access_key_id=settings.aws_access_key or None,
            aws_secret_access_key=settings.aws_secret_key or None,
        )
        self._config = Config(
            connect_timeout=5,
            read_timeout=LONG_POLL_READ_TIMEOUT,
            retries={"mode": "standard", "total_max_attempts": 3},
            max_pool_connections=pool_connections(settings),
        )

    def credentials(self):
        return self._session.get_credentials()

    def get(self, service, region):
        """The client of ``service`` in ``region`` (None: the configured region)."""
        key = (service, region or self.settings.aws_region)
        client = self._clients.get(key)
        if client is None:
            # Client creation from a shared session is not thread-safe; use is.
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._session.client(
                        service,
                        region_name=key[1],
                        endpoint_url=self.settings.aws_endpoint_url,
                        config=self._config,
                    )
                    self._clients[key] = client
        return client

    def for_probe(self, timeout):
        """The start-up check's Step Functions client: ``timeout`` seconds at most, no retry."""
        region = self.settings.aws_region or self._session.region_name or "us-east-1"
        key = ("probe", region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                config = Config(
                    connect_timeout=timeout,
                    read_timeout=timeout,
                    retries={"mode": "standard", "total_max_attempts": 1},
                )
                client = self._session.client(
                    "stepfunctions",
                    region_name=region,
                    endpoint_url=self.settings.aws_endpoint_url,
                    config=config,
                )
                self._clients[key] = client
        return client
