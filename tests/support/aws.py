"""The moto server helper's former name, for the poller benchmark until it imports testbed.aws."""

from testbed.aws import moto_server

__all__ = ["moto_server"]
