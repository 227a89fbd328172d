"""Settlement statements (provenance/settlement.py), work graphs read from records and the node's
money service (daemon/money_service.py), and the money CLI on a temporary home."""

from __future__ import annotations

import json
from typing import Any

import click
import pytest
from click.testing import CliRunner

import dag
from daemon.config import load_config
from daemon.core.money import MoneyService, WorkSources, build_work, open_money
from daemon.core.node import Node, open_node
from dag import CID, cid_to_str, parse_cid
from provenance import (
    Identity,
    make_provenance_record,
    sign_record,
    utc_timestamp,
    validate_record,
    verify_signed,
)
from provenance.merkle import MerkleProof
from provenance.settlement import (
    SettlementError,
    decode_lines,
    line_bytes,
    make_statement,
    proof_for,
    verify_line,
)
from provenance.splits import DEFAULT_SPLIT, Split, distribute


# -- statements and proofs ------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 7, 100])
def test_every_payee_proof_verifies_and_a_changed_line_breaks_it(n):
    payouts = {f"did:p{i:03d}": i * 7 + 1 for i in range(n)}
    pool = sum(payouts.values())
    record, block = make_statement("2026-11", "splits", "EUR", pool, payouts)
    lines = decode_lines(block.data)
    assert [line["payee"] for line in lines] == sorted(payouts)
    assert record["lines"] == block.cid and record["count"] == n
    for line in lines:
        proof = proof_for(lines, line["payee"])
        assert verify_line(record, line, proof)
        # the proof survives its JSON form
        assert verify_line(record, line, MerkleProof.from_json(proof.to_json()))
        assert not verify_line(record, {**line, "amount": line["amount"] + 1}, proof)
        assert not verify_line(record, {**line, "payee": line["payee"] + "x"}, proof)
        assert not verify_line(record, {**line, "amount": -1}, proof)
    if n > 1:  # a line cannot borrow another line's proof
        assert not verify_line(record, lines[1], proof_for(lines, lines[0]["payee"]))
    # a statement whose root was made over other lines rejects every proof
    other, _ = make_statement("2026-11", "splits", "EUR", pool + 1, {**payouts, "did:zz": 1})
    assert not verify_line(other, lines[0], proof_for(lines, lines[0]["payee"]))


def test_statement_record_is_valid_signs_and_commits_to_its_lines():
    identity = Identity.generate()
    record, block = make_statement("2026-11", "9ten", "EUR", 30, {"did:b": 10, "did:a": 20})
    validate_record(record)
    signed = sign_record(record, identity)
    verify_signed(signed)
    assert decode_lines(block.data) == [
        {"payee": "did:a", "amount": 20},
        {"payee": "did:b", "amount": 10},
    ]
    assert dag.Block.checked(record["lines"], block.data) == block
    assert line_bytes({"payee": "did:a", "amount": 20}) == dag.encode_dagcbor(
        {"amount": 20, "payee": "did:a"}
    )


def test_bad_statements_are_refused():
    with pytest.raises(SettlementError, match="sum to 30 but the pool is 31"):
        make_statement("2026-11", "splits", "EUR", 31, {"did:a": 20, "did:b": 10})
    with pytest.raises(SettlementError, match="nothing to settle"):
        make_statement("2026-11", "splits", "EUR", 0, {})
    with pytest.raises(SettlementError, match="no line for payee"):
        proof_for([{"payee": "did:a", "amount": 1}], "did:b")
    with pytest.raises(SettlementError, match="does not hold a list"):
        decode_lines(dag.encode_dagcbor({"payee": "did:a"}))


# -- work graphs from records (in memory) ---------------------------------------------------
def _content(name: str) -> CID:
    return dag.Block.encode(name.encode()).cid


def _claim(identity: Identity, subject: CID, split: dict[str, int], **extra: Any) -> dict:
    record = {
        "type": "claim",
        "version": 1,
        "subject": subject,
        "split": split,
        "created": utc_timestamp(),
        **extra,
    }
    return sign_record(record, identity)


class Records:
    """Records held in dicts, served through the callbacks :func:`build_work` takes."""

    def __init__(self) -> None:
        self.by_cid: dict[str, dict] = {}
        self.claims: dict[str, dict] = {}
        self.provenance: dict[str, dict] = {}
        self.owners: dict[str, str] = {}

    def put(self, record: dict) -> CID:
        cid = dag.record_block(record).cid
        self.by_cid[cid_to_str(cid)] = record
        return cid

    def sources(self) -> WorkSources:
        return WorkSources(
            find_claim=lambda cid: self.claims.get(cid_to_str(cid)),
            find_provenance=lambda cid: self.provenance.get(cid_to_str(cid)),
            owner_of=lambda cid: self.owners.get(cid_to_str(cid)),
            load_record=lambda cid: self.by_cid.get(cid_to_str(cid)),
        )


