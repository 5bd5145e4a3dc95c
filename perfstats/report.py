"""Reports: execute a notebook template with papermill and export it as HTML, ipynb or markdown.

A template is a notebook with one cell tagged ``parameters`` (papermill's convention). Templates
ship in ``perfstats/notebooks`` (the repository's ``notebooks/`` folder when running from a
checkout); any other ``.ipynb`` path works too. A parameter whose comment starts with
``required`` must be given.

The notebook runs in a ``python3`` Jupyter kernel on the interpreter running perfstats
(``sys.executable``, whatever kernel specs are installed elsewhere), so it sees the same
perfstats. In that kernel altair charts are recorded as Vega-Lite specs
(:data:`CHART_MIMETYPE`), which the exporters turn into:

- ``.html``: one self-contained page, code hidden unless ``show_code``; Vega, Vega-Lite and
  vega-embed are inlined from vl-convert's bundle, so the page makes no network request;
- ``.ipynb``: the executed notebook, each chart with a PNG beside its spec;
- ``.md``: markdown, each chart a PNG in ``<name>_files/`` beside it.

Needs the ``report`` extra: ``pip install 'perfstats[report]'``.
"""

from __future__ import annotations

import ast
import base64
import copy
import importlib.resources
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from perfstats.errors import ReportError
from perfstats.readers import locust_prefix_files
from perfstats.run import Run
from perfstats.store import PathLike, Store
from perfstats.store.team import is_team_url

CHART_MIMETYPE = "application/vnd.vegalite.v6+json"
"""How the report kernel records an altair chart: its Vega-Lite spec."""

KERNEL_NAME = "python3"
OUTPUT_SUFFIXES = (".html", ".ipynb", ".md")
_RENDERER = "perfstats-report"
_EXTRA_HINT = "pip install 'perfstats[report]'"


_HTML_TEMPLATE = """\
{%- extends 'lab/index.html.j2' -%}
{#- No CDN: no require.js, MathJax or mermaid; charts load from the inline bundle. -#}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<style type="text/css">
  main { max-width: 1100px; margin: 0 auto; }
  .perfstats-chart { min-height: 40px; }
  .perfstats-chart .vega-embed { display: inline-block; }
</style>
{%- endblock extra_css -%}
{%- block body_footer -%}
<script type="application/json" id="perfstats-chart-specs">{{ resources.perfstats_specs }}</script>
<script type="text/javascript">{{ resources.perfstats_vega_js }}</script>
<script type="text/javascript">{{ resources.perfstats_init_js }}</script>
</main>
</body>
{%- endblock body_footer -%}
"""

_INIT_JS = """
(function () {
  var specs = JSON.parse(document.getElementById("perfstats-chart-specs").textContent);
  var options = {renderer: "svg",
                 actions: {export: true, source: false, compiled: false, editor: false}};
  document.querySelectorAll("div.perfstats-chart").forEach(function (el) {
    vegaEmbed(el, specs[Number(el.dataset.chart)], options).catch(function (err) {
      el.textContent = "chart failed to render: " + err;
      console.error(err);
    });
  });
})();
"""


def templates_dir() -> Path:
    """The folder of the bundled templates (the checkout's ``notebooks/`` when not installed)."""
    bundled = importlib.resources.files("perfstats") / "notebooks"
    if bundled.is_dir():
        return Path(str(bundled))
    return Path(__file__).resolve().parents[1] / "notebooks"


def list_templates() -> list[str]:
    """Names of the bundled templates, e.g. ``["capacity", "compare", ...]``."""
    return sorted(p.stem for p in templates_dir().glob("*.ipynb"))


def template_path(template: PathLike) -> Path:
    """Resolve a template name (``"compare"``) or a path to an ``.ipynb`` file.

    Raises:
        ReportError: no such template.
    """
    raw = os.fspath(template)
    path = Path(raw)
    if path.suffix == ".ipynb" or os.sep in raw or "/" in raw:
        if path.is_file():
            return path
        raise ReportError(f"template {raw}: no such notebook file")
    bundled = templates_dir() / f"{raw}.ipynb"
    if bundled.is_file():
        return bundled
    names = ", ".join(list_templates()) or "none found"
    raise ReportError(f"unknown template {raw!r}; one of: {names} (or a path to an .ipynb)")


def template_parameters(template: PathLike) -> dict[str, dict[str, Any]]:
    """The parameters a template declares: name -> {inferred_type_name, default, help}.

    Read with papermill's ``inspect_notebook`` from the cell tagged ``parameters``.
    """
    papermill = _import_extra()[0]
    path = template_path(template)
    return {name: dict(info) for name, info in papermill.inspect_notebook(str(path)).items()}


