"""Request bodies read as Django REST Framework reads them.

JSON, ``application/x-www-form-urlencoded`` and ``multipart/form-data`` are accepted on every
route that takes a body, with the same rules; any other declared type is a 415. Read-only
fields a client echoes back (``id``, ``created_at``...) are ignored, never stored; unknown
fields are refused, so a typo never loses data silently; and every bad field of a body is
named in one response.

The usual JSON body is decoded straight into its struct in one pass; the field-by-field
reading below runs only for forms and for bodies that pass need it (a read-only field, or
an error to report).
"""

from __future__ import annotations

import io
import re
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, TypeAlias, TypeVar
from urllib.parse import parse_qsl

import msgspec
import multipart  # type: ignore[import-untyped]  # the form parser Litestar itself uses
from litestar.dto import AbstractDTO, DTOFieldDefinition
from litestar.exceptions import ClientException
from litestar.params import Body
from litestar.typing import FieldDefinition

from healthcare.domain.errors import FieldError, InvalidInput

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MERGE_PATCH = "application/merge-patch+json"  # RFC 7396: read as JSON, like every +json
BODY_MEDIA_TYPES = (JSON, FORM, MULTIPART)
MAX_FORM_FIELDS = 100


T = TypeVar("T")

# A handler's body (Litestar's reserved ``data``). Litestar's own markers name one media type;
# this one takes them all: RequestBodyDTO reads whichever the request declares.
BodyOf: TypeAlias = Annotated[T, Body()]


class RequestBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A request body. Fields not declared are refused, except the read-only ones named in
    ``read_only``: those are what a client got in a response and may send back. ``document``:
    OpenAPI Schema attributes for the body as a whole, for rules no field states alone.
    Frozen: a body is a value, and a PATCH without one shares a default (schemas.py)."""

    read_only: ClassVar[frozenset[str]] = frozenset()
    document: ClassVar[dict[str, Any]] = {}


# Stands for a multipart part that is a file: no field of ours takes one.
_FILE = object()


class UnsupportedMediaType(ClientException):
    status_code = 415


@dataclass(frozen=True, slots=True)
class _Field:
    type: Any
    required: bool
    integer: bool  # a form's text is read as a whole number for it


class _Model:
    """What reading one struct needs, worked out once per struct."""

    def __init__(self, struct: type[RequestBody]) -> None:
        self.struct = struct
        self.decoder = msgspec.json.Decoder(struct)
        info = msgspec.inspect.type_info(struct)
        assert isinstance(info, msgspec.inspect.StructType)
        annotations = {field.name: field.type for field in msgspec.structs.fields(struct)}
        self.fields = {
            field.name: _Field(annotations[field.name], field.required, _takes_integer(field.type))
            for field in info.fields
        }


_MODELS: dict[type[RequestBody], _Model] = {}


def _model(struct: type[RequestBody]) -> _Model:
    model = _MODELS.get(struct)
    if model is None:
        model = _MODELS[struct] = _Model(struct)
    return model


def decode_body(struct: type[RequestBody], content_type: str, body: bytes) -> RequestBody:
    """Read ``body`` as ``struct``; raise InvalidInput naming every bad field, or a 415."""
    if content_type == JSON:  # what nearly every client sends: nothing to parse
        media_type, options = JSON, {}
    else:
        media_type, options = multipart.parse_options_header(content_type)
        media_type = media_type.lower()
    model = _model(struct)
    if not media_type or media_type == JSON or media_type.endswith("+json"):
        # No Content-Type at all is read as JSON, as before: only a declared type is refused.
        try:
            decoded: RequestBody = model.decoder.decode(body)
            return decoded
        except msgspec.ValidationError:
            pass  # read it field by field, below, to ignore read-only fields or name them all
        except msgspec.DecodeError:
            raise InvalidInput.single("body", "is not valid JSON") from None
        return _from_fields(model, _json_object(body), from_form=False)
    if media_type == FORM:
        return _from_fields(model, _urlencoded(body), from_form=True)
    if media_type == MULTIPART:
        return _from_fields(model, _multipart(body, options.get("boundary", "")), from_form=True)
    raise UnsupportedMediaType(f"Send the body as {JSON}, {FORM} or {MULTIPART}, not {media_type}")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(body)
    except msgspec.DecodeError:
        # (The typed pass may have stopped at a bad field before it found the bad syntax.)
        raise InvalidInput.single("body", "is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput.single("body", "must be a JSON object")
    return value


def _urlencoded(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise InvalidInput.single("body", "is not valid UTF-8") from None
    except ValueError:  # more fields than max_num_fields
        raise InvalidInput.single("body", f"has more than {MAX_FORM_FIELDS} fields") from None
    return _once_each(pairs)


def _multipart(body: bytes, boundary: str) -> dict[str, Any]:
    if not boundary:
        raise InvalidInput.single("body", "is multipart/form-data without a boundary")
    try:
        parser = multipart.MultipartParser(
            io.BytesIO(body), boundary, charset="utf8", strict=True, part_limit=MAX_FORM_FIELDS
        )
        # A file where text belongs stands out: no field of ours takes one.
        pairs = [(part.name, _FILE if part.filename else part.value) for part in parser]
    except (multipart.MultipartError, UnicodeDecodeError) as error:
        raise InvalidInput.single("body", f"is not valid multipart/form-data ({error})") from None
    return _once_each(pairs)


def _once_each(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    repeated: list[str] = []
    for name, value in pairs:
        if name in values and name not in repeated:
            repeated.append(name)
        values[name] = value
    if repeated:
        raise InvalidInput([FieldError(name, "must be given once") for name in repeated])
    return values


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _from_fields(model: _Model, values: dict[str, Any], *, from_form: bool) -> RequestBody:
    """Check each field on its own, so that every bad one is named."""
    read_only = model.struct.read_only
    accepted: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, value in values.items():
        field = model.fields.get(name)
        if field is None:
            if name not in read_only:
                errors.append(FieldError(name, "is not a known field"))
            continue
        if from_form and value == "" and not field.required:
            continue  # an empty optional form field is an absent one
        if from_form and value is _FILE:
            errors.append(FieldError(name, "must be text, not a file"))
            continue
        if field.integer and isinstance(value, float) and value.is_integer():
            given: Any = int(value)  # 3.0 is an integer in JSON Schema, and to DRF
        else:
            given = _from_text(field, value) if from_form else value
        try:
            accepted[name] = msgspec.convert(given, field.type)
        except msgspec.ValidationError as error:
            errors.append(FieldError(name, _message(error)))
    errors += [
        FieldError(name, "is required")
        for name, field in model.fields.items()
        if field.required and name not in values
    ]
    if errors:
        raise InvalidInput(errors)
    return model.struct(**accepted)


def _from_text(field: _Field, text: str) -> Any:
    """A form's text as a number where the field takes one; JSON's rules do the rest."""
    return int(text) if field.integer and _WHOLE_NUMBER.fullmatch(text) else text


_EXPECTED = re.compile(r"Expected `([^`]+)`(?:, got `([^`]+)`)?(?: (>=|>|<=|<) (-?\d+))?")
_TYPE_NAMES = {"int": "a whole number", "str": "text", "bool": "true or false"}
_BOUNDS = {">=": "at least", ">": "greater than", "<=": "at most", "<": "less than"}


def _message(error: msgspec.ValidationError) -> str:
    """msgspec's message, in the words the rest of the API uses."""
    text = str(error).split(" - at `", 1)[0]
    found = _EXPECTED.fullmatch(text)
    if found is None:
        return text
    expected, got, op, bound = found.groups()
    if got == "null":
        return "must not be null"
    if op is not None:
        return f"must be {_BOUNDS[op]} {bound}"
    kind = expected.removesuffix(" | null")
    return f"must be {_TYPE_NAMES.get(kind, kind)}"


