"""Small HTML tables for Jupyter's rich display (`_repr_html_`)."""

from __future__ import annotations

import html


def table_html(title: str, header, rows) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<div><p>{title}</p><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def status_badge(status: str) -> str:
    colour = {"InService": "#1e8449", "Failed": "#c0392b"}.get(status, "#b9770e")
    return f"<span style='color:white;background:{colour};padding:1px 6px;border-radius:3px'>{html.escape(status)}</span>"
