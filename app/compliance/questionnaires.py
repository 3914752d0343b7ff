"""Questionnaires that produce evidence (no HTTP here): forms as data, responses, and the completed document.

The forms are YAML files in ``<risk_catalog_dir>/questionnaires/`` (the FRIA of AI Act Art. 27, the DPIA
screening of GDPR Art. 35), checked at start like the frameworks: every problem is a line naming the file and
key path. A response is a draft while answers are added (each answer checked against its question); completing
it renders the answers as Markdown (``document_templates/questionnaire_response.md.j2``), stores the document
as evidence of the system (hashed, content-addressed) and links it to each ``evidence_for`` requirement the
system has. An outcome rule in the file (``required_when_any``, ``required_when_at_least`` of ``criteria``)
is computed from yes/no answers, never written as code.
"""

from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr
from sqlmodel import Session, col, select

from app.audit import service as audit
from app.classification import service as classifications
from app.classification.catalog import CatalogError, _display, _duplicates, _Entry, data_files
from app.compliance import service as requirements
from app.compliance.evidence import evidence_read, get_evidence, store_evidence
from app.compliance.frameworks import Frameworks, get_frameworks
from app.compliance.models import (
    QuestionnaireResponse,
    QuestionnaireResponseRead,
    QuestionnaireStatus,
    QuestionnaireSummary,
    RequirementUpdate,
)
from app.db import utcnow
from app.documents.render import render_text
from app.errors import Conflict, NotFound, Unprocessable
from app.http import check_revision
from app.settings import get_settings
from app.systems.models import AISystem
from app.systems.service import next_id

__all__ = [
    "QUESTIONNAIRES_DIR",
    "Questionnaire",
    "complete_response",
    "get_questionnaires",
    "load_questionnaires",
    "response_read",
    "start_response",
    "update_response",
]

QUESTIONNAIRES_DIR = "questionnaires"  # below the catalogue directory (AIREG_RISK_CATALOG_DIR)
TEMPLATE = "questionnaire_response.md.j2"
QUESTIONNAIRE_ID_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_QUESTIONNAIRE_ID = re.compile(QUESTIONNAIRE_ID_PATTERN)
_ITEM_ID = r"^[a-z][a-z0-9_]{0,63}$"
_REF = r"^[a-z][a-z0-9_]{0,31}:[A-Za-z0-9][A-Za-z0-9 ._()-]{0,63}$"
MAX_TEXT = 10_000  # characters of one text answer
Kind = Literal["text", "yes_no", "choice", "multi_choice", "date"]
_WITH_CHOICES = ("choice", "multi_choice")

# ------------------------------------------------------------------------------------------- the files


class Choice(_Entry):
    """One answer a choice question offers: ``value`` is stored, ``label`` printed."""

    value: str = Field(pattern=_ITEM_ID)
    label: str = Field(min_length=1, max_length=300)


class Question(_Entry):
    """One question; ``id`` is the key of its answer."""

    id: str = Field(pattern=_ITEM_ID)
    text: str = Field(min_length=1, max_length=1000)
    kind: Kind
    required: bool = False
    help: str | None = Field(default=None, max_length=1000)
    choices: tuple[Choice, ...] = ()

    def label(self, value: str) -> str:
        """The label of a choice value."""
        return next((c.label for c in self.choices if c.value == value), value)


class Section(_Entry):
    """A heading questions are asked under, with the provision it follows (``cites``)."""

    id: str = Field(pattern=_ITEM_ID)
    title: str = Field(min_length=1, max_length=200)
    cites: str | None = Field(default=None, max_length=200)
    questions: tuple[Question, ...] = Field(min_length=1)


class AppliesWhen(_Entry):
    """When the form is a duty for a system: one of ``requirements_any`` is among its derived requirements,
    or (``personal_data: true``) it processes personal data."""

    requirements_any: tuple[str, ...] = ()
    personal_data: bool = False


