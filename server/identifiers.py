"""Checks and normalisation for Chinese identifiers: credit codes, ID numbers, phones.

Pure functions with no Flask or database import, shared by the server, sync and worker.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_CHARSET)}
_USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
_USCC_SHAPE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{18}$")

_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RIC_CHECK = "10X98765432"


def clean_code(value: str | None) -> str:
    """Upper-case, half-width, no spaces or dashes: how people type codes varies."""
    if not value:
        return ""
    value = unicodedata.normalize("NFKC", value).upper()
    return re.sub(r"[\s\-_]", "", value)


def uscc_check_char(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def uscc_shape_ok(code: str) -> bool:
    """18 characters from the code's alphabet (no I, O, Z, S, V)."""
    return bool(_USCC_SHAPE.match(code))


def uscc_is_valid(code: str | None) -> bool:
    """True when the code has the right shape and its check character matches."""
    code = clean_code(code)
    if not uscc_shape_ok(code):
        return False
    return uscc_check_char(code[:17]) == code[17]


def ric_normalise(number: str | None) -> str:
    """A resident ID number as 18 characters; 15-digit old numbers get "19" inserted.

    The check character of an upgraded 15-digit number is computed, as the
    public security bureau does when it re-issues the card.
    """
    number = clean_code(number)
    if re.fullmatch(r"\d{15}", number):
        body = number[:6] + "19" + number[6:]
        return body + ric_check_char(body)
    return number


def ric_check_char(first17: str) -> str:
    """The GB 11643-1999 check character."""
    total = sum(int(c) * w for c, w in zip(first17, _RIC_WEIGHTS, strict=True))
    return _RIC_CHECK[total % 11]


def ric_is_valid(number: str | None) -> bool:
    """Checksum and a plausible birth date only (region codes change; see DEDUP-NOTES)."""
    number = ric_normalise(number)
    if not re.fullmatch(r"\d{17}[\dX]", number):
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    return ric_check_char(number[:17]) == number[17]


def ric_keyed_hash(number: str, key: str) -> str:
    """HMAC-SHA256 of the normalised number: matchable, not reversible without the key."""
    return hmac.new(key.encode(), ric_normalise(number).encode(), hashlib.sha256).hexdigest()


def phone_normalise(phone: str | None) -> str:
    """A mainland mobile number in E.164 (+86…), or "" when it is not one."""
    digits = re.sub(r"\D", "", unicodedata.normalize("NFKC", phone or ""))
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) == 11 + len(prefix):
            digits = digits[len(prefix) :]
    if re.fullmatch(r"1[3-9]\d{9}", digits):
        return "+86" + digits
    return ""


def keyed_hash(purpose: str, value: str, key: str) -> str:
    """HMAC-SHA256 of `value` for one purpose ("phone", "name"...): equal values give
    equal hashes (so matching works), nothing readable is kept, and a purpose's hashes
    never collide with another's or with ric_keyed_hash's."""
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
