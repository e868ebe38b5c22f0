"""The admin's pages. Each reads and writes through the use cases the API calls, with the
signed-in administrator as the actor and the browser's address as the client."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import Parameter

from healthcare.application.audit import ListAuditEvents
from healthcare.application.auth import GetCurrentUser, Login, SetUserActive
from healthcare.application.doctors import (
    CreateDoctor,
    DeleteDoctor,
    GetDoctor,
    ListDoctors,
    UpdateDoctor,
)
from healthcare.application.mappings import (
    AssignDoctorToPatient,
    ListPatientMappings,
    UnassignDoctor,
)
from healthcare.application.paging import MAX_LIMIT, Page, PageRequest
from healthcare.application.patients import (
    CreatePatient,
    DeletePatient,
    GetPatient,
    ListPatients,
    UpdatePatient,
)
from healthcare.application.ports import Clock, TokenService
from healthcare.application.users import (
    CreateUser,
    GetUser,
    ListUsers,
    SetUserEmail,
    SetUserPassword,
    SetUserStaff,
)
from healthcare.domain.audit import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditQuery,
    ResourceType,
)
from healthcare.domain.entities import Doctor, DoctorData, Gender, Patient, User
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
)
from healthcare.domain.listing import doctor_filter, patient_filter, user_filter
from healthcare.domain.rules import parse_patient
from healthcare.entrypoints.admin.session import COOKIE, AdminSession, SessionCodec
from healthcare.entrypoints.admin.web import (
    PAGE_SIZE,
    CsrfRefused,
    NotSignedIn,
    Visit,
    field_errors,
    form_text,
    optional_text,
    page_number,
    visit_dependencies,
    whole_number,
)
from healthcare.entrypoints.http.origin import request_origin
from healthcare.entrypoints.http.schemas import MAX_ID

Admin = NamedDependency[Visit]
Id = Annotated[int, Parameter(gt=0, le=MAX_ID)]
GENDERS = [g.value for g in Gender]
PATIENT_SORTS = {"name": "Name", "age": "Age", "created_at": "Created"}
DOCTOR_SORTS = {"name": "Name", "specialization": "Specialization"}


def _paging(raw_page: str | None) -> tuple[int, PageRequest]:
    number = page_number(raw_page)
    return number, PageRequest(PAGE_SIZE, (number - 1) * PAGE_SIZE)


def _sort(raw: str | None, allowed: dict[str, str], default: str) -> str:
    return raw if raw and raw.removeprefix("-") in allowed else default


# Signing in and out ----------------------------------------------------------------------


@get("/login", name="admin:login")
async def login_page(*, visit: Admin) -> Response[Any]:
    if visit.session.user_id is not None:
        return visit.redirect("/admin/")
    return visit.page("login.html", username="", error=None)


@post("/login", status_code=200)
async def sign_in(
    *,
    visit: Admin,
    login_user: NamedDependency[Login],
    get_current_user: NamedDependency[GetCurrentUser],
) -> Response[Any]:
    form = await visit.form()
    username = form_text(form, "username").strip()
    try:
        pair = await login_user(
            username, form_text(form, "password"), request_origin(visit.request), staff_only=True
        )
    except (AuthenticationFailed, TooManyAttempts, InvalidInput) as refused:
        return visit.page("login.html", status=401, username=username, error=refused.message)
    user = await get_current_user(visit.tokens.read_access(pair.access))
    visit.session = visit.session.signed_in_as(
        user.id, visit.codec.stamp(user.password_hash), visit.now
    )
    return visit.redirect("/admin/")


@post("/logout", status_code=200)
async def sign_out(*, visit: Admin) -> Response[Any]:
    await visit.form()
    visit.session = AdminSession.anonymous(visit.now)
    return visit.redirect("/admin/login")


@get("/")
async def home(*, admin: Admin) -> Response[Any]:
    return admin.page("index.html")


# Patients --------------------------------------------------------------------------------


async def _owner_id(get_user: GetUser, admin: Visit, login: str | None) -> int | None:
    """The account a form or filter names by username or email (None when left empty)."""
    if not login or not login.strip():
        return None
    try:
        return (await get_user.login(admin.principal, login.strip())).id
    except NotFound as unknown:
        raise InvalidInput.single("owner", "is not a known username or email") from unknown


@get("/patients")
async def patients(
    *,
    admin: Admin,
    list_patients: NamedDependency[ListPatients],
    get_user: NamedDependency[GetUser],
    request: Request[Any, Any, Any],
) -> Response[Any]:
    q = request.query_params
    number, paging = _paging(q.get("page"))
    sort = _sort(q.get("sort"), PATIENT_SORTS, "name")
    owners: dict[int, str] = {}

    async def load() -> Page[Patient]:
        where = patient_filter(search=q.get("q"), gender=q.get("gender") or None, ordering=sort)
        owner = await _owner_id(get_user, admin, q.get("owner"))
        found = await list_patients(
            admin.principal, paging, where, owner_id=owner, every_owner=True
        )
        # Each owner shown is an account read, audited as such.
        for owner_id in sorted({p.created_by for p in found.items}):
            owners[owner_id] = (await get_user(admin.principal, owner_id)).username
        return found

    return await admin.listing(
        "patients.html",
        load,
        sort=sort,
        number=number,
        genders=GENDERS,
        sorts=PATIENT_SORTS,
        owners=owners,
    )


def _patient_from(form: Any) -> Any:
    errors: list[FieldError] = []
    age = whole_number(form_text(form, "age"), "age", errors)
    try:
        data = parse_patient(
            name=form_text(form, "name"),
            age=0 if age is None else age,
            gender=form_text(form, "gender"),
            phone=optional_text(form, "phone"),
            email=optional_text(form, "email"),
            address=optional_text(form, "address"),
            notes=optional_text(form, "notes"),
        )
    except InvalidInput as invalid:
        # A bad age was named already; the others are the rules' own messages.
        named = {e.field for e in errors}
        errors += [e for e in invalid.errors if e.field not in named]
    if errors:
        raise InvalidInput(errors)
    return data


@get("/patients/new")
async def new_patient(*, admin: Admin) -> Response[Any]:
    values = {"owner": admin.user.username if admin.user else ""}
    return admin.page("patient_form.html", patient=None, values=values, errors={}, genders=GENDERS)


@post("/patients/new", status_code=200)
async def create_patient(
    *,
    admin: Admin,
    create_patient: NamedDependency[CreatePatient],
    get_user: NamedDependency[GetUser],
) -> Response[Any]:
    form = await admin.form()
    errors: dict[str, list[str]] = {}
    owner = None
    try:
        owner = await _owner_id(get_user, admin, form_text(form, "owner"))
        if owner is None:
            raise InvalidInput.single("owner", "is required")
    except InvalidInput as unknown:
        errors = field_errors(unknown)
    try:
        data = _patient_from(form)
        if owner is not None:
            patient = await create_patient(admin.principal, data, owner_id=owner)
    except (InvalidInput, Conflict, Forbidden) as refused:
        errors |= field_errors(refused)
    if errors or owner is None:
        return admin.page(
            "patient_form.html",
            status=400,
            patient=None,
            values=dict(form),
            errors=errors,
            genders=GENDERS,
        )
    return admin.redirect(f"/admin/patients/{patient.created_by}/{patient.id}?saved=1")


@dataclass
class PatientPage:
    """A patient's page: the record's form and the patient's doctors (each showing is a
    read of the patient, audited as the API's)."""

    get_patient: GetPatient
    list_patient_mappings: ListPatientMappings
    list_doctors: ListDoctors

    async def show(
        self,
        admin: Visit,
        owner_id: Id,
        patient_id: Id,
        *,
        form: Mapping[str, Any] | None = None,
        errors: Mapping[str, list[str]] | None = None,
        mapping_errors: list[str] | None = None,
        saved: bool = False,
    ) -> Response[Any]:
        principal = admin.principal
        found = await self.get_patient(principal, patient_id, owner_id=owner_id)
        mappings = await self.list_patient_mappings(
            principal, patient_id, PageRequest(MAX_LIMIT, 0), owner_id=owner_id
        )
        doctors = await self.list_doctors(
            principal, PageRequest(MAX_LIMIT, 0), doctor_filter(ordering="name")
        )
        values = (
            dict(form)
            if form is not None
            else {
                "name": found.name,
                "age": str(found.age),
                "gender": found.gender.value,
                **{
                    name: getattr(found, name) or ""
                    for name in ("phone", "email", "address", "notes")
                },
            }
        )
        return admin.page(
            "patient_form.html",
            status=200 if errors is None and mapping_errors is None else 400,
            patient=found,
            values=values,
            errors=errors or {},
            genders=GENDERS,
            mappings=mappings,
            doctors=doctors,
            saved=saved,
            mapping_errors=mapping_errors or [],
        )


