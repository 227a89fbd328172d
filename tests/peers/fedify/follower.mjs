// An independent ActivityPub follower server built on Fedify 2.3.6, for artdag's
// integration tests (tests/fedify_peer.py starts it).
//
//   node follower.mjs --port 0 --username bob
//        [--first-knock rfc9421|draft-cavage-http-signatures-12] [--require-signed-fetch]
//
// Listens on 127.0.0.1 only (plain http) and prints one JSON line when ready:
//   {"url": "http://127.0.0.1:PORT", "actor": "http://127.0.0.1:PORT/users/bob"}
// Fedify itself serves the actor, WebFinger, inboxes and the followers collection and
// verifies every inbox POST's HTTP signature; this file only adds the bookkeeping and an
// unsigned JSON control API under /control/ (see the README section in the report).
// Set FEDIFY_PEER_DEBUG=1 to get Fedify's own debug log on stderr.
import http from "node:http";
import crypto from "node:crypto";
import { createFederation, generateCryptoKeyPair, MemoryKvStore, SendActivityError } from "@fedify/fedify";
import { Accept, Announce, Create, Delete, Endpoints, Follow, Like, Person, Reject, Undo } from "@fedify/vocab";

// ------------------------------------------------------------------------------ arguments
function parseArgs(argv) {
  const opts = { port: 0, username: "bob", firstKnock: "rfc9421", requireSignedFetch: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") opts.port = Number(argv[++i]);
    else if (a === "--username") opts.username = argv[++i];
    else if (a === "--first-knock") opts.firstKnock = argv[++i];
    else if (a === "--require-signed-fetch") opts.requireSignedFetch = true;
    else throw new Error(`unknown argument: ${a}`);
  }
  if (!["rfc9421", "draft-cavage-http-signatures-12"].includes(opts.firstKnock)) {
    throw new Error(`--first-knock must be rfc9421 or draft-cavage-http-signatures-12`);
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error(`--port must be an integer 0..65535`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.username)) throw new Error(`bad --username`);
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
const USER = opts.username;

if (process.env.FEDIFY_PEER_DEBUG) {
  const { configure, getStreamSink } = await import("@logtape/logtape");
  const { Writable } = await import("node:stream");
  await configure({
    sinks: { stderr: getStreamSink(Writable.toWeb(process.stderr)) },
    loggers: [
      { category: "fedify", lowestLevel: "debug", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

// ------------------------------------------------------------------------------ state
// RSA 2048 (Fedify's generateCryptoKeyPair makes 4096-bit keys, ~1 s slower to start).
const rsaKeys = await crypto.webcrypto.subtle.generateKey(
  { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
  true,
  ["sign", "verify"],
);
const ed25519Keys = await generateCryptoKeyPair("Ed25519");
const received = []; // activities seen by inbox listeners (after Fedify verified them)
const requests = []; // every non-control HTTP request: method, path, status, signature
const followers = new Map(); // follower actor id -> {actor, inbox, follow_id}
const following = new Map(); // target actor id -> {actor, inbox, follow_id, state}

function signatureForm(headers) {
  if (headers.get("signature-input") != null) return "rfc9421";
  if (headers.get("signature") != null) return "cavage";
  return null;
}

// ------------------------------------------------------------------------------ federation
const federation = createFederation({
  kv: new MemoryKvStore(),
  allowPrivateAddress: true,
  firstKnock: opts.firstKnock,
  // No `queue`: sendActivity() delivers inline and throws SendActivityError on failure.
});

const requireSigned = async (ctx) => {
  if (!opts.requireSignedFetch) return true;
  return (await ctx.getSignedKey()) != null;
};

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== USER) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: `Fedify test peer ${identifier}`,
      summary: "Independent ActivityPub follower (Fedify 2.3.6) for artdag tests",
      url: ctx.getActorUri(identifier),
      inbox: ctx.getInboxUri(identifier),
      outbox: ctx.getOutboxUri(identifier),
      followers: ctx.getFollowersUri(identifier),
      following: ctx.getFollowingUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
      manuallyApprovesFollowers: false,
    });
  })
  .setKeyPairsDispatcher(async (_ctx, identifier) => {
    if (identifier !== USER) return [];
    return [rsaKeys, ed25519Keys];
  })
  .authorize(requireSigned);

federation
  .setFollowersDispatcher("/users/{identifier}/followers", async (_ctx, identifier) => {
    if (identifier !== USER) return null;
    return {
      items: [...followers.values()].map((f) => ({ id: new URL(f.actor), inboxId: new URL(f.inbox) })),
    };
  })
  .setCounter((_ctx, identifier) => (identifier === USER ? followers.size : null));

federation.setFollowingDispatcher("/users/{identifier}/following", async (_ctx, identifier) => {
  if (identifier !== USER) return null;
  return {
    items: [...following.values()].filter((f) => f.state === "accepted").map((f) => new URL(f.actor)),
  };
});

federation.setOutboxDispatcher("/users/{identifier}/outbox", async (_ctx, identifier) => {
  if (identifier !== USER) return null;
  return { items: [] };
});

// Every activity this peer emits gets a dereferenceable id (Fedify re-fetches embedded
// objects whose id is on another origin, e.g. the Follow inside a remote's Accept).
const sent = new Map(); // activity id -> activity object
const KINDS = { follows: Follow, accepts: Accept, undos: Undo, likes: Like, announces: Announce };
for (const [kind, cls] of Object.entries(KINDS)) {
  federation
    .setObjectDispatcher(cls, `/users/{identifier}/${kind}/{id}`, (ctx, values) => {
      if (values.identifier !== USER) return null;
      return sent.get(ctx.getObjectUri(cls, values).href) ?? null;
    })
    .authorize(requireSigned);
}

function newId(ctx, kind) {
  return ctx.getObjectUri(KINDS[kind], { identifier: USER, id: crypto.randomUUID() });
}

function remember(activity) {
  sent.set(activity.id.href, activity);
  return activity;
}

const idOf = (x) => (x == null ? null : x.href ?? String(x));

async function record(ctx, activity, extra = {}) {
  const objectId = idOf(activity.objectId);
  const activityJson = await activity.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader });
  let object = null;
  const local = localObject(ctx, objectId);
  if (local !== undefined) object = local;
  else {
    try {
      object = await activity.getObject({ documentLoader: await authLoader(ctx) });
    } catch (e) {
      extra.object_error = String(e?.message ?? e);
    }
  }
  const entry = {
    type: activity.constructor.name,
    id: idOf(activity.id),
    actor: idOf(activity.actorId),
    object: objectId ?? idOf(object?.id),
    object_type: object?.constructor?.name ?? null,
    signature: ctx.data?.signature ?? null,
    received_at: new Date().toISOString(),
    ...extra,
  };
  if (activity instanceof Create && typeof object?.toJsonLd === "function") {
    entry.object_json = await object.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader });
  }
  entry.activity_json = activityJson;
  received.push(entry);
  return { entry, object };
}

