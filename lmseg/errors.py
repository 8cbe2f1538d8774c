"""The one exception type that the command-line tools turn into a clear message.

Library code raises :class:`LmsegError` (or a subclass) for every failure that a user can
cause and fix: a bad vocabulary, a corrupt cache, a server that is down. The message must
say what went wrong, which file or name is involved, and what to do about it. Anything else
that escapes is a bug and keeps its traceback.
"""


class LmsegError(Exception):
    """A failure with a message meant for the user (no traceback needed)."""
