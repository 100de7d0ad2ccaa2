"""`copier update` from one release of the template to the next keeps the user's work.

The template is released twice into a throwaway git repository (template_versions.py): version A
is this checkout, version B a later release with a runtime fix, a new question, a renamed question
and its migration. A project generated from A is committed, edited the way a user edits it, and
updated to B with `copier update --defaults --trust`, all without the network. Template-owned files
(the runtime, the build glue, the workflows) take B's changes; user-owned files (the handler, its
tests, requirements.txt) stay as the user left them; the README merges both sides.

Then the other ways an update goes: a changed answer (`--data auth=NONE`) renders again what
depends on it; an edit that clashes with the release is marked for the user to resolve, inline or
in a `.rej` file; and the project's weekly workflow notices a newer release without ever failing.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import TEMPLATE_ROOT
from copier import run_copy, run_update
from template_versions import (
    EXAMPLE_HANDLER_CHANGE,
    NEW_QUESTION,
    NEW_QUESTION_DEFAULT,
    RENAMED_QUESTION,
    REQUIREMENTS_CHANGE,
    RUNTIME_FIX,
    RUNTIME_FIX_MODULE,
    TEMPLATE_README_ADDITION,
    VERSION_A,
    VERSION_B,
    TemplateRepository,
    commit_all,
    git,
    release_version_b,
)
from test_sam_template import CloudFormationLoader

# One worker builds the template's releases and the projects once, for every test here.
pytestmark = pytest.mark.xdist_group("template-update")

PACKAGE = "streaming_numbers"
# An answer that differs from the default, so that keeping it is visible after the rename.
RETENTION_ANSWER = 90

USER_HANDLER = '''"""Our handler: greets the caller, one line per step."""

from lambda_streaming import Context, ResponseStreamWriter, RestProxyEvent


def greeting(name: str, step: int) -> str:
    return f"Hello {name}, step {step}\\n"


def handler(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    request = RestProxyEvent.parse(event)
    name = request.query_string_parameters.get("name", "world") if request else "world"
    writer.write_status_and_headers(200, {"Content-Type": "text/plain"})
    for step in range(1, 4):
        writer.write(greeting(name, step))
    writer.finish()
'''
USER_TEST = f"""from {PACKAGE}.handler import greeting


def test_greeting_names_the_caller_and_the_step():
    assert greeting("Ada", 2) == "Hello Ada, step 2\\n"
