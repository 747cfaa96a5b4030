"""The file provider's scan: each file a source, bad content refused, the last good kept."""

from pathlib import Path

from wharf.config.model import AppConfig
from wharf.registry.providers.file import FileProvider

APPS = {"web": AppConfig(command=("x",), name="web")}


def provider(tmp_path: Path) -> tuple[FileProvider, Path]:
    confd = tmp_path / "conf.d"
    confd.mkdir()
    return FileProvider(confd, APPS, tmp_path), confd


def test_each_toml_file_is_a_source_in_name_order(tmp_path: Path):
    files, confd = provider(tmp_path)
    (confd / "20-b.toml").write_text('[[routes]]\npath = "/b"\napp = "web"\n')
    (confd / "10-a.toml").write_text('[services.api]\nservers = ["127.0.0.1:9001"]\n'
                                     '[[routes]]\npath = "/a"\nservice = "api"\n')
    (confd / "notes.txt").write_text("not read")
    update = files.scan()
    assert [s.name for s in update.sources] == ["conf.d/10-a.toml", "conf.d/20-b.toml"]
    assert update.sources[0].services["api"].servers[0].port == 9001
    assert update.issues == ()


def test_a_bad_file_is_reported_and_its_last_good_content_stays(tmp_path: Path):
    files, confd = provider(tmp_path)
    path = confd / "a.toml"
    path.write_text('[[routes]]\npath = "/a"\napp = "web"\n')
    good = files.scan().sources
    path.write_text('[[routes]]\npath = "a"\napp = "api"\nretries = 2\nservice = "x"\n'
                    '[services."b c"]\napp = "web"\nservers = ["127.0.0.1:1"]\n')
    update = files.scan()
    assert update.sources == good
    assert [(i.source, i.key, i.kind) for i in update.issues] == [
        ("conf.d/a.toml", "routes[0].path", "invalid"),
        ("conf.d/a.toml", "routes[0]", "invalid"),
        ("conf.d/a.toml", "routes[0].app", "invalid"),
        ("conf.d/a.toml", "services.b c", "invalid"),
        ("conf.d/a.toml", "services.b c", "invalid"),
        ("conf.d/a.toml", "routes[0].retries", "invalid")]


def test_invalid_toml_is_reported_and_a_file_never_good_is_not_in_force(tmp_path: Path):
    files, confd = provider(tmp_path)
    (confd / "a.toml").write_text("[[routes]\n")
    update = files.scan()
    assert update.sources == () and update.known == ("conf.d/a.toml",)
    assert "invalid TOML" in update.issues[0].message


def test_a_removed_file_takes_its_routes_away(tmp_path: Path):
    files, confd = provider(tmp_path)
    (confd / "a.toml").write_text('[[routes]]\npath = "/a"\napp = "web"\n')
    assert files.scan().sources
    (confd / "a.toml").unlink()
    assert files.scan().sources == () and files.scan().known == ()


def test_a_missing_directory_is_an_issue_not_an_error(tmp_path: Path):
    update = FileProvider(tmp_path / "nowhere", APPS, tmp_path).scan()
    assert update.sources == ()
    assert update.issues[0].source == "nowhere" and "no such directory" in \
        update.issues[0].message


def test_a_change_of_apps_checks_every_file_again(tmp_path: Path):
    files, confd = provider(tmp_path)
    (confd / "a.toml").write_text('[[routes]]\npath = "/a"\napp = "api"\n')
    assert files.scan().issues
    files.reconfigure({**APPS, "api": AppConfig(command=("y",), name="api")})
    update = files.scan()
    assert not update.issues and update.sources[0].routes[0].app == "api"
