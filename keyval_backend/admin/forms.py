"""The add and change form of an entry: names as text, the value as JSON,
the expiry as a choice."""

from __future__ import annotations

import json
import time
from functools import cached_property
from typing import Any, ClassVar

from django import forms

from ..models import Entry
from ..transfer import strict_loads, to_json
from .store import entries, hashes, live
from .values import expiry_text, value_of


class JSONValueField(forms.CharField):
    """A value typed as JSON text, cleaned to the Python value.

    A change is a change of value, not of text: re-indenting the JSON does not
    rewrite the entry, while ``1`` to ``true`` does (their JSON differs).
    """

    widget = forms.Textarea(attrs={"rows": 10, "cols": 80, "spellcheck": "false"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strip=False, **kwargs)

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        try:
            return strict_loads(text)
        except ValueError as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            where = (
                f" (line {exc.lineno}, column {exc.colno})"
                if isinstance(exc, json.JSONDecodeError)
                else ""
            )
            raise forms.ValidationError(
                "Enter valid JSON: %(detail)s%(where)s.",
                code="invalid_json",
                params={"detail": detail, "where": where},
            ) from None

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return bool(to_json(strict_loads(initial or "")) != to_json(strict_loads(data or "")))
        except ValueError:
            return True


class EntryForm(forms.ModelForm):  # type: ignore[type-arg]
    """Add or change an entry through form fields that are not model fields:
    the names as text, the value as JSON, the expiry as a choice. The model
    fields themselves are never saved from here (see EntryAdmin.save_model)."""

    store_name = forms.CharField(
        label="Store",
        strip=False,
        initial="default",
        help_text="The store's name: a cache's LOCATION, or the name given to KeyVal().",
    )
    key_name = forms.CharField(
        label="Key",
        strip=False,
        initial=":1:",
        help_text=(
            "The key as stored, made by the cache's key function: with the default "
            'one, <code>:1:</code> and then the key, as cache.set("user", …) and '
            'KeyVal(…).set("user", …) store <code>:1:user</code>.'
        ),
    )
    # The value as the form showed it comes back with the post, so that a value
    # the application wrote meanwhile is not taken for the user's edit.
    value_json = JSONValueField(
        label="Value (JSON)",
        help_text='A JSON value: 42, "text", [1, 2], {"a": null}…',
        show_hidden_initial=True,
    )
    expiry = forms.ChoiceField(label="Expiry", widget=forms.RadioSelect)
    expires_in = forms.IntegerField(
        label="Expires in (seconds)",
        required=False,
        min_value=1,
        max_value=100 * 365 * 86400,
        help_text="Counted from the save.",
        widget=forms.NumberInput(attrs={"size": 10}),
    )

    KEEP, NEVER, IN = "keep", "never", "in"

    # Set by clean(), for EntryAdmin.save_model: where to write, and how.
    store: str
    key: str
    timeout: float | None
    expired: bool

    class Meta:
        model = Entry
        fields: ClassVar[list[str]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entry = self.instance
        self.adding = entry.pk is None
        choices = [(self.NEVER, "Never expires"), (self.IN, "Expires in:")]
        if self.adding:
            self.fields["expiry"].initial = self.NEVER
        else:
            del self.fields["store_name"], self.fields["key_name"]
            shown = value_of(entry, full=True)
            if shown.json is None:
                del self.fields["value_json"]
            else:
                text = shown.pretty_json()
                self.fields["value_json"].initial = text
                # As tall as the value, within reason.
                self.fields["value_json"].widget.attrs["rows"] = min(text.count("\n") + 3, 30)
            if entry.expires is not None:
                keep = f"Keep: {expiry_text(entry.expires, time.time())}"
                choices.insert(0, (self.KEEP, keep))
                self.fields["expiry"].initial = self.KEEP
            else:
                self.fields["expiry"].initial = self.NEVER
        self.fields["expiry"].choices = choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        now = time.time()
        entry = self.instance
        if self.adding and "store_name" in cleaned and "key_name" in cleaned:
            self.store = cleaned["store_name"]
            self.key = cleaned["key_name"]
            taken = entries().filter(live(now), **hashes(self.store, self.key)).exists()
            if taken:
                raise forms.ValidationError(
                    "This store already has an entry with this key: change that one.",
                    code="exists",
                )
        elif not self.adding:
            self.store, self.key = entry.store_name, entry.key_name
        expiry = cleaned.get("expiry")
        timeout: float | None = None
        if expiry == self.IN:
            timeout = cleaned.get("expires_in")
            if timeout is None:
                self.add_error("expires_in", "Give the number of seconds.")
        elif expiry == self.KEEP:
            timeout = (entry.expires or 0) - now
            if timeout <= 0:
                self.add_error("expiry", "This entry has expired: choose a new expiry.")
        self.expired = entry.expires is not None and entry.expires <= now
        if "value_json" not in self.fields and self.expired and self.has_changed():
            raise forms.ValidationError(
                "This entry has expired and its value cannot be edited here: "
                "it can only be deleted.",
                code="expired",
            )
        self.timeout = timeout
        return cleaned

    @cached_property
    def changed_data(self) -> list[str]:
        # Seconds typed next to another expiry choice are no change.
        changed: list[str] = super().changed_data
        if self.data.get(self.add_prefix("expiry")) != self.IN:
            changed = [name for name in changed if name != "expires_in"]
        return changed
