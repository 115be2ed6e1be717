"""A Kinto include whose listener refuses the next record changes (``refusals`` of them)."""

from kinto.core.events import ResourceChanged


refusals = {"left": 0}


class ListenerFailure(Exception):
    pass


def refuse(event):
    if refusals["left"] > 0:
        refusals["left"] -= 1
        raise ListenerFailure("a listener refused the change")


def includeme(config):
    config.add_subscriber(refuse, ResourceChanged, for_resources=("record",))
