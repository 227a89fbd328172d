// Start a real js-ipfs (npm ipfs@0.66.1) node with its HTTP RPC API on 127.0.0.1, for tests.
//
//   node serve.mjs --repo DIR [--api-port N] [--online]
//
// DIR is a fresh (or previously used) repo directory. --api-port 0 (the default) lets the OS
// pick a free port. Prints `READY http://127.0.0.1:PORT` once the API answers, then serves
// until SIGTERM/SIGINT (or stdin closing is ignored; the caller kills the process group).
//
// By default the node is OFFLINE: libp2p is never started (no swarm listener, no bitswap),
// so requests for blocks the repo lacks fail at once instead of waiting on the network.
// --online starts libp2p with the swarm on /ip4/127.0.0.1/tcp/0 only (for bitswap tests).
// Either way: profile "test", no bootstrap, no mDNS, no webRTCStar, no delegates, no
// preload nodes, no NAT port mapping, no gateway, no gRPC.

// Node 20 lacks Promise.withResolvers, which some of js-ipfs's dependencies call.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}

function parseArgs (argv) {
  const out = { repo: null, apiPort: 0, online: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--repo') out.repo = argv[++i]
    else if (a === '--api-port') out.apiPort = Number(argv[++i])
    else if (a === '--online') out.online = true
    else throw new Error(`unknown argument ${a}`)
  }
  if (!out.repo) throw new Error('--repo DIR is required')
  if (!Number.isInteger(out.apiPort) || out.apiPort < 0 || out.apiPort > 65535) throw new Error('bad --api-port')
  return out
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  // Imported after the polyfill is in place.
  const { create } = await import('ipfs-core')
  const { HttpApi } = await import('ipfs-http-server')
  // js-ipfs's block/put keeps Hapi's default 1 MiB payload limit, so a 1 MiB block (the
  // default UnixFS chunk, which Kubo's block/put accepts) plus multipart framing is refused
  // with 413. Raise it to Kubo's effective limit before the routes are registered.
  const blockRoutes = await import(new URL('./node_modules/ipfs-http-server/src/api/resources/block.js', import.meta.url))
  blockRoutes.putResource.options.payload.maxBytes = 4 * 1024 * 1024 + 64 * 1024

  const config = {
    Addresses: {
      API: `/ip4/127.0.0.1/tcp/${args.apiPort}`,
      Gateway: '',
      RPC: '',
      Swarm: args.online ? ['/ip4/127.0.0.1/tcp/0'] : [],
      Announce: [],
      NoAnnounce: [],
      Delegates: []
    },
    Bootstrap: [],
    Discovery: { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } },
    Swarm: { DisableNatPortMap: true },
    Routing: { Type: 'none' }
  }

  const ipfs = await create({
    repo: args.repo,
    repoAutoMigrate: false,
    init: { algorithm: 'Ed25519', profiles: ['test'] },
    config,
    start: args.online,
    preload: { enabled: false },
    relay: { enabled: false, hop: { enabled: false } },
    silent: true
  })

  const api = new HttpApi(ipfs)
  await api.start()
  const info = api._apiServers[0].info
  const host = info.host.includes(':') ? `[${info.host}]` : info.host
  const url = `http://${host}:${info.port}`

  let stopping = false
  const stop = async (sig) => {
    if (stopping) return
    stopping = true
    const timer = setTimeout(() => process.exit(0), 5000)
    timer.unref()
    try {
      await api.stop()
      await ipfs.stop()
    } catch (err) {
      console.error('stop error:', err)
    }
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)

  console.log(`READY ${url}`)
}

main().catch((err) => {
  console.error('FATAL', err && err.stack ? err.stack : err)
  process.exit(1)
})
