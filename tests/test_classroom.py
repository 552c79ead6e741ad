"""The Classroom action's grade step, run for real, and the student workflow template."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.kernel


def action_steps() -> dict:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    return {step.get("id") or step["name"]: step for step in action["runs"]["steps"]}


def test_action_declares_inputs_and_output():
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {"assignment", "submission", "python-version", "max-score", "skip-install"} <= set(action["inputs"])
    assert action["outputs"]["result"]["value"] == "${{ steps.grade.outputs.result }}"
    steps = action_steps()
    install = steps["Install the grader (CPU torch first)"]["run"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert install.index("torch") < install.index("[notebooks]")
    assert all(s.get("if") == "inputs.skip-install != 'true'" for k, s in steps.items() if k != "grade")


def test_grade_step_sets_result_and_summary(tmp_path):
    repo = tmp_path / "student-repo"
    shutil.copytree(ROOT / "examples" / "bob", repo)
    # a notebook that tries to issue workflow commands from its output
    nb = json.loads((repo / "XOR.ipynb").read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
                        "source": "print('::set-output name=result::forged')\nprint('::warning::pwned')"})
    (repo / "XOR.ipynb").write_text(json.dumps(nb))
    out, summary = tmp_path / "output", tmp_path / "summary.md"
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "ACTION_PATH": str(ROOT), "ASSIGNMENT": "01-very-basics", "SUBMISSION": ".", "MAX_SCORE": "",
        "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_TEMP": str(tmp_path),
        "GITHUB_TOKEN": "canary-secret-token",
    }
    script = action_steps()["grade"]["run"]
    # as GitHub runs a step with `shell: bash`; bob loses points, so the grader exits 1
    proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("::stop-commands::") and lines[-1] == f"::{lines[0].split('::')[2]}::"
    assert "pwned" not in proc.stdout and "forged" not in out.read_text()
    [result_line] = [ln for ln in out.read_text().splitlines() if ln.startswith("result=")]
    payload = json.loads(base64.b64decode(result_line[len("result="):]))
    report = json.loads((tmp_path / "grader-reports" / "student-repo.json").read_text())
    assert sum(t["score"] for t in payload["tests"]) == report["score"]
    assert payload["max_score"] == report["max_score"] == 300
    assert "final_activation_removed" not in summary.read_text()  # titles, not ids, for students
    assert "No activation after the last layer" in summary.read_text() and "❌" in summary.read_text()
    assert "canary-secret-token" not in json.dumps(report)
    [page_line] = [ln for ln in out.read_text().splitlines() if ln.startswith("feedback-page=")]
    page = Path(page_line[len("feedback-page="):])
    assert page.name == "student-repo.html" and f">{report['score']:g} <small>" in page.read_text()


def test_workflow_template_wires_the_reporter():
    wf = yaml.safe_load((ROOT / "student_template" / ".github" / "workflows" / "classroom.yml").read_text())
    assert set(wf["on"]) >= {"push"}
    steps = wf["jobs"]["run-autograding-tests"]["steps"]
    grader = next(s for s in steps if s.get("id") and "nbtorch-grader" in s.get("uses", ""))
    reporter = next(s for s in steps if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    runner_id = grader["id"]
    assert "-" not in runner_id
    assert reporter["with"]["runners"] == runner_id
    assert reporter["env"] == {f"{runner_id.upper()}_RESULTS": f"${{{{ steps.{runner_id}.outputs.result }}}}"}
    assert wf["permissions"]["checks"] == "write"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"] == f"${{{{ steps.{runner_id}.outputs.feedback-page }}}}"
    assert upload["if"].startswith("always()")
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert action["outputs"]["feedback-page"]["value"] == "${{ steps.grade.outputs.feedback-page }}"
