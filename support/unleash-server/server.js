'use strict';
// Starts the open-source Unleash server (npm unleash-server 8.2.0) for
// forkflag's integration tests and demo. harness.sh runs this file; it is not
// meant for production.
//
// unleash-server is an ES module; Node >= 20.19 loads it with require().
// The package declares Node >= 22 but runs on Node 20.
//
// Environment (harness.sh sets all of it):
//   UNLEASH_HTTP_HOST        listen address, default 127.0.0.1 (loopback only)
//   UNLEASH_HTTP_PORT        listen port; 0 (default) lets the kernel pick a
//                            free one, so there is no race between choosing a
//                            port and binding it
//   UNLEASH_PORT_FILE        when set, the bound port is written there once
//                            the server listens and the test knobs are applied
//                            (harness.sh waits for this file, then /health)
//   UNLEASH_PID_FILE         when set, this process writes its pid there first
//                            thing (harness.sh stops the server by that pid)
//   DATABASE_HOST / DATABASE_PORT / DATABASE_NAME / DATABASE_USERNAME /
//   DATABASE_PASSWORD        the PostgreSQL database (read by unleash itself)
//   INIT_ADMIN_API_TOKENS    admin token(s) created at start, "*:*.<secret>"
//   INIT_BACKEND_API_TOKENS  backend (client SDK) token(s), e.g.
//                            "*:development.<secret>"
//   CHECK_VERSION=false, SEND_TELEMETRY=false
//                            no outbound traffic (set below as well; note
//                            that the telemetry *option* cannot turn
//                            telemetry off, only the environment variable)
//   LOG_LEVEL                default warn
//
// Test knobs. Unleash 8.2 hard-codes these intervals and has no option or
// environment variable for them, so this file applies them itself (see
// applyScheduleOverrides and applyKnownFlagsCache). Unset or "default" keeps
// the server's own value, so the server's metrics behaviour is unchanged
// unless a knob is set; harness.sh sets the fast values for tests.
//   FORKFLAG_METRICS_FLUSH_MS       job 'bulkAddMetrics': how often buffered
//                                   client metrics (POST /api/client/metrics)
//                                   are written to the database, where the
//                                   admin metrics endpoints read them.
//                                   Server default 5000.
//   FORKFLAG_REGISTRATION_FLUSH_MS  job 'bulkAddInstances': how often buffered
//                                   registrations (POST /api/client/register,
//                                   and the appName/instanceId carried by
//                                   every metrics POST) are written to the
//                                   applications/instances tables.
//                                   Server default 20000.
//   FORKFLAG_REVISION_POLL_MS       job 'updateMaxRevisionId': how often the
//                                   server re-reads its revision id; a flag
//                                   change shows in /api/client/features (new
//                                   ETag, new body) only after this job ran.
//                                   Server default 1000.
//   FORKFLAG_LAST_SEEN_FLUSH_MS     job 'storeLastSeen': flags' lastSeenAt.
//                                   Server default 30000.
//   FORKFLAG_KNOWN_FLAGS_CACHE_MS   the metrics service keeps the list of
//                                   existing flag names for this long and
//                                   silently drops metrics for any other
//                                   name, so metrics for a flag created less
//                                   than this long ago may be lost.
//                                   Server default 10000.
//   FORKFLAG_SCHEDULE_OVERRIDES     any other scheduler job, "jobId=ms,..."
//
// Rate limits. All test traffic comes from 127.0.0.1 and the server keys its
// limiters by client address, so every test process shares one budget.
// Server defaults: POST /api/client/metrics and /api/client/register 6000 a
// minute each, everything under /api/client 20000 a minute. They are raised
// here (FORKFLAG_RATE_LIMIT_PER_MINUTE, default 1000000) so a busy test suite
// never sees 429. They are set through options because the server's own
// environment variables for them are crossed (REGISTER_CLIENT_RATE_LIMIT_
// PER_MINUTE sets the metrics limit and CLIENT_METRICS_RATE_LIMIT_PER_MINUTE
// the register limit). Note that /api/admin/search/features allows only 15 a
// minute; the test helper does not use it.

const fs = require('fs');
const path = require('path');

function writeAtomically(file, text) {
    const tmp = `${file}.tmp${process.pid}`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
}

if (process.env.UNLEASH_PID_FILE) {
    writeAtomically(process.env.UNLEASH_PID_FILE, `${process.pid}\n`);
}

process.env.CHECK_VERSION = 'false';
process.env.SEND_TELEMETRY = 'false';
process.env.SCARF_ANALYTICS = 'false';

let unleash;
try {
    unleash = require('unleash-server');
} catch (err) {
    if (err && err.code === 'ERR_REQUIRE_ESM') {
        console.error(`unleash-server is an ES module: this needs Node >= 20.19 (this is ${process.version})`);
    }
    throw err;
}

function envInt(name) {
    const raw = process.env[name];
    if (raw === undefined || raw === '' || raw === 'default') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
        throw new Error(`${name} must be a non-negative integer or "default", got ${JSON.stringify(raw)}`);
    }
    return n;
}

