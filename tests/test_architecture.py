"""The house (issue #9): what the import contracts in pyproject.toml cannot say by themselves.

`lint-imports` (run by scripts/test) checks the walls; these tests check that the walls cover every module
of every capability, that no interface opens a unit of work or handles a SQLAlchemy session, and that no
function of an interface or a service grows past 80 lines.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "carnet"
CAPABILITIES = [
    "identity",
    "people",
    "enrolment",
    "vault",
    "access",
    "family",
    "history",
    "profile",
    "agenda",
    "messaging",
    "export",
    "catalogue",
]
GUARDED_KINDS = ["tables", "pages", "fhir", "api", "cli", "jobs", "smtp"]
INTERFACE_KINDS = ["pages", "fhir", "api", "cli", "jobs", "smtp"]
MAX_LINES = 80
SHARED = {"carnet.people.tables"}  # the register of people: every service may read it (docs/architecture.md)


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def _module_exists(capability: str, kind: str) -> bool:
    base = SRC / capability / kind
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _files(*parts: str) -> list[Path]:
    base = SRC.joinpath(*parts)
    if base.with_suffix(".py").exists():
        return [base.with_suffix(".py")]
    return sorted(base.rglob("*.py")) if base.is_dir() else []


def _interface_files() -> list[Path]:
    files = [p for c in CAPABILITIES for kind in INTERFACE_KINDS for p in _files(c, kind)]
    return [*files, *_files("web"), *_files("fhir"), *_files("cli"), *_files("console"), *_files("jobs", "cli")]


def _service_files() -> list[Path]:
    return [p for c in CAPABILITIES for p in _files(c, "service")]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_every_capability_module_is_walled_off_from_the_other_capabilities() -> None:
    contracts = _contracts()
    missing = []
    for capability in CAPABILITIES:
        forbidden = set(contracts[capability]["forbidden_modules"])  # type: ignore[arg-type]
        for other in CAPABILITIES:
            for kind in GUARDED_KINDS:
                name = f"carnet.{other}.{kind}"
                shared = name in SHARED
                if other != capability and _module_exists(other, kind) and not shared and name not in forbidden:
                    missing.append(f"{capability} → {name}")
    assert not missing, "add these to the capability contracts in pyproject.toml: " + ", ".join(missing)


def test_no_contract_ignores_an_import() -> None:
    assert all("ignore_imports" not in contract for contract in _contracts().values())


def test_the_contracts_cover_every_interface_and_model_kind() -> None:
    interfaces = set(_contracts()["interfaces"]["source_modules"])  # type: ignore[arg-type]
    assert {f"carnet.*.{kind}" for kind in INTERFACE_KINDS} | {"carnet.web", "carnet.fhir", "carnet.cli"} <= interfaces
    assert "carnet.*.model" in _contracts()["models"]["source_modules"]  # type: ignore[operator]


def _uses_storage_session(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "unit_of_work":
            found.append(f"line {node.lineno}: unit_of_work")
        if isinstance(node, ast.Name) and node.id == "Session":
            found.append(f"line {node.lineno}: Session")
    return found


@pytest.mark.parametrize("path", _interface_files(), ids=_rel)
def test_interfaces_never_open_a_unit_of_work_nor_handle_a_session(path: Path) -> None:
    assert _uses_storage_session(ast.parse(path.read_text())) == []


@pytest.mark.parametrize("path", _interface_files() + _service_files(), ids=_rel)
def test_no_function_of_an_interface_or_a_service_is_longer_than_80_lines(path: Path) -> None:
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"  # type: ignore[operator]
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_LINES  # type: ignore[operator]
    ]
    assert long == []


def test_the_checks_above_see_real_files() -> None:
    """Guards the guards: a path typo would otherwise make the parametrised tests vacuous."""
    names = {p.name for p in _interface_files()}
    assert {"pages.py", "fhir.py", "app.py", "cli.py"} <= names
    assert len(_service_files()) >= 10
