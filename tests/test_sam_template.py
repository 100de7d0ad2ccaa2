"""The SAM template and its build glue, rendered for several answer sets: linted, parsed, checked.

cfn-lint 1.x validates a SAM file against SAM's schemas without running the transform, so every
variant is linted twice: as rendered, and expanded by the SAM translator (what CloudFormation
deploys). The hardening toggles' own assertions, and checkov, are in test_hardening.py.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import stat
import subprocess
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import lint
from cfnlint.core import get_rules
from cfnlint.rules import RulesCollection
from conftest import render
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

TOGGLES = (
    "access_logging",
    "throttling",
    "waf",
    "concurrency_limit",
    "kms_encryption",
    "dead_letter_queue",
    "vpc",
    "tracing",
)
VARIANTS: dict[str, dict[str, object]] = {
    "defaults": {},
    "public": {"auth": "NONE"},
    "x86_py312": {"architecture": "x86_64", "python_version": "3.12"},
    "custom": {
        "project_name": "my-api",
        "api_path": "/v1/numbers",
        "stage_name": "dev",
        "timeout": 300,
        "description": "Streams numbers: it's a demo #1",
    },
    # The security profiles at both ends, and each hardening toggle alone on top of `minimal`.
    "minimal": {"security_profile": "minimal"},
    "strict": {"security_profile": "strict"},
    **{f"only_{toggle}": {"security_profile": "minimal", toggle: True} for toggle in TOGGLES},
}
IAM_VARIANTS = [name for name, answers in VARIANTS.items() if answers.get("auth", "IAM") == "IAM"]
SIGV4_SCHEME = {
    "type": "apiKey",
    "name": "Authorization",
    "in": "header",
    "x-amazon-apigateway-authtype": "awsSigv4",
}


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (`!Sub`, `!GetAtt`, `!Ref`...) as their long JSON form."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


@dataclass(frozen=True)
class Project:
    root: Path
    answers: dict[str, Any]
    source: str
    template: dict[str, Any]

    @property
    def function_id(self) -> str:
        return self.answers["function_name"]

    @property
    def function(self) -> dict[str, Any]:
        return self.template["Resources"][self.function_id]

    @property
    def api_id(self) -> str:
        (api_id,) = self.resource_ids("AWS::Serverless::Api")
        return api_id

    @property
    def api(self) -> dict[str, Any]:
        return self.template["Resources"][self.api_id]

    @property
    def methods(self) -> dict[str, Any]:
        return self.api["Properties"]["DefinitionBody"]["paths"][self.answers["api_path"]]

    def resource_ids(self, resource_type: str) -> list[str]:
        resources = self.template["Resources"]
        return [rid for rid, res in resources.items() if res["Type"] == resource_type]

    @functools.cached_property
    def expanded(self) -> dict[str, Any]:
        """The template as CloudFormation receives it after `sam package` and the SAM transform."""
        packaged = copy.deepcopy(self.template)
        for resource in packaged["Resources"].values():
            if resource["Type"] == "AWS::Serverless::Function":
                resource["Properties"]["CodeUri"] = "s3://deployment-bucket/function.zip"
        session = boto3.session.Session(region_name=self.answers["aws_region"])
        translator = Translator(None, Parser(), boto_session=session)
        # Managed policy ARNs are looked up only for policies named in the template: none here.
        return translator.translate(packaged, parameter_values={}, get_managed_policy_map=dict)


_RENDERED: dict[str, Project] = {}


def rendered_projects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Project]:
    """`get(variant)`: the template rendered with that variant's answers, once per process."""

    def get(variant: str) -> Project:
        if variant not in _RENDERED:  # shared with test_hardening.py's `projects` fixture
            if variant == "defaults":
                root = request.getfixturevalue("default_project")
            else:
                root = render(tmp_path_factory.mktemp(variant) / "project", **VARIANTS[variant])
            answers = yaml.safe_load((root / ".copier-answers.yml").read_text())
            source = (root / "template.yaml").read_text()
            _RENDERED[variant] = Project(
                root, answers, source, yaml.load(source, CloudFormationLoader)
            )
        return _RENDERED[variant]

    return get


@pytest.fixture(scope="session")
def projects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Project]:
    """`projects(variant)`: the template rendered with that variant's answers, once per session."""
    return rendered_projects(request, tmp_path_factory)


@pytest.fixture(params=sorted(VARIANTS))
def project(request: pytest.FixtureRequest, projects: Callable[[str], Project]) -> Project:
    return projects(request.param)


@functools.cache
def _lint_rules() -> RulesCollection:
    """cfn-lint's default rules, loaded once per process: a lint then takes ~0.05 s, not ~0.6 s."""
    return get_rules([], [], [])