def _patient_page(
    get_patient: NamedDependency[GetPatient],
    list_patient_mappings: NamedDependency[ListPatientMappings],
    list_doctors: NamedDependency[ListDoctors],
) -> PatientPage:
    return PatientPage(get_patient, list_patient_mappings, list_doctors)


PATIENT_PATH = "/patients/{owner_id:int}/{patient_id:int}"


@get(PATIENT_PATH)
async def patient(
    *,
    admin: Admin,
    owner_id: Id,
    patient_id: Id,
    patient_page: NamedDependency[PatientPage],
    request: Request[Any, Any, Any],
) -> Response[Any]:
    saved = request.query_params.get("saved") == "1"
    return await patient_page.show(admin, owner_id, patient_id, saved=saved)


@post(PATIENT_PATH, status_code=200)
async def update_patient(
    *,
    admin: Admin,
    owner_id: Id,
    patient_id: Id,
    update_patient: NamedDependency[UpdatePatient],
    patient_page: NamedDependency[PatientPage],
) -> Response[Any]:
    form = await admin.form()
    try:
        await update_patient(admin.principal, patient_id, _patient_from(form), owner_id=owner_id)
    except (InvalidInput, Conflict) as refused:
        errors = field_errors(refused)
        return await patient_page.show(admin, owner_id, patient_id, form=form, errors=errors)
    return admin.redirect(f"/admin/patients/{owner_id}/{patient_id}?saved=1")


