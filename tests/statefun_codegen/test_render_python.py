"""Formatting choices of the Python renderer that no golden shows."""

from __future__ import annotations

from statefun_codegen.render_python import LINE_LENGTH, doc_body


def test_a_long_manifest_doc_wraps_and_keeps_its_own_lines() -> None:
    doc = (
        "Aggregates a device's readings: " + "min, max and mean over a window, " * 5 + "end.\n"
        "Short line kept.\n"
        "  - an indented item that is long enough to need wrapping, " + "more words " * 6
    )
    lines = doc_body(doc).split("\n")
    assert all(len(line) <= LINE_LENGTH for line in lines)
    assert "Short line kept." in lines
    wrapped_item = lines[lines.index("Short line kept.") + 1 :]
    indent = wrapped_item[0][: len(wrapped_item[0]) - len(wrapped_item[0].lstrip())]
    assert len(wrapped_item) == 2 and indent and wrapped_item[1].startswith(indent + "w")
    assert " ".join(doc.split()) == " ".join(doc_body(doc).split())  # no word lost
