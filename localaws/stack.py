"""template.yaml deployed into moto, as CloudFormation would after ``sam build``, and run.

>>> stack = deploy(admin, runtime, cfn.REPO / "template.yaml", {"DryRun": "false"})  # doctest: +SKIP
>>> stack.run({}).status                                                            # doctest: +SKIP
'SUCCEEDED'
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from localaws import cfn
from localaws.clients import DEPLOYMENT_ACCOUNT, REGION, AdminClients
from localaws.lambdas import FunctionSpec, LambdaRuntime

STACK_NAME = "iam-key-rotation"


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


class FunctionError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass
class Stack:
    name: str
    parameters: dict[str, str]
    admin: AdminClients = field(repr=False)
    runtime: LambdaRuntime = field(repr=False)
    outputs: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    functions: dict[str, FunctionSpec] = field(default_factory=dict)
    definition: dict[str, Any] = field(default_factory=dict)
    _account_workflow_arn: str | None = None

    @property
    def state_machine_arn(self) -> str:
        return self.outputs["StateMachineArn"]

    def start(self, document: Any = None, name: str | None = None) -> str:
        name = name or f"run-{datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"
        started = self.admin.client("stepfunctions").start_execution(
            stateMachineArn=self.state_machine_arn, name=name, input=json.dumps({} if document is None else document)
        )
        return str(started["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 300.0) -> Execution:
        sfn = self.admin.client("stepfunctions")
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
            role = f"arn:aws:iam::{DEPLOYMENT_ACCOUNT}:role/{self.name}-account-workflow"
            self._account_workflow_arn = self.admin.client("stepfunctions").create_state_machine(
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
        name = f"{run_id}-{account_id}-{os.urandom(3).hex()}"
        started = self.admin.client("stepfunctions").start_execution(
            stateMachineArn=self.account_workflow(), name=name, input=json.dumps(document)
        )
        return self.wait(started["executionArn"])

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Call one function directly, as Lambda would; raise :class:`FunctionError` if it raised."""
        result, error = self.runtime.invoke(self.functions[logical_id], event)
        if error is not None:
            raise FunctionError(*error)
        return result

    def ledger_items(self) -> list[dict[str, Any]]:
        deserializer = TypeDeserializer()
        db = self.admin.client("dynamodb")
        found = []
        for page in db.get_paginator("scan").paginate(TableName=self.outputs["LedgerTableName"]):
            found += [{k: deserializer.deserialize(v) for k, v in item.items()} for item in page["Items"]]
        return found


# -- deploying ---------------------------------------------------------------------------------------------------