// Objects on this server are answered from memory: fetching them over HTTP would need this
// server to verify its own signed GET (and under --require-signed-fetch that cannot work).
function localObject(ctx, id) {
  if (id == null || new URL(id).origin !== ctx.origin) return undefined;
  if (id === ctx.getActorUri(USER).href) return { id: new URL(id), constructor: { name: "Person" } };
  return sent.get(id) ?? null;
}

async function authLoader(ctx) {
  return await ctx.getDocumentLoader({ identifier: USER });
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    const { entry } = await record(ctx, follow);
    if (follow.id == null || follow.actorId == null) return;
    const follower = await follow.getActor({ documentLoader: await authLoader(ctx) });
    if (follower == null || follower.inboxId == null) {
      entry.accept_error = "could not fetch the follower's actor or it has no inbox";
      return;
    }
    followers.set(follower.id.href, {
      actor: follower.id.href,
      inbox: follower.inboxId.href,
      follow_id: follow.id.href,
    });
    const accept = new Accept({
      id: newId(ctx, "accepts"),
      actor: ctx.getActorUri(USER),
      object: follow,
    });
    try {
      await ctx.sendActivity({ identifier: USER }, follower, remember(accept), { immediate: true });
      entry.accept_sent = accept.id.href;
    } catch (e) {
      entry.accept_error = String(e?.message ?? e);
      if (e instanceof SendActivityError) entry.accept_status = e.statusCode;
    }
  })
  .on(Accept, async (ctx, accept) => {
    const { object } = await record(ctx, accept);
    const followId = idOf(accept.objectId) ?? idOf(object?.id);
    for (const f of following.values()) {
      if (f.follow_id === followId || (f.actor === idOf(accept.actorId) && f.state === "pending")) {
        f.state = "accepted";
      }
    }
  })
  .on(Reject, async (ctx, reject) => {
    const { object } = await record(ctx, reject);
    const followId = idOf(reject.objectId) ?? idOf(object?.id);
    for (const f of following.values()) {
      if (f.follow_id === followId) f.state = "rejected";
    }
  })
  .on(Undo, async (ctx, undo) => {
    const { object } = await record(ctx, undo);
    if (object instanceof Follow && undo.actorId != null) followers.delete(undo.actorId.href);
  })
  .on(Create, async (ctx, activity) => {
    await record(ctx, activity);
  })
  .on(Like, async (ctx, activity) => {
    await record(ctx, activity);
  })
  .on(Announce, async (ctx, activity) => {
    await record(ctx, activity);
  })
  .on(Delete, async (ctx, activity) => {
    await record(ctx, activity);
  })
  .onError(async (ctx, error) => {
    received.push({ type: "error", error: String(error?.message ?? error), signature: ctx.data?.signature ?? null });
  });

