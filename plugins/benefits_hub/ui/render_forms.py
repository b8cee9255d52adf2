"""The hub's two form pages: the Transaction Assistant and the trigger form (Run Integration, Re-Run).

Plain HTML forms that post back to the page (no script): a refused submit comes back with each reason
next to its field and the values as typed. Every value is escaped (:func:`~benefits_hub.ui.render.esc`).
"""

from __future__ import annotations

from benefits_hub.deductions.corrections import label
from benefits_hub.deductions.resubmit import RESUBMIT_DAG_ID
from benefits_hub.ui import urls
from benefits_hub.ui.assistant import DISMISS, DISMISS_REASON, FIX, AssistantView, RecordForm, input_name
from benefits_hub.ui.render import esc, page
from benefits_hub.ui.trigger import FieldSpec

FORM_STYLE = """
.record { border:1px solid var(--line); border-radius:8px; background:#fff; padding:12px 14px;
  margin:0 0 12px; }
.record h3 { margin:0 0 6px; font-size:15px; }
.record .problem { margin:2px 0; }
.record .problem b { font-weight:600; }
.fix-row { display:flex; flex-wrap:wrap; gap:14px; margin:8px 0 4px; }
.fix-row label, .field label { display:flex; flex-direction:column; gap:3px; font-size:12px;
  color:var(--muted); }
input[type=text], select.field-input, textarea.field-input { font:inherit; padding:5px 8px; min-width:200px;
  border:1px solid #d1d5db; border-radius:6px; background:#fff; color:var(--ink); }
.refused input, .refused select, .refused textarea { border-color:#dc2626; background:#fef2f2; }
.field-problem { color:#b91c1c; font-size:12px; max-width:520px; }
.elsewhere { background:#eff6ff; border:1px solid #bfdbfe; border-radius:6px; padding:6px 10px; margin:6px 0;
  color:#1e3a8a; }
.dismiss { margin-top:8px; font-size:13px; }
.all-corrected { background:#f0fdf4; border:1px solid #bbf7d0; color:#166534; border-radius:8px;
  padding:10px 14px; font-weight:500; }
.form-refused { background:#fef2f2; border:1px solid #fecaca; color:#991b1b; border-radius:8px;
  padding:10px 14px; margin:0 0 12px; }
.field { margin:0 0 14px; }
.field .help { color:var(--muted); font-size:12px; max-width:640px; }
.notice { background:#fffbeb; border:1px solid #fde68a; color:#92400e; border-radius:8px; padding:10px 14px;
  margin:0 0 12px; }
"""


def _back(root: str, dag_id: str, run_id: str, name: str) -> str:
    return (
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a> · '
        f'<a id="back-to-run" href="{esc(root + urls.run_detail_path(dag_id, run_id))}">{esc(name)}</a></p>'
    )


# -- the Transaction Assistant ----------------------------------------------------------------------
def _record_html(record_form: RecordForm) -> str:
    record = record_form.record
    key = record.key
    problems = "".join(
        f'<p class="problem"><b>{esc(p.label)}</b> ({esc(p.value) or "empty"}): {esc(p.reason)}</p>'
        for p in record.problems
    )
    elsewhere = "".join(f'<div class="elsewhere">{esc(text)}</div>' for text in record.elsewhere)
    inputs = []
    for field in record.correctable_fields:
        refused = record_form.problems.get(field)
        css = ' class="refused"' if refused else ""
        note = f'<span class="field-problem" role="alert">{esc(refused)}</span>' if refused else ""
        inputs.append(
            f"<label{css}>{esc(label(field))}"
            f'<input type="text" name="{esc(input_name(FIX, key, field))}" '
            f'value="{esc(record_form.values.get(field, ""))}" data-field="{esc(field)}">{note}</label>'
        )
    if not inputs:
        inputs.append('<span class="muted">Nothing to correct here: it is retried as it is.</span>')
    dismiss_problem = record_form.problems.get(DISMISS)
    checked = " checked" if record_form.dismiss else ""
    dismiss_css = ' class="refused"' if dismiss_problem else ""
    dismiss_note = (
        f' <span class="field-problem" role="alert">{esc(dismiss_problem)}</span>' if dismiss_problem else ""
    )
    return (
        f'<div class="record" data-key="{esc(key)}" data-state="open">'
        f"<h3>Employee {esc(record.person_number)} · deduction code {esc(record_form.deduction_code) or '—'}"
        f' <span class="muted">(PlanSource record {esc(record.coverage_id)})</span></h3>'
        f'{problems}{elsewhere}<div class="fix-row">{"".join(inputs)}</div>'
        f'<div class="dismiss"><label><input type="checkbox" name="{esc(input_name(DISMISS, key))}" '
        f'value="1"{checked}> Dismiss: not needed</label> '
        f'<span{dismiss_css}><input type="text" name="{esc(input_name(DISMISS_REASON, key))}" '
        f'value="{esc(record_form.dismiss_reason)}" placeholder="why, e.g. employee left, not needed" '
        f'aria-label="Reason for dismissing">{dismiss_note}</span></div></div>'
    )


