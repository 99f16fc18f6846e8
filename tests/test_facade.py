"""The KeyVal facade: django-keyval's API and a dict's, over ``caches["keyval"]``.

Every public behaviour is pinned here, because code written against
django-keyval must keep working unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from freezegun.api import FrozenDateTimeFactory

import keyval_backend
import keyval_backend.cache
from keyval_backend import KeyVal
from keyval_backend.cache import KeyValCache
from keyval_backend.facade import KeyVal as FacadeKeyVal
from keyval_backend.models import Entry
from keyval_backend.models import KeyVal as ModelsKeyVal

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"


def dotted_key(key: str, key_prefix: str, version: int) -> str:
    """A KEY_FUNCTION unlike Django's default (dots instead of colons)."""
    return f"{key_prefix}.{version}.{key}"


def undotted_key(made: str) -> str:
    """The REVERSE_KEY_FUNCTION of :func:`dotted_key`."""
    return made.split(".", 2)[2]


# A cache that makes keys with dotted_key and can list them.
DOTTED_KEYS = {
    "BACKEND": KEYVAL_BACKEND,
    "KEY_FUNCTION": f"{__name__}.dotted_key",
    "OPTIONS": {"REVERSE_KEY_FUNCTION": f"{__name__}.undotted_key"},
}


@pytest.fixture
def store(kv: KeyValCache) -> KeyVal:
    return KeyVal("facade")


def test_every_import_path_is_the_same_class() -> None:
    # django-keyval users import from keyval_backend.models; new code from the package.
    assert keyval_backend.KeyVal is FacadeKeyVal is ModelsKeyVal


def test_connect_is_the_constructor(kv: KeyValCache) -> None:
    connected = KeyVal.connect("facade")
    assert isinstance(connected, KeyVal)
    assert connected.name == "facade"
    connected.set("k", 1)
    assert KeyVal("facade").get("k") == 1


def test_repr_names_the_store_and_its_state(store: KeyVal) -> None:
    assert repr(store) == "<KeyVal 'facade'>"
    store.disconnect()
    assert repr(store) == "<KeyVal 'facade', disconnected>"


def test_set_is_true_for_a_new_key_false_for_an_overwrite(store: KeyVal) -> None:
    assert store.set("k", "one") is True
    assert store.set("k", "two") is False
    assert store.get("k") == "two"


def test_set_is_true_again_when_the_old_row_expired(
    store: KeyVal, frozen: FrozenDateTimeFactory
) -> None:
    assert store.set("k", "old", timeout=5) is True
    frozen.tick(6)
    assert store.set("k", "new") is True
    assert store.set("k", "newer") is False


def test_get_of_a_missing_key_raises_keyerror_naming_it(store: KeyVal) -> None:
    with pytest.raises(KeyError) as excinfo:
        store.get("absent")
    assert excinfo.value.args == ("absent",)


def test_get_returns_a_stored_none_rather_than_raising(store: KeyVal) -> None:
    store.set("k", None)
    assert store.get("k") is None
    assert store.get_default("k", "fallback") is None


def test_get_default(store: KeyVal) -> None:
    assert store.get_default("absent") is None
    assert store.get_default("absent", "fallback") == "fallback"
    store.set("k", [1, 2])
    assert store.get_default("k", "fallback") == [1, 2]


def test_pop_returns_the_value_and_removes_the_key(store: KeyVal) -> None:
    store.set("k", {"a": 1})
    assert store.pop("k") == {"a": 1}
    assert not store.exists("k")
    with pytest.raises(KeyError) as excinfo:
        store.pop("k")
    assert excinfo.value.args == ("k",)


def test_pop_default(store: KeyVal) -> None:
    assert store.pop_default("absent") is None
    assert store.pop_default("absent", 7) == 7
    store.set("k", None)
    assert store.pop_default("k", 7) is None
    assert not store.exists("k")


def test_exists(store: KeyVal) -> None:
    assert store.exists("k") is False
    store.set("k", 0)
    assert store.exists("k") is True


def test_delete_reports_whether_the_key_existed(store: KeyVal) -> None:
    store.set("k", 1)
    assert store.delete("k") is True
    assert not store.exists("k")
    with pytest.raises(KeyError) as excinfo:
        store.delete("k")
    assert excinfo.value.args == ("k",)
    assert store.delete("k", ignore_keyerror=True) is False