async def test_work_graph_from_records_recurses_through_a_derived_input():
    cam, cam2, fx, chef, renderer, volunteer, me = (Identity.generate() for _ in range(7))
    db = Records()
    effect = db.put({"type": "effect", "name": "blur", "author": fx.did})
    recipe = db.put({"type": "recipe", "name": "r", "author": chef.did})
    raw_a, raw_b, derived, subject = (_content(n) for n in ("a", "b", "derived", "subject"))
    db.owners[cid_to_str(raw_a)] = cam.did
    db.owners[cid_to_str(raw_b)] = cam2.did
    # `derived` was rendered from raw_b by `renderer` with the recipe; nobody claims it
    db.provenance[cid_to_str(derived)] = sign_record(
        make_provenance_record(
            output=derived, inputs=[raw_b], software={"artdag": "0"}, recipe=recipe,
            renderer=renderer.did,
        ),
        renderer,
    )  # fmt: skip
    # `subject` (claimed by me, default split) was rendered from raw_a and derived
    db.provenance[cid_to_str(subject)] = sign_record(
        make_provenance_record(
            output=subject, inputs=[raw_a, derived], software={"artdag": "0"}, effects=[effect],
            recipe=recipe, renderer=renderer.did, infrastructure=[volunteer.did],
        ),
        renderer,
    )  # fmt: skip
    db.claims[cid_to_str(subject)] = _claim(me, subject, DEFAULT_SPLIT.to_record())

    work = await build_work(subject, db.sources())
    assert work.claimant == me.did
    inner = work.roles["footage"][1]
    assert inner.id == cid_to_str(derived) and inner.claimant == renderer.did
    # 10000: footage 4000 -> raw_a 2000 (cam), derived 2000 (footage 800 cam2, effects 500 to
    # its claimant = the renderer who signed its provenance, recipe 400 chef, infra 300
    # renderer); effects 2500 fx; recipe 2000 chef; infrastructure 1500 renderer + volunteer
    assert distribute(work, 10000) == {
        cam.did: 2000,
        cam2.did: 800,
        renderer.did: 500 + 300 + 750,
        chef.did: 400 + 2000,
        fx.did: 2500,
        volunteer.did: 750,
    }


async def test_claims_without_provenance_and_cycles_between_claims():
    me, you = Identity.generate(), Identity.generate()
    db = Records()
    x, y = _content("x"), _content("y")
    db.claims[cid_to_str(x)] = _claim(me, x, {"footage": 5000, "creator": 5000}, inputs=[y])
    db.owners[cid_to_str(y)] = you.did
    work = await build_work(x, db.sources())
    assert distribute(work, 11) == {me.did: 6, you.did: 5}  # tie at .5: "creator" sorts first
    db.claims[cid_to_str(y)] = _claim(you, y, {"footage": 10000}, inputs=[x])
    with pytest.raises(ValueError, match="cycle"):
        await build_work(x, db.sources())


# -- the node's money service ---------------------------------------------------------------
async def _chunks(data: bytes):
    yield data


def _over(node: Node) -> dict[str, Any]:
    """The money service's dependencies, taken from a node opened in-process."""
    return {
        "store": node.store,
        "index": node.index,
        "identity": node.identity,
        "index_path": node.config.index_path,
        "announce": node.announce,
        "read_record": node.record,
    }