def _settled_html(view: AssistantView, root: str) -> str:
    if not view.settled:
        return ""
    rows = []
    for record_form in view.settled:
        record = record_form.record
        run_link = ""
        if record.settled_by:
            path = urls.run_detail_path(RESUBMIT_DAG_ID, record.settled_by)
            run_link = f'<a href="{esc(root + path)}">{esc(record.settled_by)}</a>'
        what = "Corrected and loaded" if record.state == "fixed" else "Dismissed"
        if record.state == "dismissed":
            what += f" by {esc(record.dismissed_by)}: {esc(record.dismiss_reason)}"
        rows.append(
            f'<tr data-key="{esc(record.key)}" data-state="{esc(record.state)}">'
            f"<td>{esc(record.person_number)}</td><td>{esc(record_form.deduction_code)}</td>"
            f"<td>{what}</td><td>{run_link}</td></tr>"
        )
    return (
        "<h2>Corrected and dismissed</h2>"
        '<table class="runs" id="settled-records"><thead><tr><th>Employee</th><th>Deduction code</th>'
        f"<th>Outcome</th><th>By resubmission</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def resubmissions_html(view: AssistantView, root: str) -> str:
    if not view.resubmissions:
        return ""
    items = "".join(
        f'<li><a class="resubmission" href="{esc(root + urls.run_detail_path(RESUBMIT_DAG_ID, r))}">'
        f"{esc(r)}</a></li>"
        for r in view.resubmissions
    )
    return f'<ul id="resubmissions">{items}</ul>'


def assistant_page(
    view: AssistantView, *, root: str, dag_id: str, run_id: str, run_name: str, refused: int = 0
) -> str:
    action = root + urls.transaction_assistant_path(dag_id, run_id)
    opened = len(view.open)
    parts = [
        _back(root, dag_id, run_id, run_name),
        "<h1>Transaction Assistant</h1>",
        f'<p class="subtitle">Error records of the deductions import <b>{esc(view.root_run_name)}</b> '
        f'<span class="ref">{esc(view.root_run_id)}</span>: {view.total} in all, '
        f'<span id="open-count">{opened}</span> still open.</p>',
    ]
    if view.all_corrected:
        parts.append(
            f'<div class="all-corrected" id="all-corrected">All {view.total} error records corrected '
            "(loaded or dismissed). Nothing is left to resubmit.</div>"
        )
    else:
        if refused:
            parts.append(
                f'<div class="form-refused" role="alert" id="form-refused">{refused} value(s) cannot be '
                "used: "
                "see the reasons next to the fields. Nothing was started.</div>"
            )
        parts.append(
            '<p class="muted">Correct the values below, or dismiss a record that is not needed. Records you '
            "leave as they are are retried unchanged (after a mapping or HCM fix, say). Each value is "
            "checked with the import's own rules before anything starts.</p>"
            f'<form method="post" action="{esc(action)}" id="assistant-form">'
            + "".join(_record_html(r) for r in view.open)
            + '<p><button type="submit" id="resubmit">Resubmit</button></p></form>'
        )
    parts.append(_settled_html(view, root))
    if view.resubmissions:
        parts.append("<h2>Resubmissions</h2>" + resubmissions_html(view, root))
    return page("Transaction Assistant", "".join(parts), root=root, extra_style=FORM_STYLE)


# -- the trigger form -------------------------------------------------------------------------------
def _field_html(spec: FieldSpec) -> str:
    name = esc(spec.name)
    css = "field refused" if spec.problem else "field"
    if spec.kind == "boolean":
        options = "".join(
            f'<option value="{v}"{" selected" if spec.value == v else ""}>{t}</option>'
            for v, t in (("true", "Yes"), ("false", "No"))
        )
        control = f'<select class="field-input" id="param-{name}" name="{name}">{options}</select>'
    elif spec.kind == "object":
        control = (
            f'<textarea class="field-input" id="param-{name}" name="{name}" rows="4">'
            f"{esc(spec.value)}</textarea>"
        )
    else:
        # Plain text, even for numbers: the browser must not clamp or refuse a value before the hub
        # can say what is wrong with it.
        mode = {"integer": ' inputmode="numeric"', "number": ' inputmode="decimal"'}.get(spec.kind, "")
        control = (
            f'<input type="text" class="field-input" id="param-{name}" name="{name}" '
            f'value="{esc(spec.value)}"{mode}>'
        )
    problem = (
        f'<div class="field-problem" role="alert" id="problem-{name}">'
        f"{esc(spec.title)} {esc(spec.problem)}</div>"
        if spec.problem
        else ""
    )
    return (
        f'<div class="{css}" data-param="{name}"><label for="param-{name}">{esc(spec.title)}</label>'
        f'{control}{problem}<div class="help">{esc(spec.description)}</div></div>'
    )


def trigger_page(
    *,
    root: str,
    dag_id: str,
    integration: str,
    fields: list[FieldSpec],
    paused: bool,
    unpause: bool,
    rerun_of: str | None,
    refused: bool,
) -> str:
    action = root + urls.trigger_path(dag_id, rerun_of=rerun_of)
    title = f"Re-Run: {integration}" if rerun_of else f"Run Integration: {integration}"
    parts = [
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a></p>',
        f"<h1>{esc(title)}</h1>",
    ]
    if rerun_of:
        parts.append(
            f'<p class="subtitle">The parameters of run <span class="ref">{esc(rerun_of)}</span>, ready to '
            "run again. Change any of them, then click Run.</p>"
        )
    if refused:
        parts.append(
            '<div class="form-refused" role="alert" id="form-refused">Not started: correct the fields marked '
            "below. No run was created and nothing was changed.</div>"
        )
    fields_html = "".join(_field_html(spec) for spec in fields)
    pause_html = ""
    if paused:
        pause_html = (
            '<div class="notice" id="paused-notice">This integration is <b>paused</b>: a run waits until it '
            'is turned on. <label><input type="checkbox" name="_unpause" value="1"'
            f"{' checked' if unpause else ''}> Turn it on (its schedule runs too from then on)</label></div>"
        )
    parts.append(
        f'<form method="post" action="{esc(action)}" id="trigger-form">{fields_html}{pause_html}'
        '<p><button type="submit" id="run">Run</button></p></form>'
    )
    return page(title, "".join(parts), root=root, extra_style=FORM_STYLE)