def _takes_integer(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.Metadata):
        return _takes_integer(info.type)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_takes_integer(member) for member in info.types)
    return isinstance(info, msgspec.inspect.IntType)


_STRUCT_OPTION = "healthcare.request_body"  # a route handler's ``opt`` key: its body's struct


class RequestBodyDTO(AbstractDTO[Any]):
    """Litestar's hook for reading a handler's ``data``: ours, for every handler (app.py).

    A DTO is the one place where Litestar hands over the raw body together with the
    connection, and so its Content-Type. The handler's ``data`` annotation names the struct.
    """

    _structs: ClassVar[dict[str, type[RequestBody]]] = {}

    def decode_bytes(self, value: bytes) -> Any:
        connection = self.asgi_connection
        # Litestar's handler_id is worked out anew on each call (a string of the handler's
        # name and its layers' ids); the struct is kept in the handler's own options instead,
        # after the first request (a write's instructions: 0.7 % less, callgrind).
        options = connection.route_handler.opt
        struct = options.get(_STRUCT_OPTION)
        if struct is None:
            struct = options[_STRUCT_OPTION] = self._structs[connection.route_handler.handler_id]
        content_type = next(
            (v.decode("latin-1") for k, v in connection.scope["headers"] if k == b"content-type"),
            "",
        )
        return decode_body(struct, content_type, value)

    def decode_builtins(self, value: dict[str, Any]) -> Any:  # pragma: no cover - bytes only
        raise NotImplementedError

    @classmethod
    def missing_body(cls, handler_id: str) -> InvalidInput:
        """What an empty body lacks. (Litestar does not hand an empty body to a DTO: its
        validation error is translated with this, as DRF reads no body as ``{}``.)"""
        model = _model(cls._structs[handler_id])
        required = [name for name, field in model.fields.items() if field.required] or ["body"]
        return InvalidInput([FieldError(name, "is required") for name in required])

    @classmethod
    def create_for_field_definition(
        cls, field_definition: FieldDefinition, handler_id: str, backend_cls: Any = None
    ) -> None:
        if field_definition.name != "data":
            return
        struct = field_definition.annotation
        if not (isinstance(struct, type) and issubclass(struct, RequestBody)):
            raise TypeError(f"a handler's data must be a RequestBody, not {struct!r}")
        cls._structs[handler_id] = struct

    @classmethod
    def create_openapi_schema(
        cls, field_definition: FieldDefinition, handler_id: str, schema_creator: Any
    ) -> Any:
        return schema_creator.for_field_definition(
            FieldDefinition.from_annotation(
                cls._structs[handler_id], kwarg_definition=field_definition.kwarg_definition
            )
        )

    @classmethod
    def is_supported_model_type_field(cls, field_definition: FieldDefinition) -> bool:
        return False  # responses are encoded as they are

    @classmethod
    def generate_field_definitions(
        cls, model_type: type[Any]
    ) -> Generator[DTOFieldDefinition, None, None]:  # pragma: no cover - not a field DTO
        yield from ()

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:  # pragma: no cover
        return False