// ------------------------------------------------------------------------------ control API
let baseUrl = null; // set once listening

function controlContext() {
  return federation.createContext(new URL(baseUrl), { signature: null });
}

async function lookupActor(ctx, target) {
  if (typeof target !== "string" || target === "") throw new Error("missing 'target'");
  const actor = await ctx.lookupObject(target, { documentLoader: await authLoader(ctx) });
  if (actor == null) throw new Error(`lookup of ${target} found nothing`);
  if (actor.inboxId == null) throw new Error(`${target} resolved to ${actor.constructor.name} without an inbox`);
  return actor;
}

async function send(ctx, recipient, activity) {
  try {
    await ctx.sendActivity({ identifier: USER }, recipient, activity, { immediate: true });
  } catch (e) {
    const err = new Error(String(e?.message ?? e));
    if (e instanceof SendActivityError) err.status = e.statusCode;
    throw err;
  }
}


const control = {
  "POST /control/follow": async (body) => {
    const ctx = controlContext();
    const actor = await lookupActor(ctx, body.target);
    const follow = new Follow({ id: newId(ctx, "follows"), actor: ctx.getActorUri(USER), object: actor.id });
    following.set(actor.id.href, {
      actor: actor.id.href,
      inbox: actor.inboxId.href,
      follow_id: follow.id.href,
      state: "pending",
    });
    await send(ctx, actor, remember(follow));
    return { follow_id: follow.id.href, target_actor: actor.id.href, inbox: actor.inboxId.href };
  },
  "POST /control/undo-follow": async (body) => {
    const ctx = controlContext();
    const actor = await lookupActor(ctx, body.target);
    const f = following.get(actor.id.href);
    if (f == null) throw new Error(`not following ${actor.id.href}`);
    const follow = new Follow({ id: new URL(f.follow_id), actor: ctx.getActorUri(USER), object: actor.id });
    const undo = new Undo({ id: newId(ctx, "undos"), actor: ctx.getActorUri(USER), object: follow });
    await send(ctx, actor, remember(undo));
    following.delete(actor.id.href);
    return { undo_id: undo.id.href, follow_id: f.follow_id, target_actor: actor.id.href, inbox: actor.inboxId.href };
  },
  "POST /control/like": async (body) => {
    const ctx = controlContext();
    if (typeof body.object !== "string") throw new Error("missing 'object'");
    const actor = await lookupActor(ctx, body.target);
    const like = new Like({ id: newId(ctx, "likes"), actor: ctx.getActorUri(USER), object: new URL(body.object) });
    await send(ctx, actor, remember(like));
    return { like_id: like.id.href, target_actor: actor.id.href, inbox: actor.inboxId.href };
  },
  "POST /control/announce": async (body) => {
    const ctx = controlContext();
    if (typeof body.object !== "string") throw new Error("missing 'object'");
    const actor = await lookupActor(ctx, body.target);
    const announce = new Announce({
      id: newId(ctx, "announces"),
      actor: ctx.getActorUri(USER),
      object: new URL(body.object),
      tos: [new URL("https://www.w3.org/ns/activitystreams#Public")],
      ccs: [ctx.getFollowersUri(USER)],
    });
    await send(ctx, actor, remember(announce));
    return { announce_id: announce.id.href, target_actor: actor.id.href, inbox: actor.inboxId.href };
  },
  "GET /control/received": async () => ({ activities: received, requests }),
  "GET /control/followers": async () => ({ followers: [...followers.values()] }),
  "GET /control/following": async () => ({
    following: [...following.values()].filter((f) => f.state === "accepted"),
    pending: [...following.values()].filter((f) => f.state !== "accepted"),
  }),
};

