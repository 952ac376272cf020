"""Person records and the NIK check: validation, refusals, properties."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ektp_biometrics.errors import EktpError, RecordError
from ektp_biometrics.fingerprint import FingerprintTemplate, make_minutiae
from ektp_biometrics.gallery import FingerException, Person, validate_nik
from ektp_biometrics.gallery.records import PROVINCE_CODES

TODAY = dt.date(2025, 1, 1)


def template(seed: int, position: int = 0) -> FingerprintTemplate:
    rng = np.random.default_rng(seed)
    return FingerprintTemplate(
        300, 300, make_minutiae(*rng.uniform(20, 280, (2, 30)), rng.uniform(0, 6.28, 30)), finger_position=position
    )


# -- Person --------------------------------------------------------------------------------------
def test_person_normalises_and_freezes() -> None:
    p = Person("ref-1", fingers={7: template(1), 2: template(2, 2)}, exceptions={1: "amputated", 10: FingerException.MISSING},
               metadata={"station": "st-01", "operator": "op-7"})  # fmt: skip
    assert list(p.fingers) == [2, 7]
    assert p.exceptions == {1: FingerException.AMPUTATED, 10: FingerException.MISSING}
    with pytest.raises(TypeError):
        p.fingers[3] = template(3)  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.person_id = "other"  # type: ignore[misc]
    assert p == Person("ref-1", fingers={2: template(2, 2), 7: template(1)}, exceptions={10: "missing", 1: "amputated"},
                       metadata={"operator": "op-7", "station": "st-01"})  # fmt: skip
    assert p != p.replace(metadata={})
    assert p.replace(face=None).fingers == p.fingers


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(person_id=""), "1..64"),
        (dict(person_id="x" * 65), "1..64"),
        (dict(person_id="a\tb"), "control"),
        (dict(person_id="a\x00b"), "control"),
        (dict(person_id=42), "str"),
        (dict(fingers={0: template(1)}), "1..10"),
        (dict(fingers={11: template(1)}), "1..10"),
        (dict(fingers={True: template(1)}), "1..10"),
        (dict(fingers={"2": template(1)}), "1..10"),
        (dict(fingers={2: b"raw"}), "FingerprintTemplate"),
        (dict(fingers={2: template(1, 3)}), "captured as finger 3"),
        (dict(fingers=[template(1)]), "mapping"),
        (dict(exceptions={1: "lost"}), "missing, amputated, injured, unusable"),
        (dict(fingers={1: template(1)}, exceptions={1: "injured"}), "also listed"),
        (dict(metadata={"station": 5}), "metadata value"),
        (dict(metadata={"": "x"}), "metadata key"),
        (dict(metadata="station=1"), "mapping"),
        (dict(face=np.zeros(128)), "FaceTemplate"),
    ],
)
def test_person_refuses_malformed_fields(kwargs: dict, words: str) -> None:
    fields = dict(person_id="ok")
    fields.update(kwargs)
    with pytest.raises(RecordError, match=words):
        Person(**fields)


def test_record_error_is_a_value_error_and_ektp_error() -> None:
    with pytest.raises(ValueError):
        Person("")
    with pytest.raises(EktpError):
        Person("")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=64))
def test_person_id_accepted_exactly_when_printable(text: str) -> None:
    if text.isprintable():
        assert Person(text).person_id == text
    else:
        with pytest.raises(RecordError):
            Person(text)


def test_person_accepts_a_face_template() -> None:
    face = pytest.importorskip("ektp_biometrics.face.template")
    f = face.FaceTemplate([3.0, 4.0], "lbp", "1")
    assert Person("x", face=f).face == f


# -- NIK -----------------------------------------------------------------------------------------
def test_nik_published_examples() -> None:
    # examples from Dukcapil explanations of the NIK layout
    info = validate_nik("3602041211870001", today=TODAY)
    assert (info.province, info.regency, info.district) == ("36", "02", "04")
    assert (info.birth_date, info.sex, info.serial, info.region) == (dt.date(1987, 11, 12), "M", "0001", "360204")
    info = validate_nik("3273056010900009", today=TODAY)
    assert (info.birth_date, info.sex) == (dt.date(1990, 10, 20), "F")


@pytest.mark.parametrize(
    "nik, words",
    [
        ("360204121187000", "16 digits"),
        ("36020412118700011", "16 digits"),
        ("3602O41211870001", "16 digits"),
        ("３６０２０４１２１１８７０００１", "16 digits"),  # full-width digits are not ASCII
        ("3602041211870000", "serial 0000"),
        ("9902041211870001", "province code 99"),
        ("2002041211870001", "province code 20"),
        ("3600041211870001", "regency/city code 00"),
        ("3602001211870001", "district code 00"),
        ("3602040011870001", "day code 00"),
        ("3602043211870001", "day code 32"),
        ("3602044011870001", "day code 40"),
        ("3602047211870001", "day code 72"),
        ("3602041200870001", "month 00"),
        ("3602041213870001", "month 13"),
        ("3602043002870001", "does not exist"),  # 30 February
        ("3602047102870001", "does not exist"),  # a woman born 31 February
        ("3602042902230001", "does not exist"),  # 29 February 2023 (2023 is not a leap year)
    ],
)
def test_nik_refusals_say_why(nik: str, words: str) -> None:
    with pytest.raises(RecordError, match=words):
        validate_nik(nik, today=TODAY)


def test_nik_not_a_string() -> None:
    with pytest.raises(RecordError, match="str"):
        validate_nik(3602041211870001)  # type: ignore[arg-type]


def test_nik_century_resolution() -> None:
    assert validate_nik("3602040101240001", today=TODAY).birth_date == dt.date(2024, 1, 1)
    assert validate_nik("3602040101250001", today=TODAY).birth_date == dt.date(2025, 1, 1)
    assert validate_nik("3602040201250001", today=TODAY).birth_date == dt.date(1925, 1, 2)  # 2 Jan 2025 is after today
    assert validate_nik("3602042902000001", today=TODAY).birth_date == dt.date(2000, 2, 29)


nik_fields = st.tuples(
    st.sampled_from(sorted(PROVINCE_CODES)),
    st.integers(1, 99),
    st.integers(1, 99),
    st.dates(dt.date(1925, 1, 2), TODAY),
    st.sampled_from("MF"),
    st.integers(1, 9999),
)


@settings(max_examples=300, deadline=None)
@given(nik_fields)
def test_nik_round_trip(fields: tuple) -> None:
    province, regency, district, birth, sex, serial = fields
    day = birth.day + (40 if sex == "F" else 0)
    nik = f"{province:02d}{regency:02d}{district:02d}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial:04d}"
    info = validate_nik(nik, today=TODAY)
    assert (info.nik, info.province, info.regency, info.district) == (nik, f"{province:02d}", f"{regency:02d}", f"{district:02d}")
    assert (info.birth_date, info.sex, info.serial) == (birth, sex, f"{serial:04d}")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789", min_size=16, max_size=16))
def test_nik_any_digits_decode_or_refuse(nik: str) -> None:
    try:
        info = validate_nik(nik, today=TODAY)
    except RecordError:
        return
    # what is accepted is consistent with the layout
    day_code = int(nik[6:8])
    assert info.sex == ("F" if day_code > 40 else "M")
    assert info.birth_date.day == day_code - (40 if info.sex == "F" else 0)
    assert info.birth_date <= TODAY
    assert int(nik[0:2]) in PROVINCE_CODES and nik[12:] != "0000"
