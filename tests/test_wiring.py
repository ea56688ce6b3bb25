"""The state machine, the functions, their code and their permissions fit together.

Everything is read from template.yaml, member-account/role.yaml and statemachine/*.asl.json
themselves (through localaws.cfn's YAML loader): no list of functions, substitutions or
permissions is kept here a second time. Each statemachine/*.asl.json is what
scripts/build_asl.py makes of the .asl.yaml beside it.
"""

from __future__ import annotations

import ast
import doctest
import json
import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from keyrotation import errors, naming
from localaws import cfn
from scripts import build_asl

REPO = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO / "template.yaml"
ROLE_PATH = REPO / "member-account" / "role.yaml"
TEMPLATE = cfn.load(TEMPLATE_PATH)
ROLE = cfn.load(ROLE_PATH)
ASL_FILES = sorted((REPO / "statemachine").glob("*.asl.json"))

FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
LAMBDA_INVOKE = re.compile(r"^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$")


# ---------------------------------------------------------------- reading the templates


def resources(document: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in document["Resources"].items() if resource["Type"] == kind}


def functions() -> dict[str, dict[str, Any]]:
    """Each function's properties with the template's Globals applied, as SAM deploys them."""
    return {name: cfn.merge_globals(TEMPLATE, FUNCTION, resource.get("Properties", {})) for name, resource in resources(TEMPLATE, FUNCTION).items()}


def state_machines() -> dict[str, dict[str, Any]]:
    return {name: resource.get("Properties", {}) for name, resource in resources(TEMPLATE, STATE_MACHINE).items()}


def definition_path(machine: dict[str, Any]) -> Path:
    assert "DefinitionUri" in machine and isinstance(machine["DefinitionUri"], str), (
        "a state machine's definition belongs in statemachine/*.asl.json (DefinitionUri), not inline"
    )
    return (REPO / machine["DefinitionUri"]).resolve()


def definition(machine: dict[str, Any]) -> dict[str, Any]:
    return json.loads(definition_path(machine).read_text())


def getatt_arn(expression: Any) -> str | None:
    """The logical id in ``!GetAtt LogicalId.Arn``, else None."""
    if isinstance(expression, dict) and set(expression) == {"Fn::GetAtt"}:
        target = expression["Fn::GetAtt"]
        if isinstance(target, list) and len(target) == 2 and target[1] == "Arn":
            return str(target[0])
    return None


def ref(expression: Any) -> str | None:
    if isinstance(expression, dict) and set(expression) == {"Ref"}:
        return str(expression["Ref"])
    return None


def ledger_table() -> str:
    """The ledger's logical id, from the functions' LEDGER_TABLE variable (Globals)."""
    name = ref(TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]["LEDGER_TABLE"])
    assert name in resources(TEMPLATE, "AWS::DynamoDB::Table"), "LEDGER_TABLE must be !Ref of a DynamoDB table of the template"
    return name


# ---------------------------------------------------------------- reading the ASL