"""
USER_REQUIREMENT = "requests==2.32.3\n"
USER_README_SECTION = "\n## Team notes\n\nOwned by the streaming team; ask in #streaming.\n"


@dataclass(frozen=True)
class Update:
    """A project generated from version A, edited by its user, then updated to version B."""

    template: TemplateRepository
    project: Path
    user_files: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> TemplateRepository:
    """The template released as A (this checkout), then as B."""
    repository = TemplateRepository.of_working_tree(tmp_path_factory.mktemp("template"))
    repository.release(VERSION_A)
    release_version_b(repository)
    return repository


def generate(template: TemplateRepository, destination: Path, version: str, **answers: Any) -> Path:
    """`copier copy --vcs-ref <version> --defaults`, then the first commit, as a user starts."""
    run_copy(
        str(template.path),
        destination,
        data=answers,
        vcs_ref=version,
        defaults=True,
        unsafe=True,
        quiet=True,
    )
    git(destination, "init", "--quiet")
    commit_all(destination, f"Generated from copier-lambda-streaming {version}")
    return destination


def update(project: Path, **answers: Any) -> None:
    """`copier update --defaults --trust [--data name=value]` to the latest release."""
    run_update(project, data=answers, defaults=True, unsafe=True, overwrite=True, quiet=True)


def edit_as_a_user(project: Path) -> dict[str, str]:
    """Rewrite the handler, replace its test, add a dependency and a README section; commit."""
    readme = project / "README.md"
    title, _, rest = readme.read_text().partition("\n")
    requirements = (project / "requirements.txt").read_text() + USER_REQUIREMENT
    user_files = {
        f"{PACKAGE}/handler.py": USER_HANDLER,
        "tests/test_greeting.py": USER_TEST,
        "requirements.txt": requirements,
        "README.md": f"{title}\n{USER_README_SECTION}{rest}",
    }
    for relative, text in user_files.items():
        (project / relative).write_text(text)
    (project / "tests" / "test_handler.py").unlink()  # the example's test, for a handler now gone
    commit_all(project, "Our handler, its test, a dependency, team notes")
    return user_files


@pytest.fixture(scope="module")
def updated(template: TemplateRepository, tmp_path_factory: pytest.TempPathFactory) -> Update:
    project = generate(
        template,
        tmp_path_factory.mktemp("update") / "streaming-numbers",
        VERSION_A,
        **{RENAMED_QUESTION[0]: RETENTION_ANSWER},
    )
    user_files = edit_as_a_user(project)
    update(project)
    return Update(template, project, user_files)


def answers_of(project: Path) -> dict[str, Any]:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def sam_template_of(project: Path) -> dict[str, Any]:
    return yaml.load((project / "template.yaml").read_text(), CloudFormationLoader)


def runtime_version(root: Path) -> str:
    """`__version__` of lambda_streaming/__init__.py, read without importing the package."""
    module = ast.parse((root / "lambda_streaming" / "__init__.py").read_text())
    for node in module.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "__version__"
        ]:
            return ast.literal_eval(node.value)
    raise AssertionError("lambda_streaming/__init__.py assigns no __version__")


# -------------------------------------------------------------- from A to B, the user's edits kept


def test_update_reaches_the_latest_release(updated: Update) -> None:
    assert answers_of(updated.project)["_commit"] == VERSION_B


def test_runtime_is_replaced_by_the_new_release(updated: Update) -> None:
    runtime = TemplateRepository(updated.project).files_under("lambda_streaming")
    assert runtime == updated.template.files_under("template/lambda_streaming")
    assert runtime[Path(RUNTIME_FIX_MODULE).name].decode().endswith(RUNTIME_FIX)
    assert runtime_version(updated.project) == VERSION_B


def test_users_handler_stays_as_written_though_the_example_changed(updated: Update) -> None:
    example = updated.template.path / "template" / "{{package_name}}" / "handler.py"
    assert example.read_text().endswith(EXAMPLE_HANDLER_CHANGE)
    handler = f"{PACKAGE}/handler.py"
    assert (updated.project / handler).read_text() == updated.user_files[handler]


def test_users_tests_stay_and_the_deleted_example_test_is_not_recreated(updated: Update) -> None:
    tests = updated.project / "tests"
    assert (tests / "test_greeting.py").read_text() == USER_TEST
    assert not (tests / "test_handler.py").exists()


def test_users_requirements_stay_as_written_though_the_template_changed_them(
    updated: Update,
) -> None:
    template_requirements = updated.template.path / "template" / "requirements.txt"
    assert template_requirements.read_text().startswith(REQUIREMENTS_CHANGE)
    requirements = (updated.project / "requirements.txt").read_text()
    assert requirements == updated.user_files["requirements.txt"]
    assert requirements.endswith(USER_REQUIREMENT)


def test_readme_keeps_the_users_section_and_takes_the_templates_change(updated: Update) -> None:
    readme = (updated.project / "README.md").read_text()
    assert USER_README_SECTION in readme
    assert readme.endswith(TEMPLATE_README_ADDITION)


def test_new_question_is_recorded_with_its_default(updated: Update) -> None:
    assert answers_of(updated.project)[NEW_QUESTION] == NEW_QUESTION_DEFAULT
    logging_doc = (updated.project / "docs" / "LOGGING.md").read_text()
    assert f"writes its logs as {NEW_QUESTION_DEFAULT}." in logging_doc


def test_renamed_question_keeps_the_old_answer_through_its_migration(updated: Update) -> None:
    old, new = RENAMED_QUESTION
    answers = answers_of(updated.project)
    assert answers[new] == RETENTION_ANSWER
    assert old not in answers
    resources = sam_template_of(updated.project)["Resources"].values()
    retention = {
        r["Properties"]["RetentionInDays"] for r in resources if r["Type"] == "AWS::Logs::LogGroup"
    }
    assert retention == {RETENTION_ANSWER}


def test_update_leaves_no_conflict_markers_and_no_rejected_hunks(updated: Update) -> None:
    files = [p for p in updated.project.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert [p.name for p in files if p.suffix == ".rej" or p.name.endswith(".orig")] == []
    marked = [
        str(path.relative_to(updated.project))
        for path in files
        if any(
            line.startswith(("<<<<<<< ", ">>>>>>> "))
            for line in path.read_text(errors="replace").splitlines()
        )
    ]
    assert marked == []


def test_updated_project_passes_its_own_tests(updated: Update) -> None:
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "_HANDLER")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=updated.project,
        env={**environment, "STREAM_PAUSE_MS": "0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------- a changed answer re-renders


def api_definition(project: Path) -> dict[str, Any]:
    """The OpenAPI body of the project's only API."""
    resources = sam_template_of(project)["Resources"].values()
    (api,) = [r for r in resources if r["Type"] == "AWS::Serverless::Api"]
    return api["Properties"]["DefinitionBody"]


