"""Re-sign stored values under the current ``SECRET_KEY``.

After a key rotation, values signed under an old key stay readable only while
that key is in ``SECRET_KEY_FALLBACKS``. Re-signing rewrites each such row's
signature (the payload is unchanged) so the fallback can then be removed.
Rows that verify under no configured key are reported and left as they are:
they may be evidence of tampering, and nothing here can vouch for them.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Q

from . import signing
from .codec import INT_FORMAT
from .exceptions import TamperedValue
from .identity import decode_name, encode_name, name_hash
from .serializers import SAFE_FORMATS

# Rows read (and rewritten, in one transaction) per page.
PAGE_SIZE = 500
# Formats whose rows carry no signature.
UNSIGNED_FORMATS = frozenset({INT_FORMAT, *SAFE_FORMATS})


@dataclass
class ResignResult:
    resigned: int = 0
    current: int = 0  # already signed with the current SECRET_KEY
    unreadable: int = 0  # signed with no configured key (or truncated): left as is


def resign(
    database: str,
    store: str | None = None,
    *,
    on_unreadable: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> ResignResult:
    """Re-sign every live signed row of ``store`` (every store when None).

    Pages of rows are read in id order; each page's rewrites run in one
    transaction, and a row is only rewritten if it has not been written since
    it was read (same ``writes`` counter), so a concurrent write is never
    overwritten with an older value.
    """
    from .models import Entry

    rows = Entry.objects.using(database).exclude(format__in=UNSIGNED_FORMATS)
    if store is not None:
        rows = rows.filter(store_hash=name_hash(encode_name(store)))
    rows = rows.filter(Q(expires__isnull=True) | Q(expires__gt=time.time()))
    columns = ("id", "store", "key", "store_hash", "key_hash", "format", "value", "writes")
    result = ResignResult()
    last = 0
    done = 0
    while True:
        page = list(rows.filter(id__gt=last).order_by("id").values_list(*columns)[:PAGE_SIZE])
        with transaction.atomic(using=database):
            for row_id, store_bytes, key_bytes, store_hash, key_hash, tag, value, writes in page:
                identity = (store_hash + key_hash).encode()
                stored = bytes(value)
                try:
                    payload = signing.verify(identity, tag, stored)
                except TamperedValue as exc:
                    result.unreadable += 1
                    if on_unreadable is not None:
                        on_unreadable(
                            f"store {decode_name(store_bytes)!r}, key "
                            f"{decode_name(key_bytes)!r}: {exc}"
                        )
                    continue
                fresh = signing.sign(identity, tag, payload)
                if hmac.compare_digest(fresh, stored):
                    result.current += 1
                    continue
                # The logical value is the same: ``writes`` stays as it is. A row
                # written since it was read is signed with the current key already.
                unchanged = Entry.objects.using(database).filter(id=row_id, writes=writes)
                if unchanged.update(value=fresh):
                    result.resigned += 1
                else:
                    result.current += 1
        done += len(page)
        if progress is not None:
            progress(done)
        if len(page) < PAGE_SIZE:
            return result
        last = page[-1][0]
