import base64
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.store.ledger import KeyRing, Ledger, entry_digest


def make_ledger(tmp_path, n=5):
    led = Ledger(tmp_path / "ledger.jsonl", KeyRing(tmp_path / "keys"))
    for i in range(n):
        led.append("alice", "note", None, {"i": i})
    return led


def lines(led):
    return led.path.read_text().splitlines()


def write(led, ls):
    led.path.write_text("\n".join(ls) + "\n")


def kinds(led):
    return {p.kind for p in led.check().problems}


def test_clean_ledger_checks_out_and_registers_key_first(tmp_path):
    led = make_ledger(tmp_path)
    res = led.check()
    assert res.problems == []
    assert res.entries == 6  # key.register + 5 notes
    first = json.loads(lines(led)[0])
    assert first["action"] == "key.register" and first["actor"] == "alice"
    assert res.head == led.head()[1] == json.loads(lines(led)[-1])["hash"]


def test_second_actor_gets_own_key(tmp_path):
    led = make_ledger(tmp_path, 1)
    led.append("bob", "note", None, {})
    acts = [json.loads(x)["action"] for x in lines(led)]
    assert acts == ["key.register", "note", "key.register", "note"]
    assert led.check().problems == []


def test_edited_entry_is_caught(tmp_path):
    led = make_ledger(tmp_path)
    ls = lines(led)
    ls[3] = ls[3].replace('"i":2', '"i":9')
    write(led, ls)
    probs = led.check().problems
    assert any(p.kind == "ledger.altered" and "line 4" in p.where for p in probs)


def test_deleted_entry_is_caught(tmp_path):
    led = make_ledger(tmp_path)
    ls = lines(led)
    del ls[2]
    write(led, ls)
    assert {"ledger.sequence", "ledger.chain"} <= kinds(led)


def test_reordered_entries_are_caught(tmp_path):
    led = make_ledger(tmp_path)
    ls = lines(led)
    ls[2], ls[3] = ls[3], ls[2]
    write(led, ls)
    assert {"ledger.sequence", "ledger.chain"} <= kinds(led)


def test_forged_signature_is_caught(tmp_path):
    led = make_ledger(tmp_path)
    ls = lines(led)
    e = json.loads(ls[4])
    sig = bytearray(base64.b64decode(e["sig"]))
    sig[0] ^= 1
    e["sig"] = base64.b64encode(bytes(sig)).decode()
    ls[4] = json.dumps(e)
    write(led, ls)
    probs = led.check().problems
    assert [p.kind for p in probs] == ["ledger.signature"]
    assert "line 5" in probs[0].where


def test_rewritten_entry_signed_by_outsider_is_caught(tmp_path):
    """An attacker edits an entry, recomputes its hash and signs with their own key."""
    led = make_ledger(tmp_path)
    ls = lines(led)
    e = json.loads(ls[2])
    e["details"] = {"i": 42}
    e["hash"] = entry_digest(e)
    e["sig"] = base64.b64encode(Ed25519PrivateKey.generate().sign(bytes.fromhex(e["hash"]))).decode()
    ls[2] = json.dumps(e)
    write(led, ls)
    found = kinds(led)
    assert "ledger.signature" in found and "ledger.chain" in found


def test_actor_cannot_sign_with_someone_elses_key(tmp_path):
    led = make_ledger(tmp_path, 1)
    ls = lines(led)
    e = json.loads(ls[1])
    e["actor"] = "mallory"
    e["hash"] = entry_digest(e)
    write(led, ls[:1] + [json.dumps(e)])
    assert "ledger.signature" in kinds(led)


def test_torn_tail_from_a_killed_append_is_repaired_and_recorded(tmp_path):
    led = make_ledger(tmp_path, 2)
    with open(led.path, "a") as fh:
        fh.write('{"seq": 3, "time": "2026-')  # process died mid-write
    torn = Ledger(led.path, led.keyring)
    res = torn.check()
    assert res.problems == [] and [w.kind for w in res.warnings] == ["ledger.torn"]
    # readers work before any repair: the fragment is not an event
    assert [e["seq"] for e in torn.entries()] == [0, 1, 2] and torn.head()[0] == 2
    led2 = Ledger(led.path, KeyRing(tmp_path / "keys"))
    led2.append("alice", "note", None, {"after": True})
    res = led2.check()
    assert res.problems == []
    acts = [e["action"] for e in led2.entries()]
    assert acts[-2:] == ["ledger.repair", "note"]
    assert list(led2.entries())[-2]["details"]["torn_bytes"] == len('{"seq": 3, "time": "2026-')