@post(PATIENT_PATH + "/delete", status_code=200)
async def delete_patient(
    *, admin: Admin, owner_id: Id, patient_id: Id, delete_patient: NamedDependency[DeletePatient]
) -> Response[Any]:
    await admin.form()
    await delete_patient(admin.principal, patient_id, owner_id=owner_id)
    return admin.redirect("/admin/patients")


# Mappings: a patient's doctors, on the patient's page --------------------------------------


@post(PATIENT_PATH + "/doctors", status_code=200)
async def assign_doctor(
    *,
    admin: Admin,
    owner_id: Id,
    patient_id: Id,
    assign_doctor: NamedDependency[AssignDoctorToPatient],
    patient_page: NamedDependency[PatientPage],
) -> Response[Any]:
    form = await admin.form()
    errors: list[FieldError] = []
    doctor = whole_number(form_text(form, "doctor"), "doctor", errors)
    try:
        if doctor is None:
            raise InvalidInput(errors)
        await assign_doctor(admin.principal, patient_id, doctor, owner_id=owner_id)
    except (InvalidInput, Conflict, NotFound) as refused:
        messages = [m for found in field_errors(refused).values() for m in found]
        return await patient_page.show(admin, owner_id, patient_id, mapping_errors=messages)
    return admin.redirect(f"/admin/patients/{owner_id}/{patient_id}?saved=1")


