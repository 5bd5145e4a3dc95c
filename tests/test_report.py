"""Notebook-template reports: the templates, their parameters, rendering through the CLI and the
Python API on data/, every output format, and failures that name the cell."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner
from helpers import ROOT
from report_cases import CHARTS, DATA, TEMPLATES, history_store

import perfstats
from perfstats.cli import cli
from perfstats.render import charts
from perfstats.report import (
    CHART_MIMETYPE,
    list_templates,
    render_report,
    template_parameters,
    template_path,
    templates_dir,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


PARAMETERS = {
    "run_summary": ["db", "run", "slo"],
    "compare": ["db", "baseline", "run", "config"],
    "capacity": ["db", "run", "slo", "peak_users", "target_rps", "safety_factor"],
    "history": ["db", "metric", "endpoint", "labels", "p_value", "min_magnitude"],
}
REQUIRED = {"run_summary": {"run"}, "compare": {"baseline", "run"}, "capacity": {"run"},
            "history": set()}


def _chart_specs(html: str) -> list[dict]:
    found = re.search(r'<script[^>]*id="perfstats-chart-specs"[^>]*>(.*?)</script>', html, re.S)
    assert found, "no chart specs in the page"
    return json.loads(found[1].replace("<\\/", "</"))


# ------------------------------------------------------------------------------ the templates

def test_templates_are_bundled_from_notebooks_and_shipped_in_the_wheel() -> None:
    assert list_templates() == TEMPLATES
    assert templates_dir() == ROOT / "notebooks"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["notebooks"] == "perfstats/notebooks"
    assert template_path("compare") == ROOT / "notebooks" / "compare.ipynb"
    assert template_path(ROOT / "notebooks" / "history.ipynb").name == "history.ipynb"


@pytest.mark.parametrize("name", TEMPLATES)
def test_parameters_cell(name: str) -> None:
    import papermill  # here, not at the top: its import costs each xdist worker 0.4 s

    nb = nbformat.read(template_path(name), as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    declared = papermill.inspect_notebook(str(template_path(name)))
    assert list(declared) == PARAMETERS[name]
    assert template_parameters(name) == {k: dict(v) for k, v in declared.items()}
    required = {k for k, v in declared.items() if v["help"].startswith("required")}
    assert required == REQUIRED[name]
    assert all(v["help"] for v in declared.values()), "every parameter explains itself"


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_are_clean_and_call_only_the_public_api(name: str) -> None:
    nb = nbformat.read(template_path(name), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert "papermill" not in nb.metadata
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert sum(c.source.startswith("## ") for c in nb.cells if c.cell_type == "markdown") >= 1
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    tree = ast.parse("\n".join(c.source for c in code))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert [a.name for a in node.names] == ["perfstats"]
        elif isinstance(node, ast.ImportFrom):
            assert node.module == "perfstats" and [a.name for a in node.names] == ["charts"]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "perfstats":
                assert node.attr in perfstats.__all__, f"perfstats.{node.attr} is not public"
            elif node.value.id == "charts":
                assert not node.attr.startswith("_") and hasattr(charts, node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not re.search(r"\b(SELECT|FROM|GROUP BY)\b", node.value), "no SQL"


# ------------------------------------------------------------------------- through the CLI

@pytest.mark.slow
@pytest.mark.parametrize("name", TEMPLATES)
def test_cli_renders_each_template_to_self_contained_html(name: str, html_reports: dict) -> None:
    result, path = html_reports[name]
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(path)
    html = path.read_text(encoding="utf-8")
    specs = _chart_specs(html)
    assert len(specs) == CHARTS[name]
    assert html.count('class="perfstats-chart"') == len(specs)
    assert all(s["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6") for s in specs)
    assert all("url" not in json.dumps(s.get("data", {})) for s in specs), "data is inline"
    # Self-contained: the libraries are inline, nothing is loaded from elsewhere.
    assert "window.vegaEmbed" in html
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""",
                         html, re.I)
    # Code hidden, prose kept.
    assert "import perfstats" not in html
    assert re.search(r"<h1[^>]*>", html) and 'class="jp-CodeMirrorEditor' not in html


@pytest.mark.slow
def test_cli_failure_names_the_cell_and_exits_2(tmp_path: Path) -> None:
    store = history_store(tmp_path / "h.duckdb")
    out = tmp_path / "broken.html"
    result = CliRunner().invoke(cli, ["report", "history", "--db", str(store),
                                      "--param", "metric=bogus", "-o", str(out)])
    assert result.exit_code == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert "cell 4 ('h = perfstats.history(" in message
    assert "ArgumentError: unknown metric" in message
    assert not out.exists()


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    bad_suffix = runner.invoke(cli, ["report", "run_summary", "--run", "x", "-o",
                                     str(tmp_path / "r.pdf")])
    assert bad_suffix.exit_code == 2 and ".html, .ipynb, .md" in bad_suffix.output
    unknown = runner.invoke(cli, ["report", "nope", "-o", str(tmp_path / "r.html")])
    assert unknown.exit_code == 2 and "unknown template 'nope'" in unknown.stderr
    bad_param = runner.invoke(cli, ["report", "run_summary", "--run", "x", "--param", "oops",
                                    "-o", str(tmp_path / "r.html")])
    assert bad_param.exit_code == 2 and "--param" in bad_param.output
    missing = runner.invoke(cli, ["report", "compare", "--run", "x", "-o",
                                  str(tmp_path / "r.html")])
    assert missing.exit_code == 2 and "missing required parameter(s) baseline" in missing.stderr


