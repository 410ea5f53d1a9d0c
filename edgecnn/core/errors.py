"""The one exception type users see: the CLI prints its message on one line and exits non-zero."""


class EdgecnnError(Exception):
    """A problem with the user's input or environment, explained in one line.

    Raise it with a message that says what is wrong and what to do about it; never a traceback.
    """

    exit_code = 1


class EdgecnnTypeError(EdgecnnError, TypeError):
    """An argument of the wrong type (the Python API's boundary): also a TypeError for callers who
    catch that."""


class EdgecnnValueError(EdgecnnError, ValueError):
    """An argument of the right type and a wrong value: also a ValueError."""
