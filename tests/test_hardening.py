"""The hardening toggles: each one's resources are there, wired to each other, and gone when off.

The variants are those of test_sam_template.py (`minimal`, `strict`, `defaults` = `recommended`, and
`only_<toggle>`: one toggle on top of `minimal`), rendered once per session and linted there. Here:
assertions on the parsed template, checkov on `strict` and `minimal`, and the pinned SAM CLI's
`sam validate --lint` on every variant. checkov reads neither the OpenAPI body, nor stage
throttling, nor WAF associations, so those are asserted on the parsed YAML.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import TEMPLATE_ROOT, render, sam_validate_lint
from test_sam_template import TOGGLES, VARIANTS, Project, rendered_projects

# What `minimal` fails in checkov (SAM file), and which of those each toggle fixes on its own.
MINIMAL_FAILING = {
    "CKV_AWS_73",
    "CKV_AWS_76",
    "CKV_AWS_115",
    "CKV_AWS_116",
    "CKV_AWS_117",
    "CKV_AWS_158",
    "CKV_AWS_173",
}
FIXED_BY = {
    "access_logging": {"CKV_AWS_76"},
    "throttling": set(),
    "waf": set(),  # adds CKV_AWS_192, which passes
    "concurrency_limit": {"CKV_AWS_115"},
    "kms_encryption": {"CKV_AWS_158", "CKV_AWS_173"},
    "dead_letter_queue": {"CKV_AWS_116"},
    "vpc": {"CKV_AWS_117"},
    "tracing": {"CKV_AWS_73"},
}
PROFILE_DEFAULTS = {
    "minimal": {toggle: False for toggle in TOGGLES} | {"log_retention_days": 14},
    "defaults": {toggle: False for toggle in TOGGLES}
    | {"access_logging": True, "throttling": True, "tracing": True, "log_retention_days": 30},
    "strict": {toggle: True for toggle in TOGGLES} | {"log_retention_days": 365},
}
STREAMING_LOG_VARIABLES = {
    "$context.requestId",
    "$context.integration.responseTransferMode",
    "$context.integration.timeToAllHeaders",
    "$context.integration.timeToFirstContent",
}
SKIPPED_BY_TEMPLATE = {"CKV_AWS_120"}  # API caching: streaming integrations cannot be cached


def on(variant: str, toggle: str) -> bool:
    answers = VARIANTS[variant]
    if toggle in answers:
        return bool(answers[toggle])
    profile = "defaults" if variant == "defaults" else answers.get("security_profile", "defaults")
    return bool(PROFILE_DEFAULTS.get(str(profile), PROFILE_DEFAULTS["defaults"])[toggle])


def variants_with(toggle: str, enabled: bool = True) -> list[str]:
    return [variant for variant in sorted(VARIANTS) if on(variant, toggle) == enabled]


def sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def get_att(resource: str, attribute: str = "Arn") -> dict[str, list[str]]:
    return {"Fn::GetAtt": [resource, attribute]}


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    resources = template["Resources"]
    return {rid: res for rid, res in resources.items() if res["Type"] == resource_type}


def role(project: Project) -> dict[str, Any]:
    return project.template["Resources"][f"{project.function_id}Role"]["Properties"]


def role_statements(project: Project) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role(project)["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def method_settings(properties: dict[str, Any]) -> list[dict[str, Any]]:
    return properties.get("MethodSettings", [])


def generated_stage(project: Project) -> tuple[str, dict[str, Any]]:
    ((stage_id, stage),) = of_type(project.expanded, "AWS::ApiGateway::Stage").items()
    return stage_id, stage


def local_settings(project: Project) -> dict[str, Any]:
    """The keyword arguments `python -m <package>` gives FunctionSettings, as literals."""
    main = project.root / project.answers["package_name"] / "__main__.py"
    for node in ast.walk(ast.parse(main.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "FunctionSettings":
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    raise AssertionError("no FunctionSettings(...) in __main__.py")


@pytest.fixture(scope="session")
def projects(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Project]:
    """The renderings of test_sam_template.py: the same ones when both run in one process."""
    return rendered_projects(request, tmp_path_factory)


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> str:
    return request.param


# ------------------------------------------------------------------------------------ profiles


@pytest.mark.parametrize("profile_variant", sorted(PROFILE_DEFAULTS))
def test_profile_sets_the_toggle_defaults(
    projects: Callable[[str], Project], profile_variant: str
) -> None:
    answers = projects(profile_variant).answers
    expected = PROFILE_DEFAULTS[profile_variant]
    assert {name: answers[name] for name in expected} == expected


def test_a_toggle_answered_explicitly_overrides_the_profile(
    projects: Callable[[str], Project],
) -> None:
    answers = projects("only_waf").answers
    assert answers["security_profile"] == "minimal"
    assert answers["waf"] is True
    assert answers["access_logging"] is False


def test_minimal_is_the_seeds_template_plus_a_role_and_a_log_group(
    projects: Callable[[str], Project],
) -> None:
    project = projects("minimal")
    function = project.function_id
    assert {rid: res["Type"] for rid, res in project.template["Resources"].items()} == {
        function: "AWS::Serverless::Function",
        f"{function}Role": "AWS::IAM::Role",
        f"{function}LogGroup": "AWS::Logs::LogGroup",
        f"{function}Api": "AWS::Serverless::Api",
        f"{function}ApiInvokePermission": "AWS::Lambda::Permission",
    }
    assert "Parameters" not in project.template
    assert "Conditions" not in project.template


# ------------------------------------------------------------------------------------ always on


def test_function_role_grants_only_what_the_toggles_need(
    variant: str, projects: Callable[[str], Project]
) -> None:
    project = projects(variant)
    function = project.function_id
    assert project.function["Properties"]["Role"] == get_att(f"{function}Role")
    assert role(project)["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    expected = [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": get_att(f"{function}LogGroup"),
        }
    ]
    if on(variant, "dead_letter_queue"):
        expected += [
            {
                "Effect": "Allow",
                "Action": "sqs:SendMessage",
                "Resource": get_att(f"{function}DeadLetterQueue"),
            },
            {
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": get_att(f"{function}DataKey"),
            },
        ]
    assert role_statements(project) == expected
    managed = []
    if on(variant, "tracing"):
        managed.append(sub("arn:${AWS::Partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"))
    if on(variant, "vpc"):
        managed.append(
            sub("arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaENIManagementAccess")
        )
    assert role(project).get("ManagedPolicyArns", []) == managed


def test_every_log_group_has_the_answered_retention(
    variant: str, projects: Callable[[str], Project]
) -> None:
    project = projects(variant)
    log_groups = of_type(project.template, "AWS::Logs::LogGroup")
    expected = {f"{project.function_id}LogGroup"}
    if on(variant, "access_logging"):
        expected |= {
            f"{project.function_id}ApiAccessLogGroup",
            f"{project.function_id}ApiExecutionLogGroup",
        }
    assert set(log_groups) == expected
    for log_group in log_groups.values():
        assert log_group["Properties"]["RetentionInDays"] == project.answers["log_retention_days"]


def test_function_logs_to_the_stacks_log_group(
    variant: str, projects: Callable[[str], Project]
) -> None:
    project = projects(variant)
    function = project.function_id
    assert project.function["Properties"]["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": {"Ref": f"{function}LogGroup"},
    }
    log_group = project.template["Resources"][f"{function}LogGroup"]["Properties"]
    assert log_group["LogGroupName"] == sub(f"/aws/lambda/${{AWS::StackName}}/{function}")


# ---------------------------------------------------------------------------------- access logging


@pytest.mark.parametrize("variant", variants_with("access_logging"))
def test_access_log_goes_to_its_log_group_with_the_streaming_variables(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    function = project.function_id
    setting = project.api["Properties"]["AccessLogSetting"]
    assert setting["DestinationArn"] == sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        f"${{{function}ApiAccessLogGroup}}"
    )  # no trailing :* (what GetAtt Arn would give)
    record = json.loads(setting["Format"])
    assert set(record.values()) >= STREAMING_LOG_VARIABLES
    _, stage = generated_stage(project)
    assert stage["Properties"]["AccessLogSetting"] == setting


@pytest.mark.parametrize("variant", variants_with("access_logging"))
def test_execution_logs_are_errors_only_in_a_stack_owned_log_group(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    (settings,) = method_settings(project.api["Properties"])
    assert settings["ResourcePath"] == "/*"
    assert settings["HttpMethod"] == "*"
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["DataTraceEnabled"] is False
    execution_group = project.template["Resources"][f"{project.function_id}ApiExecutionLogGroup"]
    assert execution_group["Properties"]["LogGroupName"] == sub(
        f"API-Gateway-Execution-Logs_${{{project.api_id}}}/{project.answers['stage_name']}"
    )


@pytest.mark.parametrize("variant", variants_with("access_logging"))
def test_account_logging_role_is_created_only_on_opt_in_and_waited_for(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    template = project.template
    parameter = template["Parameters"]["CreateApiGatewayLoggingRole"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    assert template["Conditions"]["CreateApiGatewayLoggingRole"] == {
        "Fn::Equals": [{"Ref": "CreateApiGatewayLoggingRole"}, "true"]
    }
    resources = template["Resources"]
    account = resources["ApiGatewayAccountSettings"]
    logging_role = resources["ApiGatewayLoggingRole"]
    for resource in (account, logging_role):
        assert resource["Condition"] == "CreateApiGatewayLoggingRole"
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert account["Properties"]["CloudWatchRoleArn"] == get_att("ApiGatewayLoggingRole")
    assert logging_role["Properties"]["ManagedPolicyArns"] == [
        sub(
            "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            + "AmazonAPIGatewayPushToCloudWatchLogs"
        )
    ]
    # The API waits for the account settings through a handle (DependsOn a conditional resource
    # is invalid), and the stage SAM generates depends on the API.
    assert project.api["DependsOn"] == "ApiGatewayLoggingReady"
    handle = resources["ApiGatewayLoggingReady"]
    assert handle["Metadata"]["AccountSettings"] == {
        "Fn::If": ["CreateApiGatewayLoggingRole", {"Ref": "ApiGatewayAccountSettings"}, "existing"]
    }
    rest_api = project.expanded["Resources"][project.api_id]
    assert rest_api["DependsOn"] == "ApiGatewayLoggingReady"


def test_samconfig_sets_the_logging_role_opt_in_off(projects: Callable[[str], Project]) -> None:
    import tomllib

    for variant in sorted(VARIANTS):
        project = projects(variant)
        deploy = tomllib.loads((project.root / "samconfig.toml").read_text())["default"]["deploy"]
        overrides = deploy["parameters"].get("parameter_overrides")
        if on(variant, "access_logging"):
            assert overrides == "CreateApiGatewayLoggingRole=false", variant
        else:
            assert overrides is None, variant


# ------------------------------------------------------------------------------------ throttling


@pytest.mark.parametrize("variant", variants_with("throttling"))
def test_throttling_limits_the_whole_stage_in_one_method_setting(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    answers = project.answers
    (settings,) = method_settings(project.api["Properties"])
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == answers["throttling_rate_limit"]
    assert settings["ThrottlingBurstLimit"] == answers["throttling_burst_limit"]
    _, stage = generated_stage(project)
    assert stage["Properties"]["MethodSettings"] == [settings]


@pytest.mark.parametrize("variant", variants_with("throttling"))
def test_local_mode_gets_the_throttling_limits(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    settings = local_settings(project)
    assert settings["throttling_rate_limit"] == project.answers["throttling_rate_limit"]
    assert settings["throttling_burst_limit"] == project.answers["throttling_burst_limit"]


# ------------------------------------------------------------------------------------ WAF


@pytest.mark.parametrize("variant", variants_with("waf"))
def test_web_acl_has_the_managed_rules_and_the_rate_limit(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    acl = project.template["Resources"][f"{project.function_id}WebAcl"]["Properties"]
    assert acl["Scope"] == "REGIONAL"
    assert acl["DefaultAction"] == {"Allow": {}}
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for rule in rules.values()
        if "ManagedRuleGroupStatement" in rule["Statement"]
    }
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    rate = rules["rate-limit-per-ip"]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"] == {
        "Limit": project.answers["waf_rate_limit"],
        "AggregateKeyType": "IP",
    }
    assert sorted(rule["Priority"] for rule in rules.values()) == [0, 1, 2]


@pytest.mark.parametrize("variant", variants_with("waf"))
def test_web_acl_is_associated_with_the_apis_stage(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    function = project.function_id
    association = project.template["Resources"][f"{function}WebAclAssociation"]["Properties"]
    assert association == {
        "ResourceArn": sub(
            "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/"
            f"${{{project.api_id}}}/stages/${{{project.api_id}.Stage}}"
        ),
        "WebACLArn": get_att(f"{function}WebAcl"),
    }
    stage_id, _ = generated_stage(project)
    expanded = project.expanded["Resources"][f"{function}WebAclAssociation"]["Properties"]
    assert expanded["ResourceArn"]["Fn::Sub"].endswith(f"/stages/${{{stage_id}}}")


# ------------------------------------------------------------------------------------ concurrency


@pytest.mark.parametrize("variant", variants_with("concurrency_limit"))
def test_reserved_concurrency_is_the_answer(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    reserved = project.function["Properties"]["ReservedConcurrentExecutions"]
    assert reserved == project.answers["reserved_concurrency"] >= 1


# ------------------------------------------------------------------------------------ KMS


@pytest.mark.parametrize("variant", variants_with("kms_encryption"))
def test_environment_key_lets_only_the_function_role_decrypt(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    function = project.function_id
    assert project.function["Properties"]["KmsKeyArn"] == get_att(f"{function}EnvironmentKey")
    key = project.template["Resources"][f"{function}EnvironmentKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    administer, decrypt = key["KeyPolicy"]["Statement"]
    assert administer["Principal"] == {
        "AWS": sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")
    }
    assert decrypt == {
        "Sid": "FunctionDecryptsItsEnvironment",
        "Effect": "Allow",
        "Principal": {"AWS": get_att(f"{function}Role")},
        "Action": "kms:Decrypt",
        "Resource": "*",
    }


@pytest.mark.parametrize("variant", variants_with("kms_encryption"))
def test_log_groups_are_encrypted_with_a_key_cloudwatch_logs_may_use(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    data_key = f"{project.function_id}DataKey"
    for log_group in of_type(project.template, "AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["KmsKeyId"] == get_att(data_key)
    key = project.template["Resources"][data_key]["Properties"]
    assert key["EnableKeyRotation"] is True
    (logs,) = [
        statement
        for statement in key["KeyPolicy"]["Statement"]
        if statement["Principal"] == {"Service": sub("logs.${AWS::Region}.amazonaws.com")}
    ]
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"} <= set(logs["Action"])
    arns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    patterns = [arn["Fn::Sub"] for arn in arns]
    assert all(
        p.startswith("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:")
        for p in patterns
    )


# ------------------------------------------------------------------------------------ DLQ


@pytest.mark.parametrize("variant", variants_with("dead_letter_queue"))
def test_dead_letter_queue_is_encrypted_and_wired_to_the_function(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    function = project.function_id
    assert project.function["Properties"]["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": get_att(f"{function}DeadLetterQueue"),
    }
    queue = project.template["Resources"][f"{function}DeadLetterQueue"]["Properties"]
    assert queue["KmsMasterKeyId"] == {"Ref": f"{function}DataKey"}
    assert project.template["Outputs"]["DeadLetterQueueUrl"]["Value"] == {
        "Ref": f"{function}DeadLetterQueue"
    }
    # SAM adds no policy for a function with its own role: ours grants sending (role test).
    expanded_function = project.expanded["Resources"][function]["Properties"]
    assert expanded_function["DeadLetterConfig"] == {
        "TargetArn": get_att(f"{function}DeadLetterQueue")
    }


# ------------------------------------------------------------------------------------ VPC


@pytest.mark.parametrize("variant", variants_with("vpc"))
def test_vpc_subnets_and_security_groups_are_deploy_time_parameters(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    parameters = project.template["Parameters"]
    assert parameters["VpcSubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["VpcSecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    assert "Default" not in parameters["VpcSubnetIds"]  # never deploy into a guessed network
    assert project.function["Properties"]["VpcConfig"] == {
        "SubnetIds": {"Ref": "VpcSubnetIds"},
        "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"},
    }


# ------------------------------------------------------------------------------------ tracing


@pytest.mark.parametrize("variant", variants_with("tracing"))
def test_tracing_is_active_on_the_function_and_the_stage(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    assert project.function["Properties"]["Tracing"] == "Active"
    assert project.api["Properties"]["TracingEnabled"] is True
    _, stage = generated_stage(project)
    assert stage["Properties"]["TracingEnabled"] is True


# ---------------------------------------------------------------------------------- off means gone


def _traces(project: Project, toggle: str) -> list[str]:
    """What of `toggle` a rendering holds; empty when the toggle is off."""
    function = project.function["Properties"]
    api = project.api["Properties"]
    resources = project.template["Resources"]
    found: list[str] = []
    settings = method_settings(api)
    if toggle == "access_logging":
        found += [k for k in ("AccessLogSetting",) if k in api]
        found += [k for s in settings for k in s if k in ("LoggingLevel", "DataTraceEnabled")]
        found += [r for r in resources if r.startswith("ApiGateway") or "AccessLog" in r]
        found += [r for r in resources if "ExecutionLog" in r]
        found += list(project.template.get("Conditions", {}))
        found += [p for p in project.template.get("Parameters", {}) if "Logging" in p]
    elif toggle == "throttling":
        found += [k for s in settings for k in s if k.startswith("Throttling")]
        found += [k for k in local_settings(project) if k.startswith("throttling")]
    elif toggle == "waf":
        found += [r for r, res in resources.items() if res["Type"].startswith("AWS::WAFv2::")]
    elif toggle == "concurrency_limit":
        found += [k for k in function if k == "ReservedConcurrentExecutions"]
    elif toggle == "kms_encryption":
        found += [k for k in function if k == "KmsKeyArn"]
        found += [r for r in resources if r.endswith("EnvironmentKey")]
        found += [
            r
            for r, res in of_type(project.template, "AWS::Logs::LogGroup").items()
            if "KmsKeyId" in res["Properties"]
        ]
    elif toggle == "dead_letter_queue":
        found += [k for k in function if k == "DeadLetterQueue"]
        found += list(of_type(project.template, "AWS::SQS::Queue"))
        found += [
            a
            for s in role_statements(project)
            for a in json.dumps(s["Action"]).split()
            if "sqs" in a
        ]
    elif toggle == "vpc":
        found += [k for k in function if k == "VpcConfig"]
        found += [p for p in project.template.get("Parameters", {}) if p.startswith("Vpc")]
        found += [
            json.dumps(m)
            for m in role(project).get("ManagedPolicyArns", [])
            if "ENI" in json.dumps(m)
        ]
    elif toggle == "tracing":
        found += [k for k in function if k == "Tracing"] + [k for k in api if k == "TracingEnabled"]
        found += [
            json.dumps(m)
            for m in role(project).get("ManagedPolicyArns", [])
            if "XRay" in json.dumps(m)
        ]
    return found


@pytest.mark.parametrize(
    ("toggle", "variant"),
    [(toggle, variant) for toggle in TOGGLES for variant in variants_with(toggle, enabled=False)],
)
def test_a_toggle_that_is_off_leaves_nothing_behind(
    projects: Callable[[str], Project], toggle: str, variant: str
) -> None:
    assert _traces(projects(variant), toggle) == []


@pytest.mark.parametrize("toggle", TOGGLES)
def test_a_toggle_that_is_on_is_found(projects: Callable[[str], Project], toggle: str) -> None:
    """The absence test above is not vacuous: the same probe finds each toggle when it is on."""
    assert _traces(projects(f"only_{toggle}"), toggle) != []


def test_data_key_exists_only_for_kms_or_the_queue(projects: Callable[[str], Project]) -> None:
    for variant in sorted(VARIANTS):
        project = projects(variant)
        keys = set(of_type(project.template, "AWS::KMS::Key"))
        function = project.function_id
        expected = set()
        if on(variant, "kms_encryption"):
            expected |= {f"{function}EnvironmentKey", f"{function}DataKey"}
        if on(variant, "dead_letter_queue"):
            expected |= {f"{function}DataKey"}
        assert keys == expected, variant


# ------------------------------------------------------------------------------------ checkov


@functools.cache
def _checkov(path: Path) -> tuple[frozenset[str], frozenset[str], int]:
    """(failed ids, skipped ids, passed count) of checkov's CloudFormation checks on one file."""
    # checkov is pinned in requirements-dev.txt: a missing checkov is a broken setup, not a skip.
    from checkov.cloudformation.runner import Runner
    from checkov.runner_filter import RunnerFilter

    report = Runner().run(
        root_folder=None,
        files=[str(path)],
        runner_filter=RunnerFilter(framework=["cloudformation"]),
    )
    return (
        frozenset(check.check_id for check in report.failed_checks),
        frozenset(check.check_id for check in report.skipped_checks),
        len(report.passed_checks),
    )


