"""The Python and Node examples of docs/api.md, extracted and run against a real parleyd."""

import os
import re
import shutil
import subprocess
import sys

import pytest

import apihelp
from apihelp import KEY1, Api

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "api.md")


def example(lang):
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"<!-- example: %s -->\n```\w+\n(.*?)\n```" % lang, text, re.S)
    assert m, "docs/api.md has no %s example" % lang
    return m.group(1)


def env_for(srv):
    env = dict(os.environ)
    env["PARLEY_API"] = "http://127.0.0.1:%d" % srv.api_port
    env["PARLEY_API_KEY"] = KEY1
    return env


def test_python_example(parley, tmp_path):
    srv = apihelp.start(parley, tmp_path)
    c = srv.client("reader")
    c.join("news")
    path = tmp_path / "example.py"
    path.write_text(example("python"))
    out = subprocess.run([sys.executable, str(path)], env=env_for(srv), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "published seq 1 - history has 1 messages" in out.stdout
    assert "refused: POST /api/publish: 400 bad_room" in out.stdout
    m = c.next_json()
    assert m["from"] == "backend" and m["data"] == {"text": "hello from Python"}


def test_node_example(parley, tmp_path):
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    srv = apihelp.start(parley, tmp_path)
    path = tmp_path / "example.mjs"
    path.write_text(example("node"))
    out = subprocess.run([node, str(path)], env=env_for(srv), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "broadcast seqs 1,1 - server " in out.stdout
    page = Api(srv).ok("GET", "/api/history?room=sport")
    assert page["messages"][0]["data"] == {"text": "hello from Node"}
