"""Rules of the unit-of-work kit about data: column values, constraints and foreign keys.

Part of the contract kit (``portside.adapters.testing._uow_kit`` mixes them in). They
work on the kit's ``Bin`` (parent) and ``Part`` (child with a column of every common
type, a unique ``code`` and a foreign key to ``Bin``) in fresh units of work on both
sides, and compare outcomes *and messages*: a refused value or constraint must be
refused with the same words by the system under test and by the fake.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.stateful import rule
from returns.result import Failure, Result

from portside.domain._errors import ServiceError

__all__ = ["BAD_VALUES", "GOOD_VALUES", "Pair", "UowDataRules"]

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)
# Values every backend stores and reads back equal (MariaDB's DATETIME keeps seconds).
GOOD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "qty": st.integers(-(2**15), 2**15 - 1),
    "flag": st.booleans(),
    "big": st.none() | st.integers(-(2**63), 2**63 - 1),
    "price": st.none() | st.decimals(min_value=-9999, max_value=9999, places=2),
    "weight": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    "made": st.none()
    | st.datetimes(datetime.datetime(1900, 1, 1), datetime.datetime(2200, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    "day": st.none() | st.dates(datetime.date(1900, 1, 1), datetime.date(2200, 1, 1)),
    "note": st.none() | _TEXT,
    "blob": st.none() | st.binary(max_size=16),
    "tag": st.none() | st.uuids(),
}
# One value each column must refuse, of the wrong type or beyond what the column holds.
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "code": st.sampled_from(["x" * 9, 5, "a\x00", "\ud800", None, b"c0"]),
    "bin_id": st.sampled_from(["1", 2**40, 1.0, True]),
    "qty": st.sampled_from([2**15, True, "5", 1.5, None]),
    "flag": st.sampled_from([1, "yes", None, 0.0]),
    "big": st.sampled_from([2**63, "9", 2.0]),
    "price": st.sampled_from(
        [decimal.Decimal("1.234"), decimal.Decimal("12345"), 1.5, decimal.Decimal("NaN")]
    ),
    "weight": st.sampled_from([float("nan"), float("inf"), "1.0", True]),
    "made": st.sampled_from(
        [
            "2020-01-01",
            datetime.date(2020, 1, 1),
            datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        ]
    ),
    "day": st.sampled_from(["2020-01-01", datetime.datetime(2020, 1, 1), 5]),
    "note": st.sampled_from([b"bytes", ["x"], {"a": 1}, "\udcff", 3]),
    "blob": st.sampled_from([b"x" * 17, "text", bytearray(b"x")]),
    "tag": st.sampled_from(["not-a-uuid", 5, str(uuid.UUID(int=1))]),
}
CODES = st.sampled_from(["c0", "c1", "c2"])
BIN_KEYS = st.integers(0, 2)
PART_KEYS = st.integers(0, 3)
FIELDS = st.sampled_from(sorted(BAD_VALUES))


@attrs.define
class Pair:
    """The same thing on the system under test (``real``) and on the model."""

    real: Any
    model: Any


def _error(result: Result[Any, ServiceError]) -> tuple[str, str] | None:
    if isinstance(result, Failure):
        error: ServiceError = result.failure()
        return error.kind, error.message
    return None


class UowDataRules:
    """Rules mixed into ``UowContract`` (which provides the helpers they use)."""

    schema: Any
    slots: dict[str, Any]

    def _open(self) -> Any: ...  # pragma: no cover - provided by UowContract

    def _close(self, pair: Any, error: BaseException | None = None) -> None: ...  # pragma: no cover

    def _fields(self, entity: Any) -> dict[str, Any]:
        spec = self.schema.entities.spec(type(entity))
        return {name: getattr(entity, name, None) for name in spec.fields}

    def _same_error(self, label: str, real: Result[Any, Any], model: Result[Any, Any]) -> bool:
        """Same outcome and, for a failure, the same kind and message; whether it succeeded."""
        assert _error(real) == _error(model), (
            f"{label}: adapter gave {real!r}, the fake gave {model!r}"
        )
        return _error(real) is None

    def _in_fresh_units(self, label: str, work: Any) -> None:
        """Run ``work(uow)`` on a fresh unit on each side, commit, compare, compare stored."""
        pair = self._open()
        try:
            staged = [work(pair.real), work(pair.model)]
            assert staged[0] == staged[1], f"{label}: staging differs {staged}"
            if staged[0]:
                self._same_error(label, pair.real.commit(), pair.model.commit())
        finally:
            self._close(pair)
        self._check_data()

    def _check_data(self) -> None:
        """A fresh unit sees the same bins and parts on both sides."""
        pair = self._open()
        try:
            for cls in (self.schema.bin, self.schema.part):
                found = [uow.repository(cls).list() for uow in (pair.real, pair.model)]
                assert self._same_error("stored data", found[0], found[1])
                real, model = ([self._fields(e) for e in r.unwrap()] for r in found)
                assert real == model, f"stored {cls.__name__} differ: {real} != {model}"
        finally:
            self._close(pair)

    @rule(
        key=PART_KEYS,
        code=CODES,
        bin_key=st.none() | BIN_KEYS,
        with_bin=st.booleans(),
        bin_first=st.booleans(),
        values=st.fixed_dictionaries(GOOD_VALUES),
        bad=st.none() | FIELDS.flatmap(lambda f: st.tuples(st.just(f), BAD_VALUES[f])),
    )
    def add_part(
        self,
        key: int,
        code: str,
        bin_key: int | None,
        with_bin: bool,
        bin_first: bool,
        values: dict[str, Any],
        bad: tuple[str, Any] | None,
    ) -> None:
        """Add a part, maybe with its bin (child or parent first), maybe one bad value."""
        schema = self.schema

        def work(uow: Any) -> bool:
            part = schema.part(key, code, bin_key, **values)
            if bad is not None:
                setattr(part, *bad)
            staged: list[tuple[type[Any], Any]] = [(schema.part, part)]
            if with_bin and bin_key is not None:
                staged.insert(0 if bin_first else 1, (schema.bin, schema.bin(bin_key, "b")))
            return all(
                not isinstance(uow.repository(cls).add(entity), Failure) for cls, entity in staged
            )

        self._in_fresh_units(f"add part {key} (bad: {bad!r})", work)

    @rule(key=PART_KEYS, field=FIELDS, data=st.data())
    def edit_part(self, key: int, field: str, data: st.DataObject) -> None:
        """Change one field of a stored part to a good or a bad value and commit."""
        schema = self.schema
        good = GOOD_VALUES.get(field, st.nothing())
        if field == "bin_id":
            good = st.none() | BIN_KEYS
        elif field == "code":
            good = CODES
        value = data.draw(good | BAD_VALUES[field], label="value")

        def work(uow: Any) -> bool:
            found = uow.repository(schema.part).get(key)
            if isinstance(found, Failure):
                return False
            setattr(found.unwrap(), field, value)
            return True

        self._in_fresh_units(f"edit part {key}.{field} = {value!r}", work)

    @rule(key=BIN_KEYS, take_parts=st.booleans(), parts_first=st.booleans())
    def remove_bin(self, key: int, take_parts: bool, parts_first: bool) -> None:
        """Remove a bin, with or without its parts (removed before or after it)."""
        schema = self.schema

        def work(uow: Any) -> bool:
            bins, parts = uow.repository(schema.bin), uow.repository(schema.part)
            found = bins.get(key)
            if isinstance(found, Failure):
                return False
            children = parts.list(where={"bin_id": key}).unwrap() if take_parts else []
            removals: list[tuple[Any, Any]] = [(parts, child) for child in children]
            removals.insert(len(removals) if parts_first else 0, (bins, found.unwrap()))
            return all(not isinstance(repo.remove(entity), Failure) for repo, entity in removals)

        self._in_fresh_units(f"remove bin {key}", work)

    @rule(slot=st.sampled_from(["a", "b"]), index=st.integers(0, 7))
    def bump_version(self, slot: str, index: int) -> None:
        """The application bumps a held entity's version itself, as SQLAlchemy allows."""
        held = self.slots[slot].loaded
        if not held:
            return
        found = held[sorted(held)[index % len(held)]]
        if found.real.version is None or found.model.version is None:
            return
        found.real.version += 1
        found.model.version += 1

    @rule(
        kind=st.sampled_from(["note", "token"]),
        texts=st.lists(st.sampled_from(["ash", "elm"]), min_size=1, max_size=3),
        drop_first=st.booleans(),
    )
    def add_generated(self, kind: str, texts: list[str], drop_first: bool) -> None:
        """Entities without a key get one at commit, on both sides, and are found by it."""
        cls = getattr(self.schema, kind)
        spec = self.schema.entities.spec(cls)
        pair = self._open()
        try:
            made = [[cls(text) for text in texts] for _ in range(2)]
            for uow, entities in zip((pair.real, pair.model), made, strict=True):
                repo = uow.repository(cls)
                assert all(repo.add(e) == repo.add(e) for e in entities), "add of a keyless entity"
                if drop_first:
                    assert not isinstance(repo.remove(entities[0]), Failure), "remove pending"
            if drop_first:
                made = [entities[1:] for entities in made]
            assert self._same_error(f"commit {kind}", pair.real.commit(), pair.model.commit())
            for uow, entities in zip((pair.real, pair.model), made, strict=True):
                keys = [getattr(e, spec.key) for e in entities]
                assert all(isinstance(k, spec.key_type) for k in keys), f"{kind} keys: {keys}"
                assert len(set(keys)) == len(keys), f"{kind} keys repeat: {keys}"
                repo = uow.repository(cls)
                for entity, key in zip(entities, keys, strict=True):
                    assert repo.get(key).unwrap() is entity, f"{kind}: get after commit"
        finally:
            self._close(pair)
        pair = self._open()
        try:
            found = [
                sorted(e.text for e in u.repository(cls).list().unwrap())
                for u in (pair.real, pair.model)
            ]
            assert found[0] == found[1], f"stored {kind}: {found}"
        finally:
            self._close(pair)