def test_flush_empties_only_this_store(store: KeyVal) -> None:
    other = KeyVal("other")
    store.set("a", 1)
    store.set("b", 2)
    other.set("a", 3)
    store.flush()
    assert len(store) == 0
    assert other.get("a") == 3


def test_flush_of_an_empty_store_is_fine(store: KeyVal) -> None:
    store.flush()
    store.flush()
    assert len(store) == 0


def test_flush_all_on_the_class_empties_every_store(kv: KeyValCache) -> None:
    KeyVal("one").set("k", 1)
    KeyVal("two").set("k", 2)
    kv.store("three").set("k", 3)
    KeyVal.flush_all()
    assert Entry.objects.count() == 0


def test_flush_all_on_an_instance_even_disconnected(store: KeyVal) -> None:
    store.set("k", 1)
    KeyVal("other").set("k", 2)
    store.disconnect()
    store.flush_all()
    assert Entry.objects.count() == 0
    store.flush_all()  # and on an empty table


def test_disconnect_refuses_a_second_disconnect(store: KeyVal) -> None:
    store.disconnect()
    with pytest.raises(NameError):
        store.disconnect()


def test_disconnect_with_the_wrong_name_leaves_it_connected(store: KeyVal) -> None:
    with pytest.raises(ValueError, match="facade"):
        store.disconnect("elsewhere")
    store.set("k", 1)
    assert store.get("k") == 1


def test_disconnect_does_not_touch_the_data(store: KeyVal) -> None:
    store.set("k", 1)
    store.disconnect()
    assert KeyVal("facade").get("k") == 1


EVERY_OTHER_METHOD: dict[str, Callable[[KeyVal], Any]] = {
    "set": lambda s: s.set("k", 1),
    "set_timeout": lambda s: s.set("k", 1, timeout=10),
    "get": lambda s: s.get("k"),
    "get_default": lambda s: s.get_default("k", 1),
    "pop": lambda s: s.pop("k"),
    "pop_default": lambda s: s.pop_default("k", 1),
    "exists": lambda s: s.exists("k"),
    "delete": lambda s: s.delete("k"),
    "delete_ignore": lambda s: s.delete("k", ignore_keyerror=True),
    "flush": lambda s: s.flush(),
    "getitem": lambda s: s["k"],
    "setitem": lambda s: s.__setitem__("k", 1),
    "delitem": lambda s: s.__delitem__("k"),
    "contains": lambda s: "k" in s,
    "contains non-str": lambda s: 1 in s,
    "len": len,
    "iter": lambda s: list(s),
    "keys": lambda s: list(s.keys()),
    "keys_prefix": lambda s: list(s.keys("k")),
    "items": lambda s: list(s.items()),
    "values": lambda s: list(s.values()),
}


@pytest.mark.parametrize("call", EVERY_OTHER_METHOD.values(), ids=EVERY_OTHER_METHOD.keys())
@pytest.mark.parametrize("name", [None, "facade"], ids=["disconnect()", "disconnect(name)"])
def test_every_method_raises_nameerror_after_disconnect(
    store: KeyVal, name: str | None, call: Callable[[KeyVal], Any]
) -> None:
    store.set("k", 1)
    store.disconnect(name)
    with pytest.raises(NameError, match="facade"):
        call(store)
    # Nothing was done on the store's behalf.
    assert KeyVal("facade").get("k") == 1


KEY_METHODS: dict[str, Callable[[KeyVal, Any], Any]] = {
    "set": lambda s, k: s.set(k, 1),
    "get": lambda s, k: s.get(k),
    "get_default": lambda s, k: s.get_default(k),
    "pop": lambda s, k: s.pop(k),
    "pop_default": lambda s, k: s.pop_default(k),
    "exists": lambda s, k: s.exists(k),
    "delete": lambda s, k: s.delete(k, ignore_keyerror=True),
    "getitem": lambda s, k: s[k],
    "setitem": lambda s, k: s.__setitem__(k, 1),
    "delitem": lambda s, k: s.__delitem__(k),
}


