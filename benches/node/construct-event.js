// stripe-node's `constructEvent` (verify, then JSON.parse) on one payload, N times: the
// baseline `appforge-bench webhook-verify` is compared with. Same secret, the same 1,024
// signed copies with timestamps within the tolerance, a warm-up of N/10.
//
//   npm install && node construct-event.js ../fixtures/customer.subscription.updated.json 100000
const Stripe = require('stripe');
const fs = require('fs');
const stripe = new Stripe('sk_test_x');
const body = fs.readFileSync(process.argv[2], 'utf8');
const secret = 'whsec_bench_0f1e2d3c4b5a69788796a5b4c3d2e1f0';
const n = Number(process.argv[3] || 100000);
const now = Math.floor(Date.now() / 1000);
const headers = [];
for (let i = 0; i < 1024; i++) headers.push(stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp: now - (i % 200) }));
for (let i = 0; i < n / 10; i++) stripe.webhooks.constructEvent(body, headers[i % 1024], secret);
const t = process.hrtime.bigint();
let s = 0;
for (let i = 0; i < n; i++) { const e = stripe.webhooks.constructEvent(body, headers[i % 1024], secret); s += e.id.length; }
const secs = Number(process.hrtime.bigint() - t) / 1e9;
console.log(JSON.stringify({ ops_per_s: n / secs, payload_bytes: Buffer.byteLength(body), n }));
