"""Rules of the unit-of-work kit about queries: conditions, ordering, pages and counts.

Part of the contract kit (``portside.adapters.testing._uow_kit`` mixes them in). One
rule queries the kit's ``Item`` inside the long-lived units (so the unit's own staged
adds, changes and removals take part); another queries ``Part``, whose nullable columns
exercise SQL's NULL comparisons and the NULL ordering every backend must share.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from portside.adapters.testing._uow_kit_data import Pair, UowDataRules
from portside.ports._query import Condition, Ordering, field

__all__ = ["UowQueryRules"]

_NAMES = st.sampled_from(["ash", "elm", "oak"])
_OPS = st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"])


def _compare(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Condition]:
    return st.builds(lambda op, v: getattr(field(name), op)(v), _OPS, values)


def _membership(name: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[Condition]:
    return st.lists(st.none() | values, max_size=3).map(lambda vs: field(name).in_(vs))


def _nullness(names: list[str]) -> st.SearchStrategy[Condition]:
    return st.builds(
        lambda n, null: field(n).is_none() if null else field(n).is_not_none(),
        st.sampled_from(names),
        st.booleans(),
    )


def _orderings(names: list[str]) -> st.SearchStrategy[list[Ordering | str]]:
    one: st.SearchStrategy[Ordering | str] = st.sampled_from(names) | st.builds(
        Ordering, st.sampled_from(names), st.booleans()
    )
    return st.lists(one, max_size=2)


ITEM_CONDITIONS = st.one_of(
    _compare("name", _NAMES),
    _compare("id", st.integers(0, 6)),
    _membership("name", _NAMES),
    _membership("id", st.integers(0, 6)),
    _nullness(["name"]),
)
_PART_NULLABLE = ["bin_id", "big", "day", "note"]
PART_CONDITIONS = st.one_of(
    _compare("qty", st.integers(-2, 2)),
    _compare("big", st.integers(-2, 2)),
    _compare("code", st.sampled_from(["c0", "c1", "c2"])),
    _compare("note", st.sampled_from(["", "a", "b"])),
    _membership("bin_id", st.integers(0, 2)),
    _nullness(_PART_NULLABLE),
)
_LIMITS = st.none() | st.integers(0, 3)
_OFFSETS = st.integers(0, 2)


class UowQueryRules(UowDataRules):
    """Rules mixed into ``UowContract`` (which provides the helpers they use)."""

    def _enter(self, slot: str) -> Any: ...  # pragma: no cover - provided by UowContract

    def _ask(self, pair: Any, cls: type[Any], label: str, **query: Any) -> Any:
        """``list`` and ``count`` on both sides: same entities in the same order, same count."""
        repos = [uow.repository(cls) for uow in (pair.real, pair.model)]
        listed = [repo.list(**query) for repo in repos]
        if not self._same_error(label, listed[0], listed[1]):
            return None
        real, model = ([self._fields(e) for e in r.unwrap()] for r in listed)
        assert real == model, f"{label}: {real} != {model}"
        counted = [repo.count(where=query.get("where")) for repo in repos]
        assert self._same_error(f"{label} count", counted[0], counted[1])
        assert counted[0].unwrap() == counted[1].unwrap(), f"{label} count: {counted}"
        return listed[0].unwrap(), listed[1].unwrap()

    @rule(
        slot=st.sampled_from(["a", "b"]),
        where=st.lists(ITEM_CONDITIONS, max_size=2),
        order_by=_orderings(["name", "id"]),
        limit=_LIMITS,
        offset=_OFFSETS,
    )
    def query_items(
        self,
        slot: str,
        where: list[Condition],
        order_by: list[Ordering | str],
        limit: int | None,
        offset: int,
    ) -> None:
        """Conditions, an order and a page inside a long-lived unit: same entities, same order."""
        state, unit = self._enter(slot)
        label = f"query items {where} {order_by} [{offset}:{limit}]"
        found = self._ask(
            unit,
            self.schema.item,
            label,
            where=where,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )
        if found is None:
            return
        for real, model in zip(*found, strict=True):
            known = state.loaded.get(real.id)
            if known is not None:
                assert (real is known.real) == (model is known.model), f"{label}: identity map"
            state.loaded[real.id] = known or Pair(real, model)

    @rule(
        where=st.lists(PART_CONDITIONS, max_size=2),
        order_by=_orderings(["qty", "code", *_PART_NULLABLE]),
        limit=_LIMITS,
        offset=_OFFSETS,
    )
    def query_parts(
        self, where: list[Condition], order_by: list[Ordering | str], limit: int | None, offset: int
    ) -> None:
        """Queries over nullable columns in a fresh unit: SQL's NULL rules on both sides."""
        pair = self._open()
        try:
            label = f"query parts {where} {order_by} [{offset}:{limit}]"
            self._ask(
                pair,
                self.schema.part,
                label,
                where=where,
                order_by=order_by,
                limit=limit,
                offset=offset,
            )
        finally:
            self._close(pair)