# -- key continuity: who may sign as whom ----------------------------------------------------------------------


def signed_entry(prev_line: str, actor: str, key, action: str, details: dict) -> str:
    """An entry an attacker with append access writes by hand: well formed, chained, signed with their key."""
    from custodes.store.ledger import canonical, fingerprint

    prev = json.loads(prev_line)
    pub = key.public_key()
    e = {"seq": prev["seq"] + 1, "time": "2026-12-01T00:00:00.000000Z", "actor": actor, "key": fingerprint(pub),
         "action": action, "subject": None, "details": details, "prev": prev["hash"]}
    e["hash"] = entry_digest(e)
    e["sig"] = base64.b64encode(key.sign(bytes.fromhex(e["hash"]))).decode()
    return canonical(e).decode()


def registration(key) -> dict:
    from custodes.store.ledger import fingerprint, public_key_bytes

    pub = key.public_key()
    return {"fingerprint": fingerprint(pub), "algorithm": "ed25519",
            "public_key": base64.b64encode(public_key_bytes(pub)).decode()}


def test_second_key_for_an_existing_actor_is_a_key_problem(tmp_path):
    """Finding 3: anyone who can append registers a fresh key under alice's name and signs as her."""
    led = make_ledger(tmp_path, 2)
    ls = lines(led)
    fake = Ed25519PrivateKey.generate()
    ls.append(signed_entry(ls[-1], "alice", fake, "key.register", registration(fake)))
    ls.append(signed_entry(ls[-1], "alice", fake, "annotate", {"label": "nothing happened"}))
    write(led, ls)
    probs = led.check().problems
    key_probs = [p for p in probs if p.kind == "ledger.key"]
    assert len(key_probs) == 1 and "line 4" in key_probs[0].where and "second key for 'alice'" in key_probs[0].message
    # and what the fake key signed is not taken as alice's
    assert any(p.kind == "ledger.signature" and "line 5" in p.where for p in probs)


def test_new_signer_not_vouched_for_by_the_case_key_is_a_key_problem(tmp_path):
    led = make_ledger(tmp_path, 1)
    ls = lines(led)
    fake = Ed25519PrivateKey.generate()
    ls.append(signed_entry(ls[-1], "mallory", fake, "key.register", registration(fake)))
    write(led, ls)
    assert [p.message for p in led.check().problems if p.kind == "ledger.key"] == [
        "new signer 'mallory' not endorsed by the case key (alice)"]


def test_endorsement_signed_by_someone_else_is_refused(tmp_path):
    led = make_ledger(tmp_path, 1)
    led.append("bob", "note", None, {})
    ls = lines(led)
    fake = Ed25519PrivateKey.generate()
    from custodes.store.ledger import endorse

    bob_key = KeyRing(tmp_path / "keys").load("bob")
    details = {**registration(fake), "endorsement": endorse("bob", bob_key, "mallory",
                                                            registration(fake)["fingerprint"])}
    ls.append(signed_entry(ls[-1], "mallory", fake, "key.register", details))
    write(led, ls)
    msgs = [p.message for p in led.check().problems if p.kind == "ledger.key"]
    assert len(msgs) == 1 and "may not vouch for it" in msgs[0]


def test_new_signers_and_a_lost_key_are_endorsed_by_the_case_key(tmp_path):
    led = make_ledger(tmp_path, 1)
    led.append("bob", "note", None, {})
    (tmp_path / "keys" / "bob.ed25519").unlink()  # bob's laptop was wiped: the case key vouches for his new key
    led2 = Ledger(led.path, KeyRing(tmp_path / "keys"))
    led2.append("bob", "note", None, {"again": True})
    regs = [json.loads(x) for x in lines(led2) if '"key.register"' in x]
    assert [r["actor"] for r in regs] == ["alice", "bob", "bob"]
    assert regs[0]["details"]["endorsement_required"] is True
    assert regs[2]["details"]["endorsement"]["actor"] == "alice"
    assert regs[2]["details"]["replaces"] == regs[1]["details"]["fingerprint"]
    assert led2.check().problems == []


def test_without_the_case_key_no_new_key_is_made(tmp_path):
    import pytest

    from custodes.store.ledger import LedgerError

    led = make_ledger(tmp_path, 1)
    (tmp_path / "keys" / "alice.ed25519").unlink()
    led2 = Ledger(led.path, KeyRing(tmp_path / "keys"))
    before = led2.path.read_bytes()
    for actor in ("carol", "alice"):
        with pytest.raises(LedgerError, match="needs the case key's endorsement"):
            led2.append(actor, "note", None, {})
    assert led2.path.read_bytes() == before and not (tmp_path / "keys" / "carol.ed25519").exists()


