"""``hooklab serve``, ``replay`` and ``ledger``: messages, exit codes and effects."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from hooklab.cli import main
from hooklab.ledger import Incoming, SqliteLedger
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier
from hooklab.spec import example_path

SECRET = "whsec_" + base64.b64encode(b"cli-runtime-test-key-012345678").decode()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Path]:
    """A ledger with one done, one dead and one pending event."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [
                Incoming("shop", f"evt_{n}", "order.created", b'{"n": 1}', {})
                for n in range(3)
            ]
        )
        done, dead = ledger.claim("w", now=2e9, lease_s=5, limit=2)
        ledger.finish(done, now=2e9)
        ledger.fail(dead, now=2e9, error="RuntimeError: target down", retry_at=None)
    yield path


def _invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        ((), {}, "Tell hooklab serve what to receive"),
        (("--source", "shop:standard-webhooks:UNSET_VAR"), {}, "UNSET_VAR"),
        (("--source", f"shop:standard-webhooks:{SECRET}"), {}, "NAME:SCHEME"),
        (("--source", "shop:no-such-scheme:S"), {"S": SECRET}, "Unknown signature"),
        ((str(example_path()),), {}, "ACME_SHOP_WEBHOOK_SECRET"),
        (
            ("--source", "shop:standard-webhooks:S", "--action", "nope"),
            {"S": SECRET},
            "not one of: record",
        ),
        (
            ("--source", "shop:standard-webhooks:S", "--allow", "x/y"),
            {"S": SECRET},
            "CIDR",
        ),
    ],
    ids=[
        "nothing-to-serve",
        "unset-secret-variable",
        "secret-pasted-instead-of-name",
        "unknown-scheme",
        "engagement-secret-unset",
        "bad-action",
        "bad-allowlist",
    ],
)
def test_serve_user_mistake_exits_2_with_teaching_message(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    code, output = _invoke("serve", *args, env=env)

    assert code == 2
    assert expected in output
    assert SECRET not in output
    assert "Traceback" not in output


def test_serve_help_gives_examples() -> None:
    code, output = _invoke("serve", "--help")

    assert code == 0
    assert "hooklab serve --source shop:standard-webhooks:SHOP_SECRET" in output


def test_ledger_stats_counts_by_status(seeded: Path) -> None:
    code, output = _invoke("ledger", "stats", "--ledger", str(seeded), "--json")

    assert code == 0
    counts = json.loads(output)
    assert (counts["done"], counts["dead"], counts["pending"]) == (1, 1, 1)


def test_ledger_list_status_filter_shows_error_and_times(seeded: Path) -> None:
    code, output = _invoke(
        "ledger", "list", "--ledger", str(seeded), "--status", "dead"
    )

    assert code == 0
    [line] = output.splitlines()
    fields = line.split("\t")
    assert fields[:5] == ["shop", "evt_1", "order.created", "dead", "1"]
    assert fields[5].endswith("Z")
    assert fields[7] == "RuntimeError: target down"


def test_ledger_list_json_has_every_field(seeded: Path) -> None:
    code, output = _invoke("ledger", "list", "--ledger", str(seeded), "--json")

    rows = [json.loads(line) for line in output.splitlines()]
    assert code == 0
    assert {"source", "event_id", "status", "attempts", "received_at"} <= set(rows[0])
    assert len(rows) == 3


def test_ledger_missing_file_exits_2(tmp_path: Path) -> None:
    code, output = _invoke("ledger", "stats", "--ledger", str(tmp_path / "none.db"))

    assert code == 2
    assert "does not exist" in output


def test_replay_dead_with_action_processes_it_once(seeded: Path) -> None:
    code, output = _invoke(
        "replay", "--ledger", str(seeded), "--dead", "--action", "record"
    )

    assert code == 0
    assert "Requeued 1 event(s)" in output
    assert "record only logs each event" in output  # it replaces the workflows
    with SqliteLedger(seeded) as ledger:
        [revived] = ledger.events(event_id="evt_1")
        stats = ledger.stats()
    assert (revived.status, revived.attempts) == ("done", 1)
    assert stats["dead"] == 0
    # What it failed with before the replay is kept.
    assert revived.note == (
        "Replayed after 1 attempt(s); the last failed: RuntimeError: target down"
    )


def test_replay_dead_without_action_leaves_them_pending(seeded: Path) -> None:
    code, output = _invoke("replay", "--ledger", str(seeded), "--dead")

    assert code == 0
    assert "hooklab serve" in output
    with SqliteLedger(seeded) as ledger:
        assert ledger.stats()["pending"] == 2


def test_replay_id_with_action_runs_that_event_and_no_other(seeded: Path) -> None:
    """evt_2 is pending in the ledger too: a replay of evt_1 must not touch it."""
    code, output = _invoke(
        "replay", "--ledger", str(seeded), "--id", "evt_1", "--action", "record"
    )

    assert code == 0, output
    assert "Processed 1 attempt(s) of the 1 chosen event(s): 1 done" in output
    with SqliteLedger(seeded) as ledger:
        states = {state.event_id: state.status for state in ledger.events()}
    assert states == {"evt_0": "done", "evt_1": "done", "evt_2": "pending"}


def test_replay_id_nobody_has_is_a_usage_error_not_zero_requeued(
    seeded: Path,
) -> None:
    code, output = _invoke("replay", "--ledger", str(seeded), "--id", "evt_nope")

    assert code == 2
    assert "has the id 'evt_nope'" in output and "hooklab ledger list" in output
    assert "Requeued" not in output


def test_replay_with_unknown_action_changes_nothing(seeded: Path) -> None:
    code, output = _invoke(
        "replay", "--ledger", str(seeded), "--dead", "--action", "bogus"
    )

    assert code == 2
    assert "Requeued" not in output and "bogus" in output
    with SqliteLedger(seeded) as ledger:
        assert ledger.stats()["dead"] == 1


def test_replay_action_leaves_other_sources_due_events_alone(tmp_path: Path) -> None:
    """A failed event of another source, due again, was once marked done unrun."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [
                Incoming("shop", "s1", "order.created", b"{}", {}),
                Incoming("crm", "c1", "contact.created", b"{}", {}),
            ]
        )
        now = time.time()
        for claim in ledger.claim("w", now=now, lease_s=5, limit=2):
            retry = now - 1 if claim.delivery.source == "crm" else None  # due again
            ledger.fail(claim, now=now, error="down", retry_at=retry)

    code, output = _invoke(
        "replay", "--ledger", str(path), "--dead", "--action", "record"
    )

    assert code == 0, output
    with SqliteLedger(path) as ledger:
        states = {state.event_id: state.status for state in ledger.events()}
    assert states == {"s1": "done", "c1": "failed"}


def test_replay_quarantined_event_is_left_alone_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [Incoming("shop", "bad", None, b"not json", {}, "The body is not JSON.")]
        )

    code, output = _invoke(
        "replay", "--ledger", str(path), "--id", "bad", "--action", "record"
    )

    assert code == 0
    assert "Requeued 0 event(s)" in output
    assert "Left 1 quarantined event(s) as they are" in output
    with SqliteLedger(path) as ledger:
        [state] = ledger.events(event_id="bad")
    assert (state.status, state.attempts) == ("quarantined", 0)


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--dead", "--id", "evt_1"),
        ("--since", "yesterday-ish"),
        ("--since", "nan"),
        ("--since", "inf"),
    ],
    ids=["no-choice", "two-choices", "bad-time", "nan", "inf"],
)
def test_replay_bad_choice_exits_2(seeded: Path, args: tuple[str, ...]) -> None:
    code, output = _invoke("replay", "--ledger", str(seeded), *args)

    assert code == 2
    assert "--" in output


def test_replay_to_staging_redelivers_signed_afresh(
    seeded: Path, tmp_path: Path
) -> None:
    with SqliteLedger(tmp_path / "staging.db") as staging:
        sources = {"shop": Source("shop", Verifier("standard-webhooks", SECRET))}
        with serve_in_thread(create_app(sources, staging)) as server:
            code, output = _invoke(
                "replay",
                "--ledger",
                str(seeded),
                "--since",
                "1970-01-01T00:00",
                "--to",
                f"{server.url}/hooks/shop",
                "--secret-env",
                "STAGING_SECRET",
                env={"STAGING_SECRET": SECRET},
            )
        received = sorted(d.event_id for d in staging.deliveries())

    assert code == 0, output
    assert "Re-delivered 3 of 3" in output
    assert received == ["evt_0", "evt_1", "evt_2"]
    assert SECRET not in output


@pytest.mark.parametrize("scheme", ["twilio", "twilio-json", "square", "hubspot"])
def test_replay_to_signs_the_url_it_posts_to_for_url_signing_schemes(
    seeded: Path, tmp_path: Path, scheme: str
) -> None:
    with SqliteLedger(tmp_path / "staging.db") as staging:
        sources = {"shop": Source("shop", Verifier(scheme, "staging-key"))}
        with serve_in_thread(create_app(sources, staging)) as server:
            code, output = _invoke(
                "replay", "--ledger", str(seeded), "--since", "0",
                "--to", f"{server.url}/hooks/shop?tenant=7", "--scheme", scheme,
                "--secret-env", "STAGING_SECRET", env={"STAGING_SECRET": "staging-key"},
            )  # fmt: skip
        stored = staging.count()

    assert code == 0, output
    assert "Re-delivered 3 of 3" in output  # each answered 2xx: its signature held
    assert stored >= 1  # identical bodies may share one event under some id rules


@pytest.mark.parametrize(
    "tail", ["/hooks/shop?x=\u00e9&y=%2F", "/hooks/%73hop"], ids=["query", "path"]
)
def test_replay_to_a_url_with_encoded_parts_verifies_at_the_receiver(
    seeded: Path, tmp_path: Path, tail: str
) -> None:
    """The URL is signed as it travels (percent-encoded), as the receiver sees it."""
    with SqliteLedger(tmp_path / "staging.db") as staging:
        sources = {"shop": Source("shop", Verifier("square", "staging-key"))}
        with serve_in_thread(create_app(sources, staging)) as server:
            code, output = _invoke(
                "replay", "--ledger", str(seeded), "--id", "evt_1",
                "--to", f"{server.url}{tail}", "--scheme", "square",
                "--secret-env", "STAGING_SECRET", env={"STAGING_SECRET": "staging-key"},
            )  # fmt: skip

    assert code == 0, output
    assert "Re-delivered 1 of 1" in output


def test_replay_to_goes_on_past_an_id_no_header_can_carry(tmp_path: Path) -> None:
    """One event whose id is not ASCII fails on its own; the others are delivered."""
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [
                Incoming("shop", "evt_\u00e9t\u00e9", "order.created", b"{}", {}),
                Incoming("shop", "evt_plain", "order.created", b"{}", {}),
            ]
        )

    with SqliteLedger(tmp_path / "staging.db") as staging:
        sources = {"shop": Source("shop", Verifier("standard-webhooks", SECRET))}
        with serve_in_thread(create_app(sources, staging)) as server:
            code, output = _invoke(
                "replay", "--ledger", str(path), "--since", "0",
                "--to", f"{server.url}/hooks/shop", "--secret-env", "STAGING_SECRET",
                env={"STAGING_SECRET": SECRET},
            )  # fmt: skip
        received = [d.event_id for d in staging.deliveries()]

    assert code == 1
    assert "Re-delivered 1 of 2" in output
    assert "characters an HTTP header cannot carry" in output
    assert received == ["evt_plain"]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:99999/x", "http://[::1", "ftp://127.0.0.1/x", "127.0.0.1:8000"],
)
def test_replay_to_a_url_that_cannot_be_used_exits_2_naming_it(
    seeded: Path, url: str
) -> None:
    code, output = _invoke(
        "replay", "--ledger", str(seeded), "--dead", "--to", url,
        "--secret-env", "STAGING_SECRET", env={"STAGING_SECRET": SECRET},
    )  # fmt: skip

    assert code == 2, output
    assert "Invalid value for '--to'" in output
    with SqliteLedger(seeded) as ledger:
        assert ledger.stats()["dead"] == 1


def test_replay_to_without_secret_env_exits_2(seeded: Path) -> None:
    code, output = _invoke(
        "replay", "--ledger", str(seeded), "--dead", "--to", "http://127.0.0.1:9/x"
    )

    assert code == 2
    assert "--secret-env" in output


def _foreign_database(path: Path) -> bytes:
    """Another application's SQLite file that happens to have a deliveries table."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, address TEXT)")
    conn.execute("INSERT INTO deliveries (address) VALUES ('1 Example Street')")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "args",
    [("ledger", "stats"), ("ledger", "list"), ("replay", "--dead")],
    ids=["stats", "list", "replay"],
)
@pytest.mark.parametrize("kind", ["foreign", "empty", "text"])
def test_a_file_that_is_no_ledger_is_refused_and_left_unchanged(
    tmp_path: Path, args: tuple[str, ...], kind: str
) -> None:
    path = tmp_path / "other.db"
    if kind == "foreign":
        before = _foreign_database(path)
    else:
        path.write_bytes(b"" if kind == "empty" else b"shipping notes\n")
        before = path.read_bytes()

    code, output = _invoke(*args, "--ledger", str(path))

    assert code == 2, output
    assert "not a hooklab ledger" in output and "left it unchanged" in output
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]


