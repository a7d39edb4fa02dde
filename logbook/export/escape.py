r"""Making user text safe on a terminal, in the terminal app, in Markdown and in LaTeX.

Titles, hypotheses, arm names and notes are user text. Entry files refuse control characters,
but entries registered before that check (or written into the database by other means) may hold
them, so every output boundary escapes as well: on a terminal no escape sequence may reach the
terminal (``\x1b]0;…\x07`` sets its title, ``\x1b[2J`` clears it), so every C0/C1 control
character is shown as a visible ``\xNN``; in the terminal app Rich markup is escaped too; in
Markdown user text must not become links, headings, HTML or table breaks; in LaTeX every special
character must come out as itself.
"""

from __future__ import annotations

import re
from typing import Any

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|~])")

# Unicode the statistics prose uses, as LaTeX that pdflatex knows without extra packages.
_TEX_UNICODE = {
    "δ": r"$\delta$", "α": r"$\alpha$", "′": r"$'$", "−": r"$-$", "±": r"$\pm$", "≥": r"$\geq$",
    "≤": r"$\leq$", "→": r"$\to$", "↓": r"$\downarrow$", "↑": r"$\uparrow$", "—": "---", "–": "--",
    "×": r"$\times$", "…": r"\ldots{}", "Δ": r"$\Delta$", "τ": r"$\tau$", "Φ": r"$\Phi$", "√": r"$\surd$",
    "·": r"$\cdot$", "₁": r"$_1$", "’": "'", "“": "``", "”": "''",
}
_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "%": r"\%",
    "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1
_CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def terminal(text: object, *, multiline: bool = False) -> str:
    """Text that cannot drive a terminal: each control character becomes the visible ``\\xNN``
    (tab and newline are kept where ``multiline``). The one neutraliser for every output."""
    pattern = _CONTROL if multiline else _CONTROL_OR_BREAK
    return pattern.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def terminal_data(value: Any) -> Any:
    """:func:`terminal` over every string (and mapping key) in plain data, newlines kept: for
    views that are drawn from many fields, such as the terminal app's screens."""
    if isinstance(value, str):
        return terminal(value, multiline=True)
    if isinstance(value, dict):
        return {terminal_data(k): terminal_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(terminal_data(v) for v in value)
    return value


def markup(text: object, *, multiline: bool = False) -> str:
    """:func:`terminal`, then Rich markup escaped: for widgets that render markup."""
    from rich.markup import escape

    return escape(terminal(text, multiline=multiline))


def json_text(text: str) -> str:
    """JSON output with C1 characters and DEL written as \\u escapes too (JSON escapes only C0)."""
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def one_line(text: str) -> str:
    """Collapse line breaks and runs of whitespace: user text never starts a new block."""
    return " ".join(str(text).split())


def md(text: object) -> str:
    """Markdown-safe inline text: HTML is shown as text, and no character can start a link,
    image, heading, list, emphasis, code span or table cell."""
    text = one_line(terminal(text, multiline=True)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def tex(text: object) -> str:
    """LaTeX-safe text: every special character escaped, known Unicode symbols as math. A line may
    break after an underscore, so long identifiers (arm and metric names) never overflow a line."""
    out = []
    for char in one_line(terminal(text, multiline=True)):
        out.append(_TEX_SPECIAL.get(char) or _TEX_UNICODE.get(char) or char)
        if char == "_":
            out.append(r"\allowbreak{}")
    return "".join(out)


def tex_code(text: object) -> str:
    """LaTeX-safe monospaced text (commands, slugs, hashes) that may break after - and /."""
    out = []
    for char in one_line(str(text)):
        out.append(_TEX_SPECIAL.get(char) or _TEX_UNICODE.get(char) or char)
        if char in "-/_":
            out.append(r"\allowbreak{}")
    return r"\texttt{" + "".join(out) + "}"

