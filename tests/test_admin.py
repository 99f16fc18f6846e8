"""The admin of Entry, through Django's test client: every view, permission
and action, and the promise that unverified values are never loaded."""

from __future__ import annotations

import json
import pickle
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from freezegun.api import FrozenDateTimeFactory

from keyval_backend import KeyVal, signing
from keyval_backend import admin as entry_admin
from keyval_backend.cache import KeyValCache
from keyval_backend.identity import encode_name, name_hash, printable
from keyval_backend.models import Entry
from keyval_backend.serializers import BaseSerializer
from keyval_backend.transfer import entry_line

KEYVAL_BACKEND = "keyval_backend.cache.KeyValCache"
CHANGELIST = "admin:keyval_backend_entry_changelist"
SUMMARY = "admin:keyval_backend_entry_summary"

# Set by Detonator when unpickled: a pickle that must never be loaded.
DETONATED: list[str] = []


def detonate(note: str) -> None:
    DETONATED.append(note)


class Detonator:
    def __reduce__(self) -> tuple[Any, ...]:
        return (detonate, ("unpickled",))


@pytest.fixture(autouse=True)
def fast_passwords(settings: Any) -> None:
    """admin_client's user gets a password; hashing it properly costs a
    second a test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def no_detonation() -> Iterator[None]:
    DETONATED.clear()
    yield
    assert DETONATED == [], "an unverified pickle was loaded"


def row(store: str, key: str) -> Entry:
    """The row of a made key (":1:name") in a store."""
    return Entry.objects.get(
        store_hash=name_hash(encode_name(store)), key_hash=name_hash(encode_name(key))
    )


def changelist(**params: str) -> str:
    query = "&".join(f"{name}={value}" for name, value in params.items())
    return reverse(CHANGELIST) + (f"?{query}" if query else "")


def change_url(entry: Entry) -> str:
    return reverse("admin:keyval_backend_entry_change", args=[entry.pk])


def store_param(store: str) -> str:
    return name_hash(encode_name(store))


def page(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def result_keys(response: Any) -> list[str]:
    """The keys listed on a changelist page, in order."""
    return [entry.key_name for entry in response.context["cl"].result_list]


def tamper(entry: Entry, value: bytes) -> None:
    Entry.objects.filter(pk=entry.pk).update(value=value)


@pytest.fixture
def staff(db: None) -> Callable[..., Client]:
    """A client logged in as a staff user with the given Entry permissions
    (``"view"``, ``"add"``, ``"change"``, ``"delete"``)."""

    def make(*actions: str) -> Client:
        user = User.objects.create_user(f"staff-{'-'.join(actions) or 'none'}", is_staff=True)
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="keyval_backend",
                codename__in=[f"{action}_entry" for action in actions],
            )
        )
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def shop(kv: KeyValCache) -> KeyValCache:
    return kv.store("shop")


# -- the changelist ---------------------------------------------------------------------


def test_changelist_shows_decoded_names_values_types_and_sizes(
    admin_client: Client, kv: KeyValCache, suite_serializer: BaseSerializer
) -> None:
    kv.store("café ☕").set("menu", {"espresso": 2.5, "tags": ["hot"]})
    kv.set("count", 42)
    html = page(admin_client.get(changelist(expired="all")))
    assert "café ☕" in html
    assert ":1:menu" in html
    assert "<code>{&quot;espresso&quot;:2.5,&quot;tags&quot;:[&quot;hot&quot;]}</code>" in html
    assert "<code>42</code>" in html
    assert f'title="format {suite_serializer.format_tag}">dict</span>' in html
    assert 'title="format int">int</span>' in html
    menu = row("café ☕", ":1:menu")
    assert f'<td class="field-size_display">{len(bytes(menu.value))}</td>' in html
    assert '<td class="field-size_display">8</td>' in html


@pytest.mark.pickle_only("a pickled set")
def test_changelist_shows_values_json_cannot_hold(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("numbers", {1, 2, 3})
    html = page(admin_client.get(changelist(expired="all")))
    assert "<code>{1, 2, 3}</code>" in html
    assert 'title="format pickle.1">set</span>' in html
    numbers = row("default", ":1:numbers")
    assert f'<td class="field-size_display">{len(bytes(numbers.value))}</td>' in html


def test_long_values_are_truncated_and_large_ones_not_loaded(
    admin_client: Client, kv: KeyValCache, django_assert_max_num_queries: Any
) -> None:
    kv.set("long", "x" * 500)
    kv.set("huge", "y" * (entry_admin.values.PREVIEW_MAX_BYTES + 1))
    response = admin_client.get(changelist())
    html = page(response)
    assert "<code>&quot;xxxxxxxxxx" in html
    assert "x" * 100 not in html
    huge = row("default", ":1:huge")
    assert f"{len(bytes(huge.value))} bytes (too large to preview)" in html
    by_key = {entry.key_name: entry for entry in response.context["cl"].result_list}
    assert by_key[":1:huge"].preview is None
    assert bytes(by_key[":1:long"].preview) == bytes(row("default", ":1:long").value)


def test_expiry_is_relative_and_expired_entries_are_hidden_by_default(
    frozen: FrozenDateTimeFactory, admin_client: Client, kv: KeyValCache
) -> None:
    kv.set("soon", 1, timeout=200)
    kv.set("later", 1, timeout=3 * 86400)
    kv.set("forever", 1)
    kv.set("gone", 1, timeout=10)
    frozen.tick(130)
    response = admin_client.get(changelist())
    html = page(response)
    assert result_keys(response) == [":1:forever", ":1:later", ":1:soon"]
    assert "in 1 min" in html
    assert "in 2 days" in html
    assert '<td class="field-expires_display">never</td>' in html
    expired = admin_client.get(changelist(expired="yes"))
    assert result_keys(expired) == [":1:gone"]
    assert '<span class="keyval-expired">expired 2 min ago</span>' in page(expired)
    every = admin_client.get(changelist(expired="all"))
    assert result_keys(every) == [":1:forever", ":1:gone", ":1:later", ":1:soon"]


def test_created_and_updated_are_datetimes(
    frozen: FrozenDateTimeFactory, admin_client: Client, kv: KeyValCache, settings: Any
) -> None:
    settings.TIME_ZONE = "UTC"
    kv.set("k", 1)
    frozen.tick(3600)
    kv.set("k", 2)
    html = page(admin_client.get(changelist()))
    assert '<td class="field-created_display">Jan. 1, 2030, midnight</td>' in html
    assert '<td class="field-updated_display">Jan. 1, 2030, 1 a.m.</td>' in html


def test_expiry_filter(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("persistent", 1)
    kv.set("expiring", 1, timeout=60)
    assert result_keys(admin_client.get(changelist(expiry="persistent"))) == [":1:persistent"]
    assert result_keys(admin_client.get(changelist(expiry="expiring"))) == [":1:expiring"]
    assert len(result_keys(admin_client.get(changelist()))) == 2


def test_store_filter_lists_stores_by_name_and_filters_by_hash(
    admin_client: Client, kv: KeyValCache
) -> None:
    for store in ("b-store", "a-store", "😀 emoji", "with\x00nul"):
        kv.store(store).set("k", store)
        kv.store(store).set("other", 1)
    response = admin_client.get(changelist())
    spec = next(s for s in response.context["cl"].filter_specs if s.parameter_name == "store")
    assert [name for _, name in spec.lookup_choices] == [
        "a-store", "b-store", "with\\x00nul", "😀 emoji",
    ]  # fmt: skip
    assert spec.lookup_choices[0][0] == store_param("a-store")
    filtered = admin_client.get(changelist(store=store_param("😀 emoji")))
    assert {entry.store_name for entry in filtered.context["cl"].result_list} == {"😀 emoji"}
    assert result_keys(filtered) == [":1:k", ":1:other"]


def test_store_filter_is_bounded(
    admin_client: Client, kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entry_admin.filters, "MAX_STORES", 3)
    for number in range(5):
        kv.store(f"store{number}").set("k", 1)
    response = admin_client.get(changelist())
    spec = next(s for s in response.context["cl"].filter_specs if s.parameter_name == "store")
    assert [name for _, name in spec.lookup_choices] == ["store0", "store1", "store2"]
    beyond = admin_client.get(changelist(store=store_param("store4")))
    assert {entry.store_name for entry in beyond.context["cl"].result_list} == {"store4"}


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("100%", [":1:100%"]),
        ("a_b", [":1:a_b"]),
        ("%", [":1:100%"]),
        ("_", [":1:a_b"]),
        ("ABC", [":1:ABC"]),
        ("abc", [":1:abc"]),
        ("café", [":1:café"]),
        ("  100%  ", [":1:100%"]),
        ("'; --", [":1:'; --"]),
        ("nothing", []),
    ],
)
def test_search_is_an_exact_substring_of_the_key(
    admin_client: Client, kv: KeyValCache, term: str, expected: list[str]
) -> None:
    for key in ("100%", "1000", "a_b", "axb", "ABC", "abc", "café", "cafe", "'; --"):
        kv.set(key, 1)
    response = admin_client.get(reverse(CHANGELIST), {"q": term})
    assert result_keys(response) == expected


def cells(html: str, column: str) -> list[str]:
    """The cells of a changelist column, in order, as HTML."""
    return re.findall(rf'<t[hd] class="field-{column}[^"]*">(.*?)</t[hd]>', html, re.DOTALL)


def dotted_key(key: str, key_prefix: str, version: int) -> str:
    return f"{key}@{version}"


def undotted_key(made: str) -> str:
    return made.rpartition("@")[0]


def test_keys_are_shown_as_written_with_version_and_prefix(
    admin_client: Client, db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(
        keyval={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "site", "VERSION": 3},
        older={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "old:site"},
    )
    KeyVal("prefs").set("profile", {"theme": "dark"})
    caches["older"].store("prefs").set("a:1:b", 1)
    html = page(admin_client.get(changelist()))
    keys = [re.sub(r"<[^>]+>", "", cell) for cell in cells(html, "key_display")]
    assert keys == ["a:1:b", "profile"]
    assert 'title="stored as site:3:profile"' in html
    assert cells(html, "version_display") == ["1", "3"]
    assert cells(html, "prefix_display") == ["old:site", "site"]
    # The change form says how the key is stored.
    details = page(admin_client.get(change_url(row("prefs", "site:3:profile"))))
    assert '<div class="readonly">site:3:profile</div>' in details
    assert '<div class="readonly">3</div>' in details


def test_keys_of_a_custom_key_function(
    admin_client: Client, db: None, use_caches: Callable[..., None]
) -> None:
    custom = {"BACKEND": KEYVAL_BACKEND, "KEY_FUNCTION": f"{__name__}.dotted_key"}
    use_caches(keyval=custom)
    KeyVal("s").set("k", 1)
    html = page(admin_client.get(changelist()))
    # Without a REVERSE_KEY_FUNCTION, the key as stored, and no version.
    assert [re.sub(r"<[^>]+>", "", cell) for cell in cells(html, "key_display")] == ["k@1"]
    assert cells(html, "version_display") == ["-"]
    assert result_keys(admin_client.get(reverse(CHANGELIST), {"q": "k@"})) == ["k@1"]
    reverse_key = {"REVERSE_KEY_FUNCTION": f"{__name__}.undotted_key"}
    use_caches(keyval={**custom, "OPTIONS": reverse_key})
    html = page(admin_client.get(changelist()))
    assert [re.sub(r"<[^>]+>", "", cell) for cell in cells(html, "key_display")] == ["k"]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        # The key as written: not its prefix or version.
        ("1", [":1:a1", ":1:user:1:x"]),
        ("user:1", [":1:user:1:x"]),
        ("b", [":1:b"]),
        # The key as stored.
        (":1:b", [":1:b"]),
        (":1:", [":1:a1", ":1:b", ":1:user:1:x"]),
        (":2:", []),
    ],
)
def test_search_matches_the_key_as_written(
    admin_client: Client, kv: KeyValCache, term: str, expected: list[str]
) -> None:
    for key in ("a1", "b", "user:1:x"):
        kv.set(key, 1)
    assert result_keys(admin_client.get(reverse(CHANGELIST), {"q": term})) == expected


def test_search_with_a_key_prefix(
    admin_client: Client, db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "KEY_PREFIX": "si:te", "VERSION": 2})
    for key in ("site", "x2"):
        caches["keyval"].set(key, 1)
    search = lambda term: result_keys(admin_client.get(reverse(CHANGELIST), {"q": term}))  # noqa: E731
    assert search("si") == ["si:te:2:site"]
    assert search("2") == ["si:te:2:x2"]
    assert search("si:te:2:x") == ["si:te:2:x2"]


def test_search_stays_within_the_selected_store(admin_client: Client, kv: KeyValCache) -> None:
    kv.store("one").set("50%", 1)
    kv.store("two").set("50%", 2)
    response = admin_client.get(reverse(CHANGELIST), {"q": "50%", "store": store_param("two")})
    assert [entry.store_name for entry in response.context["cl"].result_list] == ["two"]


def test_ordering_is_store_then_key(admin_client: Client, kv: KeyValCache) -> None:
    kv.store("b").set("a", 1)
    kv.store("a").set("z", 1)
    kv.store("a").set("b", 1)
    response = admin_client.get(changelist())
    assert [(e.store_name, e.key_name) for e in response.context["cl"].result_list] == [
        ("a", ":1:b"), ("a", ":1:z"), ("b", ":1:a"),
    ]  # fmt: skip


def test_sorting_by_size(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("big", "x" * 100)
    kv.set("small", "x" * 10)  # longer than an int's 8 bytes, as JSON too
    kv.set("int", 1)
    size_column = entry_admin.EntryAdmin.list_display.index("size_display") + 1
    response = admin_client.get(changelist(o=str(size_column)))
    assert result_keys(response) == [":1:int", ":1:small", ":1:big"]


def test_changelist_queries_do_not_grow_with_rows(admin_client: Client, kv: KeyValCache) -> None:
    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            page(admin_client.get(changelist()))
        return [query["sql"] for query in captured.captured_queries]

    kv.set_many({f"key{n}": {"n": n} for n in range(3)})
    few = queries()
    kv.set_many({f"key{n}": {"n": n} for n in range(3, 60)})
    many = queries()
    assert len(few) == len(many)
    counts = [sql for sql in many if "COUNT(" in sql.upper()]
    assert len(counts) == 1
    assert "LIMIT" in counts[0].upper()


def test_count_stops_at_its_limit(
    admin_client: Client, kv: KeyValCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(entry_admin.changelist, "COUNT_LIMIT", 4)
    monkeypatch.setattr(entry_admin.EntryAdmin, "list_per_page", 2)
    kv.set_many({f"key{n}": n for n in range(7)})
    response = admin_client.get(changelist())
    cl = response.context["cl"]
    assert cl.capped
    assert cl.result_count == 4
    assert cl.paginator.num_pages == 2
    assert "Counting stops at 4 entries, and there" in page(response)
    narrowed = admin_client.get(reverse(CHANGELIST), {"q": "key1"})
    assert not narrowed.context["cl"].capped
    assert "Counting stops" not in page(narrowed)


def test_names_no_page_could_carry_are_shown_escaped(admin_client: Client, kv: KeyValCache) -> None:
    kv.store("lone\ud800").set("x\udfff", "lone")
    kv.store("nul\x00").set("k\x00", "nul")
    html = page(admin_client.get(changelist()))
    assert "lone\\ud800" in html
    assert ":1:x\\udfff" in html
    assert "nul\\x00" in html
    assert ":1:k\\x00" in html


@pytest.mark.parametrize(
    ("store", "key"), [("lone\ud800", "x\udfff"), ("nul\x00", "k\x00")], ids=["surrogate", "nul"]
)
def test_entries_with_odd_names_can_be_changed_and_deleted(
    admin_client: Client, kv: KeyValCache, store: str, key: str
) -> None:
    """Fails while Entry.__str__ returns the raw names: Django's admin puts
    str(entry) in the page title, its messages and LogEntry.object_repr, and
    neither a lone surrogate (UTF-8) nor NUL (PostgreSQL text) survives that."""
    kv.store(store).set(key, [1])
    entry = row(store, f":1:{key}")
    assert printable(f":1:{key}") in page(admin_client.get(change_url(entry)))
    response = edit(admin_client, entry, value_json="[2]")
    assert response.status_code == 302
    assert kv.store(store).get(key) == [2]
    delete = reverse("admin:keyval_backend_entry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert not kv.store(store).has_key(key)
    assert LogEntry.objects.count() == 2


def test_json_with_a_lone_surrogate_is_shown_escaped(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("odd", {"text": "x\udfff", "ok": "é"})
    html = page(admin_client.get(change_url(row("shop", ":1:odd"))))
    assert "\\udfff" in html
    assert "\\u00e9" in html


# -- values that do not verify ------------------------------------------------------------


@pytest.mark.pickle_only("the cache must read pickles for a pickle to be at risk")
def test_tampered_pickle_is_shown_as_unverified_and_never_loaded(
    admin_client: Client, kv: KeyValCache
) -> None:
    kv.set("evil", "placeholder")
    evil = row("default", ":1:evil")
    payload = pickle.dumps(Detonator())
    tamper(evil, b"\x00" * signing.SIGNATURE_SIZE + payload)
    size = signing.SIGNATURE_SIZE + len(payload)
    html = page(admin_client.get(changelist()))
    assert f"unverified ({size} bytes)" in html
    assert "signature mismatch" in html
    change = page(admin_client.get(change_url(evil)))
    assert f"unverified ({size} bytes)" in change
    assert 'name="value_json"' not in change
    assert DETONATED == []


@pytest.mark.pickle_only("writes a pickle")
def test_pickle_signed_with_another_key_is_unverified(
    admin_client: Client, kv: KeyValCache, settings: Any
) -> None:
    settings.SECRET_KEY = "some other key"
    kv.set("foreign", Detonator())
    settings.SECRET_KEY = "keyval-backend-tests-not-secret"
    assert "unverified (" in page(admin_client.get(changelist()))


def test_pickle_is_not_loaded_when_the_cache_does_not_unpickle(
    admin_client: Client, db: None, use_caches: Callable[..., None]
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "pickle"}})
    caches["keyval"].set("pickled", {1, 2})
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "json"}})
    html = page(admin_client.get(changelist()))
    assert "unverified (" in html
    assert "not readable by this cache" in html


def test_unknown_format_is_unverified(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("odd", "x")
    Entry.objects.filter(pk=row("default", ":1:odd").pk).update(format="custom:mystery")
    html = page(admin_client.get(changelist()))
    assert "unverified (" in html
    assert "?</span>" in html


# -- the store summary --------------------------------------------------------------------


def test_summary_counts_each_store_in_one_query(
    frozen: FrozenDateTimeFactory, admin_client: Client, kv: KeyValCache
) -> None:
    kv.store("a").set("x", "abc")
    kv.store("a").set("n", 7)
    kv.store("a").set("t", 1, timeout=10)
    kv.store("a").set("u", 1, timeout=1000)
    kv.store("b").set("y", 1)
    frozen.tick(60)
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse(SUMMARY))
    html = page(response)
    entry_queries = [q for q in captured.captured_queries if "keyval_backend_entry" in q["sql"]]
    assert len(entry_queries) == 1
    stores = {store["name"]: store for store in response.context["stores"]}
    a_size = len(bytes(row("a", ":1:x").value)) + 3 * 8
    assert stores["a"] == {
        "name": "a",
        "hash": store_param("a"),
        "entries": 4,
        "live": 3,
        "expiring": 1,
        "expired": 1,
        "size": a_size,
    }
    assert stores["b"]["entries"] == 1
    assert response.context["totals"]["entries"] == 5
    assert f"?store={store_param('a')}" in html


def test_summary_of_an_empty_table(admin_client: Client, kv: KeyValCache) -> None:
    assert "No entries." in page(admin_client.get(reverse(SUMMARY)))


def test_changelist_links_to_the_summary(admin_client: Client, kv: KeyValCache) -> None:
    assert reverse(SUMMARY) in page(admin_client.get(changelist()))


# -- changing an entry -----------------------------------------------------------------------


def change_data(**fields: Any) -> dict[str, Any]:
    return {"expiry": "never", "expires_in": "", **fields}


def form_data(client: Client, entry: Entry) -> dict[str, Any]:
    """What the change form of ``entry`` posts when saved untouched, the
    value as shown (and again as its hidden initial)."""
    form = client.get(change_url(entry)).context["adminform"].form
    data = {"expiry": form["expiry"].initial, "expires_in": ""}
    if "value_json" in form.fields:
        data["value_json"] = data["initial-value_json"] = form["value_json"].initial
    return data


def edit(client: Client, entry: Entry, **fields: Any) -> Any:
    """Open the change form of ``entry``, change ``fields`` and save."""
    return client.post(change_url(entry), {**form_data(client, entry), **fields})


def test_change_form_shows_the_value_as_pretty_json(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("cart", {"items": [1, 2], "note": "café"})
    html = page(admin_client.get(change_url(row("shop", ":1:cart"))))
    assert 'name="value_json"' in html
    assert "&quot;note&quot;: &quot;café&quot;" in html
    assert '<div class="readonly">shop</div>' in html
    assert '<div class="readonly">:1:cart</div>' in html


def test_change_writes_through_the_backend_and_logs(
    admin_client: Client, shop: KeyValCache, suite_serializer: BaseSerializer
) -> None:
    shop.set("cart", {"items": [1]})
    entry = row("shop", ":1:cart")
    response = edit(admin_client, entry, value_json='{"items": [1, 2], "paid": true}')
    assert response.status_code == 302
    assert shop.get("cart") == {"items": [1, 2], "paid": True}
    changed = row("shop", ":1:cart")
    assert changed.pk == entry.pk
    assert changed.format == suite_serializer.format_tag
    assert changed.writes == 2
    log = LogEntry.objects.get()
    assert log.action_flag == CHANGE
    assert log.object_id == str(entry.pk)
    assert "Value (JSON)" in log.get_change_message()


def test_change_uses_the_configured_serializer(
    admin_client: Client, use_caches: Callable[..., None], db: None
) -> None:
    use_caches(keyval={"BACKEND": KEYVAL_BACKEND, "OPTIONS": {"SERIALIZER": "json"}})
    cache = caches["keyval"]
    cache.set("doc", [1])
    entry = row("default", ":1:doc")
    edit(admin_client, entry, value_json="[1, 2]")
    assert row("default", ":1:doc").format == "json.1"
    assert cache.get("doc") == [1, 2]


def test_invalid_json_is_a_form_error_and_nothing_is_saved(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("cart", {"items": [1]})
    entry = row("shop", ":1:cart")
    for text in ("{bad", "[1, 2", "NaN", "", "{'single': 1}"):
        response = edit(admin_client, entry, value_json=text)
        html = page(response)
        assert "errornote" in html
        assert response.context["adminform"].form.errors["value_json"]
    assert "Enter valid JSON: Expecting property name enclosed in double quotes" in html
    assert row("shop", ":1:cart").writes == 1
    assert shop.get("cart") == {"items": [1]}
    assert not LogEntry.objects.exists()


def test_reformatted_json_is_no_change(admin_client: Client, shop: KeyValCache) -> None:
    shop.set("cart", {"a": 1})
    entry = row("shop", ":1:cart")
    edit(admin_client, entry, value_json='{\n    "a":   1\n}')
    assert row("shop", ":1:cart").writes == 1
    assert LogEntry.objects.get().get_change_message() == "No fields changed."


def test_json_types_are_kept(admin_client: Client, shop: KeyValCache) -> None:
    shop.set("v", 1)
    entry = row("shop", ":1:v")
    edit(admin_client, entry, value_json="true")
    assert shop.get("v") is True
    edit(admin_client, entry, value_json="null")
    assert shop.get("v", "missing") is None
    assert shop.has_key("v")


def test_expiry_kept_set_and_cleared(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", [1], timeout=300)
    entry = row("shop", ":1:k")
    expires = entry.expires
    html = page(admin_client.get(change_url(entry)))
    assert 'value="keep"' in html
    assert "Keep: expires in 5 min" in html
    frozen.tick(100)
    edit(admin_client, entry, value_json="[2]", expiry="keep")
    assert shop.get("k") == [2]
    assert row("shop", ":1:k").expires == pytest.approx(expires)
    edit(admin_client, entry, value_json="[2]", expiry="in", expires_in=60)
    assert shop.ttl("k") == pytest.approx(60, abs=1)
    edit(admin_client, entry, value_json="[2]", expiry="never")
    assert shop.ttl("k") is None
    assert 'value="keep"' not in page(admin_client.get(change_url(entry)))


def test_an_expiry_change_alone_does_not_rewrite_the_value(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", {"v": 1})
    entry = row("shop", ":1:k")
    shown = form_data(admin_client, entry)
    shop.set("k", {"v": 2})  # the application writes while the form is open
    response = admin_client.post(change_url(entry), {**shown, "expiry": "in", "expires_in": "60"})
    assert response.status_code == 302
    assert shop.get("k") == {"v": 2}
    assert shop.ttl("k") == pytest.approx(60, abs=1)


def test_an_expired_entry_is_brought_back_by_a_new_expiry(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", {"v": 1}, timeout=10)
    entry = row("shop", ":1:k")
    frozen.tick(20)
    assert "choose a new expiry" in page(edit(admin_client, entry))
    response = edit(admin_client, entry, expiry="never")
    assert response.status_code == 302
    assert shop.get("k") == {"v": 1}
    assert shop.ttl("k") is None


def test_expires_in_needs_seconds(admin_client: Client, shop: KeyValCache) -> None:
    shop.set("k", 1)
    entry = row("shop", ":1:k")
    for seconds in ("", "0", "-5", "soon", str(10**12)):
        response = edit(admin_client, entry, value_json="1", expiry="in", expires_in=seconds)
        assert response.context["adminform"].form.errors["expires_in"]
    assert shop.ttl("k") is None


def test_keep_on_an_expired_entry_is_an_error(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", 1, timeout=10)
    entry = row("shop", ":1:k")
    frozen.tick(20)
    response = edit(admin_client, entry, value_json="2", expiry="keep")
    assert "This entry has expired: choose a new expiry." in page(response)
    response = edit(admin_client, entry, value_json="2", expiry="never")
    assert response.status_code == 302
    assert shop.get("k") == 2


@pytest.mark.pickle_only("a tuple, which JSON stores as a list")
def test_non_json_value_is_read_only_but_its_expiry_can_change(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("tuple", (1, 2))
    entry = row("shop", ":1:tuple")
    html = page(admin_client.get(change_url(entry)))
    assert 'name="value_json"' not in html
    assert "A tuple is not a JSON value, so it is read-only here" in html
    assert "(1, 2)" in html
    response = edit(admin_client, entry, expiry="in", expires_in="90")
    assert response.status_code == 302
    assert shop.get("tuple") == (1, 2)
    assert shop.ttl("tuple") == pytest.approx(90, abs=1)
    assert row("shop", ":1:tuple").writes == 1
    assert "Expiry" in LogEntry.objects.get().get_change_message()


@pytest.mark.pickle_only("a tuple, which JSON stores as a list")
def test_expiry_of_an_expired_read_only_entry_cannot_change(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("tuple", (1, 2), timeout=10)
    entry = row("shop", ":1:tuple")
    frozen.tick(20)
    response = edit(admin_client, entry, expiry="never")
    assert "it can only be deleted" in page(response)
    assert row("shop", ":1:tuple").expires == entry.expires


def test_unverified_entry_expiry_can_change_without_loading_it(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("evil", 1.5)
    entry = row("shop", ":1:evil")
    tamper(entry, b"\x00" * 32 + pickle.dumps(Detonator()))
    response = edit(admin_client, entry, expiry="in", expires_in="30")
    assert response.status_code == 302
    assert row("shop", ":1:evil").expires is not None


def test_a_value_too_large_for_the_changelist_is_edited_in_full(
    admin_client: Client, shop: KeyValCache
) -> None:
    big = ["z" * 1000] * 100
    shop.set("big", big)
    assert json.loads(form_data(admin_client, row("shop", ":1:big"))["value_json"]) == big


# -- adding an entry --------------------------------------------------------------------------


def add_data(**fields: Any) -> dict[str, Any]:
    return {
        "store_name": "shop",
        "key_name": ":1:new",
        "value_json": '{"a": 1}',
        "expiry": "never",
        "expires_in": "",
        **fields,
    }


def test_add_form(admin_client: Client, kv: KeyValCache) -> None:
    html = page(admin_client.get(reverse("admin:keyval_backend_entry_add")))
    assert 'name="store_name"' in html
    assert 'value=":1:"' in html
    assert 'value="keep"' not in html


def test_add_writes_the_made_key_through_the_backend(
    admin_client: Client, shop: KeyValCache
) -> None:
    response = admin_client.post(
        reverse("admin:keyval_backend_entry_add"),
        add_data(key_name=":1:new key", expiry="in", expires_in="120"),
    )
    assert response.status_code == 302
    assert shop.get("new key") == {"a": 1}
    assert shop.ttl("new key") == pytest.approx(120, abs=2)
    entry = row("shop", ":1:new key")
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_id) == (ADDITION, str(entry.pk))
    assert log.object_repr == "shop: :1:new key"


def test_add_keeps_names_exactly(
    admin_client: Client, kv: KeyValCache, suite_serializer: BaseSerializer
) -> None:
    admin_client.post(
        reverse("admin:keyval_backend_entry_add"),
        add_data(store_name=" spaced café ", key_name="raw key, no prefix"),
    )
    assert row(" spaced café ", "raw key, no prefix").format == suite_serializer.format_tag


def test_add_refuses_bad_json_and_taken_keys(admin_client: Client, shop: KeyValCache) -> None:
    url = reverse("admin:keyval_backend_entry_add")
    response = admin_client.post(url, add_data(value_json="{oops"))
    assert response.context["adminform"].form.errors["value_json"]
    assert not Entry.objects.exists()
    shop.set("new", "old")
    response = admin_client.post(url, add_data())
    assert "This store already has an entry with this key" in page(response)
    assert shop.get("new") == "old"
    assert not LogEntry.objects.exists()


def test_add_over_an_expired_entry(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("new", "old", timeout=1)
    frozen.tick(5)
    response = admin_client.post(reverse("admin:keyval_backend_entry_add"), add_data())
    assert response.status_code == 302
    assert shop.get("new") == {"a": 1}


# -- deleting ------------------------------------------------------------------------------------


def test_delete_view_deletes_through_the_backend_and_logs(
    admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", 1)
    shop.set("other", 1)
    entry = row("shop", ":1:k")
    url = reverse("admin:keyval_backend_entry_delete", args=[entry.pk])
    assert "Are you sure" in page(admin_client.get(url))
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not shop.has_key("k")
    assert shop.has_key("other")
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_id) == (DELETION, str(entry.pk))


def test_delete_view_deletes_an_expired_entry(
    frozen: FrozenDateTimeFactory, admin_client: Client, shop: KeyValCache
) -> None:
    shop.set("k", 1, timeout=1)
    frozen.tick(5)
    entry = row("shop", ":1:k")
    url = reverse("admin:keyval_backend_entry_delete", args=[entry.pk])
    admin_client.post(url, {"post": "yes"})
    assert not Entry.objects.exists()


def action(client: Client, name: str, entries: list[Entry], **extra: str) -> Any:
    return client.post(
        changelist(expired="all"),
        {"action": name, "_selected_action": [e.pk for e in entries], **extra},
    )


def test_delete_selected_action(admin_client: Client, kv: KeyValCache) -> None:
    kv.store("a").set("x", 1)
    kv.store("b").set("y", 2)
    kv.store("b").set("z", 3)
    doomed = [row("a", ":1:x"), row("b", ":1:y")]
    confirm = action(admin_client, "delete_selected", doomed)
    assert "Are you sure" in page(confirm)
    done = action(admin_client, "delete_selected", doomed, post="yes")
    assert done.status_code == 302
    assert [e.key_name for e in Entry.objects.all()] == [":1:z"]
    assert sorted(LogEntry.objects.values_list("object_id", flat=True)) == sorted(
        str(e.pk) for e in doomed
    )


# -- purge and export actions ----------------------------------------------------------------------


def test_purge_expired_action_purges_every_store(
    frozen: FrozenDateTimeFactory, admin_client: Client, kv: KeyValCache
) -> None:
    kv.store("a").set("old", 1, timeout=5)
    kv.store("b").set("old", 1, timeout=5)
    kv.store("b").set("live", 1, timeout=500)
    kv.store("c").set("forever", 1)
    frozen.tick(10)
    response = action(admin_client, "purge_expired", [row("c", ":1:forever")])
    assert response.status_code == 302
    assert sorted(e.key_name for e in Entry.objects.all()) == [":1:forever", ":1:live"]
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Purged 2 expired entries."]
    log = LogEntry.objects.get()
    assert (log.action_flag, log.object_id) == (DELETION, None)
    assert log.get_change_message() == "Purged 2 expired entries."


def test_purge_is_bounded(
    frozen: FrozenDateTimeFactory,
    admin_client: Client,
    kv: KeyValCache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(entry_admin.actions, "PURGE_BATCH", 2)
    monkeypatch.setattr(entry_admin.actions, "PURGE_MAX_BATCHES", 2)
    kv.set_many({f"k{n}": n for n in range(5)}, timeout=5)
    kv.set("live", 1)
    frozen.tick(10)
    response = action(admin_client, "purge_expired", [row("default", ":1:live")])
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [
        "More expired entries remain: run the action again.",
        "Purged 4 expired entries.",
    ]
    assert Entry.objects.count() == 2
    action(admin_client, "purge_expired", [row("default", ":1:live")])
    assert Entry.objects.count() == 1


def test_purge_with_nothing_expired(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("live", 1)
    response = action(admin_client, "purge_expired", [row("default", ":1:live")])
    assert [str(m) for m in response.wsgi_request._messages] == ["Purged 0 expired entries."]
    assert not LogEntry.objects.exists()


def test_export_selected_as_json_lines(admin_client: Client, kv: KeyValCache) -> None:
    kv.store("a").set("doc", {"x": [1, "two"]})
    # A pickle line under pickle (not exact JSON), a list under json.
    kv.store("a").set("tuple", (1, 2), timeout=100)
    kv.store("b").set("n", 5)
    kv.store("b").set("skipped", 1)
    kv.store("b").set("evil", 1.5)
    tamper(row("b", ":1:evil"), b"\x00" * 32 + pickle.dumps(Detonator()))
    chosen = [row("a", ":1:doc"), row("a", ":1:tuple"), row("b", ":1:n"), row("b", ":1:evil")]
    response = action(admin_client, "export_json_lines", chosen)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    expected = [
        entry_line(bytes(e.store), bytes(e.key), e.format, bytes(e.value), e.number, e.expires)
        for e in chosen[:3]
    ]
    assert text == "".join(line + "\n" for line in expected)
    assert json.loads(text.splitlines()[0]) == {
        "store": "a", "key": ":1:doc", "expires": None, "value": {"x": [1, "two"]},
    }  # fmt: skip


# -- permissions --------------------------------------------------------------------------------


def action_names(response: Any) -> set[str]:
    return set(re.findall(r'<option value="(\w+)"', page(response))) - {""}


def test_superuser_has_every_action(admin_client: Client, kv: KeyValCache) -> None:
    kv.set("k", 1)
    assert action_names(admin_client.get(changelist())) == {
        "delete_selected", "purge_expired", "export_json_lines",
    }  # fmt: skip


def test_anonymous_users_are_sent_to_log_in(client: Client, kv: KeyValCache) -> None:
    kv.set("k", 1)
    for url in (changelist(), reverse(SUMMARY), change_url(row("default", ":1:k"))):
        response = client.get(url)
        assert response.status_code == 302
        assert "/admin/login/" in response["Location"]


def test_staff_without_permissions_see_nothing(
    staff: Callable[..., Client], kv: KeyValCache
) -> None:
    kv.set("k", 1)
    client = staff()
    entry = row("default", ":1:k")
    assert client.get(changelist()).status_code == 403
    assert client.get(reverse(SUMMARY)).status_code == 403
    assert client.get(change_url(entry)).status_code == 403
    assert client.post(change_url(entry), change_data(value_json="2")).status_code == 403
    assert kv.get("k") == 1


def test_view_only_staff_can_see_but_not_change(
    staff: Callable[..., Client], kv: KeyValCache
) -> None:
    kv.set("doc", {"a": 1})
    kv.set("list", [1])
    client = staff("view")
    entry = row("default", ":1:doc")
    listing = client.get(changelist())
    assert result_keys(listing) == [":1:doc", ":1:list"]
    assert action_names(listing) == {"export_json_lines"}
    assert "addlink" not in page(listing)
    assert client.get(reverse(SUMMARY)).status_code == 200
    html = page(client.get(change_url(entry)))
    assert 'name="value_json"' not in html
    assert "&quot;a&quot;: 1" in html
    assert 'name="_save"' not in html
    assert "Keep:" not in html
    assert client.post(change_url(entry), change_data(value_json="2")).status_code == 403
    assert client.get(reverse("admin:keyval_backend_entry_add")).status_code == 403
    assert client.post(reverse("admin:keyval_backend_entry_add"), add_data()).status_code == 403
    delete = reverse("admin:keyval_backend_entry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    for name in ("delete_selected", "purge_expired"):
        response = action(client, name, [entry], post="yes")
        assert response.status_code == 302
    assert kv.get("doc") == {"a": 1}
    export = action(client, "export_json_lines", [entry])
    assert export.status_code == 200
    assert not LogEntry.objects.exists()


@pytest.mark.pickle_only("a tuple, which JSON stores as a list")
def test_view_only_staff_are_told_why_a_value_is_read_only(
    staff: Callable[..., Client], kv: KeyValCache
) -> None:
    kv.set("tuple", (1,))
    html = page(staff("view").get(change_url(row("default", ":1:tuple"))))
    assert "A tuple is not a JSON value" in html
    assert 'name="value_json"' not in html


def test_change_without_delete_permission(staff: Callable[..., Client], kv: KeyValCache) -> None:
    kv.set("doc", {"a": 1})
    client = staff("view", "change")
    entry = row("default", ":1:doc")
    assert action_names(client.get(changelist())) == {"export_json_lines"}
    response = edit(client, entry, value_json='{"a": 2}')
    assert response.status_code == 302
    assert kv.get("doc") == {"a": 2}
    assert "deletelink" not in page(client.get(change_url(entry)))


def test_add_and_delete_permissions(staff: Callable[..., Client], kv: KeyValCache) -> None:
    client = staff("add", "delete", "view")
    response = client.post(reverse("admin:keyval_backend_entry_add"), add_data(store_name="s"))
    assert response.status_code == 302
    entry = row("s", ":1:new")
    assert action_names(client.get(changelist())) == {
        "delete_selected", "purge_expired", "export_json_lines",
    }  # fmt: skip
    assert client.post(change_url(entry), change_data(value_json="2")).status_code == 403
    delete = reverse("admin:keyval_backend_entry_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Entry.objects.exists()


def test_history_view_lists_admin_changes(admin_client: Client, shop: KeyValCache) -> None:
    shop.set("cart", [1])
    entry = row("shop", ":1:cart")
    edit(admin_client, entry, value_json="[1, 2]")
    history = reverse("admin:keyval_backend_entry_history", args=[entry.pk])
    assert "Changed Value (JSON)." in page(admin_client.get(history))
