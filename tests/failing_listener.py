"""A Kinto include whose listener fails every record change: the request is rolled back."""

from kinto.core.events import ResourceChanged


class ListenerFailure(Exception):
    pass


def fail(event):
    raise ListenerFailure("a listener refused the change")


def includeme(config):
    config.add_subscriber(fail, ResourceChanged, for_resources=("record",))