// ------------------------------------------------------------------------------ HTTP glue
function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function sendJson(res, status, value) {
  const data = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { "content-type": "application/json", "content-length": data.length });
  res.end(data);
}

async function handleControl(req, res, path, body) {
  const handler = control[`${req.method} ${path}`];
  if (handler == null) return sendJson(res, 404, { error: `no control endpoint ${req.method} ${path}` });
  let parsed = {};
  if (req.method === "POST") {
    try {
      parsed = body.length ? JSON.parse(body.toString("utf8")) : {};
    } catch {
      return sendJson(res, 400, { error: "control body is not JSON" });
    }
  }
  try {
    sendJson(res, 200, await handler(parsed));
  } catch (e) {
    const out = { error: String(e?.message ?? e) };
    if (e?.status != null) out.remote_status = e.status;
    sendJson(res, 502, out);
  }
}

const server = http.createServer(async (req, res) => {
  try {
    const body = await readBody(req);
    const url = new URL(req.url, `http://${req.headers.host ?? `127.0.0.1:${server.address().port}`}`);
    if (url.pathname.startsWith("/control/")) return await handleControl(req, res, url.pathname, body);
    const headers = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i], req.rawHeaders[i + 1]);
    const signature = signatureForm(headers);
    const request = new Request(url, {
      method: req.method,
      headers,
      body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
    });
    const entry = { method: req.method, path: url.pathname + url.search, status: null, signature, at: new Date().toISOString() };
    requests.push(entry);
    const response = await federation.fetch(request, {
      contextData: { signature },
      onNotFound: () => new Response("Not Found", { status: 404 }),
      onNotAcceptable: () => new Response("Not Acceptable", { status: 406 }),
    });
    entry.status = response.status;
    const out = Buffer.from(await response.arrayBuffer());
    const outHeaders = {};
    response.headers.forEach((v, k) => (outHeaders[k] = v));
    outHeaders["content-length"] = String(out.length);
    res.writeHead(response.status, outHeaders);
    res.end(out);
  } catch (e) {
    process.stderr.write(`follower.mjs: request failed: ${e?.stack ?? e}\n`);
    if (!res.headersSent) sendJson(res, 500, { error: String(e?.message ?? e) });
    else res.destroy();
  }
});

server.listen(opts.port, "127.0.0.1", () => {
  const { port } = server.address();
  baseUrl = `http://127.0.0.1:${port}`;
  process.stdout.write(`{"url": ${JSON.stringify(baseUrl)}, "actor": ${JSON.stringify(`${baseUrl}/users/${USER}`)}}\n`);
});

for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