def _lint(template_text: str, region: str) -> list[str]:
    """cfn-lint in-process; errors and warnings both count (warnings flag real mistakes: W3037)."""
    matches = lint(template_text, rules=_lint_rules(), regions=[region])
    return [str(match) for match in matches if match.rule.id[0] in "EW"]


def _walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair and list item of a parsed template, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield None, item
            yield from _walk(item)


# -------------------------------------------------------------------------------------------- lint


def test_rendered_sam_template_lints_clean(project: Project) -> None:
    assert _lint(project.source, project.answers["aws_region"]) == []


def test_sam_expanded_template_lints_clean(project: Project) -> None:
    expanded = json.dumps(project.expanded, indent=1)
    assert _lint(expanded, project.answers["aws_region"]) == []


def test_lint_reports_what_the_sam_file_and_the_expansion_get_wrong(
    projects: Callable[[str], Project],
) -> None:
    """The harness is not vacuous: bad memory fails both lints, a bad runtime the expansion."""
    good = projects("defaults")
    source = good.source.replace("MemorySize: 128", "MemorySize: 64")
    source = source.replace("Runtime: python3.13", "Runtime: python2.0")
    broken = Project(good.root, good.answers, source, yaml.load(source, CloudFormationLoader))
    assert any("E3034" in match for match in _lint(broken.source, "us-east-1"))
    expanded_matches = _lint(json.dumps(broken.expanded), "us-east-1")
    assert any("E3034" in match for match in expanded_matches)
    assert any("E3030" in match and "python2.0" in match for match in expanded_matches)


# ---------------------------------------------------------------------------------------- function


def test_function_matches_the_answers(project: Project) -> None:
    answers = project.answers
    assert project.function["Type"] == "AWS::Serverless::Function"
    assert project.function["Metadata"] == {"BuildMethod": "makefile"}
    properties = project.function["Properties"]
    assert properties["Runtime"] == f"python{answers['python_version']}"
    assert properties["Architectures"] == [answers["architecture"]]
    assert properties["MemorySize"] == answers["memory_size"]
    assert properties["Timeout"] == answers["timeout"]
    assert properties["Handler"] == f"{answers['package_name']}.handler.handler"
    assert properties["CodeUri"] == "."
    assert properties["Description"] == answers["description"]
    assert project.template["Description"] == answers["description"]


def test_function_starts_the_streaming_runtime_through_the_exec_wrapper(project: Project) -> None:
    variables = project.function["Properties"]["Environment"]["Variables"]
    assert variables == {
        "AWS_LAMBDA_EXEC_WRAPPER": "/var/task/exec-wrapper",
        "STREAM_PAUSE_MS": "1000",
    }


# --------------------------------------------------------------------------------------------- API


def test_api_is_regional_with_the_answered_stage_and_openapi_version(project: Project) -> None:
    properties = project.api["Properties"]
    assert properties["StageName"] == project.answers["stage_name"]
    assert properties["OpenApiVersion"] == "3.0.1"
    assert properties["EndpointConfiguration"] == {"Type": "REGIONAL"}
    assert properties["DefinitionBody"]["openapi"] == "3.0.1"
    # SAM's Auth rewrites the inline body and would clash with our own security scheme.
    assert "Auth" not in properties


def test_expanded_template_deploys_only_the_answered_stage(project: Project) -> None:
    stages = [
        resource["Properties"]["StageName"]
        for resource in project.expanded["Resources"].values()
        if resource["Type"] == "AWS::ApiGateway::Stage"
    ]
    assert stages == [project.answers["stage_name"]]  # no hidden "Stage" stage


def test_api_defines_only_the_answered_path_for_any_method(project: Project) -> None:
    paths = project.api["Properties"]["DefinitionBody"]["paths"]
    assert list(paths) == [project.answers["api_path"]]
    assert [k for k in project.methods if k.startswith("x-amazon-apigateway-")] == [
        "x-amazon-apigateway-any-method"
    ]


def test_integration_streams_from_the_function(project: Project) -> None:
    integration = project.methods["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"
    ]
    uri = (
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/"
        f"${{{project.function_id}.Arn}}/response-streaming-invocations"
    )
    assert integration == {
        "type": "aws_proxy",
        "httpMethod": "POST",
        "uri": {"Fn::Sub": uri},
        "responseTransferMode": "STREAM",
        "timeoutInMillis": project.answers["timeout"] * 1000,
    }


def test_integration_timeout_never_cuts_before_the_function(project: Project) -> None:
    integration = project.methods["x-amazon-apigateway-any-method"][
        "x-amazon-apigateway-integration"
    ]
    function_timeout_ms = project.function["Properties"]["Timeout"] * 1000
    assert function_timeout_ms <= integration["timeoutInMillis"] <= 900_000


