"""`sam build` turns template.yaml into deployable artifacts, and they hold what the functions need.

The one slow test of the suite (pip resolves the layer's arm64 wheels). Like a fresh checkout,
it builds with no cache (--no-cached; samconfig.toml's `cached = true` would keep
dependencies in the repository's .aws-sam/) into a temporary folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from localaws import cfn
from scripts import function_python
from tests.test_lint import REPO, offline_env, report, sam_cli

TEMPLATE_PATH = REPO / "template.yaml"
TEMPLATE = cfn.load(TEMPLATE_PATH)
FUNCTION = "AWS::Serverless::Function"
LAYER = "AWS::Serverless::LayerVersion"
BUILD_TIMEOUT = 600
ELF_MACHINES = {62: "x86_64", 183: "arm64"}  # e_machine of an ELF header: EM_X86_64, EM_AARCH64


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in TEMPLATE["Resources"].items() if resource["Type"] == kind}


def functions() -> dict[str, dict[str, Any]]:
    return {name: cfn.merge_globals(TEMPLATE, FUNCTION, resource["Properties"]) for name, resource in resources(FUNCTION).items()}


def runtime() -> str:
    runtimes = {properties["Runtime"] for properties in functions().values()}
    runtimes |= {resource.get("Metadata", {}).get("BuildMethod") for resource in resources(LAYER).values()}
    assert len(runtimes) == 1, f"one Python runtime expected for functions and layers, found {runtimes}"
    (name,) = runtimes
    assert re.fullmatch(r"python3\.\d+", name), name
    return name


def path_with_python(env: dict[str, str], runtime: str) -> str:
    """PATH on which sam's pip builder finds a working `pythonX.Y` for the runtime, as `make build` finds it."""
    path = function_python.path_with_python(env, runtime)
    if path is None:
        pytest.fail(function_python.how_to_install(runtime), pytrace=False)
    return path


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build once per session: pytest-xdist workers share the result through a locked folder."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    shared = root / "sam-build"
    shared.mkdir(exist_ok=True)
    build_dir, outcome = shared / "build", shared / "outcome.json"
    with (shared / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome.exists():
            outcome.write_text(json.dumps(run_build(build_dir)))
    result = json.loads(outcome.read_text())
    assert result["returncode"] == 0 and "Build Succeeded" in result["output"], result["output"]
    print(f"sam build took {result['seconds']:.1f}s")
    return build_dir


def run_build(build_dir: Path) -> dict[str, Any]:
    sam = sam_cli()
    env = offline_env()
    env["PATH"] = path_with_python(env, runtime())
    command = [str(sam), "build", "--template-file", "template.yaml", "--build-dir", str(build_dir), "--no-cached"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)
    seconds = time.monotonic() - started
    return {"returncode": result.returncode, "seconds": seconds, "output": f"({seconds:.1f}s) {report(result)}"}


def test_build_succeeds(build: Path) -> None:
    built = cfn.load(build / "template.yaml")
    for name in [*resources(FUNCTION), *resources(LAYER)]:
        assert name in built["Resources"], f"{name} is missing from the built template"
    for name in resources(FUNCTION):
        assert built["Resources"][name]["Properties"]["CodeUri"] == name, f"{name}: built CodeUri is not its artifact folder"
    for name in resources(LAYER):
        assert built["Resources"][name]["Properties"]["ContentUri"] == name, f"{name}: built ContentUri is not its artifact folder"


def source_files(folder: Path) -> dict[Path, Path]:
    """Relative path -> file, links followed, as the artifact should hold them."""
    found = {}
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [name for name in dirs if name != "__pycache__"]
        for name in files:
            if not name.endswith(".pyc"):
                path = Path(root) / name
                found[path.relative_to(folder)] = path
    return found


@pytest.mark.parametrize("function_id", sorted(resources(FUNCTION)))
def test_function_artifact_holds_its_code(build: Path, function_id: str) -> None:
    properties = functions()[function_id]
    artifact = build / function_id
    module = properties["Handler"].rpartition(".")[0].replace(".", "/") + ".py"
    assert (artifact / module).is_file(), f"{function_id}: {module} missing from {artifact}: {sorted(os.listdir(artifact)) if artifact.exists() else 'no artifact'}"
    for relative, source in source_files(REPO / properties["CodeUri"]).items():
        built = artifact / relative
        assert built.is_file() and not built.is_symlink(), f"{function_id}: {relative} is not a file in the artifact"
        assert built.read_bytes() == source.read_bytes(), f"{function_id}: {relative} differs from {source}"


def test_linked_email_templates_are_packaged(build: Path) -> None:
    # functions/notify/templates and functions/send_run_report/templates link to the top-level
    # templates/ folder (one copy in the repository, edited and previewed there); each function
    # that reads templates beside its app.py has the link, and its artifact must hold real files.
    templates = REPO / "templates"
    links = {
        function_id: link
        for function_id, properties in functions().items()
        for link in (REPO / properties["CodeUri"]).iterdir()
        if link.is_symlink() and link.resolve() == templates.resolve()
    }
    assert links, f"no function's CodeUri links to {templates}"
    readers = {
        function_id
        for function_id, properties in functions().items()
        if 'Path(__file__).parent / "templates"' in (REPO / properties["CodeUri"] / "app.py").read_text()
    }
    assert readers == set(links), f"functions reading templates/ beside app.py {sorted(readers)}, with the link {sorted(links)}"
    expected = sorted(path.name for path in templates.glob("*.j2"))
    assert expected, f"no email template in {templates}"
    for function_id, link in links.items():
        packaged = build / function_id / link.name
        assert packaged.is_dir() and not packaged.is_symlink(), f"{function_id}: {link.name}/ was not materialised by sam build"
        assert sorted(path.name for path in packaged.glob("*.j2")) == expected
        for name in expected:
            assert (packaged / name).read_bytes() == (templates / name).read_bytes(), f"{function_id}: {name} differs"


def elf_machine(path: Path) -> str | None:
    with path.open("rb") as handle:
        header = handle.read(20)
    if header[:4] != b"\x7fELF":
        return None
    return ELF_MACHINES.get(int.from_bytes(header[18:20], "little" if header[5] == 1 else "big"), f"e_machine {header[18:20].hex()}")


def requirement_pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?==([^\s;]+)", line)
            assert match, f"{path}: pin every layer dependency with ==, got {line!r}"
            pins[re.sub(r"[-_.]+", "_", match.group(1)).lower()] = match.group(3)
    return pins


@pytest.mark.parametrize("layer_id", sorted(resources(LAYER)))
def test_layer_artifact(build: Path, layer_id: str) -> None:
    resource = resources(LAYER)[layer_id]
    content = REPO / resource["Properties"]["ContentUri"]
    site = build / layer_id / "python"
    assert site.is_dir(), f"{layer_id}: no python/ folder in {build / layer_id}"

    # The package itself, as in the repository.
    packages = [path for path in content.iterdir() if (path / "__init__.py").is_file()]
    assert packages, f"{layer_id}: no package in {content}"
    for package in packages:
        for relative, source in source_files(package).items():
            built = site / package.name / relative
            assert built.is_file() and built.read_bytes() == source.read_bytes(), f"{layer_id}: {package.name}/{relative} missing or different"
    assert (site / "keyrotation" / "__init__.py").is_file()

    # Its libraries, at the pinned versions.
    assert (site / "jinja2").is_dir() and (site / "aws_lambda_powertools").is_dir(), sorted(os.listdir(site))
    installed = {
        re.sub(r"[-_.]+", "_", match.group(1)).lower(): match.group(2)
        for match in (re.fullmatch(r"(.+)-([^-]+)\.dist-info", path.name) for path in site.glob("*.dist-info"))
        if match
    }
    pins = requirement_pins(content / "requirements.txt")
    wrong = {name: (version, installed.get(name)) for name, version in pins.items() if installed.get(name) != version}
    assert not wrong, f"{layer_id}: pinned vs built versions: {wrong}"

    # Compiled extensions are for the architecture the functions run on, not the build host's.
    architecture = resource.get("Metadata", {}).get("BuildArchitecture", "x86_64")
    binaries = {path.relative_to(site): elf_machine(path) for path in site.rglob("*.so")}
    foreign = {str(path): machine for path, machine in binaries.items() if machine != architecture}
    assert not foreign, f"{layer_id}: built for {architecture}, but these extensions are not: {foreign}"


def test_make_build_looks_for_the_functions_runtime() -> None:
    # `make build` checks for this interpreter before it runs sam build (scripts/function_python.py).
    assert function_python.template_runtime() == runtime()