@pytest.fixture(scope="module")
def made_public(template: TemplateRepository, tmp_path_factory: pytest.TempPathFactory) -> Update:
    """A project on the latest release, its handler rewritten, updated with `--data auth=NONE`."""
    project = generate(template, tmp_path_factory.mktemp("public") / "streaming-numbers", VERSION_B)
    (project / PACKAGE / "handler.py").write_text(USER_HANDLER)
    commit_all(project, "Our handler")
    assert "securitySchemes" in api_definition(project)["components"]  # IAM, the default
    update(project, auth="NONE")
    return Update(template, project, {f"{PACKAGE}/handler.py": USER_HANDLER})


def test_changed_answer_is_recorded(made_public: Update) -> None:
    answers = answers_of(made_public.project)
    assert (answers["auth"], answers["_commit"]) == ("NONE", VERSION_B)


def test_changed_answer_re_renders_the_api_without_auth(made_public: Update) -> None:
    definition = api_definition(made_public.project)
    assert "components" not in definition
    methods = [method for path in definition["paths"].values() for method in path.values()]
    assert methods and all("security" not in method for method in methods)
    assert "THIS API IS PUBLIC" in (made_public.project / "template.yaml").read_text()


def test_changed_answer_reaches_local_mode_and_the_readme(made_public: Update) -> None:
    main = (made_public.project / PACKAGE / "__main__.py").read_text()
    assert 'auth="NONE"' in main
    assert "the deployed API is public" in (made_public.project / "README.md").read_text()


def test_an_update_that_changes_package_name_stops_and_says_how_to_undo_it(
    template: TemplateRepository, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = generate(template, tmp_path / "streaming-numbers", VERSION_B)
    with pytest.raises(subprocess.CalledProcessError):
        update(project, package_name="other_pkg")
    refusal = capfd.readouterr().err
    assert "package_name cannot change on update: it was 'streaming_numbers', now 'other_pkg'" in (
        refusal
    )
    assert "git checkout -- . && git clean -fd" in refusal
    git(project, "checkout", "--quiet", "--", ".")
    git(project, "clean", "--quiet", "-fd")
    assert git(project, "status", "--porcelain") == ""  # the undo it gives restores the project


def test_changed_answer_leaves_the_users_handler_alone(made_public: Update) -> None:
    for relative, text in made_public.user_files.items():
        assert (made_public.project / relative).read_text() == text


# -------------------------------------------------------------- the weekly template-update notice

WORKFLOW = Path(".github/workflows/template-update.yml")
CHECK_STEP = "Check for a newer template release"


def workflow_of(project: Path) -> dict[Any, Any]:
    return yaml.safe_load((project / WORKFLOW).read_text())


def check_step_script(project: Path) -> str:
    (job,) = workflow_of(project)["jobs"].values()
    (step,) = [step for step in job["steps"] if step.get("name") == CHECK_STEP]
    return step["run"]


def run_check_step(project: Path, runner_temp: Path) -> subprocess.CompletedProcess[str]:
    """The workflow's check step, in bash as GitHub runs it, with this venv's Copier installed."""
    (runner_temp / "copier").mkdir(parents=True)
    (runner_temp / "copier" / "bin").symlink_to(Path(sys.executable).parent)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", check_step_script(project)],
        cwd=project,
        env={**os.environ, "RUNNER_TEMP": str(runner_temp)},
        capture_output=True,
        text=True,
        check=False,
    )


def notices(output: str, kind: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"::{kind} ")]


def test_workflow_runs_weekly_and_on_demand_and_only_reads(default_project: Path) -> None:
    workflow = workflow_of(default_project)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (schedule,) = triggers["schedule"]
    *_, day_of_month, month, day_of_week = schedule["cron"].split()
    assert (day_of_month, month) == ("*", "*") and day_of_week.isdigit()  # once a week
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert job["continue-on-error"] is True


