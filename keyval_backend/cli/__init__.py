"""The ``keyval`` command's library, shared by ``manage.py keyval``
(:mod:`keyval_backend.management.commands.keyval`) and the stand-alone
``keyval`` (:mod:`keyval_backend.standalone`).

:mod:`.options` holds the flag table and what each sub-command takes,
:mod:`.session` what every sub-command is given (the store, the output, the
messages), :mod:`.commands` one function a sub-command and ``run``, which
turns every failure into a one-line error and an exit status,
:mod:`.formats` how values are parsed and printed, and :mod:`.progress` the
progress bar of the long sub-commands.
"""
