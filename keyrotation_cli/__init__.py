"""``keyrotation``: the operator's command line for the key rotation stack.

Commands start and follow executions of the stack's state machine and read its
ledger, through the product's own modules (:mod:`keyrotation.ledger`,
:mod:`keyrotation.summary`, :mod:`keyrotation.organization`), so they read what
the functions write. ``credentials`` is a ``credential_process`` helper for a
user whose key the product rotates.

    $ keyrotation --stack iam-key-rotation --profile security plan --account 111122223333
    $ keyrotation --local run
"""
