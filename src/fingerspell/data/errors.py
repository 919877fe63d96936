"""The one exception the data layer raises for bad input."""


class DataError(ValueError):
    """Input data is missing, malformed or not the data set it claims to be.

    The message is one line meant for the user: which file (and row), what is wrong,
    and what to do about it.
    """
