"""The demo's user whose programs follow its key: ``keyrotation credentials`` as its ``credential_process``.

Configured once (a profile in an AWS config file, and the helper's cache seeded with the key the user
has that day), every "CLI call" after that is what ``aws sts get-caller-identity --profile deployer``
does: a new botocore session reads the profile, runs the ``credential_process`` command, and signs
with the key it prints. The command runs in this process rather than as a child process, because the
in-memory AWS lives here (:class:`InProcess`); everything else is botocore's own ProcessProvider.

Only key ids are ever shown: the secret exists in the helper's standard output (read by botocore) and
in its cache, a file readable only by its owner in a temporary directory the demo deletes.

Example:
    >>> user = HelperUser(account_id, "deployer", workdir, "us-east-1")      # doctest: +SKIP
    >>> user.seed(key_id, secret_access_key)                                # doctest: +SKIP
    >>> user.call("day 0").key_id                                           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.credentials import CredentialResolver, ProcessProvider
from click.testing import CliRunner

from keyrotation.naming import secret_name
from keyrotation_cli.context import Options
from keyrotation_cli.main import cli

PROFILE = "deployer"
COMMAND = "keyrotation"


class InProcess:
    """A ``subprocess.Popen`` for botocore's ProcessProvider that runs the ``keyrotation`` command in this process.

    botocore splits the profile's ``credential_process`` into arguments and reads the command's standard
    output (the credential_process document), standard error and exit code: that is all this provides.
    """

    def __init__(self, args: list[str], stdout: Any = None, stderr: Any = None) -> None:
        if args[:1] != [COMMAND]:
            raise ValueError(f"the demo runs only the {COMMAND} command in process, not {args[:1]}")
        result = CliRunner().invoke(cli, args[1:], obj=Options())
        self.returncode = result.exit_code
        self._output = (result.stdout_bytes, result.stderr_bytes)

    def communicate(self) -> tuple[bytes, bytes]:
        return self._output


@dataclass(frozen=True)
class CliCall:
    """One call the user's program made: when, with which key (its id only), as whom, and what the helper said."""

    when: str
    key_id: str
    arn: str
    helper_said: str
    keys: str = ""  # the user's keys and their status at the time (ids only), as the demo shows them


class HelperUser:
    """The user's AWS config, with the helper as ``credential_process``, and the helper's cache, in ``workdir``."""

    def __init__(self, account_id: str, user_name: str, workdir: Path, region: str) -> None:
        self.user_name, self.region = user_name, region
        self.secret_id = secret_name(account_id, user_name)
        self.cache = workdir / f"{user_name}.json"
        self.config = workdir / "config"
        self.config.write_text(f"[profile {PROFILE}]\nregion = {region}\ncredential_process = {self.command()}\n")
        self._said: list[str] = []

    def command(self, *extra: str) -> str:
        """The helper's command line, as the profile has it."""
        return " ".join(
            [COMMAND, "--region", self.region, "credentials", "--secret-id", self.secret_id, "--cache", str(self.cache)]
            + list(extra)
        )

    def seed(self, key_id: str, secret_access_key: str) -> str:
        """``keyrotation credentials --seed``, signed with the key the user has today; what the helper said."""
        # The user's long-term key, no session token: the variables' names, not a password.
        env = {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret_access_key,
            "AWS_SESSION_TOKEN": None,  # no token: the name of a variable, not a password  # nosec B105
        }
        args = self.command("--seed").split()[1:]
        result = CliRunner(env=env).invoke(cli, args, obj=Options())
        if result.exit_code != 0:
            raise RuntimeError(f"seeding the helper failed: {result.stderr.strip()}")
        return result.stderr.strip()

    def call(self, when: str) -> CliCall:
        """What ``aws sts get-caller-identity --profile deployer`` does: a fresh session, the profile's
        credential_process, one signed call. Only the process provider is asked (the in-memory AWS sets
        environment credentials of its own, which the standard chain would take first)."""
        session = botocore.session.Session(profile=PROFILE)
        session.set_config_variable("config_file", str(self.config))
        said: list[str] = []

        def popen(args: list[str], stdout: Any = None, stderr: Any = None) -> InProcess:
            process = InProcess(args, stdout, stderr)
            said.append(process.communicate()[1].decode().strip())
            return process

        provider = ProcessProvider(PROFILE, lambda: session.full_config, popen=popen)
        session.register_component("credential_provider", CredentialResolver([provider]))
        credentials = session.get_credentials()
        if credentials is None:
            raise RuntimeError(f"the profile {PROFILE} gave no credentials: {' '.join(said)}")
        identity = session.create_client("sts", region_name=self.region).get_caller_identity()
        return CliCall(when, credentials.access_key, str(identity["Arn"]), " ".join(line for line in said if line))
