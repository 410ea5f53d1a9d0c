"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class EdgecnnError(Exception):
    """A problem with the user's input or environment, explained in one line.

    Raise it with a message that says what is wrong and what to do about it; never a traceback.
    """

    exit_code = 1