@pytest.mark.parametrize("call", KEY_METHODS.values(), ids=KEY_METHODS.keys())
@pytest.mark.parametrize("key", [1, b"k", None, ("k",)], ids=repr)
def test_non_str_keys_raise_typeerror(
    store: KeyVal, call: Callable[[KeyVal, Any], Any], key: Any
) -> None:
    with pytest.raises(TypeError, match="str"):
        call(store, key)
    # A str key with the same text as a non-str one was not created either.
    assert len(store) == 0


def test_non_str_keys_are_simply_not_contained(store: KeyVal) -> None:
    # As with a dict, membership of an unhashable-for-us key is False, not an error.
    store.set("1", 1)
    assert 1 not in store
    assert b"1" not in store
    assert "1" in store


@pytest.mark.parametrize("name", [1, b"store", None, ["store"]], ids=repr)
def test_non_str_store_names_raise_typeerror(name: Any) -> None:
    with pytest.raises(TypeError, match="str"):
        KeyVal(name)
    with pytest.raises(TypeError, match="str"):
        KeyVal.connect(name)


def test_dict_protocol(store: KeyVal) -> None:
    store["a"] = 1
    store["b"] = "two"
    assert store["a"] == 1
    assert "a" in store
    assert "z" not in store
    assert len(store) == 2
    assert sorted(store) == ["a", "b"]
    assert sorted(store.keys()) == ["a", "b"]
    assert sorted(store.items()) == [("a", 1), ("b", "two")]
    assert sorted(store.values(), key=str) == [1, "two"]
    del store["a"]
    assert "a" not in store
    with pytest.raises(KeyError):
        del store["a"]
    with pytest.raises(KeyError):
        store["a"]


def test_setitem_overwrites(store: KeyVal) -> None:
    store["k"] = 1
    store["k"] = 2
    assert store["k"] == 2
    assert len(store) == 1


def test_len_and_iteration_see_only_this_store(store: KeyVal) -> None:
    store["mine"] = 1
    KeyVal("other")["theirs"] = 2
    assert len(store) == 1
    assert list(store) == ["mine"]
    assert list(store.items()) == [("mine", 1)]


def test_keys_and_items_filter_by_prefix(store: KeyVal) -> None:
    for key in ("user:1", "user:2", "users", "group:1", "use"):
        store[key] = key.upper()
    assert sorted(store.keys("user:")) == ["user:1", "user:2"]
    assert sorted(store.keys("user")) == ["user:1", "user:2", "users"]
    assert sorted(store.items("group")) == [("group:1", "GROUP:1")]
    assert list(store.keys("nothing")) == []
    assert sorted(store.keys("")) == ["group:1", "use", "user:1", "user:2", "users"]


