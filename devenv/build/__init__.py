"""The environments functions and services run in: a CPython of the declared version, and
content-addressed virtualenvs holding only what each one declares (``devenv build``)."""
