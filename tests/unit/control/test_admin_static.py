"""The dashboard's files as the admin listener finds them: by exact name, in the package."""

from wharf.control.admin.static import assets, lookup


def test_the_index_and_its_assets_are_in_the_package() -> None:
    index = lookup("/dashboard/")
    assert index is not None and index[1].startswith("text/html")
    assert index == lookup("/dashboard/index.html")
    names = set(assets())
    assert {"index.html", "app.js", "api.js", "stats.js", "chart.js", "dom.js", "tables.js",
            "style.css", "icon.svg"} <= names
    js = lookup("/dashboard/app.js")
    assert js is not None and js[1].startswith("text/javascript")


def test_only_the_packages_files_are_found() -> None:
    for path in ("/dashboard/../__init__.py", "/dashboard/__init__.py", "/dashboard/nope.js",
                 "/dashboard", "/index.html", "/dashboard/%2e%2e/app.js"):
        assert lookup(path) is None, path
