"""The one exception type for problems a user can cause (bad files, bad params)."""


class InputError(Exception):
    """A bad input: the message is one line naming the file or key and the problem.

    Stages turn it into that line on stderr and exit code 1; anything else is a bug and may raise.
    """
