"""Shared code of the IAM access key rotation functions.

Every function of the stack gets this package through the ``KeyRotationLayer``
SAM layer. Each concern lives in exactly one module:

- :mod:`keyrotation.model`   - the data the lifecycle decisions are made on
- :mod:`keyrotation.policy`  - the key-lifecycle decisions (pure, no AWS calls)
- :mod:`keyrotation.wording` - the sentences that explain those decisions
- :mod:`keyrotation.config`  - configuration from the environment, validated
- :mod:`keyrotation.ids`     - the shapes of account and OU ids
- :mod:`keyrotation.clock`   - the one source of "now"
- :mod:`keyrotation.aws`     - boto3 clients and cross-account sessions
- :mod:`keyrotation.paging`  - pagination of every list call
- :mod:`keyrotation.naming`  - secret names and ledger keys
- :mod:`keyrotation.ledger`  - the DynamoDB run ledger and delivery records
- :mod:`keyrotation.errors`  - the error names Step Functions sees
"""
