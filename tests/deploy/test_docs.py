"""The operations docs: the restore procedure's SQL does what docs/deploy.md says."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.conftest import Phone, create_user, visit_fields
from tests.deploy.conftest import REPO

DEPLOY = REPO / "docs" / "deploy.md"


def sql_blocks() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DEPLOY.read_text(), re.S)


def test_rotating_the_epoch_after_a_restore_resets_every_phone(app, client) -> None:
    """Run the documented statement for this database; a phone's old cursor then resets."""
    from server.extensions import db

    create_user("cadre1", "field_cadre", "510104", "WG01")
    phone = Phone(client, "cadre1")
    phone.push(
        [phone.mutation("create", "visit", "00000000-0000-4000-8000-0000000000b1", visit_fields())]
    )
    changes, cursor = phone.pull_all()
    assert len(changes) == 1
    again = phone.get(f"/api/sync/pull?cursor={cursor}").json
    assert again["reset"] is False and again["changes"] == []

    marker = "gen_random_uuid" if db.engine.dialect.name == "postgresql" else "randomblob"
    (statement,) = [b.strip() for b in sql_blocks() if marker in b]
    before = db.session.execute(text("SELECT epoch FROM sync_state")).scalar_one()
    db.session.execute(text(statement))
    db.session.commit()
    after = db.session.execute(text("SELECT epoch FROM sync_state")).scalar_one()
    assert after != before and 16 <= len(after) <= 32

    answer = phone.get(f"/api/sync/pull?cursor={cursor}").json
    assert answer["reset"] is True
    assert [c["entity"] for c in answer["changes"]] == ["visit"]  # downloads its scope again


def test_docs_name_commands_that_exist() -> None:
    from server.cli import main

    page = DEPLOY.read_text()
    commands = re.findall(r"(?:`|migrate )fieldvisit ([a-z][a-z-]+)", page)
    assert {"init-db", "serve", "create-user"} <= set(commands)
    for command in commands:
        assert command in main.commands, command


def test_readme_and_docs_link_only_to_files_in_the_repository() -> None:
    """A fresh clone has nothing next to it: every link resolves inside the repository."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or an anchor on the same page
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(REPO), f"{page.name}: {target} is outside the repository"
            assert path.exists(), f"{page.name}: {target} does not exist"
    readme = (REPO / "README.md").read_text()
    assert "../" not in readme
    # the commands are in .venv: the README says to activate it
    assert "source .venv/bin/activate" in readme