class OutcomeRule(_Entry):
    """``name`` is true when any ``required_when_any`` question, or at least ``required_when_at_least`` of
    the ``criteria`` questions, is answered yes."""

    name: str = Field(pattern=_ITEM_ID)
    required_when_any: tuple[str, ...] = ()
    required_when_at_least: int = Field(default=1, ge=1)
    criteria: tuple[str, ...] = ()


class Questionnaire(_Entry):
    """One ``questionnaires/<id>.yaml`` file, validated."""

    id: str = Field(pattern=QUESTIONNAIRE_ID_PATTERN)
    title: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=64)
    legal_basis: str = Field(min_length=1, max_length=500)
    description: str | None = Field(default=None, max_length=2000)
    evidence_for: tuple[str, ...] = Field(min_length=1)
    applies_when: AppliesWhen | None = None
    sections: tuple[Section, ...] = Field(min_length=1)
    outcome: OutcomeRule | None = None

    _question: dict[str, Question] = PrivateAttr(default_factory=dict)

    def model_post_init(self, __context: Any) -> None:
        """Index the questions by id."""
        self._question = {q.id: q for s in self.sections for q in s.questions}

    @property
    def question_by_id(self) -> dict[str, Question]:
        """Questions by id, in form order."""
        return self._question


def _check(name: str, fid: str, q: Questionnaire, frameworks: Frameworks) -> list[str]:
    """Cross-reference checks of one file: its id, unique ids, choices, requirements and the outcome rule."""
    p: list[str] = []
    if q.id != fid:
        p.append(f"{name}: id: {q.id!r} differs from the file name; the file name is the questionnaire id")
    p.extend(_duplicates(name, "sections", (s.id for s in q.sections), {}))
    seen: dict[str, str] = {}
    for i, section in enumerate(q.sections):
        p.extend(_duplicates(name, f"sections[{i}].questions", (x.id for x in section.questions), seen))
        for j, question in enumerate(section.questions):
            at = f"{name}: sections[{i}].questions[{j}]"
            if question.kind in _WITH_CHOICES and not question.choices:
                p.append(f"{at}.choices: a {question.kind} question needs choices")
            if question.kind not in _WITH_CHOICES and question.choices:
                p.append(f"{at}.choices: only choice and multi_choice questions have choices")
            p.extend(
                f"{at}.choices[{k}].value: duplicate value {value!r}"
                for k, value in enumerate(c.value for c in question.choices)
                if [c.value for c in question.choices].index(value) != k
            )
    refs = [("evidence_for", r) for r in q.evidence_for]
    if q.applies_when is not None:
        refs += [("applies_when.requirements_any", r) for r in q.applies_when.requirements_any]
    counts: dict[str, int] = {}
    for key, ref in refs:
        n = counts[key] = counts.get(key, -1) + 1
        if not re.match(_REF, ref) or frameworks.control(ref) is None:
            p.append(f"{name}: {key}[{n}]: {ref!r} is no control of a framework (framework:control)")
    if q.outcome is not None:
        rule = q.outcome
        for key in ("required_when_any", "criteria"):
            for n, qid in enumerate(getattr(rule, key)):
                asked = q.question_by_id.get(qid)
                if asked is None:
                    p.append(f"{name}: outcome.{key}[{n}]: no question {qid!r} in the form")
                elif asked.kind != "yes_no":
                    p.append(f"{name}: outcome.{key}[{n}]: {qid!r} is a {asked.kind} question, not yes_no")
        if not rule.required_when_any and not rule.criteria:
            p.append(f"{name}: outcome: name questions in required_when_any or criteria")
        if rule.criteria and rule.required_when_at_least > len(rule.criteria):
            p.append(
                f"{name}: outcome.required_when_at_least: {rule.required_when_at_least} is more than the "
                f"{len(rule.criteria)} criteria"
            )
    return p