def use_report_renderer() -> None:
    """Record altair charts as Vega-Lite specs (the report kernel calls this at start-up)."""
    import altair as alt

    def render(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
        return {CHART_MIMETYPE: spec, "text/plain": "<altair chart>"}

    alt.renderers.register(_RENDERER, render)
    alt.renderers.enable(_RENDERER)


def render_report(
    template: PathLike,
    *,
    run: Run | PathLike | None = None,
    baseline: Run | PathLike | None = None,
    params: Mapping[str, Any] | None = None,
    output: PathLike,
    show_code: bool = False,
    db: Store | PathLike | None = None,
) -> Path:
    """Execute a notebook template and export it to ``output`` (.html, .ipynb or .md).

    Args:
        template: a bundled template name (see :func:`list_templates`) or an ``.ipynb`` path.
        run: the run to report on: a :class:`Run` in a file store, a run id, or a result path
            (re-ingested inside the notebook). Passed as the ``run`` parameter.
        baseline: the baseline run, in the same forms (the ``baseline`` parameter).
        params: other template parameters; strings are parsed as Python/JSON literals unless
            the template declares a string parameter.
        output: the file to write; its suffix picks the format.
        show_code: keep the code cells in HTML and markdown output.
        db: the store file (default: the store of ``run``/``baseline`` when they are
            :class:`Run` objects, else the notebook's default, ``$PERFSTATS_DB`` or
            ``./perfstats.duckdb``). Passed as the ``db`` parameter, as an absolute path.

    Returns:
        The path written.

    Raises:
        ReportError: unknown template or parameter, missing required parameter, missing
            report extra, or a cell failed (the message names the cell and the error).
        ValueError: an unsupported output suffix, or a run in an in-memory store (the
            notebook cannot see it: pass its result path instead).

    Example:
        >>> render_report("compare", baseline="data/k6/baseline", run="data/k6/candidate",
        ...               output="report.html")  # doctest: +SKIP
    """
    out = Path(output)
    if out.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"output {out}: unsupported format {out.suffix or '(no suffix)'!r}; "
                         f"use one of {', '.join(OUTPUT_SUFFIXES)}")
    papermill, nbformat = _import_extra()
    path = template_path(template)
    declared = template_parameters(path)
    values = _parameters(declared, run=run, baseline=baseline, params=params or {}, db=db)
    try:
        nb = papermill.execute_notebook(
            str(path), None, parameters=values, kernel_name=KERNEL_NAME, progress_bar=False,
            kernel_manager_class=_kernel_manager_class(),
        )
    except papermill.PapermillExecutionError as exc:
        raise _cell_error(path, nbformat.read(path, as_version=4), exc) from None
    except Exception as exc:  # a kernel that dies or never starts
        raise ReportError(f"template {path.stem}: could not execute: {type(exc).__name__}: "
                          f"{_first_line(str(exc))}") from exc
    nb.metadata["title"] = _title(nb) or path.stem
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".html":
        out.write_text(_to_html(nb, show_code=show_code), encoding="utf-8")
    elif out.suffix == ".ipynb":
        _add_chart_images(nb)
        nbformat.write(nb, str(out))
    else:
        _write_markdown(nb, out, show_code=show_code)
    return out


def _import_extra() -> tuple[Any, Any]:
    try:
        import ipykernel  # noqa: F401  (the kernel the notebooks run in)
        import nbconvert  # noqa: F401
        import nbformat
        import papermill
        import vl_convert  # noqa: F401
    except ImportError as exc:
        raise ReportError(f"reports need the report extra ({exc.name} is not installed): "
                          f"{_EXTRA_HINT}") from exc
    return papermill, nbformat


def _kernel_manager_class() -> type:
    """A kernel manager whose ``python3`` kernel is this interpreter, charts as specs."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec

    class _ReportKernelManager(AsyncKernelManager):  # type: ignore[misc]
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(
                    argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                          "--IPKernelApp.log_level=CRITICAL",
                          "--IPKernelApp.exec_lines=import perfstats.report as _r; "
                          "_r.use_report_renderer(); del _r"],
                    display_name="Python 3 (ipykernel)", language="python")
            return self._kernel_spec

    return _ReportKernelManager


def _location(store: Store) -> str:
    """Where a notebook's own process finds ``store``: a team store URL or an absolute path."""
    return getattr(store, "url", None) or str(Path(store.path).resolve())