function scheduleOverrides() {
    const overrides = new Map();
    const generic = process.env.FORKFLAG_SCHEDULE_OVERRIDES || '';
    for (const pair of generic.split(',').map((s) => s.trim()).filter(Boolean)) {
        const [id, ms] = pair.split('=');
        const n = Number(ms);
        if (!id || !Number.isInteger(n) || n <= 0) {
            throw new Error(`bad FORKFLAG_SCHEDULE_OVERRIDES entry ${JSON.stringify(pair)}`);
        }
        overrides.set(id, n);
    }
    const named = {
        bulkAddMetrics: 'FORKFLAG_METRICS_FLUSH_MS',
        bulkAddInstances: 'FORKFLAG_REGISTRATION_FLUSH_MS',
        updateMaxRevisionId: 'FORKFLAG_REVISION_POLL_MS',
        storeLastSeen: 'FORKFLAG_LAST_SEEN_FLUSH_MS',
    };
    for (const [id, variable] of Object.entries(named)) {
        const n = envInt(variable);
        if (n !== undefined) overrides.set(id, Math.max(n, 50));
    }
    return overrides;
}

// SchedulerService.schedule(fn, intervalMs, jobId, jitter) is how every
// periodic job is registered during start(). Wrapping it on the prototype
// before start() changes only the interval of the named jobs. The initial
// jitter is recomputed by the server from the new interval (intervals under
// 30 s get none, so the job also runs once at once).
function applyScheduleOverrides(overrides) {
    if (overrides.size === 0) return;
    const proto = unleash.SchedulerService.prototype;
    const original = proto.schedule;
    proto.schedule = function scheduleWithOverride(fn, timeMs, id, ...rest) {
        const ms = overrides.has(id) ? overrides.get(id) : timeMs;
        return original.call(this, fn, ms, id, ...rest);
    };
}

// ClientMetricsServiceV2 memoizes the names of all flags (10 s) and drops
// metrics for names not in that list. Replace the memoized function of the
// running instance with one cached for the configured time (0: no cache).
function applyKnownFlagsCache(services, maxAgeMs) {
    if (maxAgeMs === undefined) return;
    const metrics = services.clientMetricsServiceV2;
    const store = metrics.clientMetricsStoreV2;
    if (!metrics || !store || typeof metrics.cachedFeatureNames !== 'function') {
        throw new Error('FORKFLAG_KNOWN_FLAGS_CACHE_MS: this unleash-server has no cachedFeatureNames to replace');
    }
    let loadedAt = 0;
    let pending = null;
    metrics.cachedFeatureNames = () => {
        const now = Date.now();
        if (pending === null || now - loadedAt >= maxAgeMs) {
            loadedAt = now;
            pending = store.getFeatureFlagNames().catch((err) => {
                pending = null;
                throw err;
            });
        }
        return pending;
    };
}

async function main() {
    const host = process.env.UNLEASH_HTTP_HOST || '127.0.0.1';
    const port = envInt('UNLEASH_HTTP_PORT') ?? 0;
    const portFile = process.env.UNLEASH_PORT_FILE;
    const limit = envInt('FORKFLAG_RATE_LIMIT_PER_MINUTE') ?? 1000000;
    const logLevel = process.env.LOG_LEVEL || 'warn';

    if (!process.env.INIT_ADMIN_API_TOKENS || !process.env.INIT_BACKEND_API_TOKENS) {
        throw new Error('INIT_ADMIN_API_TOKENS and INIT_BACKEND_API_TOKENS must be set');
    }

    applyScheduleOverrides(scheduleOverrides());
    const knownFlagsCacheMs = envInt('FORKFLAG_KNOWN_FLAGS_CACHE_MS');

    const instance = await unleash.start({
        db: {
            host: process.env.DATABASE_HOST || '127.0.0.1',
            port: envInt('DATABASE_PORT') ?? 5432,
            database: process.env.DATABASE_NAME || 'unleash',
            user: process.env.DATABASE_USERNAME || 'unleash',
            password: process.env.DATABASE_PASSWORD,
            ssl: false,
        },
        server: {
            host,
            port,
            unleashUrl: `http://${host}:${port || 4242}`,
            // Stop within a second on TERM (the harness kills after its own
            // deadline anyway).
            gracefulShutdownEnable: true,
            gracefulShutdownTimeout: 1000,
        },
        // Token authentication: requests need Authorization: <token>.
        authentication: {
            enableApiToken: true,
            createAdminUser: true,
        },
        versionCheck: { enable: false },
        logLevel,
        metricsRateLimiting: {
            clientMetricsMaxPerMinute: limit,
            clientRegisterMaxPerMinute: limit,
            frontendMetricsMaxPerMinute: limit,
            frontendRegisterMaxPerMinute: limit,
        },
        rateLimiting: {
            sdkApiMaxPerMinute: limit,
            tokenAuthenticationMaxPerMinute: limit,
        },
    });

    applyKnownFlagsCache(instance.services, knownFlagsCacheMs);

    const bound = instance.server.address().port;
    if (portFile) writeAtomically(portFile, `${bound}\n`);
    if (logLevel === 'info' || logLevel === 'debug') {
        console.log(`forkflag test unleash listening on http://${host}:${bound} (pid ${process.pid}, ${path.basename(__filename)})`);
    }
}

main().catch((err) => {
    console.error('forkflag test unleash failed to start:', err);
    process.exit(1);
});
