"""The in-memory AWS: an organization to rotate keys in, and the stack deployed from template.yaml."""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import time
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from localaws import awslike, cfn, lambdas

REGION = "us-east-1"
STACK_NAME = "iam-key-rotation"


def _fake_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fake credentials, never a real secret  # nosec B105
        "AWS_SESSION_TOKEN": "testing",  # moto's fake credentials, never a real secret  # nosec B105
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
    }


class LocalAws:
    """Context manager: moto with Step Functions execution on, handlers in process, AWS-like paging."""

    def __init__(self, fast_retries: bool = True, quiet: bool = False) -> None:
        self._stack = ExitStack()
        self._fast_retries = fast_retries
        self._quiet = quiet
        self.deployment_account = DEFAULT_ACCOUNT_ID

    def __enter__(self) -> LocalAws:
        for name, value in _fake_credentials().items():
            self._stack.enter_context(_env(name, value))
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            self._stack.enter_context(_env(name, None))
        self._stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
        lambdas.install()
        awslike.install()
        awslike.set_page_sizes()
        lambdas.REGISTRY.reset()
        awslike.FAULTS.clear()
        if self._fast_retries:
            self._stack.enter_context(awslike.fast_retries())
        if self._quiet:
            lambdas.REGISTRY.quiet = True  # metrics (EMF) go to stdout
            lambdas.REGISTRY.overrides["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # the Logger keeps its own stream
            for name in ("moto", "botocore", "aws_lambda_powertools"):
                logging.getLogger(name).setLevel(logging.CRITICAL)
            self._stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc: object) -> None:
        from localaws.organization import forget_member_roles

        forget_member_roles()
        _ADMIN.clear()
        _CLIENTS.clear()
        lambdas.REGISTRY.reset()
        awslike.FAULTS.clear()
        self._stack.close()

    def client(self, service: str, account_id: str | None = None) -> Any:
        return admin_client(service, account_id or self.deployment_account)

    def deploy(
        self, parameters: Mapping[str, str] | None = None, template: Path | None = None, stack_name: str = STACK_NAME
    ) -> Stack:
        return deploy(template or cfn.REPO / "template.yaml", dict(parameters or {}), stack_name)


@contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    saved = os.environ.get(name)
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


@functools.cache
def _shared_session() -> boto3.Session:
    return boto3.Session(region_name=REGION)


@dataclass(frozen=True)
class AdminSession:
    """Clients in a member account, as its administrator (used to seed it, never by the product)."""

    credentials: dict[str, str]

    def client(self, service: str, region_name: str = REGION) -> Any:
        return _shared_session().client(
            service,
            region_name=region_name,
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretAccessKey"],
            aws_session_token=self.credentials["SessionToken"],
        )


_ADMIN: dict[str, AdminSession] = {}
_CLIENTS: dict[tuple[str, str], Any] = {}


def admin_session(account_id: str) -> AdminSession:
    if account_id not in _ADMIN:
        sts = _shared_session().client("sts")
        credentials = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole", RoleSessionName="seed"
        )["Credentials"]
        _ADMIN[account_id] = AdminSession(credentials)
    return _ADMIN[account_id]


def admin_client(service: str, account_id: str) -> Any:
    """A cached client in ``account_id`` (the deployment account's own when it is that one)."""
    if (service, account_id) not in _CLIENTS:
        if account_id == DEFAULT_ACCOUNT_ID:
            _CLIENTS[(service, account_id)] = _shared_session().client(service)
        else:
            _CLIENTS[(service, account_id)] = admin_session(account_id).client(service)
    return _CLIENTS[(service, account_id)]


# -- the stack ----------------------------------------------------------------------------------


@dataclass
class Execution:
    arn: str
    name: str
    status: str
    output: Any
    error: str | None
    cause: str | None
    history: list[dict[str, Any]]

    @property
    def cause_json(self) -> Any:
        return json.loads(self.cause) if self.cause else None

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [event for event in self.history if event["type"] == type_]