@pytest.mark.parametrize("variant", IAM_VARIANTS)
def test_iam_auth_requires_sigv4_on_every_method(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    body = project.api["Properties"]["DefinitionBody"]
    assert body["components"]["securitySchemes"] == {"sigv4": SIGV4_SCHEME}
    for path_item in body["paths"].values():
        for method in path_item.values():
            assert method["security"] == [{"sigv4": []}]
    assert "Auth: IAM" in project.source


def test_public_api_has_no_security_and_says_so_loudly(projects: Callable[[str], Project]) -> None:
    project = projects("public")
    body = project.api["Properties"]["DefinitionBody"]
    assert "components" not in body
    assert [key for key, _ in _walk(project.template) if key in ("security", "Auth")] == []
    assert "THIS API IS PUBLIC" in project.source
    assert "PUBLIC" in project.template["Outputs"]["ApiUrl"]["Description"]


# -------------------------------------------------------------------------------------- permission


def test_invoke_permission_is_least_privilege(project: Project) -> None:
    (permission_id,) = project.resource_ids("AWS::Lambda::Permission")
    properties = project.template["Resources"][permission_id]["Properties"]
    source_arn = (
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
        f"${{{project.api_id}}}/${{{project.api_id}.Stage}}/*{project.answers['api_path']}"
    )
    assert properties == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Fn::GetAtt": [project.function_id, "Arn"]},
        "Principal": "apigateway.amazonaws.com",
        "SourceArn": {"Fn::Sub": source_arn},
    }


def test_source_arn_resolves_to_the_generated_stage(project: Project) -> None:
    expanded = project.expanded["Resources"]
    (stage_id,) = [rid for rid, res in expanded.items() if res["Type"] == "AWS::ApiGateway::Stage"]
    (permission,) = [res for res in expanded.values() if res["Type"] == "AWS::Lambda::Permission"]
    source_arn = permission["Properties"]["SourceArn"]["Fn::Sub"]
    assert source_arn.endswith(
        f":${{{project.api_id}}}/${{{stage_id}}}/*{project.answers['api_path']}"
    )


def _wildcards(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every string that is or contains `*` in a parsed template."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _wildcards(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _wildcards(item, (*path, str(index)))
    elif isinstance(node, str) and "*" in node:
        yield path


# Where a `*` is the narrowest value there is: "this key" in a key policy (and the account root's
# kms:* that keeps the key manageable), every method of the stage's one MethodSettings entry, the
# stage's paths, and the log streams (unknown names) of one log group.
ALLOWED_WILDCARDS = [
    re.compile(r"Resources/\w+/Properties/KeyPolicy/Statement/\d+/Resource"),
    re.compile(r"Resources/\w+/Properties/KeyPolicy/Statement/0/Action"),
    re.compile(r"Resources/\w+/Properties/KeyPolicy/Statement/\d+/Condition/ArnLike/.*"),
    re.compile(
        r"Resources/\w+/Properties/(StageDescription/)?MethodSettings/0/(HttpMethod|ResourcePath)"
    ),
    re.compile(r"Resources/\w+ApiInvokePermission/Properties/SourceArn/Fn::Sub"),
]


def test_nothing_is_granted_on_every_resource(project: Project) -> None:
    for template in (project.template, project.expanded):
        wildcards = ["/".join(path) for path in _wildcards(template)]
        assert [
            path for path in wildcards if not any(p.fullmatch(path) for p in ALLOWED_WILDCARDS)
        ] == []
        key_policies = [
            statement
            for resource in template["Resources"].values()
            if resource["Type"] == "AWS::KMS::Key"
            for statement in resource["Properties"]["KeyPolicy"]["Statement"]
        ]
        for statement in key_policies:
            assert "*" not in json.dumps(statement["Principal"])
            if statement["Action"] == "kms:*":
                assert statement["Principal"] == {
                    "AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
                }


# ----------------------------------------------------------------------------------------- outputs


def test_outputs_give_the_url_and_the_function(project: Project) -> None:
    outputs = {name: output["Value"] for name, output in project.template["Outputs"].items()}
    api_url = (
        f"https://${{{project.api_id}}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}"
        f"/${{{project.api_id}.Stage}}{project.answers['api_path']}"
    )
    assert outputs["ApiUrl"] == {"Fn::Sub": api_url}
    assert outputs["FunctionArn"] == {"Fn::GetAtt": [project.function_id, "Arn"]}
    assert outputs["FunctionName"] == {"Ref": project.function_id}


# --------------------------------------------------------------------------------------- samconfig


def test_samconfig_deploys_the_answered_stack(project: Project) -> None:
    config = tomllib.loads((project.root / "samconfig.toml").read_text())
    assert config["version"] == 0.1
    assert config["default"]["global"]["parameters"] == {
        "stack_name": project.answers["project_name"],
        "region": project.answers["aws_region"],
    }
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True


# -------------------------------------------------------------------------------------- build glue


def test_exec_wrapper_is_executable_in_the_render(project: Project) -> None:
    wrapper = project.root / "exec-wrapper"
    assert wrapper.stat().st_mode & 0o111 == 0o111
    assert wrapper.read_text().startswith("#!/bin/sh\n")


def test_exec_wrapper_runs_the_streaming_runtime_on_lambdas_interpreter(
    projects: Callable[[str], Project], tmp_path: Path
) -> None:
    project = projects("defaults")
    fake_python = tmp_path / "python3.13"
    fake_python.write_text('#!/bin/sh\nprintf "%s\\n" "$PWD" "$@"\n')
    fake_python.chmod(0o755)
    result = subprocess.run(
        [project.root / "exec-wrapper", fake_python, "/var/runtime/bootstrap.py"],
        env={**os.environ, "LAMBDA_TASK_ROOT": str(project.root)},
        capture_output=True,
        text=True,
        check=True,
    )
    cwd, *arguments = result.stdout.splitlines()
    assert Path(cwd).resolve() == project.root.resolve()
    interpreter_flags, code = arguments[:-1], arguments[-1]
    # unbuffered logs; no site module, no bytecode writes (cold start); the runtime's Lambda loop
    assert interpreter_flags == ["-u", "-S", "-B", "-c"]
    assert code == "from lambda_streaming.runtime import run_in_lambda; run_in_lambda()"


def test_makefile_target_is_named_after_the_function(project: Project) -> None:
    makefile = (project.root / "Makefile").read_text()
    targets = re.findall(r"^(build-[A-Za-z0-9]+):", makefile, flags=re.MULTILINE)
    assert targets == [f"build-{project.function_id}"]


def fake_uv(tmp_path: Path, log: Path) -> Path:
    """Stands in for uv, offline: answers its version and records what it would install."""
    uv = tmp_path / "uv"
    uv.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = --version ]; then echo "uv 0.13.8"; exit 0; fi\n'
        f'printf "%s\\n" "$@" > "{log}"\n'
    )
    uv.chmod(0o755)
    return uv


