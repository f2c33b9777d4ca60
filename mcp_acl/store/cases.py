"""Policy test cases: questions with the answer the policy must give (`mcp-acl policy test`).

The file is a list of cases, or a mapping with a `cases:` list:

    cases:
      - name: analysts read reports          # optional
        principal: user:alice
        target: tool:files.read
        args: {path: reports/q3.md}          # optional
        client: report-agent                 # optional
        expect: allow                        # or deny

Every case is checked against the store (the principal and client exist,
the target is concrete) before any is run, so a broken file runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mcp_acl.policy import Decision
from mcp_acl.store._yaml_fields import FileError, load_yaml, mapping, sequence, text
from mcp_acl.store.admin import AdminError, PolicyAdmin
from mcp_acl.store.loader import PolicyLoader
from mcp_acl.store.questions import Asker, Question, ask, resolve

CASE_KEYS = ("name", "principal", "target", "args", "client", "expect")


@dataclass(frozen=True)
class Case:
    """One question and the answer expected."""

    path: str
    question: Question
    expect_allow: bool
    name: str | None = None

    def title(self) -> str:
        """The case's name, or its principal and target."""
        return self.name or f"{self.question.principal} {self.question.target}"


@dataclass(frozen=True)
class Outcome:
    """A case and the decision the policy gave."""

    case: Case
    decision: Decision

    @property
    def passed(self) -> bool:
        """True when the policy answered as the case expects."""
        return self.decision.allowed == self.case.expect_allow

    def as_dict(self) -> dict:
        """The JSON shape `mcp-acl policy test --json` prints per case."""
        return {
            "case": self.case.title(),
            "expect": "allow" if self.case.expect_allow else "deny",
            "passed": self.passed,
            **self.decision.as_dict(),
        }


def parse_cases(source_text: str, source: str = "the file") -> list[Case]:
    """Read and validate a test file; raise FileError naming the first bad case."""
    data = load_yaml(source_text, source)
    if isinstance(data, dict):
        data = mapping(data, source, ("cases",)).get("cases")
    items = sequence(data, "cases")
    if not items:
        raise FileError(f"{source}: no cases (expected a list of cases, or a mapping with `cases:`)")
    return [_case(item, f"cases[{i}]") for i, item in enumerate(items)]


def _case(value, path: str) -> Case:
    entry = mapping(value, path, CASE_KEYS, required=("principal", "target", "expect"))
    expect = entry["expect"]
    if expect not in ("allow", "deny"):
        raise FileError(f"{path}.expect: expected allow or deny, got {expect!r}")
    args = entry.get("args")
    if args is not None and not isinstance(args, dict):
        raise FileError(f"{path}.args: expected a mapping of arguments")
    question = Question(
        principal=text(entry["principal"], f"{path}.principal"),
        target=text(entry["target"], f"{path}.target"),
        args=args,
        client=text(entry.get("client"), f"{path}.client", optional=True),
    )
    return Case(path, question, expect == "allow", text(entry.get("name"), f"{path}.name", optional=True))


def run_cases(admin: PolicyAdmin, loader: PolicyLoader, cases: list[Case], now: datetime) -> list[Outcome]:
    """Check every case against the store, then decide each on the current policy."""
    askers: list[Asker] = []
    for case in cases:
        try:
            askers.append(resolve(admin, case.question))
        except AdminError as exc:
            raise FileError(f"{case.path}: {exc}") from None
    policy = loader.current()  # one revision for the whole run
    return [Outcome(case, ask(policy, asker, case.question, now)) for case, asker in zip(cases, askers)]
