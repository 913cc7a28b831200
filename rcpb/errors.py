"""The one exception type of rcpb.

Every user-facing problem (a bad dataset file, a bad config value, an impossible
ablation set) raises :class:`RcpbError` with a message that names the file or
field, says what is wrong and what to do. The CLI prints it without a traceback
and exits with status 2.
"""


class RcpbError(Exception):
    """A problem with the user's input, explained in the message."""
