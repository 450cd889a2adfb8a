// graphile-worker draining no-op jobs from PostgreSQL: the peer of
// `appforge-bench jobs-drain --backend postgres`.
//
//   node drain.js [DATABASE_URL] [JOBS] [CONCURRENCY]
//
// DATABASE_URL names a database of its own (default: `appforge_bench_graphile` on the server of
// the environment's DATABASE_URL), created when missing. The run migrates graphile-worker's
// schema, empties its jobs, enqueues JOBS (default 20000) no-op jobs in batches of 10,000
// (untimed, like the Rust bench), then times a runner of CONCURRENCY (default 10) workers with
// batched fetching and completion (`localQueue.size` 500, `completeJobBatchDelay` and
// `failJobBatchDelay` 0) from its start until the task has run JOBS times. It prints one JSON
// line on stdout.
"use strict";

const { Pool, Client } = require("pg");
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");

const LOCAL_QUEUE = 500;

function defaultUrl() {
  const base = new URL(
    process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres",
  );
  base.pathname = "/appforge_bench_graphile";
  return base.toString();
}

/** Creates the database `url` names when the server does not have it yet. */
async function ensureDatabase(url) {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ""));
  const admin = new URL(url);
  admin.pathname = "/postgres";
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query(
      "SELECT 1 FROM pg_database WHERE datname = $1",
      [name],
    );
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    }
  } finally {
    await client.end();
  }
}

// Warnings and errors on stderr; graphile-worker's info lines would mix with the result.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`[${level}] ${message}\n`);
  }
});

async function main() {
  const url = process.argv[2] || defaultUrl();
  const jobs = Number(process.argv[3] || 20000);
  const concurrency = Number(process.argv[4] || 10);
  if (!Number.isInteger(jobs) || jobs <= 0 || !Number.isInteger(concurrency) || concurrency <= 0) {
    throw new Error("usage: node drain.js [DATABASE_URL] [JOBS] [CONCURRENCY]");
  }
  await ensureDatabase(url);

  const maxPoolSize = Math.max(10, concurrency + 2);
  const pgPool = new Pool({ connectionString: url, max: maxPoolSize });
  const onError = (e) => process.stderr.write(`[pg] ${e}\n`);
  pgPool.on("error", onError);
  pgPool.on("connect", (client) => client.on("error", onError));
  const preset = {
    worker: {
      concurrentJobs: concurrency,
      maxPoolSize,
      pollInterval: 1000,
      localQueue: { size: LOCAL_QUEUE },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  };

  await runMigrations({ pgPool, logger, preset });
  await pgPool.query(
    "TRUNCATE graphile_worker._private_jobs, graphile_worker._private_job_queues RESTART IDENTITY CASCADE",
  );

  // Enqueue, untimed: the same shape as the Rust bench's jobs (three priorities, no queue).
  const utils = await makeWorkerUtils({ pgPool, logger, preset });
  const enqueueStart = process.hrtime.bigint();
  for (let from = 0; from < jobs; from += 10000) {
    const specs = [];
    for (let i = from; i < Math.min(jobs, from + 10000); i++) {
      specs.push({ identifier: "noop", payload: {}, priority: (i % 3) * 10 });
    }
    await utils.addJobs(specs);
  }
  const enqueueS = Number(process.hrtime.bigint() - enqueueStart) / 1e9;
  await utils.release();

  // Open every connection before the clock starts, as the Rust bench does.
  const opened = await Promise.all(
    Array.from({ length: maxPoolSize }, () => pgPool.connect()),
  );
  opened.forEach((client) => client.release());

  // The task does what the Rust bench's handler does: count the run, return at once.
  const runs = new Map();
  let ran = 0;
  let allRan;
  const done = new Promise((resolve) => {
    allRan = resolve;
  });
  const taskList = {
    noop: async (_payload, helpers) => {
      const id = helpers.job.id;
      runs.set(id, (runs.get(id) || 0) + 1);
      ran += 1;
      if (ran === jobs) {
        allRan();
      }
    },
  };

  const start = process.hrtime.bigint();
  const runner = await run({
    pgPool,
    logger,
    preset,
    taskList,
    crontab: "",
    noHandleSignals: true,
  });
  await done;
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  // Stopping flushes the completions still batched; the jobs are then deleted.
  await runner.stop();
  const committedS = Number(process.hrtime.bigint() - start) / 1e9;

  const left = Number(
    (await pgPool.query("SELECT count(*) AS n FROM graphile_worker._private_jobs")).rows[0].n,
  );
  let duplicated = 0;
  for (const n of runs.values()) duplicated += n - 1;
  await pgPool.end();
  const result = {
    name: "graphile-worker-drain",
    version: require("graphile-worker/package.json").version,
    jobs,
    concurrency,
    local_queue: LOCAL_QUEUE,
    complete_job_batch_delay: 0,
    enqueue_s: enqueueS,
    elapsed_s: elapsedS,
    jobs_per_s: jobs / elapsedS,
    stopped_s: committedS,
    jobs_per_s_to_stop: jobs / committedS,
    left_in_queue: left,
    duplicated,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (left !== 0 || duplicated !== 0 || runs.size !== jobs) {
    process.exitCode = 1;
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