def test_keys_and_items_stream_page_by_page(
    store: KeyVal,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    monkeypatch.setattr(keyval_backend.cache, "PAGE_SIZE", 3)
    expected = {f"k{i:02}": i for i in range(10)}
    for key, value in expected.items():
        store[key] = value
    keys = store.keys()
    assert iter(keys) is keys  # an iterator, not a list read up front
    # Ten keys in pages of three: 3 + 3 + 3 + 1, one query a page.
    with django_assert_num_queries(4):
        assert sorted(keys) == sorted(expected)
    with django_assert_num_queries(4):
        assert dict(store.items()) == expected
    with django_assert_num_queries(1):
        first = next(iter(store))
    assert first in expected


def test_a_page_exactly_full_still_ends(store: KeyVal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyval_backend.cache, "PAGE_SIZE", 3)
    for i in range(6):
        store[f"k{i}"] = i
    assert sorted(store) == [f"k{i}" for i in range(6)]
    assert dict(store.items("k")) == {f"k{i}": i for i in range(6)}


def test_iteration_past_the_default_page_size(store: KeyVal, kv: KeyValCache) -> None:
    # More than PAGE_SIZE (1000) keys, unpatched: written in one statement.
    count = keyval_backend.cache.PAGE_SIZE + 5
    kv.store("facade").set_many({f"k{i}": i for i in range(count)})
    assert len(store) == count
    assert len(set(store.keys())) == count
    assert sum(store.values()) == sum(range(count))


def test_timeout(store: KeyVal, frozen: FrozenDateTimeFactory) -> None:
    store.set("brief", 1, timeout=10)
    store.set("forever", 2)
    frozen.tick(9)
    assert store.get("brief") == 1
    frozen.tick(1)
    with pytest.raises(KeyError):
        store.get("brief")
    assert "brief" not in store
    assert store.get("forever") == 2
    assert list(store) == ["forever"]


def test_works_without_a_keyval_cache_configured(db: None, use_caches: Callable[..., None]) -> None:
    use_caches()  # only "default", a LocMemCache
    store = KeyVal("plain")
    assert store.set("k", 1) is True
    assert store.get("k") == 1
    assert isinstance(caches["keyval"], KeyValCache)
    assert caches["keyval"].store("plain").get("k") == 1


def test_a_keyval_cache_of_another_backend_is_refused(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": "django.core.cache.backends.locmem.LocMemCache"})
    with pytest.raises(ImproperlyConfigured, match="KeyValCache"):
        KeyVal("x").set("k", 1)


def test_facade_writes_are_read_through_the_cache_api(kv: KeyValCache) -> None:
    KeyVal("shared").set("k", {"v": 1})
    assert caches["keyval"].store("shared").get("k") == {"v": 1}
    # Only in that store.
    assert caches["keyval"].get("k") is None


def test_cache_api_writes_are_read_through_the_facade(kv: KeyValCache) -> None:
    caches["keyval"].store("shared").set("k", [1, 2])
    caches["keyval"].store("shared").set("n", 5)
    store = KeyVal("shared")
    assert store.get("k") == [1, 2]
    assert store.get("n") == 5
    assert sorted(store) == ["k", "n"]
    with pytest.raises(KeyError):
        KeyVal("default-not").get("k")


def test_the_default_store_of_the_cache_is_keyval_default(kv: KeyValCache) -> None:
    kv.set("k", 1)
    assert KeyVal("default").get("k") == 1


def test_key_prefix_and_version_apply_to_both_doors(
    db: None, use_caches: Callable[..., None], entry: Callable[..., Entry]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "pfx", "VERSION": 3})
    store = KeyVal("s")
    store.set("k", "facade")
    backend = caches["keyval"].store("s")
    row = entry(backend, "k")
    assert bytes(row.key) == b"pfx:3:k"
    assert backend.get("k") == "facade"
    assert backend.get("k", version=3) == "facade"
    assert backend.get("k", version=1) is None
    backend.set("j", "cache")
    assert store.get("j") == "cache"
    assert sorted(store) == ["j", "k"]
    # Another version's key is not this facade's.
    backend.set("v1", "old", version=1)
    assert "v1" not in store
    assert len(store) == 2


def test_key_prefix_separates_facades_on_one_table(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "one"})
    KeyVal("s").set("k", 1)
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "two"})
    assert not KeyVal("s").exists("k")
    assert list(KeyVal("s")) == []


def test_key_function_applies_to_both_doors(
    db: None, use_caches: Callable[..., None], entry: Callable[..., Entry]
) -> None:
    use_caches(keyval=DOTTED_KEYS)
    store = KeyVal("s")
    store.set("a:b", 1)
    backend = caches["keyval"].store("s")
    assert bytes(entry(backend, "a:b").key) == b".1.a:b"
    assert backend.get("a:b") == 1
    backend.set("c", 2)
    assert store.get("c") == 2
    assert sorted(store) == ["a:b", "c"]
    assert sorted(store.items("a")) == [("a:b", 1)]
    assert len(store) == 2


def test_listing_with_a_key_function_needs_its_reverse(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "KEY_FUNCTION": f"{__name__}.dotted_key"})
    store = KeyVal("s")
    store.set("k", 1)
    assert store.get("k") == 1
    with pytest.raises(ImproperlyConfigured, match="REVERSE_KEY_FUNCTION"):
        list(store.keys())


def test_listing_with_a_key_function_sees_only_its_version_and_prefix(
    db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval=DOTTED_KEYS)
    store = KeyVal("s")
    store.set("mine", 1)
    backend = caches["keyval"].store("s")
    backend.set("other-version", 2, version=2)
    elsewhere = KeyValCache("s", {"KEY_FUNCTION": dotted_key, "KEY_PREFIX": "elsewhere"})
    elsewhere.set("other-prefix", 3)
    # As with the default key function, a listing is of this prefix and version only.
    assert list(store) == ["mine"]
    assert len(store) == 1
    assert list(backend.iter_keys(version=2)) == ["other-version"]
