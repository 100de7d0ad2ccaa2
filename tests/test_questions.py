"""The questions in copier.yml: their defaults, the answers derived from project_name, refusals.

A refused answer fails before Copier writes anything: the negative tests are fast, leave no project.
The hardening questions' own refusals are tested in test_hardening.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_ROOT, render
from test_hardening import HARDENING_REFUSED

DEFAULTS: dict[str, Any] = {
    "project_name": "streaming-numbers",
    "package_name": "streaming_numbers",
    "function_name": "StreamingNumbers",
    "description": (
        "A Python Lambda function that streams its HTTP response through an API Gateway REST API"
    ),
    "aws_region": "us-east-1",
    "python_version": "3.13",
    "architecture": "arm64",
    "memory_size": 128,
    "timeout": 60,
    "stage_name": "prod",
    "api_path": "/stream",
    "auth": "IAM",
    # the `recommended` security profile
    "security_profile": "recommended",
    "access_logging": True,
    "throttling": True,
    "throttling_rate_limit": 10.0,
    "throttling_burst_limit": 20,
    "waf": False,
    "concurrency_limit": False,
    "kms_encryption": False,
    "dead_letter_queue": False,
    "vpc": False,
    "log_retention_days": 30,
    "tracing": True,
}
# Asked only when their toggle is on, so absent from the defaults' answers.
SUB_QUESTIONS = {"waf_rate_limit", "reserved_concurrency"}


def _answers(project: Path) -> dict[str, Any]:
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    return {name: value for name, value in answers.items() if not name.startswith("_")}


def _questions() -> dict[str, dict[str, Any]]:
    """The questions a user is asked (constants with `when: false` are not)."""
    config = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    return {
        name: spec
        for name, spec in config.items()
        if not name.startswith("_") and spec.get("when", True) is not False
    }


def test_defaults_render_and_are_recorded_in_the_answers_file(default_project: Path) -> None:
    assert _answers(default_project) == DEFAULTS


def test_every_asked_question_has_a_tested_default() -> None:
    assert sorted(_questions()) == sorted([*DEFAULTS, *SUB_QUESTIONS])


@pytest.mark.parametrize(
    ("answers", "derived"),
    [
        pytest.param(
            {"project_name": "my-cool-api"},
            {"package_name": "my_cool_api", "function_name": "MyCoolApi"},
            id="derived-from-project-name",
        ),
        pytest.param(
            {
                "project_name": "my-cool-api",
                "package_name": "number_stream",
                "function_name": "NumberStream",
            },
            {"package_name": "number_stream", "function_name": "NumberStream"},
            id="explicit-answers-win",
        ),
    ],
)
def test_package_and_function_names_follow_project_name_unless_answered(
    tmp_path: Path, answers: dict[str, str], derived: dict[str, str]
) -> None:
    project = render(tmp_path / "project", **answers)
    recorded = _answers(project)
    assert {name: recorded[name] for name in derived} == derived
    assert (project / derived["package_name"] / "__init__.py").is_file()
    template = (project / "template.yaml").read_text()
    assert re.search(rf"^  {derived['function_name']}:$", template, flags=re.MULTILINE)


# One or more bad answers per validated question; each refusal must say what is allowed.
REFUSED = [
    # project_name: becomes the folder and the CloudFormation stack name
    ("project_name", "1-api", "must start with a letter, contain only letters, digits and hyphens"),
    (
        "project_name",
        "my_api",
        "must start with a letter, contain only letters, digits and hyphens",
    ),
    ("project_name", "my-api-", "not end with a hyphen"),
    ("project_name", "a" * 101, "at most 100 characters"),
    # package_name
    ("package_name", "my-package", "must be a valid Python identifier"),
    ("package_name", "2fast", "must be a valid Python identifier"),
    ("package_name", "class", 'must not be a Python keyword ("class" is one)'),
    ("package_name", "json", 'must not shadow the standard-library module "json"'),
    ("package_name", "asyncio", 'must not shadow the standard-library module "asyncio"'),
    (
        "package_name",
        "lambda_streaming",
        "must not be one of lambda_streaming, tests, events, build",
    ),
    ("package_name", "tests", "must not be one of lambda_streaming, tests, events, build"),
    # function_name: a CloudFormation logical id
    (
        "function_name",
        "my-function",
        "must start with a letter and contain only letters and digits",
    ),
    ("function_name", "1Function", "must start with a letter and contain only letters and digits"),
    ("function_name", "F" * 65, "at most 64 characters"),
    # description
    ("description", "   ", "description must not be empty"),
    ("description", "x" * 257, "description must be at most 256 characters"),
    # aws_region
    ("aws_region", "US-EAST-1", "must look like an AWS region code, for example us-east-1"),
    ("aws_region", "us-east", "must look like an AWS region code, for example us-east-1"),
    ("aws_region", "europe", "must look like an AWS region code, for example us-east-1"),
    # memory_size
    ("memory_size", 127, "memory_size must be between 128 and 10240 MB"),
    ("memory_size", 10241, "memory_size must be between 128 and 10240 MB"),
    # timeout
    ("timeout", 0, "timeout must be between 1 and 900 seconds"),
    ("timeout", 901, "timeout must be between 1 and 900 seconds"),
    # stage_name
    ("stage_name", "my stage", "letters, digits, hyphens and underscores (1 to 128"),
    ("stage_name", "", "letters, digits, hyphens and underscores (1 to 128"),
    ("stage_name", "Stage", 'must not be "Stage": SAM reserves that name'),
    # api_path
    ("api_path", "stream", "api_path must start with /"),
    ("api_path", "/stream/", "no trailing slash"),
    ("api_path", "/v1//numbers", "no empty segment"),
    ("api_path", "/str eam", "segments of letters, digits and . _ -"),
    ("api_path", "/{proxy+}", "segments of letters, digits and . _ -"),
    ("api_path", "/~user", "segments of letters, digits and . _ -"),
    ("api_path", "/..", "no . or .. segment"),
    ("api_path", "/v1/.", "no . or .. segment"),
    ("package_name", "annotationlib", "must not shadow the standard-library module"),
    ("package_name", "compression", "must not shadow the standard-library module"),
    # package_name: names `python -m` cannot run, or that the project's own tools and folders use
    ("package_name", "__main__", 'must not be a dunder name like "__main__"'),
    ("package_name", "pytest", "must not be one of lambda_streaming, tests, events, build, docs"),
    ("package_name", "docs", "the project already uses that name"),
    # function_name: the logical ids it makes must not be the template's fixed ones
    ("function_name", "ApiGatewayLogging", "must not make the logical id ApiGatewayLoggingRole"),
    ("function_name", "VpcSubnetIds", "must not make the logical id VpcSubnetIds"),
    # description: one line, and nothing CloudFormation would substitute
    ("description", "Streams\nnumbers", "description must be a single line of text"),
    ("description", "Streams in ${AWS::Region}", 'must not contain "${"'),
    # stage_name: local mode serves the Runtime API under /2018-06-01
    ("stage_name", "2018-06-01", 'must not be "2018-06-01"'),
]


@pytest.mark.parametrize(
    ("question", "answer", "message"),
    [pytest.param(*case, id=f"{case[0]}={str(case[1])[:20]!r}") for case in REFUSED],
)
def test_validator_refuses_a_bad_answer_and_says_what_is_allowed(
    tmp_path: Path, question: str, answer: object, message: str
) -> None:
    with pytest.raises(ValueError, match=f"question '{question}'") as refusal:
        render(tmp_path / "project", **{question: answer})
    assert message in str(refusal.value)
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize(
    ("question", "answer", "allowed"),
    [
        ("python_version", "3.10", ["3.11", "3.12", "3.13", "3.14"]),
        ("python_version", "3.13.1", ["3.11", "3.12", "3.13", "3.14"]),
        ("architecture", "x86", ["arm64", "x86_64"]),
        ("architecture", "aarch64", ["arm64", "x86_64"]),
        ("auth", "AWS_IAM", ["IAM", "NONE"]),
        ("auth", "iam", ["IAM", "NONE"]),
    ],
)
def test_choice_outside_the_list_is_refused_with_the_list(
    tmp_path: Path, question: str, answer: str, allowed: list[str]
) -> None:
    with pytest.raises(ValueError, match=f"Invalid choice for '{question}'") as refusal:
        render(tmp_path / "project", **{question: answer})
    assert f"{answer!r} is not in {allowed!r}" in str(refusal.value)
    assert not (tmp_path / "project").exists()


def test_every_validated_question_has_a_refusal_test() -> None:
    validated = {name for name, spec in _questions().items() if "validator" in spec}
    tested = {question for question, _, _ in REFUSED + HARDENING_REFUSED}
    assert validated == tested


@pytest.mark.parametrize(
    ("project_name", "refused_question"),
    [("json", "package_name"), ("lambda-streaming", "package_name"), ("tests", "package_name")],
)
def test_names_derived_from_project_name_are_validated_too(
    tmp_path: Path, project_name: str, refused_question: str
) -> None:
    with pytest.raises(ValueError, match=f"question '{refused_question}'"):
        render(tmp_path / "project", project_name=project_name)


def test_the_longest_project_name_derives_a_function_name_that_fits(tmp_path: Path) -> None:
    project = render(tmp_path / "project", project_name="a" * 100)
    assert _answers(project)["function_name"] == "A" + "a" * 63
