import assert from "node:assert/strict";
import { EgressError, EgressPolicy, nonPublic, parseAddress } from "./egress.ts";

const dns = (table: Record<string, string[]>) => (host: string) =>
  Promise.resolve(table[host] ?? []);

async function refusal(policy: EgressPolicy, url: string): Promise<string | null> {
  try {
    await policy.check(url);
    return null;
  } catch (err) {
    assert(err instanceof EgressError, String(err));
    return err.code;
  }
}

Deno.test("parseAddress reads IPv4, IPv6, compressed, mapped and scoped forms", () => {
  assert.deepEqual([...parseAddress("1.2.3.4")!.subarray(10)], [0xff, 0xff, 1, 2, 3, 4]);
  assert.deepEqual(parseAddress("::ffff:1.2.3.4"), parseAddress("1.2.3.4"));
  assert.deepEqual(parseAddress("::ffff:0102:0304"), parseAddress("1.2.3.4"));
  assert.deepEqual([...parseAddress("::1")!], [...Array(15).fill(0), 1]);
  assert.equal(parseAddress("fe80::1%eth0")![0], 0xfe);
  for (
    const bad of ["1.2.3", "1.2.3.256", "01.2.3.4.5", "::1::2", "1:2:3:4:5:6:7:8:9", "g::1", ""]
  ) {
    assert.equal(parseAddress(bad), null, bad);
  }
});

Deno.test("nonPublic names every private, loopback and special range and passes public ones", () => {
  const cases: [string, string | null][] = [
    ["127.0.0.1", "loopback"],
    ["127.255.1.2", "loopback"],
    ["10.20.30.40", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", null],
    ["192.168.1.1", "private"],
    ["169.254.169.254", "link-local"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "reserved"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fd00::1", "private"],
    ["fe80::1", "link-local"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::127.0.0.1", "reserved"],
    ["64:ff9b::a00:1", "IPv4-translated"],
    ["8.8.8.8", null],
    ["93.184.216.34", null],
    ["2606:4700::1111", null],
  ];
  for (const [address, why] of cases) assert.equal(nonPublic(parseAddress(address)!), why, address);
});

Deno.test("EgressPolicy.check refuses schemes, credentials and private targets by any name", async () => {
  const policy = new EgressPolicy({
    requireHttps: true,
    resolve: dns({
      "api.example.com": ["93.184.216.34"],
      "rebind.example.com": ["93.184.216.34", "10.0.0.7"],
      "v6.example.com": ["2606:4700::1111"],
      "inner.example.com": ["::ffff:192.168.0.10"],
    }),
  });
  assert.equal(await refusal(policy, "https://api.example.com/usage"), null);
  assert.equal(await refusal(policy, "https://v6.example.com/"), null);
  assert.equal(await refusal(policy, "http://api.example.com/"), "SCHEME_NOT_ALLOWED");
  assert.equal(await refusal(policy, "ftp://api.example.com/"), "SCHEME_NOT_ALLOWED");
  assert.equal(await refusal(policy, "file:///etc/passwd"), "SCHEME_NOT_ALLOWED");
  assert.equal(await refusal(policy, "https://u:p@api.example.com/"), "CREDENTIALS_IN_URL");
  assert.equal(await refusal(policy, "not a url"), "BAD_URL");
  assert.equal(await refusal(policy, "https://rebind.example.com/"), "ADDRESS_NOT_ALLOWED");
  assert.equal(await refusal(policy, "https://inner.example.com/"), "ADDRESS_NOT_ALLOWED");
  assert.equal(await refusal(policy, "https://nowhere.example.com/"), "UNRESOLVABLE");
  for (
    const url of [
      "https://127.0.0.1/",
      "https://localhost:8000/",
      "https://app.localhost/",
      "https://[::1]/",
      "https://[::ffff:7f00:1]/",
      "https://169.254.169.254/latest/meta-data/",
      "https://0.0.0.0/",
    ]
  ) {
    assert.equal(await refusal(policy, url), "ADDRESS_NOT_ALLOWED", url);
  }
  const message = await policy.check("https://10.1.2.3/").catch((e: Error) => e.message);
  assert.match(String(message), /private address \(10\.1\.2\.3\)/);
});

Deno.test("EgressPolicy allowlist admits named hosts, addresses and ranges only", async () => {
  const policy = new EgressPolicy({
    allow: ["127.0.0.1", "10.1.0.0/16", "usage.internal"],
    resolve: dns({ "usage.internal": ["10.9.9.9"], "svc.corp": ["10.1.4.4"] }),
  });
  assert.equal(await refusal(policy, "http://127.0.0.1:9000/"), null);
  assert.equal(await refusal(policy, "http://127.0.0.2/"), "ADDRESS_NOT_ALLOWED");
  assert.equal(await refusal(policy, "http://10.1.200.1/"), null);
  assert.equal(await refusal(policy, "http://10.2.0.1/"), "ADDRESS_NOT_ALLOWED");
  assert.equal(await refusal(policy, "http://usage.internal/"), null);
  assert.equal(await refusal(policy, "http://svc.corp/"), null);
  assert.equal(await refusal(policy, "http://localhost/"), null, "localhost is 127.0.0.1");
  assert.equal(await refusal(policy, "http://192.168.0.1/"), "ADDRESS_NOT_ALLOWED");
});

Deno.test("EgressPolicy.fetch checks every redirect hop and bounds them", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/ok") return new Response(`${req.method} ok`);
    if (path === "/to-ok") return Response.redirect(new URL("/ok", req.url), 303);
    if (path === "/to-private") return Response.redirect("http://10.0.0.1/secret", 302);
    return Response.redirect(new URL("/loop", req.url), 307);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const policy = new EgressPolicy({ allow: ["127.0.0.1"], maxRedirects: 2 });
    const res = await policy.fetch(`${base}/to-ok`, { method: "POST", body: "x" });
    assert.equal(await res.text(), "GET ok");
    await assert.rejects(() => policy.fetch(`${base}/to-private`), (e: EgressError) => {
      return e.code === "ADDRESS_NOT_ALLOWED";
    });
    await assert.rejects(() => policy.fetch(`${base}/loop`), (e: EgressError) => {
      return e.code === "TOO_MANY_REDIRECTS";
    });
    await assert.rejects(
      () => new EgressPolicy().fetch(`${base}/ok`),
      (e: EgressError) => e.code === "ADDRESS_NOT_ALLOWED",
    );
  } finally {
    await server.shutdown();
  }
});