def _checkov_sam(project: Project) -> tuple[frozenset[str], frozenset[str], int]:
    return _checkov(project.root / "template.yaml")


def _checkov_expanded(project: Project) -> tuple[frozenset[str], frozenset[str], int]:
    path = project.root.parent / "expanded-template.json"
    if not path.exists():
        path.write_text(json.dumps(project.expanded, indent=1))
    return _checkov(path)


def _template_skips(project: Project) -> dict[str, str]:
    """Every checkov skip the template declares, with its reason."""
    return {
        skip["id"]: skip.get("comment", "")
        for resource in project.template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_checkov_passes_strict_with_only_reasoned_skips(
    projects: Callable[[str], Project],
) -> None:
    project = projects("strict")
    failed, skipped, passed = _checkov_sam(project)
    assert failed == frozenset()
    assert skipped == SKIPPED_BY_TEMPLATE == set(_template_skips(project))
    assert all(len(reason) > 20 for reason in _template_skips(project).values())
    assert passed >= 30


def test_checkov_on_strict_expansion_fails_only_what_the_template_skips(
    projects: Callable[[str], Project],
) -> None:
    """SAM does not copy the API's Metadata (where the skip is) to the stage it generates."""
    failed, _, _ = _checkov_expanded(projects("strict"))
    assert failed <= SKIPPED_BY_TEMPLATE


def test_checkov_fails_minimal_on_exactly_the_documented_checks(
    projects: Callable[[str], Project],
) -> None:
    project = projects("minimal")
    failed, skipped, _ = _checkov_sam(project)
    assert failed == MINIMAL_FAILING
    assert skipped == SKIPPED_BY_TEMPLATE
    expanded_failed, _, _ = _checkov_expanded(project)
    assert expanded_failed == MINIMAL_FAILING | SKIPPED_BY_TEMPLATE
    security = (project.root / "docs" / "SECURITY.md").read_text()
    (listed,) = re.findall(r"the failing checks are exactly: ([^.]+)\.", " ".join(security.split()))
    assert set(re.findall(r"CKV_AWS_\d+", listed)) == MINIMAL_FAILING


@pytest.mark.parametrize("toggle", TOGGLES)
def test_each_toggle_fixes_its_documented_checkov_checks(
    projects: Callable[[str], Project], toggle: str
) -> None:
    minimal_failed, _, _ = _checkov_sam(projects("minimal"))
    project = projects(f"only_{toggle}")
    failed, _, _ = _checkov_sam(project)
    assert minimal_failed - failed == FIXED_BY[toggle]
    assert failed <= minimal_failed  # fixing one thing breaks nothing else
    row = _security_row(project, toggle)
    assert FIXED_BY[toggle] <= set(re.findall(r"CKV_AWS_\d+", row))


# ------------------------------------------------------------------------------------ SAM CLI


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sam_validate_lint_passes(projects: Callable[[str], Project], variant: str) -> None:
    """The pinned SAM CLI (requirements-sam.txt) lints what its own transform expands."""
    project = projects(variant)
    output = sam_validate_lint(project.root, project.answers["aws_region"])
    assert "is a valid SAM Template" in output


# ------------------------------------------------------------------------------------ docs


def _security_row(project: Project, toggle: str) -> str:
    security = (project.root / "docs" / "SECURITY.md").read_text()
    (row,) = [line for line in security.splitlines() if line.startswith(f"| `{toggle}` |")]
    return row


@pytest.mark.parametrize("variant", ["minimal", "defaults", "strict"])
def test_security_doc_has_a_row_per_toggle_saying_whether_it_is_on(
    projects: Callable[[str], Project], variant: str
) -> None:
    project = projects(variant)
    for toggle in TOGGLES:
        cells = [cell.strip() for cell in _security_row(project, toggle).strip("|").split("|")]
        assert len(cells) == 6, toggle
        assert cells[1] == ("on" if on(variant, toggle) else "off"), toggle
        assert cells[2] and cells[3], toggle  # what it does, what it costs


def test_security_doc_states_the_caveats(projects: Callable[[str], Project]) -> None:
    project = projects("strict")
    rows = {toggle: " ".join(_security_row(project, toggle).split()) for toggle in TOGGLES}
    assert "invokes synchronously" in rows["dead_letter_queue"]
    assert "NAT gateway or VPC endpoints" in rows["vpc"]
    assert "one setting per account and region" in rows["access_logging"]
    assert "opt in at deploy time" in rows["access_logging"]
    security = (project.root / "docs" / "SECURITY.md").read_text()
    assert "not emulated" in security
    assert '429 `{"message":"Too Many Requests"}`' in security


# ------------------------------------------------------------------------------------ questions

HARDENING_REFUSED = [
    ("throttling_rate_limit", {"throttling": True, "throttling_rate_limit": 0}, "more than 0"),
    ("throttling_rate_limit", {"throttling": True, "throttling_rate_limit": -5}, "more than 0"),
    ("throttling_rate_limit", {"throttling": True, "throttling_rate_limit": "nan"}, "more than 0"),
    ("throttling_burst_limit", {"throttling": True, "throttling_burst_limit": 0}, "between 1"),
    ("waf_rate_limit", {"waf": True, "waf_rate_limit": 9}, "between 10 and 2000000000"),
    ("reserved_concurrency", {"concurrency_limit": True, "reserved_concurrency": 0}, "at least 1"),
    ("log_retention_days", {"log_retention_days": 10}, "must be one of 1, 3, 5, 7, 14, 30"),
    ("log_retention_days", {"log_retention_days": 0}, "must be one of"),
]


@pytest.mark.parametrize(
    ("question", "answers", "message"),
    [pytest.param(*case, id=f"{case[0]}={case[1][case[0]]}") for case in HARDENING_REFUSED],
)
def test_hardening_numbers_are_validated(
    tmp_path: Path, question: str, answers: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=f"question '{question}'") as refusal:
        render(tmp_path / "project", **answers)
    assert message in str(refusal.value)
    assert not (tmp_path / "project").exists()


@pytest.mark.parametrize(
    "answers",
    [
        {"throttling": False, "throttling_rate_limit": 0, "throttling_burst_limit": 0},
        {"waf": False, "waf_rate_limit": 0},
        {"concurrency_limit": False, "reserved_concurrency": 0},
    ],
    ids=["throttling", "waf", "concurrency_limit"],
)
def test_sub_questions_of_a_toggle_that_is_off_are_not_validated(
    tmp_path: Path, answers: dict[str, object]
) -> None:
    render(tmp_path / "project", **answers)
    assert (tmp_path / "project" / "template.yaml").is_file()


def test_security_profile_is_a_choice(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Invalid choice for 'security_profile'"):
        render(tmp_path / "project", security_profile="paranoid")


def test_every_hardening_question_has_a_help_that_says_what_it_costs() -> None:
    import yaml

    questions = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    for toggle in TOGGLES:
        help_text = " ".join(questions[toggle]["help"].split())
        assert "$" in help_text or "Free" in help_text, toggle
        assert "pick it" in help_text.lower(), toggle
