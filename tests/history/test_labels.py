"""TRC-2: every action the audit log can record has its words in French in the history.

The actions are gathered from the sources themselves, so that a new one cannot slip in without words:
every ``audit.record(db, actor, action, …)`` and ``guard.refuse(db, actor, action, …)`` of ``src/carnet``,
following the action through the helpers that pass it on (``_record(db, actor, "access.grant", …)``,
``guard(db, actor, patient_id, Action.X)``, a keyword ``action="document.download"``…), plus every
``Action`` of the policy (a refusal is recorded under its name). An action the scan cannot read (built
from pieces, looked up in a table) fails the test too: write it as a literal.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import carnet
from carnet.hall.policy import Action
from carnet.history import labels
from carnet.history import service as history

SRC = Path(carnet.__file__).parent
RECORDERS = {("hall/audit.py", "record"), ("hall/guard.py", "refuse")}  # (module, function): action is their 3rd
Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Param:
    """Where a function receives the action it records: its position (None: keyword only) and name."""

    index: int | None
    name: str


@dataclass
class Scan:
    """The actions found (with where), and what could not be read."""

    actions: dict[str, list[str]] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)
    passers: list[tuple[Path, Function, Param]] = field(default_factory=list)


class Module:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.relative_to(SRC).as_posix()
        self.tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        self.parents = {child: node for node in ast.walk(self.tree) for child in ast.iter_child_nodes(node)}

    def functions_around(self, node: ast.AST) -> Iterator[Function]:
        """The functions enclosing ``node``, innermost first (closures see their outer functions' names)."""
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield node


def _called(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    return call.func.attr if isinstance(call.func, ast.Attribute) else None


def _argument(call: ast.Call, param: Param) -> ast.expr | None:
    positional = param.index is not None and len(call.args) > param.index
    if positional and not any(isinstance(arg, ast.Starred) for arg in call.args[: (param.index or 0) + 1]):
        return call.args[param.index or 0]
    return next((kw.value for kw in call.keywords if kw.arg == param.name), None)


def _param(function: Function, name: str) -> tuple[Param, ast.expr | None] | None:
    """The parameter called ``name`` and its default value, if ``function`` has one."""
    args = function.args
    positional = args.posonlyargs + args.args
    names = [a.arg for a in positional]
    if name in names:
        index = names.index(name)
        offset = len(positional) - len(args.defaults)
        return Param(index, name), args.defaults[index - offset] if index >= offset else None
    for arg, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if arg.arg == name:
            return Param(None, name), default
    return None


def _resolve(scan: Scan, module: Module, expr: ast.expr, where: str) -> None:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        scan.actions.setdefault(expr.value, []).append(where)
    elif isinstance(expr, ast.IfExp):
        _resolve(scan, module, expr.body, where)
        _resolve(scan, module, expr.orelse, where)
    elif isinstance(expr, ast.Call) and _called(expr) == "str" and len(expr.args) == 1:
        _resolve(scan, module, expr.args[0], where)
    elif isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name) and expr.value.id == "Action":
        scan.actions.setdefault(Action[expr.attr].value, []).append(where)
    elif not (isinstance(expr, ast.Name) and _resolve_name(scan, module, expr, where)):
        scan.unresolved.append(f"{where}: {ast.unparse(expr)}")


def _resolve_name(scan: Scan, module: Module, name: ast.Name, where: str) -> bool:
    """A local variable (each value it is given), or a parameter: then the callers say which action."""
    for function in module.functions_around(name):
        values = [
            node.value
            for node in ast.walk(function)
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name.id for t in node.targets)
        ]
        if values:
            for value in values:
                _resolve(scan, module, value, where)
            return True
        found = _param(function, name.id)
        if found is not None:
            param, default = found
            scan.passers.append((module.path, function, param))
            if default is not None:
                _resolve(scan, module, default, where)
            return True
    return False


def _scan_calls(scan: Scan, modules: dict[Path, Module], name: str, param: Param, only: Path | None) -> None:
    """Every call of ``name`` (in ``only``, for a private helper), and the action it is given."""
    for module in modules.values():
        if only is not None and module.path != only:
            continue
        for call in ast.walk(module.tree):
            if not isinstance(call, ast.Call) or _called(call) != name:
                continue
            where = f"{module.name}:{call.lineno}"
            expr = _argument(call, param)
            if expr is None:
                if (module.name, name) not in RECORDERS and name in {"record", "refuse"}:
                    scan.unresolved.append(f"{where}: {name}(…) without an action")
                continue
            _resolve(scan, module, expr, where)


def scan_sources() -> Scan:
    modules = {path: Module(path) for path in sorted(SRC.rglob("*.py"))}
    scan = Scan()
    for _, function in sorted(RECORDERS):
        _scan_calls(scan, modules, function, Param(2, "action"), None)
    done: set[tuple[Path, str]] = set()
    while scan.passers:
        path, function, param = scan.passers.pop()
        name = modules[path].name
        if (path, function.name) in done or (name, function.name) in RECORDERS:
            continue
        done.add((path, function.name))
        _scan_calls(scan, modules, function.name, param, path if function.name.startswith("_") else None)
    for action in Action:
        scan.actions.setdefault(action.value, []).append("carnet/hall/policy.py (Action)")
    return scan


@pytest.fixture(scope="module")
def scan() -> Scan:
    return scan_sources()


def test_the_scan_reads_every_recorded_action(scan: Scan) -> None:
    assert scan.unresolved == [], "actions the scan cannot read: write them as literals"


def test_the_scan_finds_actions_however_they_are_recorded(scan: Scan) -> None:
    """The scan is not blind: it finds a literal, both sides of a conditional, an action passed through a
    private helper or a keyword, a policy action given to ``guard``."""
    expected = {
        "family.majority": "family/service.py",  # audit.record(db, system, "family.majority", …)
        "family.caregiver_invited": "family/service.py",  # "…representative_invited" if … else "…caregiver_invited"
        "access.grant": "access/service/grants.py",  # _record(db, actor, "access.grant", …)
        "document.download": "",  # vault.read(…, action="document.download")
        "history.report": "history/service/__init__.py",  # str(Action.HISTORY_REPORT)
        "family.manage": "family/service.py",  # guard(db, actor, patient_id, Action.FAMILY_MANAGE, …)
    }
    for action, module in expected.items():
        assert action in scan.actions, action
        assert any(module in where for where in scan.actions[action]), (action, scan.actions[action])


def test_every_recorded_action_has_words_in_french(scan: Scan) -> None:
    missing = {action: where[:3] for action, where in scan.actions.items() if action not in labels.ACTIONS}
    assert missing == {}, "add their words to carnet/history/labels.py (ACTIONS)"
    for action in scan.actions:
        done, attempted = labels.ACTIONS[action]
        assert done.strip() and attempted.strip(), action
        assert action not in done and action not in attempted, action  # words, not the code


def test_words_are_found_and_the_fallback_is_only_for_the_unknown() -> None:
    assert labels.words("document.read") == ("a consulté un document", "consultation d'un document")
    assert labels.words("access.something_new")[1] == "modification des accès"
    assert "inconnue.action" in labels.words("inconnue.action")[0]


def test_detailed_words_and_filters_name_known_actions() -> None:
    assert set(labels.DETAILED) <= set(labels.ACTIONS)
    for kind, actions in history.KIND_ACTIONS.items():
        assert actions <= set(labels.ACTIONS), kind
