"""Input rules of the domain: usernames, emails, passwords, patients and doctors."""

from __future__ import annotations

import dataclasses
import re
import sys
import unicodedata
from typing import Any

import pytest

from healthcare.domain import rules
from healthcare.domain.entities import DoctorData, Gender, PatientData
from healthcare.domain.errors import FieldError, InvalidInput
from healthcare.domain.rules import (
    email_errors,
    identity_key,
    password_errors,
    password_too_long,
    username_errors,
    validate_doctor,
    validate_patient,
    validate_registration,
)
from tests.unit.factories import DoctorDataFactory, PatientDataFactory

E_ACUTE = "\u00e9"  # 2 bytes in UTF-8


def fields(errors: list[FieldError] | tuple[FieldError, ...]) -> list[str]:
    return [e.field for e in errors]


class TestUsername:
    @pytest.mark.parametrize(
        "username",
        [
            "abc",
            "a" * 150,
            "alice",
            "Alice_Smith",
            "a.l@i+c-e",
            "user@example.com",
            "Zo\u00eb",  # Zoë
            "\u6e21\u8fba\u3055\u3093",  # Japanese letters
            "\u00d8rjan",  # Ørjan
            "007",
        ],
    )
    def test_accepted(self, username: str) -> None:
        assert username_errors(username) == []

    # Length is counted in characters, not bytes: two CJK letters are too short.
    @pytest.mark.parametrize("username", ["", "ab", "a" * 151, "\u6e21\u8fba"])
    def test_length_bounds(self, username: str) -> None:
        assert username_errors(username) == [FieldError("username", "must be 3 to 150 characters")]

    @pytest.mark.parametrize(
        "username",
        ["al ice", "alice\n", "\nalice", "alice\t", "ali/ce", "alice!", "al'ice", "<alice>"],
    )
    def test_characters_outside_the_allowed_set_are_rejected(self, username: str) -> None:
        assert username_errors(username) == [
            FieldError("username", "may contain only letters, digits and @.+-_")
        ]


class TestEmail:
    @pytest.mark.parametrize(
        "email", ["a@b.co", "Alice.Smith+tag@mail.example.org", "j\u00f6rg@m\u00fcller.de"]
    )
    def test_accepted(self, email: str) -> None:
        assert email_errors(email) == []

    @pytest.mark.parametrize(
        "email",
        [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@@example.com",
            "al ice@example.com",
            "alice@example.com\n",
            "a@b.c" + "c" * 250,  # 255 characters
        ],
    )
    def test_rejected(self, email: str) -> None:
        assert email_errors(email) == [FieldError("email", "must be a valid email address")]

    def test_names_the_field_it_is_given(self) -> None:
        assert fields(email_errors("nope", field="contact")) == ["contact"]


class TestPassword:
    @pytest.mark.parametrize(
        "password",
        [
            "abcdefgh",  # exactly 8 characters
            "x" * 72,  # exactly 72 bytes
            E_ACUTE * 8,  # 8 characters, 16 bytes
            E_ACUTE * 30,  # 60 bytes
            E_ACUTE * 36,  # 72 bytes
            "1234567a",
        ],
    )
    def test_accepted(self, password: str) -> None:
        assert password_errors(password, "alice") == []
        assert not password_too_long(password)

    def test_too_short(self) -> None:
        assert password_errors("abcdefg", "alice") == [
            FieldError("password", "must be at least 8 characters")
        ]

    @pytest.mark.parametrize("password", ["x" * 73, E_ACUTE * 37, E_ACUTE * 40])
    def test_longer_than_72_utf8_bytes_is_rejected(self, password: str) -> None:
        assert password_too_long(password)
        assert password_errors(password, "alice") == [
            FieldError("password", "must be at most 72 bytes in UTF-8")
        ]

    def test_forty_accented_characters_are_80_bytes_and_rejected(self) -> None:
        password = E_ACUTE * 40
        assert len(password) == 40
        assert len(password.encode()) == 80
        assert fields(password_errors(password, "alice")) == ["password"]

    def test_all_digits(self) -> None:
        assert password_errors("1234567890", "alice") == [
            FieldError("password", "must not be entirely numeric")
        ]

    @pytest.mark.parametrize("password", ["Alice1234", "ALICE1234", "alice1234"])
    def test_equal_to_username_ignoring_case(self, password: str) -> None:
        assert password_errors(password, "aLiCe1234") == [
            FieldError("password", "must not be the same as the username")
        ]

    def test_several_problems_reported_together(self) -> None:
        errors = password_errors("1234", "1234")
        assert [e.message for e in errors] == [
            "must be at least 8 characters",
            "must not be entirely numeric",
            "must not be the same as the username",
        ]


