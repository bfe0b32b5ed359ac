// {{name}}: a gati container module in Node.js (docs/oci.md).
//
// hello: input any JSON value X; output {"message": "hello from Node.js", "input": X}
//
// The module service and grpc.health.v1 are served on $GATI_MODULE_SOCKET; once serving,
// one handshake line goes to stdout: GATI|2|unix|<socket>.
"use strict";
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const def = protoLoader.loadSync(["gati/module/v1/module.proto", "grpc/health/v1/health.proto"], {
  includeDirs: [__dirname + "/proto"], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
});
const proto = grpc.loadPackageDefinition(def);

const methods = {
  hello: async (input, ctx) => ({ message: "hello from Node.js", input }),
};

function fail(code, message, fix = "") {
  return { error: { code, message, fix, details: {} } };
}

const moduleService = {
  Call(call, done) {
    const { method, payload, context } = call.request;
    const fn = methods[method];
    if (!fn) return done(null, fail("method_not_found", `{{name}} has no method ${method}`));
    let input;
    try { input = payload.length ? JSON.parse(payload.toString()) : null; } catch (e) { return done(null, fail("bad_payload", e.message)); }
    Promise.resolve().then(() => fn(input, context || {})).then(
      (result) => done(null, { payload: Buffer.from(JSON.stringify(result)) }),
      (err) => done(null, fail(err.code || "module_error", err.message)),
    );
  },
  Describe(call, done) { done(null, { name: "{{name}}", version: "0.1.0", kind: "oci", methods: Object.keys(methods) }); },
};

const health = {
  Check(call, done) { done(null, { status: "SERVING" }); },
  Watch(call) { call.write({ status: "SERVING" }); },
};

const socket = process.env.GATI_MODULE_SOCKET;
if (!socket) { console.error("{{name}}: GATI_MODULE_SOCKET is not set; run me through the gati runtime"); process.exit(2); }
const server = new grpc.Server();
server.addService(proto.gati.module.v1.ModuleService.service, moduleService);
server.addService(proto.grpc.health.v1.Health.service, health);
server.bindAsync("unix:" + socket, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) { console.error(`{{name}}: cannot listen on ${socket}: ${err.message}`); process.exit(1); }
  process.stdout.write(`GATI|2|unix|${socket}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.tryShutdown(() => process.exit(0)));
