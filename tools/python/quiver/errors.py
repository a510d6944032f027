"""The one exception class of the client: every failure carries the protocol's code."""


class QuiverException(Exception):
    """A request failed. `code` is the protocol's code (NOT_FOUND, INVALID_ARGUMENT,
    TIMEOUT, UNAVAILABLE, ...), `message` the server's (or the client's) explanation."""

    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code
        self.message = message


#  pymilvus's name, so that `except MilvusException` ports unchanged.
MilvusException = QuiverException