@post(PATIENT_PATH + "/doctors/{mapping_id:int}/delete", status_code=200)
async def unassign_doctor(
    *,
    admin: Admin,
    owner_id: Id,
    patient_id: Id,
    mapping_id: Id,
    unassign_doctor: NamedDependency[UnassignDoctor],
) -> Response[Any]:
    form = await admin.form()
    await unassign_doctor(admin.principal, mapping_id, owner_id=owner_id)
    if form_text(form, "next") == "mappings":
        return admin.redirect(f"/admin/mappings?patient={owner_id}:{patient_id}")
    return admin.redirect(f"/admin/patients/{owner_id}/{patient_id}?saved=1")


def _patient_choice(raw: str | None) -> tuple[int, int] | None:
    """A patient chosen from the mappings page's list: "owner:patient"."""
    owner, _, patient = (raw or "").partition(":")
    if owner.isdigit() and patient.isdigit():
        return int(owner), int(patient)
    return None


@dataclass
class MappingsPage:
    """Mappings by name: pick a patient (of any owner) and a doctor from lists."""

    list_patients: ListPatients
    list_patient_mappings: ListPatientMappings
    list_doctors: ListDoctors

    async def show(
        self, admin: Visit, chosen: tuple[int, int] | None, *, error: str | None = None
    ) -> Response[Any]:
        principal, everything = admin.principal, PageRequest(MAX_LIMIT, 0)
        patients = await self.list_patients(
            principal, everything, patient_filter(ordering="name"), every_owner=True
        )
        doctors = await self.list_doctors(principal, everything, doctor_filter(ordering="name"))
        mappings = None
        if chosen is not None:
            owner_id, patient_id = chosen
            mappings = await self.list_patient_mappings(
                principal, patient_id, everything, owner_id=owner_id
            )
        return admin.page(
            "mappings.html",
            status=200 if error is None else 400,
            patients=patients,
            doctors=doctors,
            mappings=mappings,
            chosen=None if chosen is None else f"{chosen[0]}:{chosen[1]}",
            error=error,
        )


def _mappings_page(
    list_patients: NamedDependency[ListPatients],
    list_patient_mappings: NamedDependency[ListPatientMappings],
    list_doctors: NamedDependency[ListDoctors],
) -> MappingsPage:
    return MappingsPage(list_patients, list_patient_mappings, list_doctors)


@get("/mappings")
async def mappings(
    *, admin: Admin, mappings_page: NamedDependency[MappingsPage], request: Request[Any, Any, Any]
) -> Response[Any]:
    return await mappings_page.show(admin, _patient_choice(request.query_params.get("patient")))


@post("/mappings", status_code=200)
async def create_mapping(
    *,
    admin: Admin,
    assign_doctor: NamedDependency[AssignDoctorToPatient],
    mappings_page: NamedDependency[MappingsPage],
) -> Response[Any]:
    form = await admin.form()
    chosen = _patient_choice(form_text(form, "patient"))
    errors: list[FieldError] = []
    doctor = whole_number(form_text(form, "doctor"), "doctor", errors)
    try:
        if chosen is None:
            errors.insert(0, FieldError("patient", "is required"))
        if errors or chosen is None or doctor is None:
            raise InvalidInput(errors)
        owner_id, patient_id = chosen
        await assign_doctor(admin.principal, patient_id, doctor, owner_id=owner_id)
    except (InvalidInput, Conflict, NotFound) as refused:
        return await mappings_page.show(admin, chosen, error=refused.message)
    return admin.redirect(f"/admin/mappings?patient={owner_id}:{patient_id}")


# Doctors ---------------------------------------------------------------------------------


@get("/doctors")
async def doctors(
    *, admin: Admin, list_doctors: NamedDependency[ListDoctors], request: Request[Any, Any, Any]
) -> Response[Any]:
    q = request.query_params
    number, paging = _paging(q.get("page"))
    sort = _sort(q.get("sort"), DOCTOR_SORTS, "name")

    async def load() -> Page[Doctor]:
        where = doctor_filter(
            search=q.get("q"), specialization=q.get("specialization"), ordering=sort
        )
        return await list_doctors(admin.principal, paging, where)

    return await admin.listing("doctors.html", load, sort=sort, number=number, sorts=DOCTOR_SORTS)