def walk_states(states: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, nested ones included (Map ItemProcessor/Iterator, Parallel Branches)."""
    for name, state in states.items():
        where = f"{path}{name}"
        yield where, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from walk_states(state[key]["States"], f"{where}.{key}.")
        for index, branch in enumerate(state.get("Branches", [])):
            yield from walk_states(branch["States"], f"{where}.Branches[{index}].")


def tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    return ((name, state) for name, state in walk_states(states) if state["Type"] == "Task")


def invoked_placeholder(state: dict[str, Any]) -> str | None:
    """The function a Lambda Task calls, as written in the ASL: ``${Name}``, a literal, or None if not Lambda."""
    resource = state.get("Resource", "")
    if LAMBDA_INVOKE.match(resource):
        parameters = state.get("Parameters", {})
        assert "FunctionName.$" not in parameters, "a Lambda task must name its function, not pick it from the input"
        return str(parameters.get("FunctionName"))
    if resource.startswith("${") or resource.startswith("arn:aws:lambda:"):
        return resource
    return None


def lambda_tasks(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], str]]:
    for name, state in tasks(states):
        target = invoked_placeholder(state)
        if target is not None:
            yield name, state, target


def invoked_functions(machine: dict[str, Any]) -> dict[str, set[str]]:
    """Logical id of each function the state machine invokes -> the Task states invoking it."""
    substitutions = machine.get("DefinitionSubstitutions", {})
    invoked: dict[str, set[str]] = {}
    for name, _state, target in lambda_tasks(definition(machine)["States"]):
        match = PLACEHOLDER.fullmatch(target)
        assert match, f"Task {name} calls {target!r}: a function must come in through a ${{...}} DefinitionSubstitution"
        logical = getatt_arn(substitutions.get(match.group(1)))
        assert logical, f"Task {name}: ${{{match.group(1)}}} must be a DefinitionSubstitution of the form !GetAtt <Function>.Arn"
        invoked.setdefault(logical, set()).add(name)
    return invoked


def machine_ids() -> list[str]:
    return sorted(state_machines())


FUNCTION_IDS = sorted(resources(TEMPLATE, FUNCTION))


def test_the_template_has_functions_and_a_state_machine() -> None:
    assert FUNCTION_IDS and state_machines() and ASL_FILES


# ---------------------------------------------------------------- (a) substitutions


def test_every_definition_file_belongs_to_a_state_machine() -> None:
    used = {definition_path(machine) for machine in state_machines().values()}
    orphans = [str(path.relative_to(REPO)) for path in ASL_FILES if path.resolve() not in used]
    missing = [str(path) for path in used if not path.is_file()]
    assert not orphans, f"statemachine files no state machine uses: {orphans}"
    assert not missing, f"DefinitionUri files that do not exist: {missing}"


@pytest.mark.parametrize("machine_id", machine_ids())
def test_placeholders_and_substitutions_match(machine_id: str) -> None:
    machine = state_machines()[machine_id]
    placeholders = set(PLACEHOLDER.findall(definition_path(machine).read_text()))
    substitutions = set(machine.get("DefinitionSubstitutions", {}))
    assert not placeholders - substitutions, f"{machine_id}: ${{...}} with no DefinitionSubstitutions entry: {sorted(placeholders - substitutions)}"
    assert not substitutions - placeholders, f"{machine_id}: DefinitionSubstitutions the definition never uses: {sorted(substitutions - placeholders)}"


# ---------------------------------------------------------------- (b) tasks -> functions -> code


@pytest.mark.parametrize("machine_id", machine_ids())
def test_lambda_tasks_invoke_functions_of_the_template(machine_id: str) -> None:
    invoked = invoked_functions(state_machines()[machine_id])
    not_functions = {logical: sorted(states) for logical, states in invoked.items() if logical not in FUNCTION_IDS}
    assert not not_functions, f"{machine_id}: tasks invoking something that is no {FUNCTION} of template.yaml: {not_functions}"


def test_every_function_is_invoked_by_a_state_machine() -> None:
    invoked = set().union(*(invoked_functions(machine) for machine in state_machines().values()))
    assert not set(FUNCTION_IDS) - invoked, f"functions no Task invokes: {sorted(set(FUNCTION_IDS) - invoked)}"


def test_each_function_plays_one_role() -> None:
    # One Task state per function: a handler never picks its role from the keys of its event.
    invoked: dict[str, set[str]] = {}
    for machine in state_machines().values():
        for logical, states in invoked_functions(machine).items():
            invoked.setdefault(logical, set()).update(states)
    shared = {logical: sorted(states) for logical, states in invoked.items() if len(states) > 1}
    assert not shared, f"functions called by more than one Task state (give each role its own function): {shared}"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_has_its_own_service_name(function_id: str) -> None:
    # Logs and metrics say which function wrote them: POWERTOOLS_SERVICE_NAME is the function's folder name.
    properties = functions()[function_id]
    service = properties.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
    assert service == Path(properties["CodeUri"]).name, f"{function_id}: POWERTOOLS_SERVICE_NAME {service!r}, CodeUri {properties['CodeUri']}"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_code_has_its_handler(function_id: str) -> None:
    properties = functions()[function_id]
    assert str(properties.get("Runtime", "")).startswith("python"), f"{function_id}: Runtime {properties.get('Runtime')!r}"
    code_uri, handler = properties.get("CodeUri"), properties.get("Handler")
    assert isinstance(code_uri, str) and isinstance(handler, str), f"{function_id}: CodeUri and Handler must be set"
    folder = REPO / code_uri
    assert folder.is_dir(), f"{function_id}: CodeUri {code_uri} does not exist"
    module, _, name = handler.rpartition(".")
    assert module and name, f"{function_id}: Handler {handler!r} is not module.function"
    candidates = [folder / (module.replace(".", "/") + ".py"), folder / module.replace(".", "/") / "__init__.py"]
    source = next((path for path in candidates if path.is_file()), None)
    assert source, f"{function_id}: Handler {handler}: none of {[str(p.relative_to(REPO)) for p in candidates]} exists"

    tree = ast.parse(source.read_text(), filename=str(source))
    defined = {
        node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    assigned = {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets if isinstance(target, ast.Name)}
    assert name in defined or name in assigned, f"{function_id}: {source.relative_to(REPO)} defines no top-level {name}"
    if name in defined:
        arguments = defined[name].args
        positional = len(arguments.posonlyargs) + len(arguments.args)
        assert positional == 2 or arguments.vararg, f"{function_id}: {name} must take (event, context), takes {positional} arguments"


@pytest.mark.parametrize("function_id", FUNCTION_IDS)
def test_function_layers_fit_its_runtime(function_id: str) -> None:
    properties = functions()[function_id]
    layers = [ref(layer) for layer in properties.get("Layers", [])]
    assert layers and all(layers), f"{function_id}: Layers must be !Ref of layers of the template: {properties.get('Layers')}"
    for layer in layers:
        resource = TEMPLATE["Resources"][layer]
        assert resource["Type"] == "AWS::Serverless::LayerVersion"
        layer_properties, metadata = resource["Properties"], resource.get("Metadata", {})
        assert properties["Runtime"] in layer_properties["CompatibleRuntimes"], f"{function_id}: {layer} is not built for {properties['Runtime']}"
        for architecture in properties.get("Architectures", ["x86_64"]):
            assert architecture in layer_properties["CompatibleArchitectures"], f"{function_id}: {layer} is not built for {architecture}"
            assert metadata.get("BuildArchitecture", "x86_64") == architecture, f"{layer}: BuildArchitecture differs from {function_id}'s {architecture}"
        assert metadata.get("BuildMethod") == properties["Runtime"], f"{layer}: BuildMethod must be {properties['Runtime']}"


# ---------------------------------------------------------------- (c) invoke permissions


@pytest.mark.parametrize("machine_id", machine_ids())
def test_invoke_policy_covers_exactly_the_invoked_functions(machine_id: str) -> None:
    machine = state_machines()[machine_id]
    allowed: list[str] = []
    for policy in machine.get("Policies", []):
        if isinstance(policy, dict) and "LambdaInvokePolicy" in policy:
            name = ref(policy["LambdaInvokePolicy"].get("FunctionName"))
            assert name, f"{machine_id}: LambdaInvokePolicy must name its function with !Ref: {policy}"
            allowed.append(name)
    assert len(allowed) == len(set(allowed)), f"{machine_id}: LambdaInvokePolicy repeated: {sorted(allowed)}"
    invoked = set(invoked_functions(machine))
    assert set(allowed) == invoked, (
        f"{machine_id}: invoked but not allowed {sorted(invoked - set(allowed))}; allowed but never invoked {sorted(set(allowed) - invoked)}"
    )
    other_invokes = [
        statement for statement in statements(machine.get("Policies", [])) if any(action.lower().startswith("lambda:") for action in actions(statement))
    ]
    assert not other_invokes, f"{machine_id}: Lambda permissions outside LambdaInvokePolicy: {other_invokes}"


@pytest.mark.parametrize("machine_id", machine_ids())
def test_service_integrations_are_allowed(machine_id: str) -> None:
    """Each non-Lambda Task, and the Distributed Map's ItemReader, has its permission, on the resource it uses."""
    machine = state_machines()[machine_id]
    substitutions = machine.get("DefinitionSubstitutions", {})
    granted = [(action.lower(), statement.get("Resource")) for statement in statements(machine.get("Policies", [])) if statement.get("Effect") == "Allow" for action in actions(statement)]
    used: list[tuple[str, str]] = []
    for name, state in walk_states(definition(machine)["States"]):
        if state["Type"] == "Map" and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
            used.append((name, "states:startexecution"))  # a Distributed Map runs child executions of its own state machine
        readers = [state["ItemReader"]] if "ItemReader" in state else []
        for step in ([state] if state["Type"] == "Task" and invoked_placeholder(state) is None else []) + readers:
            service, _, operation = step["Resource"].removeprefix("arn:aws:states:::").partition(":")
            used.append((name, f"{service}:{operation.split('.')[0]}".lower()))
            if service == "dynamodb":
                table = PLACEHOLDER.fullmatch(step["Parameters"].get("TableName", ""))
                logical = ref(substitutions.get(table.group(1))) if table else None
                assert logical, f"{machine_id}: {name} must write to a table of the template through a ${{...}} substitution"
                assert (f"dynamodb:{operation}".lower(), {"Fn::GetAtt": [logical, "Arn"]}) in granted, (
                    f"{machine_id}: {name} calls dynamodb:{operation} on {logical}, which its Policies do not allow"
                )
    missing = [(name, action) for name, action in used if not any(fnmatchcase(action, pattern) for pattern, _ in granted)]
    assert not missing, f"{machine_id}: service integrations its Policies do not allow: {missing}"


# ---------------------------------------------------------------- (d) naming


@pytest.mark.parametrize("machine_id", machine_ids())
def test_function_substitutions_are_named_after_their_function(machine_id: str) -> None:
    for key, value in state_machines()[machine_id].get("DefinitionSubstitutions", {}).items():
        logical = getatt_arn(value)
        is_function = logical is not None and TEMPLATE["Resources"].get(logical, {}).get("Type") == FUNCTION
        if is_function:
            assert re.fullmatch(r"[A-Z][A-Za-z0-9]*Function", logical), f"function {logical} must be named XxxFunction"
            assert key == f"{logical}Arn", f"{machine_id}: substitution {key} holds {logical}.Arn; name it {logical}Arn"
        else:
            assert not key.endswith("FunctionArn"), f"{machine_id}: {key} is named like a function ARN but holds {value}"


# ---------------------------------------------------------------- (e) retries and catches


def error_names() -> set[str]:
    found, pending = set(), [errors.KeyRotationError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("machine_id", machine_ids())
def test_lambda_tasks_retry_throttling_and_transient_errors(machine_id: str) -> None:
    required = {errors.Throttled.__name__, errors.TransientAwsError.__name__}
    assert required == {"KeyRotation.Throttled", "KeyRotation.TransientAwsError"}
    checked = []
    for name, state, _target in lambda_tasks(definition(state_machines()[machine_id])["States"]):
        retried = {error for retrier in state.get("Retry", []) for error in retrier.get("ErrorEquals", [])}
        assert required <= retried, f"{machine_id}: Task {name} does not retry {sorted(required - retried)}"
        checked.append(name)
    assert checked, f"{machine_id}: no Lambda task found"


@pytest.mark.parametrize("machine_id", machine_ids())
def test_error_names_in_the_asl_are_errors_of_the_package(machine_id: str) -> None:
    known = error_names()
    named = {
        (name, error)
        for name, state in walk_states(definition(state_machines()[machine_id])["States"])
        for handler in state.get("Retry", []) + state.get("Catch", [])
        for error in handler["ErrorEquals"]
        if error.startswith("KeyRotation.")
    }
    unknown = sorted((name, error) for name, error in named if error not in known)
    assert not unknown, f"{machine_id}: errors keyrotation.errors does not define (typo?): {unknown}"


def is_ledger_write(state: dict[str, Any], substitutions: dict[str, Any]) -> bool:
    if state.get("Resource") not in ("arn:aws:states:::dynamodb:updateItem", "arn:aws:states:::dynamodb:putItem"):
        return False
    table = PLACEHOLDER.fullmatch(state.get("Parameters", {}).get("TableName", ""))
    return bool(table) and ref(substitutions.get(table.group(1))) == ledger_table()


@pytest.mark.parametrize("machine_id", machine_ids())
def test_account_workflow_tasks_catch_or_write_the_ledger(machine_id: str) -> None:
    machine = state_machines()[machine_id]
    substitutions = machine.get("DefinitionSubstitutions", {})
    distributed = [
        (name, state)
        for name, state in walk_states(definition(machine)["States"])
        if state["Type"] == "Map" and state.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    ]
    assert distributed, f"{machine_id}: no Distributed Map"
    for map_name, map_state in distributed:
        inner = list(tasks(map_state["ItemProcessor"]["States"]))
        assert inner, f"{map_name}: no Task in the ItemProcessor"
        uncaught = [
            name
            for name, state in inner
            if not any("States.ALL" in catcher["ErrorEquals"] for catcher in state.get("Catch", []))
            and not is_ledger_write(state, substitutions)
        ]
        assert not uncaught, f"{machine_id}: {map_name} tasks with neither a States.ALL Catch nor a ledger write: {uncaught}"


# ---------------------------------------------------------------- (f) least privilege


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM policy statement under node (Fn::If branches included)."""
    if isinstance(node, list):
        for item in node:
            yield from statements(item)
    elif isinstance(node, dict):
        if "Effect" in node and ("Action" in node or "NotAction" in node):
            yield node
            return
        for value in node.values():
            yield from statements(value)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def actions(statement: dict[str, Any]) -> list[str]:
    listed = as_list(statement.get("Action", []))
    assert all(isinstance(action, str) for action in listed), f"actions must be plain strings: {statement}"
    return listed


def all_statements() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, statement) for path, document in ((TEMPLATE_PATH, TEMPLATE), (ROLE_PATH, ROLE)) for statement in statements(document["Resources"])]


def test_policies_are_found() -> None:
    found = {name for name, _ in all_statements()}
    assert found == {"template.yaml", "role.yaml"}


def test_no_forbidden_or_wildcard_actions() -> None:
    forbidden_patterns = {"*", "iam:*", "secretsmanager:*"}
    forbidden_actions = ["iam:putuserpolicy", "iam:attachuserpolicy"]
    problems = []
    for where, statement in all_statements():
        if "NotAction" in statement and statement["Effect"] == "Allow":
            problems.append((where, statement.get("Sid"), "Allow with NotAction"))
        for action in actions(statement):
            pattern = action.lower()
            if pattern in forbidden_patterns or any(fnmatchcase(target, pattern) for target in forbidden_actions):
                problems.append((where, statement.get("Sid"), action))
    assert not problems, f"forbidden actions: {problems}"


MUTATING = ("Create", "Update", "Delete", "Put", "Tag", "Untag", "Attach", "Detach", "Add", "Remove", "Set", "Upload", "Enable", "Reset", "Restore", "Rotate", "Cancel")


def role_permission_statements() -> list[dict[str, Any]]:
    return [
        statement
        for name, resource in ROLE["Resources"].items()
        for statement in statements({key: value for key, value in resource.get("Properties", {}).items() if key != "AssumeRolePolicyDocument"})
    ]


def test_member_role_mutations_name_their_resources() -> None:
    checked = 0
    for statement in role_permission_statements():
        mutating = [
            action for action in actions(statement) if any(char in action for char in "*?") or action.partition(":")[2].startswith(MUTATING)
        ]
        if not mutating or statement["Effect"] != "Allow":
            continue
        checked += 1
        resources_ = as_list(statement.get("Resource", "*"))
        assert "*" not in resources_ and "NotResource" not in statement, f"{statement.get('Sid')}: {mutating} on every resource"
        for resource in resources_:
            text = resource.get("Fn::Sub") if isinstance(resource, dict) else resource
            assert isinstance(text, str) and "${AWS::AccountId}" in text, (
                f"{statement.get('Sid')}: {mutating} must be limited to this account's resources, got {resource}"
            )
    assert checked, "the member role mutates nothing?"


def test_member_role_secrets_are_only_the_key_secrets() -> None:
    resolver = cfn.Resolver(parameters={}, pseudo={"AWS::Partition": "aws", "AWS::AccountId": "111122223333", "AWS::Region": "eu-west-1"})
    secret_statements = [s for s in role_permission_statements() if any(a.lower().startswith("secretsmanager:") for a in actions(s))]
    assert secret_statements, "the member role has no Secrets Manager statement"
    prefix = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:"
    for statement in secret_statements:
        for resource in as_list(statement.get("Resource")):
            pattern = resolver.resolve(resource)
            assert isinstance(pattern, str) and re.fullmatch(r"arn:aws:secretsmanager:[^:]+:111122223333:secret:Account_111122223333_User_\*_AccessKey-\?{6}", pattern), (
                f"{statement.get('Sid')}: Secrets Manager resource {resource} is not limited to this account's {naming.SECRET_NAME_PATTERN} secrets"
            )
            # The names the functions use fall inside it; nothing else does.
            for user in ("alice", "ops,admin", "a.b@c+d=e"):
                name = naming.secret_name("111122223333", user)
                assert fnmatchcase(f"{prefix}{name}-AbC123", pattern), f"{name} is outside {pattern}"
            for other in ("Account_444455556666_User_alice_AccessKey-AbC123", "prod/database-password-AbC123", "Account_111122223333_User_alice_AccessKeyX-AbC123"):
                assert not fnmatchcase(f"{prefix}{other}", pattern), f"{other} is inside {pattern}"


def test_member_role_trusts_only_the_organization() -> None:
    roles = resources(ROLE, "AWS::IAM::Role")
    assert roles
    for name, role in roles.items():
        trust = list(statements(role["Properties"]["AssumeRolePolicyDocument"]))
        assert trust, f"{name}: no trust policy"
        for statement in trust:
            if statement["Effect"] != "Allow":
                continue
            conditions = {key.lower(): value for operator in statement.get("Condition", {}).values() for key, value in operator.items()}
            org = conditions.get("aws:principalorgid")
            assert org is not None, f"{name}.{statement.get('Sid')}: no aws:PrincipalOrgID condition"
            assert ref(org) in ROLE["Parameters"], f"{name}.{statement.get('Sid')}: aws:PrincipalOrgID must be the OrganizationId parameter, got {org}"
            assert statement.get("Principal") != "*" and statement.get("Principal", {}).get("AWS") != "*", f"{name}: trusts any principal"


def test_member_role_defaults_match_the_rotation_stack() -> None:
    # Two stacks, so the values are necessarily written twice: they must agree.
    assert ROLE["Parameters"]["RoleName"]["Default"] == TEMPLATE["Parameters"]["MemberRoleName"]["Default"]
    assert ROLE["Parameters"]["SecretsKmsKeyAlias"]["Default"] == TEMPLATE["Parameters"]["SecretsKmsKeyAlias"]["Default"]
    # The organization policies protect the functions' roles by this path (security/organization-policies.yaml).
    assert TEMPLATE["Globals"]["Function"]["RolePath"] == "/key-rotation/"


def test_the_member_role_trusts_exactly_the_roles_of_the_functions_that_assume_it_each_tagged_with_its_purpose() -> None:
    from keyrotation.sessions import Purpose

    assuming = {
        name: resource["Properties"]
        for name, resource in resources(TEMPLATE, FUNCTION).items()
        if any(
            action.lower() == "sts:assumerole"
            for statement in statements(resource["Properties"].get("Policies", []))
            for action in actions(statement)
        )
    }
    output = TEMPLATE["Outputs"]["FunctionRoleArns"]["Value"]["Fn::Join"]
    assert output[0] == ","
    listed = [getatt["Fn::GetAtt"][0].removesuffix("Role") for getatt in output[1]]
    assert sorted(listed) == sorted(assuming), "FunctionRoleArns must list the role of every function that assumes the member role"
    purposes = [assuming[name]["Tags"]["KeyRotationPurpose"] for name in listed]
    assert purposes == [purpose.value for purpose in Purpose], "FunctionRoleArns is in the order of keyrotation.sessions.Purpose"
    for name, properties in assuming.items():
        for statement in statements(properties["Policies"]):
            if any(action.lower() == "sts:assumerole" for action in actions(statement)):
                assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}, name


def test_each_function_and_state_machine_has_its_own_policies() -> None:
    shared = {key for key in ("Role", "Policies") if key in TEMPLATE.get("Globals", {}).get("Function", {})}
    assert not shared, f"Globals.Function sets {shared}: every function must have its own role"
    owned = {**resources(TEMPLATE, FUNCTION), **resources(TEMPLATE, STATE_MACHINE)}
    for name, resource in owned.items():
        properties = resource.get("Properties", {})
        assert "Role" not in properties, f"{name} uses a role of its own choosing ({properties['Role']}); give it Policies"
        assert properties.get("Policies"), f"{name} has no Policies"
        assert not any(isinstance(policy, str) for policy in properties["Policies"]), f"{name}: managed policies by name are not least privilege"


# ---------------------------------------------------------------- (g) the definitions' YAML source


@pytest.mark.parametrize("asl", ASL_FILES, ids=lambda path: path.name)
def test_definition_is_generated_from_its_yaml_source(asl: Path) -> None:
    source = asl.with_suffix(".yaml")
    assert source.is_file(), f"{asl.name} has no {source.name} beside it: the JSON is generated, never written by hand"
    assert asl.read_text() == build_asl.render(source), (
        f"{asl.name} is not what scripts/build_asl.py makes of {source.name}: edit the YAML, then run `make asl`"
    )
    assert build_asl.main(["--check"]) == 0


def test_the_generators_examples_hold() -> None:
    failures, tried = doctest.testmod(build_asl)
    assert tried and not failures


RETRY_SOURCE = """
RetryPolicies:
  lambda: &lambda {ErrorEquals: [KeyRotation.Throttled], IntervalSeconds: 2, MaxAttempts: 6}
StartAt: A
States:
  A: {Type: Task, Resource: "${F}", Retry: [*lambda], Next: B}
  B: {Type: Task, Resource: "${F}", Retry: %s, End: true}
"""


def test_the_yaml_source_resolves_its_retry_policies() -> None:
    document = build_asl.expand(RETRY_SOURCE % "[*lambda]")
    assert "RetryPolicies" not in document
    assert document["States"]["A"]["Retry"] == document["States"]["B"]["Retry"] == [
        {"ErrorEquals": ["KeyRotation.Throttled"], "IntervalSeconds": 2, "MaxAttempts": 6}
    ]


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        pytest.param(
            RETRY_SOURCE % "[{ErrorEquals: [KeyRotation.Throttled], IntervalSeconds: 2, MaxAttempts: 6}]",
            "B writes out RetryPolicies.lambda: use its alias, *lambda",
            id="policy-written-out",
        ),
        pytest.param(
            RETRY_SOURCE.replace("Retry: [*lambda], Next", "Retry: [{ErrorEquals: [X.Y]}], Next") % "[{ErrorEquals: [X.Y]}]",
            "B repeats a retrier of A: declare it once in RetryPolicies",
            id="retrier-repeated",
        ),
        pytest.param(
            RETRY_SOURCE.replace("Retry: [*lambda], Next", "Next") % "[]",
            "RetryPolicies.lambda is used by no state",
            id="policy-unused",
        ),
        pytest.param(
            RETRY_SOURCE.replace("StartAt: A", "Policies: {}\nStartAt: A") % "[*lambda]",
            "top-level fields that are not ASL: ['Policies']",
            id="not-asl",
        ),
    ],
)
def test_the_yaml_source_says_each_retry_policy_once(source: str, problem: str) -> None:
    with pytest.raises(build_asl.SourceError, match=re.escape(problem)):
        build_asl.expand(source)


# ---------------------------------------------------------------- (h) parameter validation

GOOD = {
    "RotationPeriodDays": "30",
    "InactivePeriodDays": "45",
    "DeletePeriodDays": "60",
    "WarningDays": "0",
    "DryRun": "false",
    "MemberRoleName": "KeyRotationRole",
    "ExcludeAccounts": "111111111111,222222222222",
    "IncludeOUs": "ou-ab12-abcdefgh,r-ab12",
    "ExemptTagKey": "rotation:exempt",
    "ExemptGroupName": "NoRotation",
    "MaxActionsPerAccount": "500",
    "MaxConcurrency": "1",
    "ScheduleExpression": "rate(1 day)",
    "SenderEmail": "keys@example.com",
    "SecurityTeamEmail": "security@example.com",
    "OwnerEmailTagKey": "owner",
    "TemplateBucket": "my-templates",
    "TemplatePrefix": "emails/",
    "TemplateBucketOwner": "333333333333",
    "MaxExemptionDays": "30",
    "AllowedEmailDomains": "example.com,corp.example",
    "CodeSigningConfigArn": "arn:aws:lambda:us-east-1:111111111111:code-signing-config:csc-0123456789abcdef0",
    "LogRetentionDays": "365",
    "SecretsKmsKeyAlias": "alias/key-rotation",
    "DryRunNotifyOwners": "true",
    "AlertEmail": "oncall@example.com",
}


def test_good_parameters_pass() -> None:
    assert cfn.validate_parameters(TEMPLATE, GOOD) == GOOD
    defaults = cfn.validate_parameters(TEMPLATE, {})
    assert defaults["DryRun"] == "true", "the first deploy must be a dry run"
    assert defaults["DryRunNotifyOwners"] == "false", "a dry run must not mail every key owner"
    assert defaults["AlertEmail"] == "", "no subscription unless one is asked for"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DryRun", "maybe"),
        ("DryRun", "True"),
        ("RotationPeriodDays", "0"),
        ("RotationPeriodDays", "ninety"),
        ("MaxConcurrency", "1001"),
        ("MaxActionsPerAccount", "0"),
        ("ExcludeAccounts", "123"),
        ("ExcludeAccounts", "111111111111, 222222222222"),
        ("IncludeOUs", "ou-bad"),
        ("MemberRoleName", "no spaces allowed"),
        ("ScheduleExpression", "daily"),
        ("SenderEmail", "not-an-email"),
        ("SecurityTeamEmail", "a@b"),
        ("AlertEmail", "a@b"),
        ("AlertEmail", "oncall@example.com,ops@example.com"),
        ("DryRunNotifyOwners", "yes"),
        ("TemplateBucket", "Upper_Case"),
        ("TemplateBucketOwner", "12345"),
        ("MaxExemptionDays", "0"),
        ("MaxExemptionDays", "3651"),
        ("AllowedEmailDomains", "example.com, corp.example"),
        ("AllowedEmailDomains", "me@example.com"),
        ("CodeSigningConfigArn", "arn:aws:lambda:us-east-1:111111111111:function:x"),
        ("LogRetentionDays", "100"),
        ("SecretsKmsKeyAlias", "key-rotation"),
    ],
)
def test_bad_parameter_is_rejected(name: str, value: str) -> None:
    assert name in TEMPLATE["Parameters"]
    with pytest.raises(cfn.TemplateError, match=re.escape(name)):
        cfn.validate_parameters(TEMPLATE, {**GOOD, name: value})


def test_unknown_parameter_is_rejected() -> None:
    with pytest.raises(cfn.TemplateError, match="RotationDays"):
        cfn.validate_parameters(TEMPLATE, {"RotationDays": "30"})


ROLE_GOOD = {
    "RotationAccountId": "111122223333",
    "OrganizationId": "o-abcdefghij",
    "FunctionRoleArns": "arn:aws:iam::111122223333:role/key-rotation/a,arn:aws-us-gov:iam::111122223333:role/key-rotation/b",
}


def test_member_role_parameters() -> None:
    values = cfn.validate_parameters(ROLE, ROLE_GOOD)
    assert values["RoleName"] == "IAMKeyRotationMemberRole" and values["SecretsKmsKeyAlias"] == ""
    with pytest.raises(cfn.TemplateError, match="OrganizationId"):
        cfn.validate_parameters(ROLE, {"RotationAccountId": "111122223333"})
    with pytest.raises(cfn.TemplateError, match="FunctionRoleArns"):
        cfn.validate_parameters(ROLE, {key: value for key, value in ROLE_GOOD.items() if key != "FunctionRoleArns"})
    for name, value in [
        ("RotationAccountId", "1234"),
        ("OrganizationId", "org-1"),
        ("FunctionRoleArns", "arn:aws:iam::111122223333:role/a, arn:aws:iam::111122223333:role/b"),
        ("FunctionRoleArns", "arn:aws:iam::111122223333:role/*"),
        ("SecretsKmsKeyAlias", "alias"),
    ]:
        with pytest.raises(cfn.TemplateError, match=name):
            cfn.validate_parameters(ROLE, {**ROLE_GOOD, name: value})
