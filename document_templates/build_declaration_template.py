"""Build the shipped Word template of the EU declaration of conformity (``declaration_of_conformity.docx``).

Same rules as ``build_templates.py`` (whose ``Builder`` it uses): the .docx is an ordinary Word document with
docxtpl tags, free to restyle; this script never overwrites it unless ``--force`` is given, and its output is
byte-for-byte reproducible. Each Annex V item is printed from ``items`` (``risk_catalog/annex5.yaml``), with
the registry's value or a placeholder naming the item and what to supply.

Run: ``.venv/bin/python document_templates/build_declaration_template.py [--force]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_templates import AS_OF, FOOTER, Builder  # noqa: E402

NAME = "declaration_of_conformity.docx"


def declaration_of_conformity() -> Builder:
    """The layout: title, what the declaration is drawn up under, then every Annex V item in order."""
    b = Builder("EU declaration of conformity (AI Act Art. 47, Annex V)")
    b.heading("EU declaration of conformity", 0)
    b.para(
        "{{ document.legal_basis }}, Article 47 and Annex V · {{ system.id }}"
        "{% if version %} · version {{ version.version }}{% endif %} · " + AS_OF,
        small=True,
    )
    b.para("{{ classification.basis | join_cites }}", label="Classification basis:", small=True)
    b.tag("{%p for item in items %}")
    b.heading("{{ item.number }}. {{ item.title }}", 2)
    b.tag("{%p for line in item.lines %}")
    b.para("{{ line }}")
    b.tag("{%p endfor %}")
    b.tag("{%p endfor %}")
    b.para(
        "Items in square brackets are not recorded in the registry: supply them before signing.",
        small=True,
    )
    b.footer(FOOTER)
    return b


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="overwrite the template if it exists")
    parser.add_argument("--out", type=Path, default=HERE, help="directory to write to")
    args = parser.parse_args(argv)
    path = args.out / NAME
    if path.exists() and not args.force:
        print(f"kept {path} (exists; --force overwrites)")
        return 0
    declaration_of_conformity().save(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