@dataclass
class Stack:
    name: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    resources: dict[str, str]  # logical id -> physical id
    functions: dict[str, lambdas.FunctionSpec] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)
    _account_workflow_arn: str | None = None

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    def start(self, document: Any = None, name: str | None = None) -> str:
        sfn = admin_client("stepfunctions", DEFAULT_ACCOUNT_ID)
        name = name or f"run-{datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
        return str(
            sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps({} if document is None else document),
            )["executionArn"]
        )

    def wait(self, execution_arn: str, timeout: float = 300.0) -> Execution:
        sfn = admin_client("stepfunctions", DEFAULT_ACCOUNT_ID)
        deadline = time.monotonic() + timeout
        while True:
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still running after {timeout}s")
            time.sleep(0.05)
        history = sfn.get_execution_history(executionArn=execution_arn)["events"]
        output = described.get("output")
        return Execution(
            arn=execution_arn,
            name=described["name"],
            status=described["status"],
            output=json.loads(output) if output else None,
            error=described.get("error"),
            cause=described.get("cause"),
            history=history,
        )

    def run(self, document: Any = None, name: str | None = None, timeout: float = 300.0) -> Execution:
        return self.wait(self.start(document, name), timeout)

    def account_workflow(self) -> str:
        """The Distributed Map's ItemProcessor of the real ASL, as a state machine of its own.

        moto does not expose the history of a Map Run's child executions; running the same
        definition standalone gives tests the per-account history to assert on.
        """
        if self._account_workflow_arn is None:
            processor = dict(self.definition["States"]["ProcessAccounts"]["ItemProcessor"])
            processor.pop("ProcessorConfig", None)
            sfn = admin_client("stepfunctions", DEFAULT_ACCOUNT_ID)
            role = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/{self.name}-account-workflow"
            self._account_workflow_arn = sfn.create_state_machine(
                name=f"{self.name}-account-workflow", definition=json.dumps(processor), roleArn=role
            )["stateMachineArn"]
        return self._account_workflow_arn

    def run_account(self, account_id: str, run_id: str = "run-1", dry_run: bool = False, email: str = "") -> Execution:
        """One account through the per-account workflow, with the input the Map would give it."""
        document = {
            "account": {"id": account_id, "name": account_id, "email": email or f"{account_id}@example.com"},
            "run": {
                "runId": run_id,
                "dryRun": dry_run,
                "startedAt": datetime.now().isoformat(),
                "maxConcurrency": 1,
                "expiresAt": "4102444800",
            },
        }
        sfn = admin_client("stepfunctions", DEFAULT_ACCOUNT_ID)
        name = f"{run_id}-{account_id}-{os.urandom(3).hex()}"
        arn = sfn.start_execution(stateMachineArn=self.account_workflow(), name=name, input=json.dumps(document))
        return self.wait(arn["executionArn"])

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call one function directly, as Lambda would; raise if it raised."""
        result, error = lambdas.REGISTRY.invoke(self.functions[logical_id], event)
        if error is not None:
            raise FunctionError(*error)
        return result

    def ledger_items(self) -> list[dict[str, Any]]:
        from boto3.dynamodb.types import TypeDeserializer

        deserializer = TypeDeserializer()
        db = admin_client("dynamodb", DEFAULT_ACCOUNT_ID)
        found = []
        for page in db.get_paginator("scan").paginate(TableName=self.outputs["LedgerTableName"]):
            found += [{k: deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"]]
        return found


class FunctionError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


def deploy(template_path: Path, parameters: dict[str, str], stack_name: str = STACK_NAME) -> Stack:
    """Create the template's resources in moto, as CloudFormation would after ``sam build``."""
    template = cfn.load(template_path)
    values = cfn.validate_parameters(template, parameters)
    base = template_path.parent
    resolver = cfn.Resolver(
        parameters=values,
        pseudo={
            "AWS::AccountId": DEFAULT_ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    resolver.evaluate_conditions(template.get("Conditions", {}))
    stack = Stack(name=stack_name, parameters=values, outputs={}, resources={})
    resources = template["Resources"]
    order = sorted(resources, key=lambda logical: _ORDER.get(resources[logical]["Type"], 50))
    for logical_id in order:
        resource = resources[logical_id]
        if "Condition" in resource and not resolver.conditions[resource["Condition"]]:
            continue
        properties = cfn.merge_globals(template, resource["Type"], resource.get("Properties", {}))
        creator = _CREATORS.get(resource["Type"])
        if creator is not None:
            creator(stack, logical_id, properties, resource, resolver, base)
    for name, output in template.get("Outputs", {}).items():
        stack.outputs[name] = str(resolver.resolve(output["Value"]))
    if stack.outputs.get("FunctionRoleArns"):
        from localaws.organization import trust_function_roles

        # What the member-account StackSet does next: take the new stack's output as its parameter.
        trust_function_roles(stack.outputs["FunctionRoleArns"].split(","))
    return stack


def _register(
    stack: Stack, resolver: cfn.Resolver, logical_id: str, physical: str, arn: str, ref: str | None = None
) -> None:
    """What CloudFormation knows of a created resource: its physical id, Ref and Arn attribute."""
    stack.resources[logical_id] = physical
    resolver.refs[logical_id] = physical if ref is None else ref
    resolver.attributes[(logical_id, "Arn")] = arn


def _physical(stack: Stack, logical_id: str, limit: int = 64) -> str:
    return f"{stack.name}-{logical_id}-{os.urandom(4).hex()}"[:limit]


def _create_layer(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    content = (base / properties["ContentUri"]).resolve()
    # With a BuildMethod, `sam build` puts ContentUri's files under python/; without one, it is zipped as is.
    path = content if resource.get("Metadata", {}).get("BuildMethod") else content / "python"
    arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:layer:{logical_id}:1"
    stack.resources[logical_id] = str(path)
    resolver.refs[logical_id] = arn
    _LAYER_PATHS[arn] = path


_LAYER_PATHS: dict[str, Path] = {}


def _create_bucket(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    name = properties.get("BucketName") or _physical(stack, logical_id, 63).lower()
    admin_client("s3", DEFAULT_ACCOUNT_ID).create_bucket(Bucket=name)
    _register(stack, resolver, logical_id, name, arn=f"arn:aws:s3:::{name}")


def _create_table(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    props = resolver.resolve(properties)
    name = props.get("TableName") or _physical(stack, logical_id, 255)
    db = admin_client("dynamodb", DEFAULT_ACCOUNT_ID)
    table = db.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
    )["TableDescription"]
    if "TimeToLiveSpecification" in props:
        db.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
    _register(stack, resolver, logical_id, name, arn=table["TableArn"])


def _create_log_group(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    props = resolver.resolve(properties)
    name = props["LogGroupName"]
    admin_client("logs", DEFAULT_ACCOUNT_ID).create_log_group(logGroupName=name)
    _register(stack, resolver, logical_id, name, arn=f"arn:aws:logs:{REGION}:{DEFAULT_ACCOUNT_ID}:log-group:{name}:*")


def _role(
    stack: Stack, logical_id: str, service: str, policies: list[Any], resolver: cfn.Resolver, path: str = "/"
) -> str:
    iam = admin_client("iam", DEFAULT_ACCOUNT_ID)
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    name = _physical(stack, f"{logical_id}Role")
    arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    statements = [
        s
        for policy in resolver.resolve(policies)
        if isinstance(policy, dict) and "Statement" in policy
        for s in policy["Statement"]
    ]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="inline",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return str(arn)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    raise RuntimeError('run in process')\n")
    return buffer.getvalue()


def _create_function(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    props = resolver.resolve(properties)
    name = props.get("FunctionName") or _physical(stack, logical_id)
    role = _role(
        stack, logical_id, "lambda.amazonaws.com", properties.get("Policies", []), resolver, props.get("RolePath", "/")
    )
    # SAM names the role it makes <LogicalId>Role (a template may GetAtt it) and gives it the function's tags.
    resolver.attributes[(f"{logical_id}Role", "Arn")] = role
    if props.get("Tags"):
        tags = [{"Key": key, "Value": str(value)} for key, value in props["Tags"].items()]
        admin_client("iam", DEFAULT_ACCOUNT_ID).tag_role(RoleName=role.rsplit("/", 1)[1], Tags=tags)
    environment = {key: str(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()}
    created = admin_client("lambda", DEFAULT_ACCOUNT_ID).create_function(
        FunctionName=name,
        Runtime=props["Runtime"],
        Role=role,
        Handler=props["Handler"],
        Code={"ZipFile": _zip()},
        Timeout=int(props.get("Timeout", 3)),
        MemorySize=int(props.get("MemorySize", 128)),
        Environment={"Variables": environment},
    )
    spec = lambdas.FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=created["FunctionArn"],
        code_dir=(base / props["CodeUri"]).resolve(),
        handler=props["Handler"],
        layer_dirs=[_LAYER_PATHS[layer] for layer in props.get("Layers", [])],
        environment=environment,
        timeout=int(props.get("Timeout", 3)),
        memory=int(props.get("MemorySize", 128)),
    )
    lambdas.REGISTRY.add(spec)
    stack.functions[logical_id] = spec
    _register(stack, resolver, logical_id, name, arn=created["FunctionArn"])


def _create_state_machine(
    stack: Stack,
    logical_id: str,
    properties: dict[str, Any],
    resource: dict[str, Any],
    resolver: cfn.Resolver,
    base: Path,
) -> None:
    props = resolver.resolve({key: value for key, value in properties.items() if key != "Events"})
    text = (base / props["DefinitionUri"]).read_text()
    for key, value in props.get("DefinitionSubstitutions", {}).items():
        text = text.replace("${" + key + "}", str(value))
    definition = json.loads(text)
    role = _role(stack, logical_id, "states.amazonaws.com", properties.get("Policies", []), resolver)
    sfn = admin_client("stepfunctions", DEFAULT_ACCOUNT_ID)
    name = props.get("Name") or _physical(stack, logical_id, 80)
    arn = sfn.create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=role, type=props.get("Type", "STANDARD")
    )["stateMachineArn"]
    events = admin_client("events", DEFAULT_ACCOUNT_ID)
    for event_id, event in properties.get("Events", {}).items():
        event_props = resolver.resolve(event["Properties"])
        if event["Type"] == "Schedule":
            rule = f"{name}-{event_id}"[:64]
            events.put_rule(Name=rule, ScheduleExpression=event_props["Schedule"], State="ENABLED")
            events.put_targets(
                Rule=rule,
                Targets=[{"Id": "StateMachine", "Arn": arn, "RoleArn": role, "Input": event_props.get("Input", "{}")}],
            )
    stack.definition = definition
    _register(stack, resolver, logical_id, arn, arn=arn)
    resolver.attributes[(logical_id, "Name")] = name


_CREATORS: dict[str, Any] = {
    "AWS::Serverless::LayerVersion": _create_layer,
    "AWS::S3::Bucket": _create_bucket,
    "AWS::DynamoDB::Table": _create_table,
    "AWS::Logs::LogGroup": _create_log_group,
    "AWS::Serverless::Function": _create_function,
    "AWS::Serverless::StateMachine": _create_state_machine,
}
_ORDER = {
    "AWS::Serverless::LayerVersion": 0,
    "AWS::S3::Bucket": 1,
    "AWS::DynamoDB::Table": 1,
    "AWS::Logs::LogGroup": 1,
    "AWS::Serverless::Function": 10,
    "AWS::Serverless::StateMachine": 20,
}


def organization(
    names: list[str],
    ous: dict[str, list[str]] | None = None,
    member_role: bool = True,
    missing_role: tuple[str, ...] = (),
) -> Any:
    """Create an organization with the member role deployed everywhere except ``missing_role`` accounts."""
    from localaws.organization import create_organization, deploy_member_role

    org = create_organization(names, ous)
    if member_role:
        for name, account_id in [("management", org.management_account), *org.accounts.items()]:
            if name not in missing_role:
                deploy_member_role(account_id, org)
    return org
