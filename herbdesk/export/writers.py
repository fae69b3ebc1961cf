"""The two formats: a spreadsheet-safe CSV, and a Darwin Core Archive (zip).

The archive follows the Darwin Core text guide: meta.xml (the core's columns and term
URIs), eml.xml (the dataset's metadata with the run's provenance), occurrence.txt
(tab-separated UTF-8, one header line, no enclosing quotes). Tabs and line breaks inside a
value would end a field or a row there, so they are replaced: a label's lines are joined
by " | ", any other value's by a space. The archive keeps every other character as
extracted; only the CSV, meant for spreadsheets, neutralises formula-like cells.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from herbdesk import __version__
from herbdesk.common.fsnames import fs_text
from herbdesk.export.columns import COLUMN_NAMES, COLUMNS, HERBDESK_NS
from herbdesk.extraction.results import spreadsheet_safe

_LINE_BREAK = re.compile(r"[ \t]*(?:\r\n|\r|\n)[ \t]*")
_TAB = re.compile(r"\t")
_BLANK_LINES = re.compile(r"(?:\r\n|\r|\n)\s*(?:\r\n|\r|\n)")
# what XML 1.0 cannot hold at all (C0 controls but tab/LF/CR, lone surrogates, U+FFFE/F)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
LABEL = COLUMN_NAMES.index("verbatimLabel")


def write_csv(path: Path, rows: Iterable[list[str]]) -> int:
    """The rows as CSV (UTF-8, no BOM, as occurrences.csv), each cell spreadsheet-safe."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMN_NAMES)
        for row in rows:
            w.writerow([spreadsheet_safe(fs_text(cell)) for cell in row])
            n += 1
    return n


def archive_cell(value: str, label: bool = False) -> str:
    text = fs_text(value)
    if label:
        text = _BLANK_LINES.sub("\n", text.strip())
        return _TAB.sub(" ", _LINE_BREAK.sub(" | ", text))
    return _TAB.sub(" ", _LINE_BREAK.sub(" ", text))


def write_dwca(path: Path, rows: Iterable[list[str]], eml: dict[str, Any]) -> int:
    """The archive; `eml` is filled with the row count before eml.xml is written."""
    n = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with (
            zf.open("occurrence.txt", "w") as raw,
            io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh,
        ):
            fh.write("\t".join(COLUMN_NAMES) + "\n")
            for row in rows:
                cells = [archive_cell(c, i == LABEL) for i, c in enumerate(row)]
                fh.write("\t".join(cells) + "\n")
                n += 1
        zf.writestr("meta.xml", meta_xml())
        eml["records"] = n
        late = eml.pop("after_rows", None)  # counts known only once the rows are written
        if late is not None:
            eml.update(late())
        zf.writestr("eml.xml", eml_xml(eml))
    return n


def meta_xml() -> bytes:
    ns = "http://rs.tdwg.org/dwc/text/"
    archive = ET.Element("archive", {"xmlns": ns, "metadata": "eml.xml"})
    core = ET.SubElement(
        archive,
        "core",
        {
            "encoding": "UTF-8",
            "fieldsTerminatedBy": "\\t",  # the guide's escapes, written as backslash-t
            "linesTerminatedBy": "\\n",
            "fieldsEnclosedBy": "",
            "ignoreHeaderLines": "1",
            "rowType": "http://rs.tdwg.org/dwc/terms/Occurrence",
        },
    )
    ET.SubElement(ET.SubElement(core, "files"), "location").text = "occurrence.txt"
    ET.SubElement(core, "id", {"index": "0"})  # occurrenceID
    for i, col in enumerate(COLUMNS):
        ET.SubElement(core, "field", {"index": str(i), "term": col.uri})
    ET.indent(archive)
    return ET.tostring(archive, encoding="utf-8", xml_declaration=True)


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", fs_text(str(value)))


def eml_xml(info: dict[str, Any]) -> bytes:
    """EML 2.1.1 metadata: title, dates, methods (how the records were made) and the run's
    provenance, also in machine-readable form under additionalMetadata."""
    eml_ns = "eml://ecoinformatics.org/eml-2.1.1"
    ET.register_namespace("eml", eml_ns)
    ET.register_namespace("herbdesk", HERBDESK_NS)
    now = datetime.now(UTC)
    root = ET.Element(
        f"{{{eml_ns}}}eml",
        {"packageId": str(info.get("package_id") or ""), "system": "herbdesk", "scope": "system"},
    )
    ds = ET.SubElement(root, "dataset")
    run = info.get("run_id") or "unknown run"
    ET.SubElement(ds, "title").text = xml_text(f"Herbarium records extracted by herbdesk: {run}")
    creator = ET.SubElement(ds, "creator")
    # who publishes is for the curator to say: herbdesk records only what made the records
    ET.SubElement(creator, "organizationName").text = "herbdesk (automated extraction)"
    ET.SubElement(ds, "pubDate").text = now.date().isoformat()
    ET.SubElement(ds, "language").text = "en"
    abstract = ET.SubElement(ds, "abstract")
    ET.SubElement(abstract, "para").text = xml_text(
        f"{info.get('records', 0)} occurrence record(s) read from herbarium sheet images "
        f"by {info.get('engine') or 'an unknown engine'}"
        + (f" ({info['model']})" if info.get("model") else "")
        + ". Values are machine-extracted; "
        + (
            f"{info['reviewed']} of the records were checked by a person term by term "
            "(the reviewed column says which)."
            if info.get("reviewed")
            else "none was reviewed by a person."
        )
    )
    contact = ET.SubElement(ds, "contact")
    ET.SubElement(contact, "organizationName").text = "herbdesk (automated extraction)"
    methods = ET.SubElement(ds, "methods")
    for text in info.get("method_steps", []):
        step = ET.SubElement(methods, "methodStep")
        ET.SubElement(ET.SubElement(step, "description"), "para").text = xml_text(text)
    qc = ET.SubElement(methods, "qualityControl")
    ET.SubElement(ET.SubElement(qc, "description"), "para").text = xml_text(
        info.get("quality_text", "")
    )
    extra = ET.SubElement(ET.SubElement(root, "additionalMetadata"), "metadata")
    prov = ET.SubElement(extra, f"{{{HERBDESK_NS}}}provenance")
    for key, value in info.get("provenance", {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item not in (None, ""):  # unknown facts are left out, not written empty
                ET.SubElement(prov, f"{{{HERBDESK_NS}}}{key}").text = xml_text(item)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def exported_by() -> str:
    return f"herbdesk {__version__}"