def _parameters(
    declared: dict[str, dict[str, Any]],
    *,
    run: Run | PathLike | None,
    baseline: Run | PathLike | None,
    params: Mapping[str, Any],
    db: Store | PathLike | None,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    stores: set[str] = set()
    for name, value in (("run", run), ("baseline", baseline)):
        if value is None:
            continue
        if isinstance(value, Run):
            if value.store.in_memory:
                raise ValueError(
                    f"{name} run {value.run_id} is in an in-memory store the notebook cannot "
                    "see; pass its result path (re-ingested in the notebook) or use a file store")
            stores.add(_location(value.store))
            values[name] = value.run_id
        elif os.path.exists(value) or locust_prefix_files(value):
            values[name] = str(Path(value).resolve())
        else:
            values[name] = os.fspath(value)
    if isinstance(db, Store):
        if db.in_memory:
            raise ValueError("db is an in-memory store the notebook cannot see; pass a file path")
        db = _location(db)
    if db is not None:
        db = os.fspath(db)
        values["db"] = db if db == ":memory:" or is_team_url(db) else str(Path(db).resolve())
    elif len(stores) == 1:
        values["db"] = stores.pop()
    elif len(stores) > 1:
        raise ValueError(f"run and baseline live in different stores ({', '.join(sorted(stores))})")
    for name, value in params.items():
        if name in values:
            raise ValueError(f"parameter {name!r} given twice (as an argument and in params)")
        kind = declared.get(name, {}).get("inferred_type_name")
        values[name] = _coerce(value, kind)
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise ReportError(f"unknown parameter(s) {', '.join(unknown)}; this template takes "
                          f"{', '.join(declared) or 'none'}")
    missing = [n for n, info in declared.items()
               if str(info.get("help") or "").lower().startswith("required") and n not in values]
    if missing:
        hints = "; ".join(f"{n}: {declared[n]['help']}" for n in missing)
        raise ReportError(f"missing required parameter(s) {', '.join(missing)} ({hints})")
    return values


def _coerce(value: Any, kind: str | None) -> Any:
    """Parse a string given for a non-string parameter as a JSON or Python literal."""
    if not isinstance(value, str) or kind == "str":
        return value
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value)
        except (ValueError, SyntaxError):
            continue
    return value


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[0].strip() if lines else ""


def _cell_error(path: Path, template: Any, exc: Any) -> ReportError:
    """A ReportError naming the template cell (1-based, as Jupyter shows it) and the error."""
    index = exc.cell_index
    for i, cell in enumerate(template.cells):
        if cell.source == exc.source:
            index = i
            break
    snippet = _first_line(exc.source)
    if len(snippet) > 60:
        snippet = snippet[:57] + "..."
    evalue = _first_line(re.sub(r"\x1b\[[0-9;]*m", "", exc.evalue or ""))
    return ReportError(
        f"template {path.stem}: cell {index + 1} ({snippet!r}) failed: {exc.ename}: {evalue}",
        cell_index=index, ename=exc.ename)


def _title(nb: Any) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _chart_outputs(nb: Any) -> list[Any]:
    return [output for cell in nb.cells if cell.cell_type == "code"
            for output in cell.get("outputs", [])
            if CHART_MIMETYPE in output.get("data", {})]


def _vl_version(spec: Mapping[str, Any]) -> str | None:
    """``"6.4"`` from the spec's ``$schema`` URL (vl-convert's version argument)."""
    found = re.search(r"/v(\d+)\.(\d+)", str(spec.get("$schema", "")))
    return f"{found[1]}.{found[2]}" if found else None


def _png(spec: Mapping[str, Any]) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(dict(spec), vl_version=_vl_version(spec), scale=2)


def _add_chart_images(nb: Any) -> None:
    """Give every chart a PNG too, for viewers without a Vega-Lite renderer."""
    for output in _chart_outputs(nb):
        output.data["image/png"] = base64.b64encode(_png(output.data[CHART_MIMETYPE])).decode()


def _to_html(nb: Any, *, show_code: bool) -> str:
    import vl_convert
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    specs = []
    for output in _chart_outputs(nb):
        spec = output.data[CHART_MIMETYPE]
        output.data = {"text/html": f'<div class="perfstats-chart" data-chart="{len(specs)}">'
                                    "</div>"}
        output.metadata = {}
        specs.append(spec)
    version = _vl_version(specs[0]) if specs else None
    bundle = vl_convert.javascript_bundle(vl_version=version).replace("</script", "<\\/script")
    exporter = HTMLExporter(
        template_name="lab", template_file="perfstats.html.j2",
        extra_loaders=[DictLoader({"perfstats.html.j2": _HTML_TEMPLATE})],
        exclude_input=not show_code, exclude_input_prompt=not show_code,
        exclude_output_prompt=True,
    )
    html, _ = exporter.from_notebook_node(nb, resources={
        "perfstats_specs": json.dumps(specs).replace("</", "<\\/"),
        "perfstats_vega_js": bundle,
        "perfstats_init_js": _INIT_JS,
    })
    return html


def _write_markdown(nb: Any, out: Path, *, show_code: bool) -> None:
    from nbconvert import MarkdownExporter

    nb = copy.deepcopy(nb)
    for output in _chart_outputs(nb):
        png = _png(output.data[CHART_MIMETYPE])
        output.data = {"image/png": base64.b64encode(png).decode(), "text/plain": "chart"}
        output.metadata = {}
    files_dir = f"{out.stem}_files"
    exporter = MarkdownExporter(exclude_input=not show_code, exclude_input_prompt=True,
                                exclude_output_prompt=True)
    body, resources = exporter.from_notebook_node(nb, resources={"output_files_dir": files_dir})
    for name, data in resources.get("outputs", {}).items():
        target = out.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    out.write_text(body, encoding="utf-8")
