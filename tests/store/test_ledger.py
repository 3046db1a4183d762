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
    assert "ledger.torn" in kinds(Ledger(led.path, led.keyring))
    led2 = Ledger(led.path, KeyRing(tmp_path / "keys"))
    led2.append("alice", "note", None, {"after": True})
    res = led2.check()
    assert res.problems == []
    acts = [e["action"] for e in led2.entries()]
    assert acts[-2:] == ["ledger.repair", "note"]
    assert list(led2.entries())[-2]["details"]["torn_bytes"] == len('{"seq": 3, "time": "2026-')