def _doctor_from(form: Any) -> DoctorData:
    return DoctorData(
        name=form_text(form, "name"),
        specialization=form_text(form, "specialization"),
        email=optional_text(form, "email"),
        phone=optional_text(form, "phone"),
    )


@get("/doctors/new")
async def new_doctor(*, admin: Admin) -> Response[Any]:
    return admin.page("doctor_form.html", doctor=None, values={}, errors={})


@post("/doctors/new", status_code=200)
async def create_doctor(
    *, admin: Admin, create_doctor: NamedDependency[CreateDoctor]
) -> Response[Any]:
    form = await admin.form()
    try:
        doctor = await create_doctor(admin.principal, _doctor_from(form))
    except (InvalidInput, Conflict) as refused:
        return admin.page(
            "doctor_form.html",
            status=400,
            doctor=None,
            values=dict(form),
            errors=field_errors(refused),
        )
    return admin.redirect(f"/admin/doctors/{doctor.id}?saved=1")


@get("/doctors/{doctor_id:int}")
async def doctor(
    *,
    admin: Admin,
    doctor_id: Id,
    get_doctor: NamedDependency[GetDoctor],
    request: Request[Any, Any, Any],
) -> Response[Any]:
    found = await get_doctor(admin.principal, doctor_id)
    values = {
        "name": found.name,
        "specialization": found.specialization,
        "email": found.email or "",
        "phone": found.phone or "",
    }
    return admin.page(
        "doctor_form.html",
        doctor=found,
        values=values,
        errors={},
        saved=request.query_params.get("saved") == "1",
    )


@post("/doctors/{doctor_id:int}", status_code=200)
async def update_doctor(
    *,
    admin: Admin,
    doctor_id: Id,
    get_doctor: NamedDependency[GetDoctor],
    update_doctor: NamedDependency[UpdateDoctor],
) -> Response[Any]:
    form = await admin.form()
    try:
        await update_doctor(admin.principal, doctor_id, _doctor_from(form))
    except (InvalidInput, Conflict, Forbidden) as refused:
        found = await get_doctor(admin.principal, doctor_id)
        return admin.page(
            "doctor_form.html",
            status=400,
            doctor=found,
            values=dict(form),
            errors=field_errors(refused),
        )
    return admin.redirect(f"/admin/doctors/{doctor_id}?saved=1")


@post("/doctors/{doctor_id:int}/delete", status_code=200)
async def delete_doctor(
    *, admin: Admin, doctor_id: Id, delete_doctor: NamedDependency[DeleteDoctor]
) -> Response[Any]:
    await admin.form()
    await delete_doctor(admin.principal, doctor_id)
    return admin.redirect("/admin/doctors")


# Users -----------------------------------------------------------------------------------

_FLAGS = {"yes": True, "no": False}


@get("/users")
async def users(
    *, admin: Admin, list_users: NamedDependency[ListUsers], request: Request[Any, Any, Any]
) -> Response[Any]:
    q = request.query_params
    number, paging = _paging(q.get("page"))

    async def load() -> Page[User]:
        where = user_filter(
            search=q.get("q"),
            is_staff=_FLAGS.get(q.get("staff") or ""),
            is_active=_FLAGS.get(q.get("active") or ""),
        )
        return await list_users(admin.principal, paging, where)

    return await admin.listing("users.html", load, number=number)


@get("/users/new")
async def new_user(*, admin: Admin) -> Response[Any]:
    return admin.page("user_form.html", account=None, values={}, errors={})


def _checked(form: Mapping[str, Any], name: str) -> bool:
    return form_text(form, name) == "on"


@post("/users/new", status_code=200)
async def create_user(*, admin: Admin, create_user: NamedDependency[CreateUser]) -> Response[Any]:
    form = await admin.form()
    try:
        account = await create_user(
            admin.principal,
            form_text(form, "username").strip(),
            form_text(form, "email").strip(),
            form_text(form, "password"),
            is_staff=_checked(form, "is_staff"),
            is_superuser=_checked(form, "is_superuser"),
        )
    except (InvalidInput, Conflict, Forbidden) as refused:
        values = {k: v for k, v in form.items() if k != "password"}  # never echoed back
        return admin.page(
            "user_form.html", status=400, account=None, values=values, errors=field_errors(refused)
        )
    return admin.redirect(f"/admin/users/{account.id}?saved=1")


