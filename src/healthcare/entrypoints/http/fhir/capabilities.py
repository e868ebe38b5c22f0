"""The CapabilityStatement: exactly the resources, interactions and search parameters served."""

from __future__ import annotations

from typing import Any

from healthcare.entrypoints.http.fhir.resources import (
    AGE_EXTENSION,
    FHIR_VERSION,
    NOTES_EXTENSION,
    extension_url,
)

PUBLISHED = "2026-12-03"
_PAGING = (
    "Paged by _count (at most 1000) and _offset or _page; _sort by the keys listed; "
    "_summary=count for the total alone."
)


def _param(name: str, kind: str, documentation: str) -> dict[str, str]:
    return {"name": name, "type": kind, "documentation": documentation}


def _interactions(*codes: str) -> list[dict[str, str]]:
    return [{"code": code} for code in codes]


def capability_statement(base: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": PUBLISHED,
        "kind": "instance",
        "software": {"name": "Healthcare records API"},
        "implementation": {"description": "Healthcare records API, FHIR R4 face", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <access token>, as the REST API "
                    "(POST /api/auth/login/); only this statement is open."
                },
                "resource": [
                    {
                        "type": "Patient",
                        "documentation": "The caller's patients. Age, which FHIR has no "
                        f"element for, is {extension_url(base, AGE_EXTENSION)} (valueInteger; "
                        "birthDate is accepted on input and read as an age); notes are "
                        f"{extension_url(base, NOTES_EXTENSION)} (valueString). "
                        "_sort: _id, name, _lastUpdated, birthdate. " + _PAGING,
                        "interaction": _interactions(
                            "read", "vread", "search-type", "create", "update", "delete"
                        ),
                        "versioning": "versioned",
                        "readHistory": False,  # vread answers the current version only
                        "updateCreate": False,
                        "conditionalCreate": False,
                        "conditionalUpdate": False,
                        "conditionalDelete": "not-supported",
                        "searchParam": [
                            _param(
                                "name",
                                "string",
                                "Part of the name, ignoring case and accents (also name:contains)",
                            ),
                            _param("gender", "token", "male, female, other or unknown"),
                        ],
                    },
                    {
                        "type": "Practitioner",
                        "documentation": "The shared directory of doctors; the "
                        "specialization is qualification[0].code.text. _sort: _id, name. "
                        + _PAGING,
                        "interaction": _interactions("read", "search-type"),
                        "versioning": "versioned",
                        "searchParam": [
                            _param(
                                "name",
                                "string",
                                "Part of the name or the specialization, ignoring case and "
                                "accents (as the REST search)",
                            )
                        ],
                    },
                    {
                        "type": "CareTeam",
                        "documentation": "One per patient, its id the patient's: the "
                        "Practitioners assigned to that patient. Read-only.",
                        "interaction": _interactions("read", "search-type"),
                        "searchParam": [
                            _param("patient", "reference", "The patient (id or Patient/id)")
                        ],
                    },
                ],
            }
        ],
    }
