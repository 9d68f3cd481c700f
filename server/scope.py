"""Who may read and write which district's records: one table, used by API and sync."""

from __future__ import annotations

from dataclasses import dataclass

from server.models import Role, User

# role -> (reads every district?, may write?)
ROLE_RULES: dict[str, tuple[bool, bool]] = {
    Role.ADMIN: (True, True),
    Role.COORDINATOR: (True, True),
    Role.SUPERVISOR: (True, False),
    Role.DISTRICT_HEAD: (False, True),
    Role.GROUP_LEADER: (False, True),
    Role.FIELD_CADRE: (False, True),
}


@dataclass(frozen=True)
class Scope:
    """The districts a user reads and writes; `None` means every district."""

    read: frozenset[int] | None
    write: frozenset[int] | None

    def can_read(self, district_id: int | None) -> bool:
        return self.read is None or district_id in self.read

    def can_write(self, district_id: int | None) -> bool:
        return self.write is None or district_id in self.write


def scope_of(user: User) -> Scope:
    """The scope of a user: own district unit plus the districts their work group serves."""
    reads_all, may_write = ROLE_RULES.get(user.role, (False, False))
    if reads_all:
        read: frozenset[int] | None = None
    else:
        ids = set()
        if user.district_id is not None:
            ids.add(user.district_id)
        if user.role != Role.DISTRICT_HEAD and user.work_group is not None:
            ids.update(d.id for d in user.work_group.districts)
        read = frozenset(ids)
    write = read if may_write else frozenset()
    return Scope(read=read, write=write)
