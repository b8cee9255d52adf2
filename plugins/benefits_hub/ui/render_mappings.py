"""The Mappings page: every cross-reference table the integrations look codes up in, as they read it.

Read-only on purpose: the tables are the tenant's data, kept with the deployment (``include/xref`` or
``BENEFITS_HUB_XREF_DIR``) and changed by the benefits or HR administrator; a clerk whose error says
"ask your administrator to map it" sees here what is mapped today and who to ask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from benefits_hub.ui import urls
from benefits_hub.ui.render import esc, page

TITLE = "Mappings"


@dataclass(frozen=True)
class MappingTable:
    table: str  # file stem, as error rows name it ("pay_group")
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    problem: str = ""  # why it cannot be read, in the words the integrations use


def _table_html(table: MappingTable) -> str:
    title = table.table.replace("_", " ").capitalize()
    if table.problem:
        return f'<h2 id="{esc(table.table)}">{esc(title)}</h2><p class="reason">{esc(table.problem)}</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in table.rows)
    return (
        f'<h2 id="{esc(table.table)}">{esc(title)} <span class="muted">({len(table.rows)} codes)</span></h2>'
        f'<table class="runs mapping" data-table="{esc(table.table)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def mappings_page(tables: Sequence[MappingTable], *, root: str) -> str:
    body = (
        f'<p><a href="{esc(root + urls.list_path())}">← Activity Monitor</a></p>'
        f"<h1>{TITLE}</h1>"
        '<p class="subtitle">How the integrations translate codes between the HCM and the vendors. A code '
        "missing here makes an error record that names its table; your benefits or HR administrator adds "
        "it (these tables are kept with the hub's deployment), then the Transaction Assistant or the next "
        "run sends the record.</p>" + "".join(_table_html(table) for table in tables)
    )
    return page(TITLE, body, root=root)