class TestValidateRegistration:
    def test_valid_input_passes(self) -> None:
        validate_registration("alice", "alice@example.com", "s3cret-enough")  # does not raise

    def test_every_broken_field_is_reported(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_registration("a b", "not-an-email", "123")
        assert fields(caught.value.errors) == ["username", "email", "password", "password"]
        assert "username: may contain only letters" in caught.value.message
        assert "email: must be a valid email address" in caught.value.message


class TestIdentityKey:
    @pytest.mark.parametrize(
        ("left", "right"),
        [
            ("Alice", "alice"),
            ("ALICE@EXAMPLE.COM", "alice@example.com"),
            ("STRASSE", "stra\u00dfe"),  # ß folds to ss
            ("\u00c9LODIE", "\u00e9lodie"),  # É / é
            (
                "\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3",
                "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2",
            ),
            ("\uff21\uff4c\uff49\uff43\uff45", "alice"),  # fullwidth letters, NFKC
            ("e\u0301", "\u00e9"),  # decomposed and composed é
        ],
    )
    def test_equal_keys(self, left: str, right: str) -> None:
        assert identity_key(left) == identity_key(right)

    def test_distinct_names_stay_distinct(self) -> None:
        assert identity_key("alice") != identity_key("alicia")
        assert identity_key("\u00e9lodie") != identity_key("elodie")

    def test_result_is_lower_case(self) -> None:
        assert identity_key("Stra\u00dfe") == "strasse"


class TestValidatePatient:
    def test_factory_data_is_valid(self) -> None:
        for _ in range(20):
            validate_patient(PatientDataFactory.build())  # does not raise

    @pytest.mark.parametrize("age", [0, 150])
    def test_age_bounds_accepted(self, age: int) -> None:
        validate_patient(PatientDataFactory.build(age=age))

    @pytest.mark.parametrize("age", [-1, 151])
    def test_age_out_of_bounds(self, age: int) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_patient(PatientDataFactory.build(age=age))
        assert caught.value.errors == (FieldError("age", "must be between 0 and 150"),)

    @pytest.mark.parametrize("name", ["", "   ", "\n\t"])
    def test_blank_name(self, name: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_patient(PatientDataFactory.build(name=name))
        assert caught.value.errors == (FieldError("name", "must not be blank"),)

    def test_name_length_bounds(self) -> None:
        validate_patient(PatientDataFactory.build(name="n" * 255))
        validate_patient(PatientDataFactory.build(name="n"))
        with pytest.raises(InvalidInput) as caught:
            validate_patient(PatientDataFactory.build(name="n" * 256))
        assert caught.value.errors == (FieldError("name", "must be at most 255 characters"),)

    def test_bad_email(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_patient(PatientDataFactory.build(email="nobody"))
        assert fields(caught.value.errors) == ["email"]

    def test_optional_fields_may_be_absent(self) -> None:
        validate_patient(PatientData(name="Jane Doe", age=40, gender=Gender.FEMALE))

    def test_optional_field_lengths(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_patient(
                PatientDataFactory.build(phone="1" * 33, address="a" * 1001, notes="n" * 10_001)
            )
        assert fields(caught.value.errors) == ["phone", "address", "notes"]

    def test_several_problems_reported_together(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_patient(PatientDataFactory.build(name=" ", age=200, email="x@y"))
        assert fields(caught.value.errors) == ["name", "age", "email"]


class TestValidateDoctor:
    def test_factory_data_is_valid(self) -> None:
        for _ in range(20):
            validate_doctor(DoctorDataFactory.build())

    def test_optional_fields_may_be_absent(self) -> None:
        validate_doctor(DoctorData(name="Dr. Who", specialization="Time"))

    def test_bounds(self) -> None:
        validate_doctor(DoctorDataFactory.build(name="n" * 255, specialization="s" * 255))
        with pytest.raises(InvalidInput) as caught:
            validate_doctor(DoctorDataFactory.build(name="n" * 256, specialization="s" * 256))
        assert fields(caught.value.errors) == ["name", "specialization"]

    def test_blank_and_malformed(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_doctor(
                DoctorDataFactory.build(name="", specialization="  ", email="@", phone="9" * 33)
            )
        assert caught.value.errors == (
            FieldError("name", "must not be blank"),
            FieldError("specialization", "must not be blank"),
            FieldError("email", "must be a valid email address"),
            FieldError("phone", "must be at most 32 characters"),
        )


class TestGender:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Male", Gender.MALE),
            ("male", Gender.MALE),
            ("MALE", Gender.MALE),
            ("fEmAlE", Gender.FEMALE),
            ("other", Gender.OTHER),
            ("UNKNOWN", Gender.UNKNOWN),
            (" Female ", Gender.FEMALE),
        ],
    )
    def test_parse_any_case(self, raw: str, expected: Gender) -> None:
        parsed = Gender.parse(raw)
        assert parsed is expected
        assert str(parsed) == expected.value
        assert parsed.value[0].isupper()

    @pytest.mark.parametrize("raw", ["", "m", "man", "males", "F", "none", "Male Female"])
    def test_parse_rejects(self, raw: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            Gender.parse(raw)
        assert caught.value.errors == (
            FieldError("gender", "must be one of Male, Female, Other, Unknown"),
        )


class TestDocumentedPatterns:
    """The OpenAPI document spells the server's classes out (JSON Schema reads patterns as
    ECMA-262, where \\s, \\w and \\d differ from Python's); these hold the spelling to Python."""

    def test_spaces_are_what_str_isspace_knows(self) -> None:
        spaces = re.compile(f"[{rules.SPACES}]")
        assert {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()} == {
            c for c in map(chr, range(sys.maxunicode + 1)) if spaces.fullmatch(c)
        }

    def test_the_username_class_is_pythons_word_class(self) -> None:
        """The document's [\\p{L}\\p{N}_] is what the server's \\w matches, code point by
        code point."""
        word = re.compile(r"\w")
        differ = [
            c
            for c in map(chr, range(sys.maxunicode + 1))
            if bool(word.fullmatch(c)) != (unicodedata.category(c)[0] in "LN" or c == "_")
        ]
        assert differ == []
        assert rules.USERNAME_PATTERN == r"^[\p{L}\p{N}_.@+-]+$"

    @pytest.mark.parametrize("password", ["12345678", "\u0663" * 8])
    def test_all_ascii_digits_is_the_digits_rule(self, password: str) -> None:
        refused = "must not be entirely numeric" in {
            e.message for e in rules.password_errors(password, "someone")
        }
        assert refused is password.isascii()


_BAD_PATIENT_FIELDS: dict[str, list[Any]] = {
    "name": ["", "  ", "a\x00b", "n" * (rules.NAME_MAX + 1), "Ann"],
    "age": [-1, 151, 0, 150],
    "phone": [None, "", "1\x00", "1" * (rules.PHONE_MAX + 1), "555"],
    "email": [None, "not an email", "a@example.org"],
    "address": [None, "a\x00", "a" * (rules.ADDRESS_MAX + 1), "1 Main St"],
    "notes": [None, "n\x00", "n" * (rules.NOTES_MAX + 1), "fine"],
}


@pytest.mark.parametrize("field", list(_BAD_PATIENT_FIELDS))
def test_a_whole_patient_is_checked_by_every_rule_of_the_table_in_its_order(field: str) -> None:
    """_patient_errors writes the table out (for speed): it must give the table's answers."""
    assert set(_BAD_PATIENT_FIELDS) == set(rules._PATIENT_RULES)

    def by_the_table(data: PatientData) -> list[FieldError]:
        return [
            error
            for name, rule in rules._PATIENT_RULES.items()
            for error in rule(getattr(data, name))
        ]

    every_bad = PatientData(
        "", -1, Gender.OTHER, "1\x00", "not an email", "a\x00", "n" * (rules.NOTES_MAX + 1)
    )
    assert len(by_the_table(every_bad)) == len(rules._PATIENT_RULES)  # each rule fires
    assert rules._patient_errors(every_bad) == by_the_table(every_bad)
    for value in _BAD_PATIENT_FIELDS[field]:
        data = dataclasses.replace(PatientDataFactory.build(), **{field: value})
        assert rules._patient_errors(data) == by_the_table(data), (field, value)