def load_questionnaires(directory: Path, frameworks: Frameworks) -> dict[str, Questionnaire]:
    """Read and check every questionnaire file in ``directory``; raise CatalogError listing each problem."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogError([f"{_display(directory)}: missing directory of questionnaire files"])
    problems: list[str] = []
    found: list[Questionnaire] = []
    for fid, name, questionnaire in data_files(
        directory, "questionnaire", QUESTIONNAIRE_ID_PATTERN, Questionnaire, problems
    ):
        if questionnaire is None:
            continue
        mine = _check(name, fid, questionnaire, frameworks)
        problems.extend(mine)
        if not mine:
            found.append(questionnaire)
    if problems:
        raise CatalogError(problems)
    return {q.id: q for q in found}


_loaded: tuple[Frameworks, Path, dict[str, Questionnaire]] | None = None


def get_questionnaires() -> dict[str, Questionnaire]:
    """The questionnaires of the catalogue in force; reloaded when the catalogue (or its frameworks) is."""
    global _loaded
    frameworks = get_frameworks()
    directory = Path(get_settings().risk_catalog_dir) / QUESTIONNAIRES_DIR
    cached = _loaded
    if cached is not None and cached[0] is frameworks and cached[1] == directory:
        return cached[2]
    questionnaires = load_questionnaires(directory, frameworks)
    _loaded = (frameworks, directory, questionnaires)
    return questionnaires


def list_questionnaires() -> list[QuestionnaireSummary]:
    """Every questionnaire, with its number of questions."""
    return [
        QuestionnaireSummary(
            id=q.id,
            title=q.title,
            version=q.version,
            legal_basis=q.legal_basis,
            evidence_for=list(q.evidence_for),
            questions=len(q.question_by_id),
        )
        for q in get_questionnaires().values()
    ]


def require_questionnaire(questionnaire_id: str) -> Questionnaire:
    """The questionnaire, or 404 naming the ones there are."""
    loaded = get_questionnaires()
    questionnaire = loaded.get(questionnaire_id)
    if questionnaire is None:
        raise NotFound(
            f"questionnaire {questionnaire_id[:40]!r} does not exist (questionnaires: {', '.join(loaded)})"
        )
    return questionnaire


# ------------------------------------------------------------------------------------------- answers


def _answer_problem(question: Question, value: object) -> str | None:
    """Why ``value`` is no answer to ``question``, or None when it is one."""
    kind = question.kind
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            return "a text question takes a non-empty string"
        if len(value) > MAX_TEXT:
            return f"longer than {MAX_TEXT} characters"
    elif kind == "yes_no":
        if not isinstance(value, bool):
            return "a yes_no question takes true or false"
    elif kind == "date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return "a date question takes a date written YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"{value!r} is no calendar date"
    else:
        values = [c.value for c in question.choices]
        picked = [value] if kind == "choice" else value
        if kind == "choice" and not isinstance(value, str):
            return f"a choice question takes one of: {', '.join(values)}"
        if not isinstance(picked, list) or not all(isinstance(v, str) for v in picked):
            return f"a multi_choice question takes a list of: {', '.join(values)}"
        unknown = [v for v in picked if v not in values]
        if unknown:
            return f"unknown choice {unknown[0][:64]!r}; choices: {', '.join(values)}"
        if len(set(picked)) != len(picked):
            return "a choice is named twice"
    return None


def merge_answers(
    questionnaire: Questionnaire, answers: dict[str, Any], changes: dict[str, object]
) -> dict[str, Any]:
    """``answers`` with ``changes`` applied (``None`` removes an answer); 422 naming every bad answer.

    Each answer is checked against its question: an id the form does not ask, a value of the wrong kind and a
    choice the question does not offer are refused, each error naming ``body.answers.<question id>``.
    """
    questions = questionnaire.question_by_id
    errors: list[dict[str, Any]] = []
    merged = dict(answers)
    for qid, value in changes.items():
        loc: list[str | int] = ["body", "answers", qid[:64]]
        question = questions.get(qid)
        if question is None:
            errors.append(
                {"loc": loc, "msg": f"unknown question; {questionnaire.id} asks: {', '.join(questions)}"}
            )
            continue
        if value is None:
            merged.pop(qid, None)
            continue
        problem = _answer_problem(question, value)
        if problem is not None:
            errors.append({"loc": loc, "msg": problem})
            continue
        merged[qid] = value
    if errors:
        raise Unprocessable(
            "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors), errors=errors
        )
    return {qid: merged[qid] for qid in questions if qid in merged}  # form order


def missing_answers(questionnaire: Questionnaire, answers: dict[str, Any]) -> list[str]:
    """The required questions without an answer, in form order."""
    return [qid for qid, q in questionnaire.question_by_id.items() if q.required and qid not in answers]


def compute_outcome(questionnaire: Questionnaire, answers: dict[str, Any]) -> dict[str, Any] | None:
    """The form's outcome rule applied to the answers (None: the form has no rule)."""
    rule = questionnaire.outcome
    if rule is None:
        return None
    named = [qid for qid in rule.required_when_any if answers.get(qid) is True]
    met = [qid for qid in rule.criteria if answers.get(qid) is True]
    return {
        rule.name: bool(named) or (bool(rule.criteria) and len(met) >= rule.required_when_at_least),
        "criteria_met": met,
        "required_when_at_least": rule.required_when_at_least,
        "named_cases_met": named,
    }