# ---------------------------------------------------------------------- through the Python API

def _executed(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    return nb


def _charts(nb: nbformat.NotebookNode) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if CHART_MIMETYPE in o.get("data", {})]


@pytest.mark.slow
def test_api_run_summary_from_a_file_store_to_markdown(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    run = perfstats.ingest(DATA / "k6" / "smoke", db=db)
    out = render_report("run_summary", run=run, output=tmp_path / "md" / "summary.md",
                        show_code=True)
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Run summary")
    assert "r = perfstats.load(run, db=db)" in text  # show_code keeps the code
    images = re.findall(r"!\[[^\]]*\]\((summary_files/[^)]+\.png)\)", text)
    assert len(images) == CHARTS["run_summary"]
    for image in images:
        assert (out.parent / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_api_run_in_a_file_store_passes_the_store_and_run_id(tmp_path: Path) -> None:
    db = tmp_path / "runs.duckdb"
    run = perfstats.ingest(DATA / "artillery" / "ramp", db=db)
    out = render_report("capacity", run=run, params={"peak_users": "400"},
                        output=tmp_path / "capacity.ipynb")
    nb = _executed(out)
    assert nb.metadata.papermill.parameters == {"run": run.run_id, "db": str(db.resolve()),
                                                "peak_users": 400}
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and f'run = "{run.run_id}"' in injected[0].source
    found = _charts(nb)
    assert len(found) == CHARTS["capacity"]
    assert all(o.data["image/png"] for o in found), "a PNG beside every spec"


@pytest.mark.slow
def test_api_compare_by_paths_to_html_with_code(tmp_path: Path) -> None:
    out = render_report("compare", baseline=DATA / "k6" / "baseline",
                        run=DATA / "k6" / "candidate", output=tmp_path / "compare.html",
                        show_code=True)
    html = out.read_text(encoding="utf-8")
    assert len(_chart_specs(html)) == CHARTS["compare"]
    assert 'class="jp-CodeMirrorEditor' in html
    assert "result = perfstats.compare(base, cand, config=config)" in re.sub(r"<[^>]+>", "", html)


@pytest.mark.slow
def test_api_history_to_notebook_whatever_python3_kernel_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A user-level "python3" kernel spec pointing elsewhere wins Jupyter's lookup; reports still
    # run on this interpreter.
    bogus = tmp_path / "jupyter" / "kernels" / "python3"
    bogus.mkdir(parents=True)
    (bogus / "kernel.json").write_text(json.dumps({
        "argv": [str(tmp_path / "no-such-python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"], "display_name": "elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    store = history_store(tmp_path / "h.duckdb")
    out = render_report("history", db=store, params={"endpoint": "POST *", "min_magnitude": 0.1},
                        output=tmp_path / "history.ipynb")
    nb = _executed(out)
    assert nb.metadata.papermill.parameters["endpoint"] == "POST *"
    assert len(_charts(nb)) == CHARTS["history"]


@pytest.mark.slow
def test_api_failure_is_a_report_error_naming_the_cell(tmp_path: Path) -> None:
    with pytest.raises(perfstats.ReportError) as caught:
        render_report("run_summary", run="no-such-run", db=tmp_path / "empty.duckdb",
                      output=tmp_path / "r.html")
    assert caught.value.cell_index == 2 and caught.value.ename == "RunNotFoundError"
    assert "cell 3 ('import perfstats') failed: RunNotFoundError: no run 'no-such-run'" in str(
        caught.value)


def test_api_refuses_what_the_notebook_could_not_see(tmp_path: Path) -> None:
    memory = perfstats.ingest(DATA / "artillery" / "baseline", db=":memory:")
    with pytest.raises(ValueError, match="in-memory store the notebook cannot see"):
        render_report("run_summary", run=memory, output=tmp_path / "r.html")
    with pytest.raises(ValueError, match="unsupported format '.pdf'"):
        render_report("run_summary", run="x", output=tmp_path / "r.pdf")
    with pytest.raises(perfstats.ReportError, match="unknown parameter.*colour"):
        render_report("run_summary", run="x", params={"colour": "red"}, output=tmp_path / "r.md")
    with pytest.raises(perfstats.ReportError, match="missing required parameter.*run"):
        render_report("capacity", output=tmp_path / "r.md")
    with pytest.raises(perfstats.ReportError, match="unknown template 'nope'"):
        render_report("nope", output=tmp_path / "r.md")