async def _user_page(
    admin: Visit,
    account: User,
    *,
    errors: Mapping[str, list[str]] | None = None,
    form: Mapping[str, Any] | None = None,
    saved: bool = False,
) -> Response[Any]:
    values = (
        dict(form)
        if form is not None
        else {
            "email": account.email,
            "is_staff": "on" if account.is_staff else "",
            "is_active": "on" if account.is_active else "",
        }
    )
    values.pop("password", None)
    return admin.page(
        "user_form.html",
        status=200 if errors is None else 400,
        account=account,
        values=values,
        errors=errors or {},
        saved=saved,
    )


@get("/users/{user_id:int}")
async def user(
    *,
    admin: Admin,
    user_id: Id,
    get_user: NamedDependency[GetUser],
    request: Request[Any, Any, Any],
) -> Response[Any]:
    account = await get_user(admin.principal, user_id)
    return await _user_page(admin, account, saved=request.query_params.get("saved") == "1")


@dataclass
class AccountChanges:
    """The use cases an account's form may call, each only for what changed."""

    get_user: GetUser
    set_user_email: SetUserEmail
    set_user_staff: SetUserStaff
    set_user_active: SetUserActive


def _account_changes(
    get_user: NamedDependency[GetUser],
    set_user_email: NamedDependency[SetUserEmail],
    set_user_staff: NamedDependency[SetUserStaff],
    set_user_active: NamedDependency[SetUserActive],
) -> AccountChanges:
    return AccountChanges(get_user, set_user_email, set_user_staff, set_user_active)


@post("/users/{user_id:int}", status_code=200)
async def update_user(
    *, admin: Admin, user_id: Id, account_changes: NamedDependency[AccountChanges]
) -> Response[Any]:
    form = await admin.form()
    use = account_changes
    principal = admin.principal
    account = await use.get_user(principal, user_id)
    email = form_text(form, "email").strip()
    try:
        if email != account.email:
            await use.set_user_email(principal, user_id, email)
        if _checked(form, "is_staff") != account.is_staff:
            await use.set_user_staff(principal, user_id, _checked(form, "is_staff"))
        if _checked(form, "is_active") != account.is_active:
            await use.set_user_active(principal, user_id, _checked(form, "is_active"))
    except (InvalidInput, Conflict, Forbidden) as refused:
        account = await use.get_user(principal, user_id)
        return await _user_page(admin, account, errors=field_errors(refused), form=form)
    return admin.redirect(f"/admin/users/{user_id}?saved=1")


@post("/users/{user_id:int}/password", status_code=200)
async def set_password(
    *,
    admin: Admin,
    user_id: Id,
    get_user: NamedDependency[GetUser],
    set_user_password: NamedDependency[SetUserPassword],
) -> Response[Any]:
    form = await admin.form()
    try:
        await set_user_password(admin.principal, user_id, form_text(form, "password"))
    except (InvalidInput, Forbidden) as refused:
        account = await get_user(admin.principal, user_id)
        return await _user_page(admin, account, errors=field_errors(refused))
    return admin.redirect(f"/admin/users/{user_id}?saved=1")


# Audit trail (read only) -------------------------------------------------------------------


def _moment(raw: str | None, name: str, errors: list[FieldError]) -> datetime | None:
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        errors.append(FieldError(name, "must be a date and time, such as 2026-01-31T08:00"))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _choice(raw: str | None, kind: Any, name: str, errors: list[FieldError]) -> Any:
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        errors.append(FieldError(name, "is not one of the choices"))
        return None


