// BullMQ on Node: the bench's peer protocol (drain, latency, enqueue) of common.py, in JS.
//
// Its documented setup: a `Worker` with concurrency 10 per process, results kept in the
// job hash (BullMQ's default), `Queue.addBulk` as its batch API, and the client waiting
// with `job.waitUntilFinished(queueEvents)` (a blocking read on the events stream).
//   BENCH_REDIS_URL=redis://... BENCH_NODE_DIR=bench/.node node bullmq_peer.mjs drain --n 20000
// bullmq and ioredis come from BENCH_NODE_DIR (the bench's gitignored npm folder), so
// this script needs no package.json of its own.
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, openSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(join(process.env.BENCH_NODE_DIR, "package.json"));
const { Queue, Worker, QueueEvents } = require("bullmq");
const IORedis = require("ioredis");

const URL_ = process.env.BENCH_REDIS_URL;
const NAME = "bench";
const BATCH = 1000;
const CONCURRENCY = 10;
const POLL_MS = 2;
const TICKS = 100; // USER_HZ on Linux
const SELF = fileURLToPath(import.meta.url);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.now() / 1000;
// Workers block on the server: ioredis must not give up on a command that waits.
const connect = () => new IORedis(URL_, { maxRetriesPerRequest: null });

function procCpu(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
  } catch {
    return 0;
  }
}

function treeCpu(pid) {
  const parents = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (!parents.has(ppid)) parents.set(ppid, []);
      parents.get(ppid).push(Number(name));
    } catch {}
  }
  let total = procCpu(pid);
  const todo = [pid];
  while (todo.length) {
    for (const child of parents.get(todo.pop()) ?? []) {
      total += procCpu(child);
      todo.push(child);
    }
  }
  return total;
}

function startWorker(log) {
  const out = openSync(log, "a");
  return spawn(process.execPath, [SELF, "worker"], {
    env: process.env,
    stdio: ["ignore", out, out],
    detached: true, // its own process group, stopped as a group like the Python peers
  });
}

async function stopWorker(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(-child.pid, "SIGTERM");
  const timer = setTimeout(() => process.kill(-child.pid, "SIGKILL"), 10000);
  await exited;
  clearTimeout(timer);
}

async function runWorker() {
  const worker = new Worker(NAME, async () => "ok", {
    connection: connect(),
    concurrency: CONCURRENCY,
  });
  const stop = async () => {
    await worker.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

async function addBulk(queue, n) {
  const ids = [];
  for (let start = 0; start < n; start += BATCH) {
    const count = Math.min(BATCH, n - start);
    const jobs = await queue.addBulk(Array.from({ length: count }, () => ({ name: "noop", data: {} })));
    ids.push(...jobs.map((job) => job.id));
  }
  return ids;
}

async function doneMany(redis, ids) {
  const pipe = redis.pipeline();
  for (const id of ids) pipe.zscore(`bull:${NAME}:completed`, id);
  return (await pipe.exec()).map(([err, score]) => !err && score !== null);
}

// Galloping probe, as common.track: jobs end roughly in queue order.
async function track(redis, ids, children, onFirst) {
  const n = ids.length;
  let first = 0, last = 0, i = 0, step = 1;
  while (i < n) {
    if (children.some((c) => c.exitCode !== null)) throw new Error(`a worker exited after ${i} of ${n}`);
    const j = Math.min(i + step, n) - 1;
    if ((await doneMany(redis, [ids[j]]))[0]) {
      const t = now();
      if (!first) onFirst();
      first = first || t;
      last = t;
      i = j + 1;
      step *= 2;
    } else {
      step = Math.max(1, Math.floor(step / 2));
      await sleep(POLL_MS);
    }
  }
  let missing = [];
  for (let s = 0; s < n; s += BATCH) {
    const chunk = ids.slice(s, s + BATCH);
    const done = await doneMany(redis, chunk);
    missing.push(...chunk.filter((_, k) => !done[k]));
  }
  while (missing.length) {
    await sleep(POLL_MS);
    const done = await doneMany(redis, missing);
    if (done.some(Boolean)) last = now();
    missing = missing.filter((_, k) => !done[k]);
  }
  return [first, last];
}

async function drain(n, workers, log) {
  const redis = connect();
  const queue = new Queue(NAME, { connection: redis });
  let start = now();
  const ids = await addBulk(queue, n);
  const enqueueS = now() - start;
  start = now();
  const children = Array.from({ length: workers }, () => startWorker(log));
  const server = Number(process.env.BENCH_VALKEY_PID || 0);
  const marks = [];
  const mark = () => marks.push([children.map((c) => treeCpu(c.pid)), server ? procCpu(server) : 0]);
  mark();
  let first, last;
  try {
    [first, last] = await track(redis, ids, children, mark);
    mark();
  } finally {
    await Promise.all(children.map(stopWorker));
  }
  const between = (a, b) => ({
    workers: marks[b][0].map((v, k) => v - marks[a][0][k]),
    server: marks[b][1] - marks[a][1],
  });
  await queue.close();
  return {
    n, workers, enqueue_s: enqueueS, startup_s: first - start, total_s: last - start,
    cpu_jobs: n - 1, cpu: between(1, 2), cpu_startup: between(0, 1),
  };
}

async function latency(samples, log, seed) {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2147483648) / 2147483648);
  const queue = new Queue(NAME, { connection: connect() });
  const events = new QueueEvents(NAME, { connection: connect() });
  await events.waitUntilReady();
  const child = startWorker(log);
  const times = [];
  try {
    for (let i = 0; i < samples + 3; i++) { // the first three wait out start-up
      await sleep(50 + 500 * random());
      const start = now();
      const job = await queue.add("noop", {});
      if ((await job.waitUntilFinished(events, 30000)) !== "ok") throw new Error(`job ${job.id}`);
      if (i >= 3) times.push(now() - start);
    }
  } finally {
    await stopWorker(child);
  }
  await events.close();
  await queue.close();
  return { samples: times };
}

async function enqueue(n) {
  const queue = new Queue(NAME, { connection: connect() });
  let start = now();
  for (let i = 0; i < n; i++) await queue.add("noop", {});
  const one = n / (now() - start);
  start = now();
  await addBulk(queue, n);
  const bulk = n / (now() - start);
  await queue.close();
  return { n, one_per_s: one, bulk_per_s: bulk };
}

const [mode, ...rest] = process.argv.slice(2);
const opt = (name, fallback) => {
  const k = rest.indexOf(`--${name}`);
  return k >= 0 ? rest[k + 1] : fallback;
};
if (mode === "worker") {
  await runWorker();
} else {
  const log = opt("log", "/dev/null");
  let result;
  if (mode === "drain") result = await drain(Number(opt("n", 10000)), Number(opt("workers", 1)), log);
  else if (mode === "latency") result = await latency(Number(opt("samples", 200)), log, Number(opt("seed", 7)));
  else if (mode === "enqueue") result = await enqueue(Number(opt("n", 10000)));
  else throw new Error(`unknown mode ${mode}`);
  console.log(JSON.stringify(result));
  process.exit(0);
}