def test_workflow_pins_every_action_to_a_full_commit_sha(default_project: Path) -> None:
    lines = (default_project / WORKFLOW).read_text().splitlines()
    uses = [line.split("uses:", 1)[1].strip() for line in lines if "uses:" in line]
    assert uses, "the workflow checks out the project"
    for use in uses:
        action, _, rest = use.partition("@")
        sha, _, comment = rest.partition("#")
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", action), use
        assert re.fullmatch(r"[0-9a-f]{40}", sha.strip()), use
        assert re.fullmatch(r"v\d+(\.\d+)*", comment.strip()), use


def test_workflow_installs_the_copier_the_template_is_tested_with(default_project: Path) -> None:
    (job,) = workflow_of(default_project)["jobs"].values()
    installed = {
        step["env"]["COPIER_VERSION"]
        for step in job["steps"]
        if "COPIER_VERSION" in step.get("env", {})
    }
    pins = (TEMPLATE_ROOT / "requirements-dev.txt").read_text()
    assert installed == set(re.findall(r"^copier==(\S+)$", pins, flags=re.MULTILINE))


def test_workflow_notices_a_newer_release(template: TemplateRepository, tmp_path: Path) -> None:
    project = generate(template, tmp_path / "on-a", VERSION_A)
    result = run_check_step(project, tmp_path / "runner")
    assert result.returncode == 0, result.stderr
    assert notices(result.stdout, "notice") == [
        f"::notice title=Template update::copier-lambda-streaming {VERSION_B} is out"
        f" (this project is on {VERSION_A}): run `copier update --trust` and review the changes"
    ]


def test_workflow_is_quiet_when_the_project_is_up_to_date(
    template: TemplateRepository, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "on-b", VERSION_B)
    result = run_check_step(project, tmp_path / "runner")
    assert result.returncode == 0, result.stderr
    assert notices(result.stdout, "notice") == notices(result.stdout, "warning") == []
    assert f"Up to date with the template ({VERSION_B})" in result.stdout


def test_workflow_warns_but_never_fails_when_it_cannot_check(
    template: TemplateRepository, tmp_path: Path
) -> None:
    project = generate(template, tmp_path / "moved", VERSION_A)
    answers = project / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(str(template.path), str(tmp_path / "gone")))
    commit_all(project, "The template moved away")
    result = run_check_step(project, tmp_path / "runner")
    assert result.returncode == 0, result.stderr
    (warning,) = notices(result.stdout, "warning")
    assert warning.startswith(
        "::warning title=Template update::could not check for a template update"
    )


# -------------------------------------------------------------- an edit that clashes with a release


def clashing_update(template: TemplateRepository, destination: Path, conflict: str) -> Path:
    """A project whose user patched the runtime at the very lines release B changes."""
    project = generate(template, destination, VERSION_A)
    with (project / RUNTIME_FIX_MODULE).open("a") as module:
        module.write('\nPATCHED_LOCALLY = "our own fix"\n')
    commit_all(project, "Patch the runtime ourselves")
    run_update(project, defaults=True, unsafe=True, overwrite=True, quiet=True, conflict=conflict)
    return project


def test_clash_is_marked_inline_and_left_unmerged_for_git(
    template: TemplateRepository, tmp_path: Path
) -> None:
    project = clashing_update(template, tmp_path / "inline", "inline")
    lines = (project / RUNTIME_FIX_MODULE).read_text().splitlines()
    markers = [line for line in lines if line.startswith(("<<<<<<<", "=======", ">>>>>>>"))]
    assert markers == ["<<<<<<< before updating", "=======", ">>>>>>> after updating"]
    ours, theirs = lines.index(markers[0]), lines.index(markers[1])
    assert 'PATCHED_LOCALLY = "our own fix"' in lines[ours:theirs]
    assert 'FIXED_IN = "0.2.0"' in lines[theirs:]
    unmerged = git(project, "diff", "--name-only", "--diff-filter=U").split()
    assert unmerged == [RUNTIME_FIX_MODULE]


def test_clash_goes_to_a_rej_file_with_conflict_rej(
    template: TemplateRepository, tmp_path: Path
) -> None:
    project = clashing_update(template, tmp_path / "rej", "rej")
    module = project / RUNTIME_FIX_MODULE
    assert module.read_text().endswith(RUNTIME_FIX)  # the release's version
    rejected = module.with_name(module.name + ".rej").read_text()
    assert '+PATCHED_LOCALLY = "our own fix"' in rejected
