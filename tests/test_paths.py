"""Where the logbook lives."""

from pathlib import Path

from logbook.db.paths import default_db_path, resolve_db_path


def test_default_is_at_the_git_root(git_repo):
    sub = git_repo / "a" / "b"
    sub.mkdir(parents=True)
    assert default_db_path(sub) == git_repo / ".logbook" / "logbook.db"


def test_default_outside_git_is_the_current_folder(tmp_path):
    assert default_db_path(tmp_path) == tmp_path.resolve() / ".logbook" / "logbook.db"


def test_option_beats_environment_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGBOOK_DB", str(tmp_path / "env.db"))
    assert resolve_db_path(str(tmp_path / "opt.db")) == tmp_path / "opt.db"
    assert resolve_db_path(None) == tmp_path / "env.db"
    monkeypatch.delenv("LOGBOOK_DB")
    assert resolve_db_path(None, cwd=tmp_path) == Path(tmp_path).resolve() / ".logbook" / "logbook.db"