def test_protected_keys_need_their_passphrase_and_say_so(tmp_path, small_clip):
    """`init --protect-keys`: an unencrypted case whose private keys are encrypted at rest; without the
    passphrase nothing can be signed, and the CLI says so in one sentence."""
    from tests.conftest import run_cli

    case_dir = tmp_path / "case"
    env = {"CUSTODES_KEY_PASSPHRASE": "a good key passphrase", "CUSTODES_ACTOR": "tester"}
    run_cli("init", str(case_dir), "--protect-keys", env=env, check=True)
    pem = (case_dir / "keys" / "tester.ed25519").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in pem
    run_cli("ingest", str(case_dir), str(small_clip), env=env, check=True)
    before = (case_dir / "ledger.jsonl").read_bytes()
    for bad in ({"CUSTODES_ACTOR": "tester", "CUSTODES_KEY_PASSPHRASE": ""},
                {"CUSTODES_ACTOR": "tester", "CUSTODES_KEY_PASSPHRASE": "the wrong passphrase"}):
        proc = run_cli("ingest", str(case_dir), str(small_clip), env=bad)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "passphrase" in proc.stderr
    assert (case_dir / "ledger.jsonl").read_bytes() == before
    assert run_cli("verify", str(case_dir)).returncode == 0  # checking needs no private key


def test_whole_last_entry_without_its_newline_is_kept_and_completed(tmp_path):
    led = make_ledger(tmp_path, 2)
    led.path.write_bytes(led.path.read_bytes()[:-1])  # the disk filled on the very last byte
    fresh = Ledger(led.path, KeyRing(tmp_path / "keys"))
    assert fresh.check().problems == [] and fresh.head()[0] == 2
    fresh.append("alice", "note", None, {"after": True})
    entries = list(fresh.entries())
    assert [e["seq"] for e in entries] == [0, 1, 2, 3, 4]  # nothing signed was cut
    assert entries[3]["action"] == "ledger.repair" and "completed_line_bytes" in entries[3]["details"]
    assert fresh.check().problems == [] and fresh.check().warnings == []


def test_a_forged_last_line_is_never_completed_nor_signed_onto(tmp_path):
    """Found by review: a forged `{"seq": N+1000, "hash": "fff…"}` without a newline was "completed" and the next
    genuine event chained to it, so the ledger failed verification for ever on genuine entries."""
    import pytest

    from custodes.store.ledger import LedgerError

    led = make_ledger(tmp_path, 2)
    good = led.path.read_bytes()
    with open(led.path, "ab") as fh:
        fh.write(json.dumps({"seq": 1003, "hash": "f" * 64, "sig": "AAAA"}).encode())  # no newline
    fresh = Ledger(led.path, KeyRing(tmp_path / "keys"))
    assert fresh.head()[0] == 2  # not read as an entry
    fresh.append("alice", "note", None, {"after": True})  # the fragment is cut, not completed
    assert fresh.path.read_bytes().startswith(good) and fresh.check().problems == []
    with open(led.path, "ab") as fh:  # a forged line with its newline: nothing is signed onto it
        fh.write(json.dumps({"seq": 99, "time": "x", "actor": "a", "key": "k", "action": "note", "subject": None,
                             "details": {}, "prev": "0" * 64, "hash": "f" * 64, "sig": "AAAA"}).encode() + b"\n")
    before = led.path.read_bytes()
    with pytest.raises(LedgerError, match="does not follow"):
        Ledger(led.path, KeyRing(tmp_path / "keys")).append("alice", "note", None, {})
    assert led.path.read_bytes() == before


def test_entries_after_reads_only_what_was_appended_and_leaves_a_torn_line(tmp_path):
    """A reader that keeps a summary (the camera corrections) asks for what came after its last offset: it gets
    exactly the new entries, of one action if asked, and a torn last line only once it is whole."""
    led = make_ledger(tmp_path, 2)
    first, offset = led.entries_after(0, "note")
    assert [e["details"]["i"] for e in first] == [0, 1] and offset == led.path.stat().st_size
    assert led.entries_after(offset) == ([], offset)
    led.append("alice", "other", None, {})
    led.append("alice", "note", None, {"i": 2})
    more, offset2 = led.entries_after(offset, "note")
    assert [e["details"]["i"] for e in more] == [2]
    whole = lines(led)[-1]
    with open(led.path, "a") as fh:  # an append caught half-way
        fh.write(whole[:40])
    torn, offset3 = led.entries_after(offset2)
    assert torn == [] and offset3 == offset2