def test_serve_refuses_another_applications_database(tmp_path: Path) -> None:
    path = tmp_path / "shipping.db"
    before = _foreign_database(path)

    code, output = _invoke(
        "serve",
        "--ledger",
        str(path),
        "--source",
        "shop:github:SOME_SECRET",
        env={"SOME_SECRET": "s3cret-value"},
    )

    assert code == 2
    assert "not a hooklab ledger" in output
    assert path.read_bytes() == before


def test_ledger_stats_reads_while_a_writer_holds_the_ledger(seeded: Path) -> None:
    """Read-only: no schema check, no write lock, so a busy writer does not block it."""
    import sqlite3

    writer = sqlite3.connect(seeded, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:  # opening for writing would fail here with "database is locked"
        code, output = _invoke("ledger", "stats", "--ledger", str(seeded), "--json")
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    assert code == 0, output
    assert json.loads(output)["dead"] == 1


def test_ledger_list_escapes_what_a_sender_put_in_ids_and_types(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    hostile_id = "evt_\x1b[2J\x1b]0;title\x07\tnext\nline\u202eevil"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [Incoming("shop", hostile_id, "charge.\x1b[31mx", b"{}", {})]
        )

    code, output = _invoke("ledger", "list", "--ledger", str(path))

    assert code == 0
    [row] = output.splitlines()  # the newline did not split the row
    assert len(row.split("\t")) == 8  # nor the tab add a column
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output
    assert "evt_\\x1b[2J\\x1b]0;title\\x07\\tnext\\nline\\u202eevil" in row


def test_warnings_reach_stderr_with_their_fields(seeded: Path) -> None:
    """A failing action is retried; the warning says which event, not just a name."""
    hooklab = Path(sys.executable).with_name("hooklab")  # as a user runs it
    args = ["replay", "--ledger", str(seeded), "--dead", "--action", "json:loads"]
    result = subprocess.run(
        [str(hooklab), *args], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    retry = next(line for line in result.stderr.splitlines() if "event." in line)
    assert retry.startswith("WARNING hooklab.processing event.")
    assert "event_id=evt_1" in retry


def test_replay_of_many_events_says_how_far_it_has_got(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [Incoming("shop", f"e{n}", "t", b"{}", {}) for n in range(1200)]
        )

    result = CliRunner().invoke(
        main, ["replay", "--ledger", str(path), "--since", "0", "--action", "record"]
    )

    assert result.exit_code == 0, result.output
    assert "1200 done" in result.stdout
    assert result.stderr.splitlines()[-3:] == [
        "  ... 500 of 1,200 chosen events run",
        "  ... 1,000 of 1,200 chosen events run",
        "  ... 1,200 of 1,200 chosen events run",
    ]


def test_a_fifo_is_refused_at_once_not_opened(tmp_path: Path) -> None:
    """Opening a FIFO blocks until a writer comes: it must never be opened."""
    fifo = tmp_path / "ledger.db"
    os.mkfifo(fifo)

    code, output = _invoke("ledger", "stats", "--ledger", str(fifo))

    assert code == 2
    assert "is not a regular file" in output


def test_ledger_stats_reads_a_ledger_in_a_folder_it_cannot_write(
    seeded: Path, tmp_path: Path
) -> None:
    """A ledger copied off a server into a read-only folder can still be inspected."""
    folder = tmp_path / "copy"
    folder.mkdir()
    copy = folder / "ledger.db"
    copy.write_bytes(seeded.read_bytes())
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        code, output = _invoke("ledger", "stats", "--ledger", str(copy), "--json")
    finally:
        folder.chmod(0o755)

    assert code == 0, output
    assert json.loads(output)["dead"] == 1


def _two_sources_one_id(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [
                Incoming("shop", "same-1", "order.created", b"{}", {}),
                Incoming("crm", "same-1", "contact.created", b"{}", {}),
            ]
        )
    return path


def test_replay_id_shared_by_two_sources_asks_which(tmp_path: Path) -> None:
    path = _two_sources_one_id(tmp_path)

    code, output = _invoke("replay", "--ledger", str(path), "--id", "same-1")

    assert code == 2
    assert "several sources (crm, shop); name the one to replay with --source" in output


def test_replay_id_with_source_runs_that_one(tmp_path: Path) -> None:
    path = _two_sources_one_id(tmp_path)

    code, output = _invoke(
        "replay", "--ledger", str(path), "--id", "same-1", "--source", "crm",
        "--action", "record",
    )  # fmt: skip

    assert code == 0, output
    with SqliteLedger(path) as ledger:
        states = {(s.source, s.status) for s in ledger.events()}
    assert states == {("crm", "done"), ("shop", "pending")}


@pytest.mark.parametrize(
    "args",
    [("--id", ""), ("--dead", "--to", "http://127.0.0.1:9/x", "--action", "record")],
    ids=["empty-id", "to-and-action"],
)
def test_replay_usage_mistakes_change_nothing(
    seeded: Path, args: tuple[str, ...]
) -> None:
    code, output = _invoke("replay", "--ledger", str(seeded), *args)

    assert code == 2, output
    with SqliteLedger(seeded) as ledger:
        assert ledger.stats()["dead"] == 1


def test_replay_interrupted_hands_back_what_it_had_not_finished(tmp_path: Path) -> None:
    """Ctrl-C mid-run: nothing is left 'processing' with an attempt used up."""
    (tmp_path / "slowaction.py").write_text(
        "import time\n\ndef run(event):\n    time.sleep(0.5)\n"
    )
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.record_many(
            [Incoming("shop", f"e{n}", "t", b"{}", {}) for n in range(8)]
        )
    hooklab = Path(sys.executable).with_name("hooklab")
    args = [
        "replay",
        "--ledger",
        str(path),
        "--since",
        "0",
        "--action",
        "slowaction:run",
    ]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen(
        [str(hooklab), *args], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # interrupt once the run is under way
        with SqliteLedger(path, read_only=True) as watching:
            if watching.stats()["done"] >= 1:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert "claimed event(s) not finished are pending again" in stderr
    with SqliteLedger(path) as ledger:
        stats = ledger.stats()
        states = ledger.events()
    assert stats["processing"] == 0
    assert stats["done"] + stats["pending"] == 8
    assert all(s.attempts == 0 for s in states if s.status == "pending")
