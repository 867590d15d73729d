"""dashboard.app: its options, the host names it answers to, and the page's resources."""

from __future__ import annotations

import panel as pn
import pytest

from dashboard import views
from dashboard.app import DEFAULT_FOLDER, LOOPBACK_HOSTS, create_app, host_allowed, options
from tests.conftest import ROOT


def test_runs_folder_from_args_then_env_then_default(tmp_path):
    assert options(["--runs", str(tmp_path)], {"BNN_RUNS_DIR": "/elsewhere"})["folder"] == tmp_path
    assert options([], {"BNN_RUNS_DIR": str(tmp_path)})["folder"] == tmp_path
    assert options([], {})["folder"] == DEFAULT_FOLDER == ROOT / "cached_traces"


def test_allowed_hosts_are_loopback_plus_the_named_ones():
    assert options([], {})["allowed_hosts"] == LOOPBACK_HOSTS
    named = options(["--allow-host", "bnn.example.org", "--allow-host", "proxy:8443"], {})["allowed_hosts"]
    assert named == (*LOOPBACK_HOSTS, "bnn.example.org", "proxy:8443")


@pytest.mark.parametrize("host", ["127.0.0.1:5006", "localhost", "LocalHost:80", "[::1]:5006", "bnn.example.org:443",
                                  "proxy:8443"])
def test_hosts_answered(host):
    assert host_allowed(host, (*LOOPBACK_HOSTS, "bnn.example.org", "proxy:8443"))


@pytest.mark.parametrize("host", ["evil.test:5006", "127.0.0.1.evil.test", "localhost.evil.test:5006", "proxy:8444",
                                  "", ":5006", "127.0.0.1:port", "[::1", "evil.test@127.0.0.1"])
def test_hosts_refused(host):
    # a DNS-rebinding page sends its own name; malformed headers are refused, not guessed at
    assert not host_allowed(host, (*LOOPBACK_HOSTS, "bnn.example.org", "proxy:8443"))


def test_page_asks_for_no_outside_font():
    template = create_app(ROOT / "cached_traces")
    css = template.design().resolve_resources()["css"].values()
    assert not [url for url in css if url.startswith(("http:", "https:", "//"))]


def test_refusal_names_the_host_as_text():
    view = views.refused_view("<img src=x onerror=alert(1)>:80", LOOPBACK_HOSTS)
    assert "&#60;img" in view.object and "<img" not in view.object and isinstance(view, pn.pane.Markdown)