def fake_python(tmp_path: Path) -> Path:
    """A PYTHON that is no Python version: the build ships no bytecode and checks no syntax."""
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    return python


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize(
    ("variant", "platform"),
    [("defaults", "aarch64-manylinux_2_34"), ("x86_py312", "x86_64-manylinux_2_34")],
)
def test_make_build_packages_only_what_the_function_needs(
    projects: Callable[[str], Project], tmp_path: Path, variant: str, platform: str
) -> None:
    project = projects(variant)
    source = shutil.copytree(project.root, tmp_path / "project")
    package = project.answers["package_name"]
    for cache in (source / package / "__pycache__", source / "lambda_streaming" / "__pycache__"):
        cache.mkdir(exist_ok=True)
        (cache / "stale.cpython-311.pyc").write_bytes(b"")
    (source / "requirements.txt").write_text("# the function's own needs\nsix==1.17.0\n")
    uv_log = tmp_path / "uv-arguments"
    python = fake_python(tmp_path)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()

    subprocess.run(
        [
            "make",
            f"build-{project.function_id}",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={python}",
            f"UV={fake_uv(tmp_path, uv_log)}",
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )

    assert sorted(p.name for p in artifacts.iterdir()) == sorted(
        ["exec-wrapper", "lambda_streaming", package]
    )
    assert [p for p in artifacts.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"] == []
    assert (artifacts / "exec-wrapper").stat().st_mode & stat.S_IXUSR
    arguments = uv_log.read_text().split()
    expected = [
        "pip", "install", "--requirement", "requirements.txt", "--target", str(artifacts),
        "--python", str(python), "--python-version", project.answers["python_version"],
        "--python-platform", platform, "--only-binary", ":all:",
    ]  # fmt: skip
    assert arguments[: len(expected)] == expected


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_build_skips_the_install_when_requirements_name_nothing(
    projects: Callable[[str], Project], tmp_path: Path
) -> None:
    project = projects("defaults")
    uv_log = tmp_path / "uv-arguments"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    subprocess.run(
        [
            "make",
            f"build-{project.function_id}",
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={fake_python(tmp_path)}",
            f"UV={fake_uv(tmp_path, uv_log)}",
        ],
        cwd=project.root,
        check=True,
        capture_output=True,
    )
    assert not uv_log.exists()