async def test_usage_settle_and_proofs_on_a_node(tmp_path):
    config = load_config(tmp_path / "home", environ={"ARTDAG_SYNC": "batch"})
    me = Identity.generate()
    async with open_node(config) as node, open_money(**_over(node)) as money:
        x = (await node.add_stream(_chunks(b"x" * 100), name="x.bin")).asset.cid
        y = (await node.add_stream(_chunks(b"y" * 100), name="y.bin")).asset.cid
        claim = _claim(me, parse_cid(y), {"footage": 5000, "creator": 5000}, inputs=[parse_cid(x)])
        block = dag.record_block(claim)
        await node.store.put(block)
        node.index.put_record(cid_to_str(block.cid), "claim", me.did, claim["created"], y)

        await money.record_usage(x, "listen", 1, "2026-10-03", listener="fan1")
        await money.record_usage(x, "listen", 1, "2026-10", listener="fan2")
        await money.record_usage(y, "view", 3, "2026-10")
        await money.record_usage(y, "listen", 2, "2026-10-30", listener="fan1")
        await money.record_usage(y, "view", 50, "2026-09")  # another month
        assert await money.usage_counts("2026-10") == {x: 2, y: 5}
        assert await money.usage_counts("2026-10-03") == {x: 1}
        with pytest.raises(ValueError, match="kind"):
            await money.record_usage(x, "stare")

        # splits: x 286 of 1000 (2/7), all to its owner (the node); y 714: footage (x's
        # owner) 357, creator (me) 357
        cid, lines = await money.settle("2026-10", 1000)
        assert lines == sorted(
            [{"payee": node.did, "amount": 643}, {"payee": me.did, "amount": 357}],
            key=lambda line: line["payee"],
        )
        statement = await node.record(cid)
        assert statement["signer"] == node.did and statement["pool"] == 1000
        assert cid in [pin.cid for pin in await node.store.pins()]
        for line in lines:
            got, proof = await money.statement_proof(cid, line["payee"])
            assert got == line and verify_line(statement, line, proof)
        with pytest.raises(SettlementError, match="no line"):
            await money.statement_proof(cid, "did:nobody")

        # 9ten: fan1 and fan2 pay 500 each; fan1 listened to x (the node's) once and y (mine)
        # twice: 50 to the operator, 450 -> node 150, me 300; fan2: 50 operator, 450 node
        cid9, lines9 = await money.settle("2026-10", 1000, policy="9ten", operators=["did:op"])
        assert {line["payee"]: line["amount"] for line in lines9} == {
            "did:op": 100,
            node.did: 600,
            me.did: 300,
        }
        assert (await node.record(cid9))["policy"] == "9ten"
        listed = sorted(s["cid"] for s in money.db.statements("2026-10"))
        assert listed == sorted([cid_to_str(cid), cid_to_str(cid9)])
        with pytest.raises(ValueError, match="no usage"):
            await money.settle("2026-08", 1000)


async def test_callbacks_replace_the_default_lookups(tmp_path):
    config = load_config(tmp_path / "home", environ={"ARTDAG_SYNC": "batch"})
    subject = _content("s")

    async def find_claim(cid: CID):
        return {"signer": "did:claimant", "split": Split({"creator": 10000}).to_record()}

    async with open_node(config) as node:
        money = MoneyService(**_over(node), find_claim=find_claim)
        try:
            await money.record_usage(subject, "boost", 4, "2026-11")
            _, lines = await money.settle("2026-11", 7)
        finally:
            money.close()
    assert lines == [{"payee": "did:claimant", "amount": 7}]


# -- the CLI --------------------------------------------------------------------------------
def _cli(home) -> click.Group:
    """The real `add` command and the money commands on a group of their own (in-process,
    through the node API's local side)."""
    from daemon.cli.main import main

    @click.group()
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = {"config": load_config(home, environ={"ARTDAG_SYNC": "batch"})}

    for name in ("add", "usage", "settle", "statement-proof"):
        cli.add_command(main.commands[name])
    return cli


def test_cli_usage_settle_statement_proof(tmp_path):
    cli, runner = _cli(tmp_path / "home"), CliRunner()
    src = tmp_path / "clip.bin"
    src.write_bytes(b"clip" * 1000)

    def run(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    cid = run("add", str(src)).strip().splitlines()[-1]
    usage = run("usage", cid, "--kind", "view", "--count", "3", "--epoch", "2026-11").strip()
    assert parse_cid(usage).codec.name == "dag-cbor"
    out = run("settle", "--epoch", "2026-11", "--pool", "100.00").strip().splitlines()
    statement = out[0]
    payee, amount, currency = out[1].split()
    assert (amount, currency) == ("100.00", "EUR") and payee.startswith("did:key:")
    proof = json.loads(run("statement-proof", statement, payee))
    assert proof["verified"] is True
    assert proof["line"] == {"payee": payee, "amount": 10000}
    assert proof["proof"]["size"] == 1

    bad = runner.invoke(cli, ["settle", "--epoch", "2026-11", "--pool", "1.001"])
    assert bad.exit_code == 1 and "at most two decimals" in bad.output
    bad = runner.invoke(cli, ["statement-proof", statement, "did:nobody"])
    assert bad.exit_code == 1 and "no line for payee" in bad.output