# ------------------------------------------------------------------------------------------- responses


def get_response(
    session: Session, system: AISystem, response_id: str, *, for_update: bool = False
) -> QuestionnaireResponse:
    """The system's response, or 404 (a response of another system is not found here)."""
    stmt = select(QuestionnaireResponse).where(
        QuestionnaireResponse.id == response_id, QuestionnaireResponse.system_id == system.id
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = session.exec(stmt).first()
    if row is None:
        raise NotFound(f"questionnaire response {response_id[:40]!r} does not exist for system {system.id}")
    return row


def list_responses(
    session: Session, system: AISystem, questionnaire_id: str | None = None
) -> list[QuestionnaireResponse]:
    """The system's responses, newest first (of one questionnaire if named)."""
    stmt = select(QuestionnaireResponse).where(QuestionnaireResponse.system_id == system.id)
    if questionnaire_id is not None:
        stmt = stmt.where(QuestionnaireResponse.questionnaire == questionnaire_id)
    return list(session.exec(stmt.order_by(col(QuestionnaireResponse.id).desc())).all())


def start_response(
    session: Session,
    system: AISystem,
    questionnaire: Questionnaire,
    answers: dict[str, object],
    *,
    actor: str,
) -> QuestionnaireResponse:
    """A new draft with the answers given so far; audited."""
    now = utcnow()
    row = QuestionnaireResponse(
        id=next_id(session, "questionnaire_response", "QNR"),
        system_id=system.id,
        questionnaire=questionnaire.id,
        questionnaire_version=questionnaire.version,
        answers=merge_answers(questionnaire, {}, answers),
        created_by=actor,
        created_at=now,
        updated_by=actor,
        updated_at=now,
    )
    row.outcome = compute_outcome(questionnaire, row.answers)
    session.add(row)
    session.flush()
    _audit(session, system, "questionnaire.start", actor, None, row)
    return row


def _require_draft(row: QuestionnaireResponse) -> None:
    if row.status != QuestionnaireStatus.draft:
        raise Conflict(
            f"{row.id} was completed by {row.completed_by} and is read-only (its document is evidence "
            f"{row.evidence_id}); start a new response to record changes",
            code="RESPONSE_COMPLETED",
        )


def update_response(
    session: Session,
    system: AISystem,
    row: QuestionnaireResponse,
    changes: dict[str, object],
    *,
    revision: int | None,
    if_match: int | None,
    actor: str,
) -> QuestionnaireResponse:
    """Merge answers into a draft (409 once completed or on a stale revision); audited with before and after.

    A draft made with an earlier version of the form moves to the version in force.
    """
    _require_draft(row)
    check_revision(row.revision, if_match, revision)
    questionnaire = require_questionnaire(row.questionnaire)
    answers = merge_answers(questionnaire, _still_asked(questionnaire, row.answers), changes)
    if answers == row.answers and questionnaire.version == row.questionnaire_version:
        return row
    before = _audit_view(row)
    row.answers = answers
    row.questionnaire_version = questionnaire.version
    row.outcome = compute_outcome(questionnaire, answers)
    _touch(row, actor)
    session.add(row)
    session.flush()
    _audit(session, system, "questionnaire.update", actor, before, row)
    return row


def _still_asked(questionnaire: Questionnaire, answers: dict[str, Any]) -> dict[str, Any]:
    """Answers to questions the form in force still asks (a new version may drop one)."""
    return {qid: v for qid, v in answers.items() if qid in questionnaire.question_by_id}


def _touch(row: QuestionnaireResponse, actor: str) -> None:
    row.revision += 1
    row.updated_by = actor
    row.updated_at = utcnow()


def complete_response(
    session: Session,
    system: AISystem,
    row: QuestionnaireResponse,
    *,
    valid_until: date | None,
    revision: int | None,
    if_match: int | None,
    actor: str,
) -> QuestionnaireResponse:
    """Complete a draft: render its answers, store the document as evidence, link it; audited.

    The rules, in the order a person would ask: the response is still a draft (409); it names the current
    revision, if it names one (409 if stale); every required question is answered (422 listing the missing
    ones). The document is linked to each ``evidence_for`` requirement the system has (the existing links
    kept); the ones it does not have are skipped (named in the audit event and in the API view).
    """
    _require_draft(row)
    if if_match is not None or revision is not None:
        check_revision(row.revision, if_match, revision)
    questionnaire = require_questionnaire(row.questionnaire)
    answers = _still_asked(questionnaire, row.answers)
    missing = missing_answers(questionnaire, answers)
    if missing:
        raise Unprocessable(
            f"{row.id} cannot be completed: required questions unanswered: {', '.join(missing)}",
            errors=[{"loc": ["body", "answers", qid], "msg": "required: answer it first"} for qid in missing],
            missing=missing,
        )
    before = _audit_view(row)
    now = utcnow()
    row.answers = answers
    row.questionnaire_version = questionnaire.version
    row.outcome = compute_outcome(questionnaire, answers)
    row.status = QuestionnaireStatus.completed
    row.completed_by, row.completed_at = actor, now
    document = render_document(questionnaire, system, row)
    evidence = store_evidence(
        session,
        system_id=system.id,
        site=system.site,
        title=f"{questionnaire.title} {questionnaire.version}: {system.id} ({row.id})"[:200],
        filename=f"{questionnaire.id.replace('_', '-')}-{system.id}-{now.date().isoformat()}.md",
        declared_type="text/markdown",
        stream=io.BytesIO(document),
        valid_until=valid_until,
        actor=actor,
    )
    row.evidence_id = evidence.id
    _touch(row, actor)
    session.add(row)
    session.flush()
    skipped = _link(session, system, questionnaire, evidence.id, actor)
    _audit(session, system, "questionnaire.complete", actor, before, row, skipped=skipped)
    return row


def _link(
    session: Session, system: AISystem, questionnaire: Questionnaire, evidence_id: str, actor: str
) -> list[str]:
    """Link the evidence to each ``evidence_for`` requirement the system has; the refs it does not have."""
    rows = [r for r in requirements.system_requirements(session, system) if r.derived]
    skipped: list[str] = []
    for ref in questionnaire.evidence_for:
        row = next((r for r in rows if f"{r.framework}:{r.control}" == ref), None)
        if row is None:
            skipped.append(ref)
            continue
        links = requirements.evidence_links(session, system.id, utcnow().date())
        requirements.update_requirement(
            session,
            row,
            RequirementUpdate(evidence=[*links.direct(ref), evidence_id], revision=row.revision),
            if_match=None,
            actor=actor,
            entity=("system", system.id, system.site),
        )
    return skipped


# ------------------------------------------------------------------------------------------- reading


def _printed(question: Question, value: Any) -> Any:
    """An answer as the document prints it (None: not answered)."""
    if value is None:
        return None
    if question.kind == "yes_no":
        return value  # printed by the template's yes_no filter
    if question.kind == "choice":
        return question.label(value)
    if question.kind == "multi_choice":
        return "; ".join(question.label(v) for v in value) if value else "None of these"
    return str(value)


def render_document(questionnaire: Questionnaire, system: AISystem, row: QuestionnaireResponse) -> bytes:
    """The completed response as a Markdown document (user text escaped by the template environment)."""
    sections = [
        {
            "id": s.id,
            "title": s.title,
            "cites": s.cites,
            "questions": [
                {"id": q.id, "text": q.text, "kind": q.kind, "answer": _printed(q, row.answers.get(q.id))}
                for q in s.questions
            ],
        }
        for s in questionnaire.sections
    ]
    rule = questionnaire.outcome
    context = {
        "questionnaire": questionnaire,
        "system": system,
        "response": row,
        "sections": sections,
        "outcome": row.outcome,
        "outcome_name": rule.name if rule is not None else None,
        "completed_at": row.completed_at.isoformat(timespec="seconds") if row.completed_at else None,
    }
    return render_text(TEMPLATE, context).encode("utf-8")


def applies(questionnaire: Questionnaire, system: AISystem, derived: set[str]) -> bool | None:
    """Whether the form is a duty for the system (its ``applies_when`` rule); None when it has no rule."""
    rule = questionnaire.applies_when
    if rule is None:
        return None
    return any(ref in derived for ref in rule.requirements_any) or (
        rule.personal_data and system.personal_data
    )


def derived_refs(session: Session, system: AISystem) -> set[str]:
    """The ``framework:control`` ids the system's current classification derives (nothing is written)."""
    classification = classifications.current_classification(session, system.id)
    return {
        f"{d.framework}:{d.control}" for d in requirements.derive_for_system(classification, get_frameworks())
    }


def response_read(
    session: Session, system: AISystem, row: QuestionnaireResponse, derived: set[str] | None = None
) -> QuestionnaireResponseRead:
    """The API view: whether the form applies, what is missing, and where its evidence is linked."""
    if derived is None:
        derived = derived_refs(session, system)
    questionnaire = get_questionnaires().get(row.questionnaire)
    evidence_for = list(questionnaire.evidence_for) if questionnaire is not None else []
    linked: list[str] = []
    if row.evidence_id is not None:
        linked = evidence_read(session, get_evidence(session, row.evidence_id)).requirements
    return QuestionnaireResponseRead(
        id=row.id,
        system_id=row.system_id,
        questionnaire=row.questionnaire,
        questionnaire_version=row.questionnaire_version,
        title=questionnaire.title if questionnaire is not None else row.questionnaire,
        status=row.status,
        applies=applies(questionnaire, system, derived) if questionnaire is not None else None,
        answers=row.answers,
        missing=missing_answers(questionnaire, row.answers) if questionnaire is not None else [],
        outcome=row.outcome,
        evidence_for=evidence_for,
        evidence_id=row.evidence_id,
        linked=linked,
        skipped=[ref for ref in evidence_for if ref not in derived],
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        completed_by=row.completed_by,
        completed_at=row.completed_at,
        revision=row.revision,
    )


def _audit_view(row: QuestionnaireResponse) -> dict[str, Any]:
    return {
        "response": row.id,
        "questionnaire": row.questionnaire,
        "version": row.questionnaire_version,
        "status": str(row.status),
        "answers": dict(row.answers),
        "outcome": row.outcome,
        "evidence": row.evidence_id,
        "revision": row.revision,
    }


def _audit(
    session: Session,
    system: AISystem,
    action: str,
    actor: str,
    before: dict[str, Any] | None,
    row: QuestionnaireResponse,
    **extra: Any,
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type="system",
        entity_id=system.id,
        site=system.site,
        before=before,
        after={**_audit_view(row), **extra},
    )
