"""What the machine alone cannot prove, and what is kept off it: the key and the anchored head.

The key file (or a key from the secrets manager) is what makes records unforgeable; someone
who holds it can rewrite the log and its head consistently, and only a head kept elsewhere
(`gati audit head`, then `gati audit verify --expect-head`) catches that.
"""

import json
import os
import stat

import pytest
from audit_support import rechain, rows, write_log, write_rows
from typer.testing import CliRunner

from runtime.cli.common import open_state
from runtime.cli.main import app
from runtime.core.audit_chain import Anchor
from runtime.core.audit_head import Head, open_head, write_head
from runtime.core.audit_key import AuditKey, AuditKeyError, load_key_file
from runtime.core.audit_log import AuditLog, verify
from runtime.http.app import STATE


def gati(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def project(tmp_path, gati_home):
    root = tmp_path / "app"
    root.mkdir()
    return root


def test_head_and_expect_head_catch_a_rewrite_by_someone_holding_the_key(project, gati_home):
    # The key file is the limit of what the machine can prove: with it, the log and its head can
    # both be rewritten consistently. A head kept elsewhere (gati audit head) still catches it.
    path = gati_home / "audit.log"
    write_log(path, 4)
    anchor = gati("audit", "head", "--project", project)
    assert anchor.exit_code == 0
    seq, digest = anchor.stdout.strip().split(":")
    assert seq == "4" and digest == rows(path)[-1]["hash"]
    as_json = json.loads(gati("audit", "head", "--json", "--project", project).stdout)
    assert as_json == {"seq": 4, "hash": digest, "anchor": anchor.stdout.strip()}
    assert gati("audit", "verify", "--expect-head", anchor.stdout.strip(), "--project", project).exit_code == 0

    write_log(path, 2)  # more records later: the old anchor still holds
    assert gati("audit", "verify", "--expect-head", anchor.stdout.strip(), "--project", project).exit_code == 0

    # An attacker with the key rewrites record 2, re-signs every record after it, and the head.
    key = load_key_file(gati_home / "audit.key")
    records = rows(path)
    records[1]["decision"] = "deny"
    records = rechain(records, 1)
    for r in records[1:]:
        r["mac"] = key.mac(r["hash"])
    write_rows(path, records)
    fd = open_head(gati_home / "audit.head")
    write_head(fd, Head.sign(records[-1]["seq"], records[-1]["hash"], key))
    os.close(fd)
    assert verify(path).ok  # nothing on the machine can tell
    rewritten = gati("audit", "verify", "--expect-head", anchor.stdout.strip(), "--project", project)
    assert rewritten.exit_code == 1 and "differs from the expected head" in rewritten.stderr

    # With the key, cutting the log short and re-signing the head is as invisible, but for the anchor.
    write_rows(path, records[:3])
    fd = open_head(gati_home / "audit.head")
    write_head(fd, Head.sign(3, records[2]["hash"], key))
    os.close(fd)
    assert verify(path).ok
    too_short = verify(path, expect=Anchor(4, digest))
    assert not too_short.ok and "before the expected head" in too_short.problem


def test_expect_head_is_checked_for_form(project):
    bad = gati("audit", "verify", "--expect-head", "12:nothex", "--project", project)
    assert bad.exit_code == 1 and "is not SEQ:HASH" in bad.stderr and "fix:" in bad.stderr
    assert "Traceback" not in bad.output


def test_head_of_a_log_never_written_is_a_clear_error(project):
    result = gati("audit", "head", "--project", project)
    assert result.exit_code == 1 and "no audit head checkpoint" in result.stderr and "Traceback" not in result.output


def test_the_key_file_is_private_and_a_loose_one_is_refused(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path, 1)
    key = tmp_path / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and len(bytes.fromhex(key.read_text())) == 32
    os.chmod(key, 0o644)
    with pytest.raises(AuditKeyError) as raised:
        AuditLog(path)
    assert "chmod 600" in raised.value.fix


def test_a_record_checked_with_another_key_says_so(tmp_path):
    path = tmp_path / "audit.log"
    write_log(path, 3)
    (tmp_path / "audit.key").unlink()
    (tmp_path / "audit.head").unlink()
    result = verify(path)
    assert not result.ok and "no key to check it" in result.problem
    write_log(path, 1)  # a writer finding the key gone makes a new one, and says so in the log
    result = verify(path)
    assert not result.ok and result.broken_seq == 1 and "signed with key" in result.problem


# The key from the secrets manager ---------------------------------------------------------------


KEY = "k" * 40


@pytest.fixture
def keyed_project(tmp_path, gati_home, monkeypatch):
    root = tmp_path / "app"
    root.mkdir()
    (root / "handlers").mkdir()
    (root / "gati.toml").write_text('[audit]\nkey_secret = "audit_key"\n')
    monkeypatch.setenv("GATI_SECRET_AUDIT_KEY", KEY)
    return root


def test_a_configured_key_signs_and_verifies_and_no_key_file_is_made(keyed_project, gati_home, monkeypatch):
    with open_state(keyed_project) as state:
        state.audit.record(module="m", capability="env", target="X", decision="allow")
    assert not (gati_home / "audit.key").exists()
    assert gati("audit", "verify", "--project", keyed_project).exit_code == 0
    assert gati("audit", "head", "--project", keyed_project).exit_code == 0

    monkeypatch.setenv("GATI_SECRET_AUDIT_KEY", "x" * 40)  # the wrong key
    wrong = gati("audit", "verify", "--project", keyed_project)
    assert wrong.exit_code == 1 and "signed with key" in wrong.stderr

    monkeypatch.delenv("GATI_SECRET_AUDIT_KEY")
    missing = gati("audit", "verify", "--project", keyed_project)
    assert missing.exit_code == 1 and "'audit_key'" in missing.stderr and "GATI_SECRET_AUDIT_KEY" in missing.stderr
    assert "Traceback" not in missing.output
    assert gati("module", "list", "--project", keyed_project).exit_code == 0  # what never touches the log never needs the key

    monkeypatch.setenv("GATI_SECRET_AUDIT_KEY", "short")
    short = gati("audit", "verify", "--project", keyed_project)
    assert short.exit_code == 1 and "32 or more" in short.stderr


async def test_serve_signs_with_the_configured_key(keyed_project, gati_home, serve):
    client = await serve(keyed_project)
    state = client.app[STATE]
    assert state.audit_key == AuditKey(KEY.encode(), "secret 'audit_key'")
    state.audit.record(module="m", capability="env", target="X", decision="allow")
    assert not (gati_home / "audit.key").exists()
    assert verify(state.audit_path, state.audit_key).ok
    assert not verify(state.audit_path).ok  # without the configured key the records cannot be checked
