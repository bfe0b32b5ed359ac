// ratelimit: a gati module in Node.js. Token buckets kept in the runtime's kv store
// ("ratelimit"), reached through the host service on $GATI_HOST_SOCKET. Each host request
// presents the call token its call came with (context.call_token): the runtime attributes
// the request to that call, and refuses a token whose call has ended.
//
// The module service and grpc.health.v1 are served on $GATI_MODULE_SOCKET; once
// serving, one handshake line goes to stdout: GATI|2|unix|<socket> (protocol 2).
"use strict";
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const def = protoLoader.loadSync(["gati/host/v1/host.proto", "gati/module/v1/module.proto", "grpc/health/v1/health.proto"], {
  includeDirs: [__dirname + "/proto"], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const proto = grpc.loadPackageDefinition(def);
const host = new proto.gati.host.v1.HostService("unix:" + process.env.GATI_HOST_SOCKET, grpc.credentials.createInsecure());

class HostError extends Error {
  constructor(err) { super(err.message); Object.assign(this, err); }
}

function hostCall(rpc, request) {
  return new Promise((resolve, reject) => host[rpc](request, (err, reply) => {
    if (err) return reject(err);
    if (reply.error) return reject(new HostError(reply.error));  // e.g. capability_denied, with its grant
    resolve(reply);
  }));
}

// Calls for one key run one after another: a bucket is read, changed and written back.
const queues = new Map();
function serial(key, fn) {
  const run = (queues.get(key) || Promise.resolve()).then(fn, fn);
  const tail = run.catch(() => {});
  queues.set(key, tail);
  tail.then(() => { if (queues.get(key) === tail) queues.delete(key); });
  return run;
}

async function bucket(callToken, key, rate, burst) {
  const reply = await hostCall("KvGet", { call_token: callToken, store: "ratelimit", key });
  const now = Date.now();
  const saved = reply.found ? JSON.parse(reply.value.toString()) : { tokens: burst, at: now };
  return { tokens: Math.min(burst, saved.tokens + ((now - saved.at) / 1000) * rate), at: now };
}

function args(p) {
  if (!p || typeof p.key !== "string" || !(p.rate > 0) || !(p.burst >= 1)) {
    throw Object.assign(new Error('expected {"key": "...", "rate": tokens/s > 0, "burst": >= 1}'), { code: "bad_payload" });
  }
  return { key: p.key, rate: p.rate, burst: p.burst, cost: p.cost === undefined ? 1 : p.cost };
}

const methods = {
  take: (p, ctx) => { const a = args(p); return serial(a.key, async () => {
    const b = await bucket(ctx.call_token, a.key, a.rate, a.burst);
    const allowed = b.tokens >= a.cost;
    if (allowed) b.tokens -= a.cost;
    await hostCall("KvPut", { call_token: ctx.call_token, store: "ratelimit", key: a.key, value: Buffer.from(JSON.stringify(b)) });
    const retry = allowed ? 0 : Math.ceil(((a.cost - b.tokens) / a.rate) * 1000);
    return { allowed, remaining: Math.floor(b.tokens), retry_after_ms: retry };
  }); },
  peek: async (p, ctx) => { const a = args(p);
    return { remaining: Math.floor((await bucket(ctx.call_token, a.key, a.rate, a.burst)).tokens) }; },
};

function fail(code, message, extra = {}) {
  const { fix = "", ...details } = extra;
  const strings = Object.fromEntries(Object.entries(details).filter(([, v]) => typeof v === "string"));
  return { error: { code, message, fix, details: strings } };
}

const moduleService = {
  Call(call, done) {
    const { method, payload, context } = call.request;
    const fn = methods[method];
    if (!fn) return done(null, fail("method_not_found", `ratelimit has no method ${method}`));
    let input;
    try { input = payload.length ? JSON.parse(payload.toString()) : null; } catch (e) { return done(null, fail("bad_payload", e.message)); }
    Promise.resolve().then(() => fn(input, context || {})).then(
      (result) => done(null, { payload: Buffer.from(JSON.stringify(result)) }),
      (err) => done(null, err instanceof HostError ? fail(err.code, err.message, { fix: err.fix, ...err.details })
        : fail(err.code || "module_error", err.message)),
    );
  },
  Describe(call, done) { done(null, { name: "ratelimit", version: "1.0.0", kind: "oci", methods: Object.keys(methods) }); },
};

const health = {
  Check(call, done) { done(null, { status: "SERVING" }); },
  Watch(call) { call.write({ status: "SERVING" }); },
};

const socket = process.env.GATI_MODULE_SOCKET;
if (!socket) { console.error("ratelimit: GATI_MODULE_SOCKET is not set; run me through the gati runtime"); process.exit(2); }
const server = new grpc.Server();
server.addService(proto.gati.module.v1.ModuleService.service, moduleService);
server.addService(proto.grpc.health.v1.Health.service, health);
server.bindAsync("unix:" + socket, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(`ratelimit: cannot listen on ${socket}: ${err.message}`); process.exit(1); }
  process.stdout.write(`GATI|2|unix|${socket}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.tryShutdown(() => process.exit(0)));
