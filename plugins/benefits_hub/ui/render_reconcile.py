"""The discrepancy page of a Hub Reconciliation run: filter, select, Repair."""

from __future__ import annotations

from collections.abc import Sequence

from benefits_hub.ui import urls
from benefits_hub.ui.detail import RunDetail
from benefits_hub.ui.reconcile import Night, field_title, kind_title, repairable, values_of
from benefits_hub.ui.render import esc, page, status_badge

COLUMNS = ("Employee or plan", "Field", "Values", "What to do")


def discrepancies_page(
    detail: RunDetail,
    rows: Sequence[dict[str, str]],
    *,
    root: str,
    total: int,
    kinds: Sequence[str],
    kind: str,
    query: str,
    shown_limit: int,
    may_repair: bool,
    refused: str = "",
    nights: Sequence[Night] = (),
) -> str:
    """Each discrepancy the run found, filterable by kind and employee; repairable ones can be chosen
    (or all of those shown) and repaired by one run of the integration that owns the direction."""
    run = detail.row
    here = root + urls.discrepancies_path(detail.dag_id, detail.run_id)
    options = "".join(
        f'<option value="{esc(k)}"{" selected" if k == kind else ""}>{esc(kind_title(k))}</option>'
        for k in kinds
    )
    filters = (
        f'<form class="filters" method="get" action="{esc(here)}">'
        '<label>Kind<select name="kind" id="kind"><option value="">All kinds</option>'
        f"{options}</select></label>"
        f'<label>Employee, plan or field<input type="text" name="q" id="q" value="{esc(query)}"></label>'
        '<button type="submit" id="filter">Filter</button></form>'
    )

    def line(row: dict[str, str]) -> str:
        pick = ""
        if may_repair and repairable(row):
            number = esc(row["record_key"])
            pick = f'<input type="checkbox" name="employee" value="{number}" aria-label="Repair {number}">'
        # Each value says which system holds it: "HCM: Springfield", "iJoin: (800) 555-0001".
        values = "<br>".join(
            f'<span class="side">{esc(side)}:</span> {esc(value)}' for side, value in values_of(row)
        )
        cells = "".join(
            f"<td>{cell}</td>"
            for cell in (esc(row.get("record_key", "")), esc(field_title(row.get("field", ""))), values,
                         esc(row.get("what_to_do", "")))
        )  # fmt: skip
        kind_of = row.get("kind", "")
        return (
            f'<tr data-kind="{esc(kind_of)}"><td>{pick}</td><td>{esc(kind_title(kind_of))}</td>{cells}</tr>'
        )

    body = "".join(line(r) for r in rows[:shown_limit]) or (
        f'<tr><td colspan="{len(COLUMNS) + 2}">No discrepancy matches.</td></tr>'
    )
    head = "<th></th><th>Kind</th>" + "".join(f"<th>{esc(title)}</th>" for title in COLUMNS)
    fixable = sum(1 for r in rows if repairable(r))
    buttons = ""
    if may_repair and fixable:
        buttons = (
            f'<input type="hidden" name="kind" value="{esc(kind)}">'
            f'<input type="hidden" name="q" value="{esc(query)}">'
            '<button type="submit" id="repair-selected">Repair selected</button> '
            '<button type="submit" name="all" value="1" id="repair-all">'
            f"Repair all {fixable:,} repairable shown</button>"
            '<p class="muted">Repair runs the integration that owns each chosen discrepancy for exactly '
            "those employees or plans (the HCM Demographic Export; for payroll deductions, the Deductions "
            "Import with Delta off; for iJoin, the Plan Sync or the Participant Sync of those plans); it "
            "never waits on a paused schedule. The next reconciliation shows them gone, or still here "
            "with the reason the repair run gave.</p>"
        )
    more = f" (the first {shown_limit:,} shown; the file has them all)" if len(rows) > shown_limit else ""
    parts = [
        f'<p><a href="{esc(root + urls.run_detail_path(detail.dag_id, detail.run_id))}">'
        f"← {esc(run.run_name)}</a></p>",
        f"<h1>Discrepancies {status_badge(run.status)}</h1>",
        f'<div class="reason" id="repair-refused">{esc(refused)}</div>' if refused else "",
        history_html(nights, root, detail.dag_id),
        filters,
        f'<p class="subtitle" id="discrepancy-count">{len(rows):,} of {total:,} discrepancies{more}; '
        f"{fixable:,} can be repaired.</p>",
        f'<form method="post" action="{esc(root + urls.repair_path(detail.dag_id, detail.run_id))}" '
        'id="repair-form">'
        f'<div class="scroll"><table class="runs" id="discrepancies"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{buttons}</form>",
    ]
    return page(f"Discrepancies — {run.run_name}", "".join(parts), root=root)


def history_html(nights: Sequence[Night], root: str, dag_id: str, width: int = 420, height: int = 90) -> str:
    """The last nights' discrepancy counts as a small bar chart (inline SVG, no script), each bar a
    link to its run."""
    if not nights:
        return ""
    top = max(max(n.discrepancies for n in nights), 1)
    step = min(width / len(nights), 32.0)  # a few nights stay bars, not one block
    bars = []
    for index, night in enumerate(nights):
        tall = (height - 20) * night.discrepancies / top
        x, y = index * step + 2, height - 14 - tall
        label = f"{night.ended:%Y-%m-%d}: {night.discrepancies:,} discrepancies"
        link = root + urls.run_detail_path(dag_id, night.run_id)
        bars.append(
            f'<a href="{esc(link)}"><rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 4, 2):.1f}" '
            f'height="{max(tall, 1):.1f}" fill="#1f6feb"><title>{esc(label)}</title></rect></a>'
            f'<text x="{x:.1f}" y="{height - 2}" font-size="9" fill="#57606a">{night.ended:%m-%d}</text>'
        )
    return (
        '<figure class="history" id="history"><figcaption>Discrepancies, last nights</figcaption>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="Discrepancies per night">'
        f"{''.join(bars)}</svg></figure>"
    )
