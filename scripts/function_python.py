"""Find the Python of the functions' runtime, which `sam build` needs, before it is run.

`sam build` resolves the layer's dependencies with the interpreter of the functions' ``Runtime``
(``python3.12``): lambda-builders tries each ``python3.12`` on ``PATH``. Without one it fails deep in
its output. ``make build`` runs this first: it prints a ``PATH`` on which a working ``python3.12`` is
found (pyenv's installed versions are added in front when its shim is on ``PATH`` but that version is
not selected), or says how to install it and exits 1.

    PATH="$(.venv-sam/bin/python scripts/function_python.py)" && .venv-sam/bin/sam build

The runtime is read from template.yaml, so a change of ``Runtime`` changes what is looked for:

    >>> RUNTIME.fullmatch("Runtime: python3.12") is not None
    True
"""

from __future__ import annotations

import os
import re
import subprocess  # runs a candidate interpreter, named by a path this script built  # nosec B404
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME = re.compile(r"(?:Runtime|BuildMethod): (?P<runtime>python3\.\d+)")


def template_runtime(template: Path = REPO / "template.yaml") -> str:
    """The one Python runtime of the template's functions and layer, for example ``python3.12``."""
    runtimes = {match["runtime"] for match in RUNTIME.finditer(template.read_text())}
    if len(runtimes) != 1:
        raise SystemExit(f"{template}: one Python runtime expected for functions and layer, found {sorted(runtimes)}")
    return runtimes.pop()


def is_python(executable: Path, version: str) -> bool:
    """Whether ``executable`` runs and is Python ``version`` (``"3.12"``): a pyenv shim may exist and refuse."""
    wanted = tuple(int(part) for part in version.split("."))
    try:
        result = subprocess.run(  # a candidate interpreter, run without a shell  # nosec B603
            [str(executable), "-c", f"import sys; sys.exit(sys.version_info[:2] != {wanted})"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return False
    return result.returncode == 0


def path_with_python(env: Mapping[str, str], runtime: str) -> str | None:
    """A ``PATH`` on which a working ``runtime`` (``python3.12``) is found first, or None when there is none."""
    version = runtime.removeprefix("python")
    path = env.get("PATH", os.defpath)
    if any(is_python(Path(folder) / runtime, version) for folder in path.split(os.pathsep) if folder):
        return path
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted((pyenv_root / "versions").glob(f"{version}.*/bin"), reverse=True) + [pyenv_root / "shims"]
    for folder in candidates:
        if is_python(folder / runtime, version):
            return os.pathsep.join([str(folder), path])
    return None


def how_to_install(runtime: str) -> str:
    """What to do when ``runtime`` is missing, for a person reading ``make build``'s output."""
    version = runtime.removeprefix("python")
    return (
        f"{runtime} (the functions' Runtime in template.yaml) is not on PATH: `sam build` needs it to resolve "
        f"the layer's dependencies. Install it with one of:\n"
        f'  uv python install {version} && export PATH="$(dirname "$(uv python find {version})"):$PATH"\n'
        f"  pyenv install {version}   (then `pyenv shell {version}`, or nothing: make build finds pyenv's versions)\n"
        f"  sudo apt-get install python{version}   (Ubuntu before 24.04: add-apt-repository ppa:deadsnakes/ppa first)\n"
        f"  brew install python@{version}\n"
        f"then run `make build` again."
    )


def main() -> int:
    runtime = template_runtime()
    path = path_with_python(os.environ, runtime)
    if path is None:
        print(how_to_install(runtime), file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