@get("/audit")
async def audit(
    *,
    admin: Admin,
    list_audit_events: NamedDependency[ListAuditEvents],
    request: Request[Any, Any, Any],
) -> Response[Any]:
    q = request.query_params
    number, paging = _paging(q.get("page"))
    errors: list[FieldError] = []
    query = AuditQuery(
        user_id=whole_number(q.get("user"), "user", errors, required=False),
        resource_type=_choice(q.get("resource"), ResourceType, "resource", errors),
        resource_id=whole_number(q.get("resource_id"), "resource_id", errors, required=False),
        action=_choice(q.get("action"), AuditAction, "action", errors),
        outcome=_choice(q.get("outcome"), AuditOutcome, "outcome", errors),
        since=_moment(q.get("since"), "since", errors),
        until=_moment(q.get("until"), "until", errors),
    )
    choices: dict[str, Any] = {
        "actions": [a.value for a in AuditAction],
        "outcomes": [o.value for o in AuditOutcome],
        "resources": [r.value for r in ResourceType],
    }

    async def load() -> Page[AuditEvent]:
        if errors:
            raise InvalidInput(errors)
        return await list_audit_events(admin.principal, query, paging)

    return await admin.listing("audit.html", load, number=number, **choices)


# Errors ----------------------------------------------------------------------------------


_STATE = "admin"  # key in the app's state: what the error pages need to answer in kind


def remember_admin(app_state: Any, codec: SessionCodec, tokens: TokenService, clock: Clock) -> None:
    app_state[_STATE] = (codec, tokens, clock)


def _visit_of(request: Request[Any, Any, Any]) -> Visit:
    """The visit of a request whose handler did not run (its error is being answered)."""
    codec, tokens, clock = request.app.state[_STATE]
    now = clock.now()
    session = codec.load(request.cookies.get(COOKIE), now) or AdminSession.anonymous(now)
    return Visit(request, codec, tokens, session, now)


def _not_signed_in(request: Request[Any, Any, Any], _: NotSignedIn) -> Response[Any]:
    visit = _visit_of(request)
    visit.session = AdminSession.anonymous(visit.now)
    return visit.redirect("/admin/login")


def _csrf_refused(request: Request[Any, Any, Any], _: CsrfRefused) -> Response[Any]:
    message = (
        "This form has expired or did not come from this site. "
        "Go back, reload the page and try again."
    )
    return _visit_of(request).page("error.html", status=403, title="Form refused", message=message)


def _domain_error(request: Request[Any, Any, Any], error: DomainError) -> Response[Any]:
    status = 404 if isinstance(error, NotFound) else 403 if isinstance(error, Forbidden) else 400
    visit = _visit_of(request)
    title = {404: "Not found", 403: "Not allowed", 400: "Refused"}[status]
    return visit.page("error.html", status=status, title=title, message=error.message)


def _not_found(
    request: Request[Any, Any, Any], _: NotFoundException | ValidationException
) -> Response[Any]:
    return _visit_of(request).page(
        "error.html", status=404, title="Not found", message="There is no such page in the admin."
    )


def admin_router(codec: SessionCodec, tokens: TokenService, clock: Clock) -> Router:
    return Router(
        "/admin",
        route_handlers=[
            login_page,
            sign_in,
            sign_out,
            home,
            patients,
            new_patient,
            create_patient,
            patient,
            update_patient,
            delete_patient,
            assign_doctor,
            unassign_doctor,
            doctors,
            new_doctor,
            create_doctor,
            doctor,
            update_doctor,
            delete_doctor,
            mappings,
            create_mapping,
            users,
            new_user,
            create_user,
            user,
            update_user,
            set_password,
            audit,
        ],
        dependencies={
            **visit_dependencies(codec, tokens, clock),
            "patient_page": Provide(_patient_page, sync_to_thread=False),
            "account_changes": Provide(_account_changes, sync_to_thread=False),
            "mappings_page": Provide(_mappings_page, sync_to_thread=False),
        },
        exception_handlers={
            NotSignedIn: _not_signed_in,
            CsrfRefused: _csrf_refused,
            DomainError: _domain_error,
            NotFoundException: _not_found,
            ValidationException: _not_found,  # an id out of range in the path
        },
        include_in_schema=False,
    )
