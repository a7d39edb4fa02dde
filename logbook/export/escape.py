"""Making user text safe in Markdown and LaTeX.

Titles, hypotheses, arm names and notes are user text: in Markdown they must not become links,
headings, HTML or table breaks; in LaTeX every special character must come out as itself.
"""

from __future__ import annotations

import re

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


def one_line(text: str) -> str:
    """Collapse line breaks and runs of whitespace: user text never starts a new block."""
    return " ".join(str(text).split())


def md(text: object) -> str:
    """Markdown-safe inline text: HTML is shown as text, and no character can start a link,
    image, heading, list, emphasis, code span or table cell."""
    text = one_line(str(text)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def tex(text: object) -> str:
    """LaTeX-safe text: every special character escaped, known Unicode symbols as math. A line may
    break after an underscore, so long identifiers (arm and metric names) never overflow a line."""
    out = []
    for char in one_line(str(text)):
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