@dataclass
class Resource:
    """A template resource as a creator sees it: Globals merged in, intrinsics not yet resolved."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]


@dataclass
class _Deployment:
    """One deployment in progress: the stack being filled, and what its intrinsics resolve against."""

    stack: Stack
    resolver: cfn.Resolver
    base: Path
    layers: dict[str, Path] = field(default_factory=dict)  # layer version ARN -> the directory on the path

    @property
    def admin(self) -> AdminClients:
        return self.stack.admin

    def register(self, logical_id: str, physical: str, arn: str, ref: str | None = None) -> None:
        """What CloudFormation knows of a created resource: its physical id, Ref and Arn attribute."""
        self.stack.resources[logical_id] = physical
        self.resolver.refs[logical_id] = physical if ref is None else ref
        self.resolver.attributes[(logical_id, "Arn")] = arn

    def physical_name(self, logical_id: str, limit: int = 64) -> str:
        return f"{self.stack.name}-{logical_id}-{os.urandom(4).hex()}"[:limit]

    def layer(self, resource: Resource) -> None:
        content = (self.base / resource.properties["ContentUri"]).resolve()
        # With a BuildMethod, `sam build` puts ContentUri's files under python/; without one, it is zipped as is.
        path = content if resource.metadata.get("BuildMethod") else content / "python"
        arn = f"arn:aws:lambda:{REGION}:{DEPLOYMENT_ACCOUNT}:layer:{resource.logical_id}:1"
        self.stack.resources[resource.logical_id] = str(path)
        self.resolver.refs[resource.logical_id] = arn
        self.layers[arn] = path

    def bucket(self, resource: Resource) -> None:
        name = resource.properties.get("BucketName") or self.physical_name(resource.logical_id, 63).lower()
        self.admin.client("s3").create_bucket(Bucket=name)
        self.register(resource.logical_id, name, arn=f"arn:aws:s3:::{name}")

    def table(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        name = props.get("TableName") or self.physical_name(resource.logical_id, 255)
        db = self.admin.client("dynamodb")
        table = db.create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
        )["TableDescription"]
        if "TimeToLiveSpecification" in props:
            db.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        self.register(resource.logical_id, name, arn=table["TableArn"])

    def log_group(self, resource: Resource) -> None:
        name = self.resolver.resolve(resource.properties)["LogGroupName"]
        self.admin.client("logs").create_log_group(logGroupName=name)
        self.register(resource.logical_id, name, arn=f"arn:aws:logs:{REGION}:{DEPLOYMENT_ACCOUNT}:log-group:{name}:*")

    def role(self, logical_id: str, service: str, policies: list[Any], path: str = "/") -> str:
        iam = self.admin.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
        name = self.physical_name(f"{logical_id}Role")
        arn = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        statements = [
            statement
            for policy in self.resolver.resolve(policies)
            if isinstance(policy, dict) and "Statement" in policy
            for statement in policy["Statement"]
        ]
        if statements:
            iam.put_role_policy(
                RoleName=name,
                PolicyName="inline",
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
        return str(arn)

    def function(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        logical_id = resource.logical_id
        name = props.get("FunctionName") or self.physical_name(logical_id)
        role = self.role(
            logical_id, "lambda.amazonaws.com", resource.properties.get("Policies", []), props.get("RolePath", "/")
        )
        # SAM names the role it makes <LogicalId>Role (a template may GetAtt it) and gives it the function's tags.
        self.resolver.attributes[(f"{logical_id}Role", "Arn")] = role
        if props.get("Tags"):
            tags = [{"Key": key, "Value": str(value)} for key, value in props["Tags"].items()]
            self.admin.client("iam").tag_role(RoleName=role.rsplit("/", 1)[1], Tags=tags)
        environment = {key: str(value) for key, value in props.get("Environment", {}).get("Variables", {}).items()}
        created = self.admin.client("lambda").create_function(
            FunctionName=name,
            Runtime=props["Runtime"],
            Role=role,
            Handler=props["Handler"],
            Code={"ZipFile": _placeholder_code()},
            Timeout=int(props.get("Timeout", 3)),
            MemorySize=int(props.get("MemorySize", 128)),
            Environment={"Variables": environment},
        )
        spec = FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=created["FunctionArn"],
            code_dir=(self.base / props["CodeUri"]).resolve(),
            handler=props["Handler"],
            layer_dirs=[self.layers[layer] for layer in props.get("Layers", [])],
            environment=environment,
            timeout=int(props.get("Timeout", 3)),
            memory=int(props.get("MemorySize", 128)),
            runtime=props["Runtime"],
        )
        self.stack.runtime.add(spec)
        self.stack.functions[logical_id] = spec
        self.register(logical_id, name, arn=created["FunctionArn"])

    def state_machine(self, resource: Resource) -> None:
        properties = resource.properties
        props = self.resolver.resolve({key: value for key, value in properties.items() if key != "Events"})
        text = (self.base / props["DefinitionUri"]).read_text()
        for key, value in props.get("DefinitionSubstitutions", {}).items():
            text = text.replace("${" + key + "}", str(value))
        definition = json.loads(text)
        role = self.role(resource.logical_id, "states.amazonaws.com", properties.get("Policies", []))
        name = props.get("Name") or self.physical_name(resource.logical_id, 80)
        arn = self.admin.client("stepfunctions").create_state_machine(
            name=name, definition=json.dumps(definition), roleArn=role, type=props.get("Type", "STANDARD")
        )["stateMachineArn"]
        events = self.admin.client("events")
        for event_id, event in properties.get("Events", {}).items():
            event_props = self.resolver.resolve(event["Properties"])
            if event["Type"] == "Schedule":
                rule = f"{name}-{event_id}"[:64]
                events.put_rule(Name=rule, ScheduleExpression=event_props["Schedule"], State="ENABLED")
                target = {"Id": "StateMachine", "Arn": arn, "RoleArn": role, "Input": event_props.get("Input", "{}")}
                events.put_targets(Rule=rule, Targets=[target])
        self.stack.definition = definition
        self.register(resource.logical_id, arn, arn=arn)
        self.resolver.attributes[(resource.logical_id, "Name")] = name

    # -- alerting: the key, topic, rule, alarms and dashboard, so tests can read them back from moto -------

    def kms_key(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        kms = self.admin.client("kms")
        key = kms.create_key(Description=props.get("Description", ""), Policy=json.dumps(props["KeyPolicy"]))
        key_id = key["KeyMetadata"]["KeyId"]
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        self.register(resource.logical_id, key_id, arn=key["KeyMetadata"]["Arn"])

    def topic(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        attributes = {name: str(props[name]) for name in ("DisplayName", "KmsMasterKeyId") if name in props}
        name = props.get("TopicName") or self.physical_name(resource.logical_id, 256)
        arn = self.admin.client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self.register(resource.logical_id, arn, arn=arn)
        self.resolver.attributes[(resource.logical_id, "TopicArn")] = arn

    def topic_policy(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        for topic in props["Topics"]:
            self.admin.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(props["PolicyDocument"])
            )
        self.stack.resources[resource.logical_id] = resource.logical_id

    def subscription(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        arn = self.admin.client("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
        )["SubscriptionArn"]
        self.register(resource.logical_id, arn, arn=arn)

    def rule(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        name = props.get("Name") or self.physical_name(resource.logical_id)
        events = self.admin.client("events")
        arn = events.put_rule(
            Name=name,
            EventPattern=json.dumps(props["EventPattern"]),
            Description=props.get("Description", ""),
            State=props.get("State", "ENABLED"),
        )["RuleArn"]
        if props.get("Targets"):
            events.put_targets(Rule=name, Targets=props["Targets"])
        self.register(resource.logical_id, name, arn=arn)

    def alarm(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        name = props.get("AlarmName") or self.physical_name(resource.logical_id, 255)
        names = (
            "AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods",
            "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions",
        )  # fmt: skip
        given = {key: props[key] for key in names if key in props}
        for key in ("Period", "EvaluationPeriods"):
            given[key] = int(given[key])
        given["Threshold"] = float(given["Threshold"])
        self.admin.client("cloudwatch").put_metric_alarm(AlarmName=name, **given)
        self.register(resource.logical_id, name, arn=f"arn:aws:cloudwatch:{REGION}:{DEPLOYMENT_ACCOUNT}:alarm:{name}")

    def dashboard(self, resource: Resource) -> None:
        props = self.resolver.resolve(resource.properties)
        name = props.get("DashboardName") or self.physical_name(resource.logical_id, 255)
        self.admin.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=props["DashboardBody"])
        self.register(resource.logical_id, name, arn=f"arn:aws:cloudwatch::{DEPLOYMENT_ACCOUNT}:dashboard/{name}")


def _placeholder_code() -> bytes:
    """The zip moto stores for a function; never run (handlers run in process)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def lambda_handler(event, context):\n    raise RuntimeError('run in process')\n")
    return buffer.getvalue()


