"""Compliance frameworks as data: one YAML file per framework in ``<risk_catalog_dir>/frameworks/``.

The file name is the framework id (``iso42001.yaml`` -> ``iso42001``); a new framework is a new file, checked
at start with the catalogue's own loader helpers, so every problem is a line naming the file and key path.

One definition of every fact. A file may be *backed by a catalogue part* (``catalog: ai_act`` or
``catalog: nist_ai_rmf``): then every entry of that part is a control of the framework, in citation order,
and the control's title, the roles it binds, its date and its group are read from the catalogue. The
framework file only annotates those controls (``organisation_wide``, ``maps_to``, and the keys the catalogue
does not hold); repeating a key the catalogue holds is an error, as is annotating an id it does not have.
A file without ``catalog`` defines its controls itself, each with a title.

The crosswalk: ``maps_to: ["framework:control", ...]`` on a control links it to controls of *other*
frameworks, meaning evidence for one counts for the other. Each link is declared once, in either file (the
loader adds the other direction, so a new framework links itself to the shipped ones without editing
them); the same link declared twice, in one file or two, is an error, as is a target that does not exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from app.classification.catalog import (
    Catalog,
    CatalogError,
    GPAIDuty,
    ObligationDef,
    Practice,
    TransparencyDuty,
    _display,
    _duplicates,
    _Entry,
    data_files,
    get_catalog,
)
from app.identity.models import Role
from app.settings import get_settings

__all__ = [
    "FRAMEWORKS_DIR",
    "OWNER_ROLES",
    "Control",
    "Framework",
    "Frameworks",
    "get_frameworks",
    "load_frameworks",
    "parse_adopted",
]

FRAMEWORKS_DIR = "frameworks"  # below the catalogue directory (AIREG_RISK_CATALOG_DIR)
FRAMEWORK_ID_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
# No ":" (it separates framework and control in "fw:id") and no "/" (ids travel in URL paths).
CONTROL_ID_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9 ._()-]{0,62}[A-Za-z0-9)])?$"
_FRAMEWORK_ID = re.compile(FRAMEWORK_ID_PATTERN)
# The AI Act classes a framework's per-system controls may apply to (``applies_to_classes``), and the
# default when a file does not say: controls kept per system are for high-risk systems.
SystemClass = Literal["prohibited", "high_risk", "limited_risk", "minimal_risk", "out_of_scope"]
DEFAULT_APPLIES_TO_CLASSES: tuple[str, ...] = ("high_risk",)
DEFAULT_OWNER_ROLE = "compliance_officer"

# ------------------------------------------------------------------------------------ the files as written


class GroupDef(_Entry):
    """A heading controls are filed under (``A.6``, ``GOVERN 1``)."""

    id: str = Field(pattern=CONTROL_ID_PATTERN)
    title: str = Field(min_length=1)


class ControlDef(_Entry):
    """A control as written in a framework file; in a catalogue-backed file, an annotation of one entry."""

    id: str = Field(pattern=CONTROL_ID_PATTERN)
    title: str | None = Field(default=None, min_length=1)
    group: str | None = None
    applies_from: date | None = None
    binds: list[str] | None = Field(default=None, min_length=1)
    organisation_wide: bool = False
    maps_to: list[str] = Field(default_factory=list)
    note: str | None = None


class FrameworkFile(_Entry):
    """One ``frameworks/<id>.yaml`` file."""

    title: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=64)
    catalog: Literal["ai_act", "nist_ai_rmf"] | None = None
    source: str | None = None
    note: str | None = None
    # Requirements (app/compliance/service.py): whether an open requirement of this framework binds (holds a
    # release) once its date is reached; which AI Act classes of a system get its per-system controls (the
    # AI Act's own duties follow the classification instead); the role that owns its requirements.
    binding: bool = False
    applies_to_classes: list[SystemClass] | None = None
    owner_role: str = Field(default=DEFAULT_OWNER_ROLE, pattern=r"^[a-z_]{1,32}$")
    groups: list[GroupDef] = Field(default_factory=list)
    controls: list[ControlDef] = Field(default_factory=list)


# ------------------------------------------------------------------------------------ the loaded frameworks


class Group(_Entry):
    """A heading of a framework."""

    id: str
    title: str


class Control(_Entry):
    """A control (duty, clause, subcategory) of a framework, with the catalogue's facts joined in.

    ``applies_from``: the first date the control binds anyone (for an AI Act obligation, the earliest date
    any obligation set gives it; a system's own date follows its classification); ``None`` when the
    framework sets no date (a voluntary standard binds from adoption). ``maps_to``: both directions of the
    crosswalk, as ``framework:control``.
    """

    id: str
    title: str
    group: str | None = None
    organisation_wide: bool = False
    applies_from: date | None = None
    binds: tuple[str, ...] = ()
    maps_to: tuple[str, ...] = ()
    note: str | None = None


class Framework(_Entry):
    """One validated framework."""

    id: str
    title: str
    version: str
    file: str
    catalog: str | None = None
    source: str | None = None
    note: str | None = None
    binding: bool = False
    applies_to_classes: tuple[str, ...] = DEFAULT_APPLIES_TO_CLASSES
    owner_role: str = DEFAULT_OWNER_ROLE
    groups: tuple[Group, ...] = ()
    controls: tuple[Control, ...]

    _control: dict[str, Control] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Index the controls by id."""
        self._control = {c.id: c for c in self.controls}

    @property
    def control_by_id(self) -> dict[str, Control]:
        """Controls by id, in framework order."""
        return self._control


class Frameworks(_Entry):
    """Every framework in the directory, and the ids the organisation adopts (AIREG_ADOPTED_FRAMEWORKS)."""

    directory: Path
    frameworks: tuple[Framework, ...]
    adopted: tuple[str, ...]

    _framework: dict[str, Framework] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Index the frameworks by id."""
        self._framework = {f.id: f for f in self.frameworks}

    @property
    def by_id(self) -> dict[str, Framework]:
        """Frameworks by id, in id order."""
        return self._framework

    def control(self, ref: str) -> Control | None:
        """The control named ``framework:control``, or None."""
        framework_id, _, control_id = ref.partition(":")
        framework = self._framework.get(framework_id)
        return framework.control_by_id.get(control_id) if framework is not None else None


# --------------------------------------------------------------------------------- facts from the catalogue


@dataclass(frozen=True)
class _Fact:
    """What a catalogue entry says about a control; ``None`` = the catalogue does not hold it."""

    title: str
    where: str
    binds: tuple[str, ...] | None = None
    applies_from: date | None = None
    group: str | None = None


@dataclass(frozen=True)
class _Part:
    """The controls a catalogue part defines, and the framework-level facts it holds."""

    label: str
    facts: dict[str, _Fact]
    version: str | None
    groups: tuple[Group, ...]


def _citation_key(identifier: str) -> tuple[tuple[int, int | str], ...]:
    """Natural order of ids: ``art5.1.ba`` < ``art5.1.c`` < ``art9`` < ``art50.1``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[^\d\s.]+", identifier))


def _ai_act_part(catalog: Catalog) -> _Part:
    """AI Act duties: Art. 5(1) prohibitions, obligations, Art. 50 duties and Chapter V model duties."""
    ai = catalog.ai_act
    first: dict[str, date] = {}
    for s in ai.obligation_sets:
        for oid in s.obligations:
            if oid not in first or s.applies_from < first[oid]:
                first[oid] = s.applies_from
    every_role = tuple(ai.roles)

    def binds(entry: Any) -> tuple[str, ...] | None:
        # A practice without ``binds`` bans every role; an entry type without the field holds no roles.
        if "binds" not in type(entry).model_fields:
            return None
        return tuple(entry.binds) if entry.binds is not None else every_role

    facts: dict[str, _Fact] = {}
    tables: tuple[tuple[str, Sequence[Practice | ObligationDef | TransparencyDuty | GPAIDuty]], ...] = (
        ("prohibited_practices", ai.prohibited_practices),
        ("obligations", ai.obligations),
        ("transparency_duties", ai.transparency_duties),
        ("gpai_duties", ai.gpai_duties),
    )
    for key, entries in tables:
        for i, e in enumerate(entries):
            when = getattr(e, "applies_from", None) or first.get(e.id)
            facts[e.id] = _Fact(e.title, f"ai_act {key}[{i}]", binds(e), when)
    return _Part(
        label="the catalogue's AI Act duties (prohibitions, obligations, transparency and GPAI duties)",
        facts=dict(sorted(facts.items(), key=lambda kv: _citation_key(kv[0]))),
        version=catalog.legal_basis_version or catalog.catalog_version,
        groups=(),
    )


def _nist_part(catalog: Catalog) -> _Part:
    """NIST AI RMF subcategories, filed under their categories."""
    nist = catalog.nist
    facts = {
        s.id: _Fact(s.title, f"nist_ai_rmf subcategories[{i}]", group=s.category)
        for i, s in enumerate(nist.subcategories)
    }
    return _Part(
        label="the catalogue's NIST AI RMF subcategories",
        facts=facts,
        version=None,
        groups=tuple(Group(id=c.id, title=c.title) for c in nist.categories),
    )


_PARTS = {"ai_act": _ai_act_part, "nist_ai_rmf": _nist_part}
OWNER_ROLES = tuple(r.value for r in Role if r.value not in ("admin", "mlops"))


# ------------------------------------------------------------------------------------------------ loading


@dataclass
class _Draft:
    """A framework read from its file, before the crosswalk is resolved."""

    id: str
    name: str
    spec: FrameworkFile
    version: str
    groups: tuple[Group, ...]
    controls: list[Control]
    declared: dict[str, tuple[int, list[str]]]  # control id -> (index in the file, maps_to as written)


def _resolve(fid: str, name: str, spec: FrameworkFile, catalog: Catalog) -> tuple[_Draft | None, list[str]]:
    """Join a file with its catalogue part (if any) and check ids, groups, roles and repeated facts."""
    p: list[str] = []
    part = _PARTS[spec.catalog](catalog) if spec.catalog else None
    p.extend(_duplicates(name, "groups", (g.id for g in spec.groups), {}))
    p.extend(_duplicates(name, "controls", (c.id for c in spec.controls), {}))

    version = spec.version
    if part is not None and part.version is not None:
        if spec.version is not None:
            p.append(f"{name}: version: held by the catalogue ({part.version!r}); do not repeat it here")
        version = part.version
    elif version is None:
        p.append(f"{name}: version: missing required key")

    if spec.catalog == "ai_act" and spec.applies_to_classes is not None:
        p.append(
            f"{name}: applies_to_classes: the AI Act duties of a system follow its classification; "
            "do not set classes here"
        )
    if spec.owner_role not in OWNER_ROLES:
        p.append(f"{name}: owner_role: unknown role {spec.owner_role!r} (roles: {', '.join(OWNER_ROLES)})")

    groups = tuple(Group(id=g.id, title=g.title) for g in spec.groups)
    if part is not None and part.groups:
        if spec.groups:
            p.append(f"{name}: groups: held by the catalogue ({spec.catalog}); do not repeat them here")
        groups = part.groups
    group_ids = {g.id for g in groups}
    roles = set(catalog.ai_act.roles)

    written = {c.id: (i, c) for i, c in enumerate(spec.controls)}
    if part is not None:
        for cid, (n, _) in written.items():
            if cid not in part.facts:
                p.append(f"{name}: controls[{n}].id: {cid!r} is not one of {part.label}")
        order = [*part.facts]
    else:
        order = [*written]

    controls: list[Control] = []
    declared: dict[str, tuple[int, list[str]]] = {}
    for cid in order:
        i, c = written.get(cid, (None, ControlDef(id=cid)))
        fact = part.facts.get(cid) if part is not None else None
        at = f"{name}: controls[{i}]"
        values: dict[str, Any] = {}
        for key in ("title", "binds", "applies_from", "group"):
            mine = getattr(c, key)
            theirs = getattr(fact, key) if fact is not None else None
            if mine is not None and theirs is not None and fact is not None:
                p.append(f"{at}.{key}: held by the catalogue ({fact.where}); do not repeat it here")
            values[key] = theirs if theirs is not None else mine
        if values["title"] is None:
            p.append(f"{at}.title: missing required key")
            continue
        if c.group is not None and c.group not in group_ids:
            p.append(f"{at}.group: unknown group {c.group!r} (not in groups)")
        p.extend(
            f"{at}.binds[{j}]: unknown role {r!r} (roles: {', '.join(catalog.ai_act.roles)})"
            for j, r in enumerate(c.binds or ())
            if r not in roles
        )
        controls.append(
            Control(
                id=cid,
                title=values["title"],
                group=values["group"],
                organisation_wide=c.organisation_wide,
                applies_from=values["applies_from"],
                binds=tuple(values["binds"] or ()),
                note=c.note,
            )
        )
        if i is not None:
            declared[cid] = (i, c.maps_to)
    if not controls and not p:
        p.append(f"{name}: controls: a framework needs at least one control")
    if p or version is None:
        return None, p
    return _Draft(fid, name, spec, version, groups, controls, declared), p


def _crosswalk(
    drafts: dict[str, _Draft], broken: set[str]
) -> tuple[dict[tuple[str, str], set[tuple[str, str]]], list[str]]:
    """Check every declared link and make the crosswalk symmetric (links into a broken file: not checked)."""
    p: list[str] = []
    links: dict[tuple[str, str], set[tuple[str, str]]] = {}
    seen: dict[frozenset[tuple[str, str]], str] = {}
    known = {fid: {c.id for c in d.controls} for fid, d in drafts.items()}
    for fid, draft in drafts.items():
        for cid, (i, targets) in draft.declared.items():
            for j, target in enumerate(targets):
                at = f"{draft.name}: controls[{i}].maps_to[{j}]"
                tfid, colon, tcid = target.partition(":")
                if not colon or not tfid or not tcid:
                    p.append(f"{at}: {target!r} is not 'framework:control'")
                elif tfid in broken:
                    continue  # that file's own problems are reported
                elif tfid == fid:
                    p.append(f"{at}: {target!r} is in the same framework; maps_to links different frameworks")
                elif tfid not in drafts:
                    p.append(f"{at}: unknown framework {tfid!r} (no {FRAMEWORKS_DIR}/{tfid}.yaml)")
                elif tcid not in known[tfid]:
                    p.append(f"{at}: no control {tcid!r} in framework {tfid} ({drafts[tfid].name})")
                else:
                    pair = frozenset({(fid, cid), (tfid, tcid)})
                    if pair in seen:
                        p.append(
                            f"{at}: the link to {target!r} is already declared at {seen[pair]}; "
                            "declare each link once (the loader adds the other direction)"
                        )
                        continue
                    seen[pair] = f"{draft.name} controls[{i}].maps_to[{j}]"
                    links.setdefault((fid, cid), set()).add((tfid, tcid))
                    links.setdefault((tfid, tcid), set()).add((fid, cid))
    return links, p


def load_frameworks(directory: Path, catalog: Catalog, adopted: Iterable[str] = ()) -> Frameworks:
    """Read and validate every framework file in ``directory``; raise CatalogError listing every problem."""
    directory = Path(directory)
    dir_name = _display(directory)
    if not directory.is_dir():
        raise CatalogError([f"{dir_name}: missing directory of framework files"])
    problems: list[str] = []
    drafts: dict[str, _Draft] = {}
    broken: set[str] = set()
    for fid, name, spec in data_files(directory, "framework", FRAMEWORK_ID_PATTERN, FrameworkFile, problems):
        broken.add(fid)
        if spec is None:
            continue
        draft, found = _resolve(fid, name, spec, catalog)
        problems.extend(found)
        if draft is not None:
            drafts[fid] = draft
            broken.discard(fid)
    if not drafts and not problems:
        problems.append(f"{dir_name}: no framework files (*.yaml)")
    links, found = _crosswalk(drafts, broken)
    problems.extend(found)
    adopted = tuple(adopted)
    problems.extend(_check_adopted(adopted, drafts, broken, dir_name))
    if problems:
        raise CatalogError(problems)

    rank = {fid: n for n, fid in enumerate(drafts)}
    position = {(fid, c.id): n for fid, d in drafts.items() for n, c in enumerate(d.controls)}
    frameworks = []
    for fid, d in drafts.items():
        controls = []
        for c in d.controls:
            targets = sorted(links.get((fid, c.id), ()), key=lambda t: (rank[t[0]], position[t]))
            controls.append(c.model_copy(update={"maps_to": tuple(f"{t[0]}:{t[1]}" for t in targets)}))
        frameworks.append(
            Framework(
                id=fid,
                title=d.spec.title,
                version=d.version,
                file=d.name,
                catalog=d.spec.catalog,
                source=d.spec.source,
                note=d.spec.note,
                binding=d.spec.binding,
                applies_to_classes=tuple(
                    d.spec.applies_to_classes
                    if d.spec.applies_to_classes is not None
                    else DEFAULT_APPLIES_TO_CLASSES
                ),
                owner_role=d.spec.owner_role,
                groups=d.groups,
                controls=tuple(controls),
            )
        )
    # A binding framework (the law: ``binding: true``) applies whether or not the organisation lists it.
    adopted += tuple(f.id for f in frameworks if f.binding and f.id not in adopted)
    return Frameworks(directory=directory, frameworks=tuple(frameworks), adopted=adopted)


def parse_adopted(setting: str) -> tuple[str, ...]:
    """``"ai_act, iso42001"`` -> ``("ai_act", "iso42001")`` (the form of ``AIREG_ADOPTED_FRAMEWORKS``)."""
    return tuple(part.strip() for part in setting.split(",") if part.strip())


def _check_adopted(
    adopted: tuple[str, ...], drafts: dict[str, _Draft], broken: set[str], dir_name: str
) -> list[str]:
    """Every adopted framework is a framework file, named once."""
    p = [
        f"AIREG_ADOPTED_FRAMEWORKS: {fid!r} is named twice"
        for fid in sorted(set(adopted))
        if adopted.count(fid) > 1
    ]
    for fid in dict.fromkeys(adopted):
        if fid not in drafts and fid not in broken:
            have = ", ".join(drafts) or "none"
            p.append(
                f"AIREG_ADOPTED_FRAMEWORKS: unknown framework {fid!r} (frameworks in {dir_name}: {have})"
            )
    return p


_loaded: tuple[Catalog, Path, str, Frameworks] | None = None


def get_frameworks() -> Frameworks:
    """The frameworks of the catalogue in force, with the adopted ones; reloaded when the catalogue is.

    Called for every requirement shown, so the check that the cached set is still in force compares the
    settings' own values (no path is built on a hit)."""
    global _loaded
    catalog = get_catalog()
    settings = get_settings()
    cached = _loaded
    if (
        cached is not None
        and cached[0] is catalog
        and cached[1] == settings.risk_catalog_dir
        and cached[2] == settings.adopted_frameworks
    ):
        return cached[3]
    directory = Path(settings.risk_catalog_dir) / FRAMEWORKS_DIR
    frameworks = load_frameworks(directory, catalog, parse_adopted(settings.adopted_frameworks))
    _loaded = (catalog, settings.risk_catalog_dir, settings.adopted_frameworks, frameworks)
    return frameworks