# What is created for each resource type, in which order (dependencies first); other types are not needed here.
_CREATORS: dict[str, tuple[int, Callable[[_Deployment, Resource], None]]] = {
    "AWS::Serverless::LayerVersion": (0, _Deployment.layer),
    "AWS::S3::Bucket": (1, _Deployment.bucket),
    "AWS::DynamoDB::Table": (1, _Deployment.table),
    "AWS::Logs::LogGroup": (1, _Deployment.log_group),
    "AWS::Serverless::Function": (10, _Deployment.function),
    "AWS::Serverless::StateMachine": (20, _Deployment.state_machine),
    "AWS::KMS::Key": (1, _Deployment.kms_key),
    "AWS::SNS::Topic": (2, _Deployment.topic),
    "AWS::SNS::Subscription": (3, _Deployment.subscription),
    "AWS::Events::Rule": (30, _Deployment.rule),
    "AWS::CloudWatch::Alarm": (30, _Deployment.alarm),
    "AWS::CloudWatch::Dashboard": (40, _Deployment.dashboard),
    "AWS::SNS::TopicPolicy": (40, _Deployment.topic_policy),
}


def deploy(
    admin: AdminClients,
    runtime: LambdaRuntime,
    template_path: Path,
    parameters: dict[str, str],
    stack_name: str = STACK_NAME,
) -> Stack:
    """Create the template's resources in moto, as CloudFormation would after ``sam build``."""
    template = cfn.load(template_path)
    values = cfn.validate_parameters(template, parameters)
    resolver = cfn.Resolver(
        parameters=values,
        pseudo={
            "AWS::AccountId": DEPLOYMENT_ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    resolver.evaluate_conditions(template.get("Conditions", {}))
    deployment = _Deployment(Stack(stack_name, values, admin, runtime), resolver, template_path.parent)
    resources = template["Resources"]
    for logical_id in sorted(resources, key=lambda logical: _CREATORS.get(resources[logical]["Type"], (50,))[0]):
        declared = resources[logical_id]
        creator = _CREATORS.get(declared["Type"])
        if creator is None or ("Condition" in declared and not resolver.conditions[declared["Condition"]]):
            continue
        properties = cfn.merge_globals(template, declared["Type"], declared.get("Properties", {}))
        creator[1](deployment, Resource(logical_id, declared["Type"], properties, declared.get("Metadata", {})))
    for name, output in template.get("Outputs", {}).items():
        deployment.stack.outputs[name] = str(resolver.resolve(output["Value"]))
    return deployment.stack
