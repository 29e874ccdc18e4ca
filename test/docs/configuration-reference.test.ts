// docs/configuration.md is generated from the settings table: it must be current, and name every setting, flag,
// environment variable and hook.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { renderConfigurationReference, referenceDefault, HOOK_DOCS } from '../../src/config/reference.js';
import { CLI_OPTIONS, CMD_ARGS_ENV, SETTINGS, mainFlag } from '../../src/config/settings.js';
import { HOOK_NAMES } from '../../src/config/types.js';
import { ROOT } from '../helpers/server.js';

const FILE = path.join(ROOT, 'docs', 'configuration.md');
const doc = readFileSync(FILE, 'utf8');
const rendered = renderConfigurationReference();

describe('docs/configuration.md', () => {
  it('is the current rendering of the settings table', () => {
    assert.ok(doc === rendered, 'docs/configuration.md is stale: run npm run docs');
  });

  it('does not depend on the machine (the host name is never rendered)', () => {
    const hostname = os.hostname;
    os.hostname = () => 'another-machine.example';
    try {
      assert.equal(renderConfigurationReference(), rendered);
    } finally {
      os.hostname = hostname;
    }
  });

  it('has one row per setting, with its key, every flag, its environment variables and its default', () => {
    for (const def of SETTINGS) {
      const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${def.key}\` |`));
      assert.equal(rows.length, 1, `setting ${def.key}`);
      const row = rows[0]!;
      for (const flag of def.flags) assert.ok(row.includes(`\`${flag}${def.metavar ? ` ${def.metavar}` : ''}\``), `${def.key}: ${flag}`);
      if (def.type === 'bool') assert.ok(row.includes(`\`--no-${mainFlag(def).slice(2)}\``), `${def.key}: --no-`);
      for (const env of def.envVars ?? []) assert.ok(row.includes(`\`${env}\``), `${def.key}: ${env}`);
      assert.ok(row.includes(` ${referenceDefault(def).replace(/\|/g, '\\|')} |`), `${def.key}: default`);
    }
  });

  it('shows the documented defaults of the contract', () => {
    const row = (key: string) => doc.split('\n').find((l) => l.startsWith(`| \`${key}\` |`))!;
    assert.match(row('workers'), /\| `WEB_CONCURRENCY`, then `GUNICORN_WORKERS` \| an integer >= 1 \| `1` \|/);
    assert.match(row('bind'), /\| 0\.0\.0\.0:\$PORT when \$PORT is set, else 127\.0\.0\.1:8000 \|/);
    assert.match(row('metricsPort'), /\| `PROMETHEUS_METRICS_PORT` \| an integer between 0 and 65535 \| `9090` \|/);
    assert.match(row('metricsBind'), /\| `PROMETHEUS_BIND_ADDRESS` \| a non-empty string \| `0\.0\.0\.0` \|/);
    assert.match(row('multiprocDir'), /\| `\/tmp\/prometheus_multiproc` \|/);
    assert.match(row('redisKeyPrefix'), /\| `REDIS_KEY_PREFIX` \| a non-empty prefix without '\{' or '\}' \| `gunicorn` \|/);
    assert.match(row('metricsInstance'), /\| \$PROMFORK_INSTANCE, else the host name \|/);
    for (const key of ['redisPassword', 'redisUrl', 'metricsBasicAuth', 'metricsBearerToken']) {
      assert.ok(row(key).includes('Secret: `--check-config` shows it as `"********"`.'), key);
    }
  });

  it('lists the other command-line options, every environment variable and PROMFORK_CMD_ARGS', () => {
    for (const opt of CLI_OPTIONS) for (const flag of opt.flags) assert.ok(doc.includes(`\`${flag}`), flag);
    const envRows = doc.split('\n').filter((l) => /^\| `[A-Z_]+` \|/.test(l));
    const documented = new Set(envRows.map((l) => /^\| `([A-Z_]+)`/.exec(l)![1]));
    const expected = new Set([...SETTINGS.flatMap((d) => d.envVars ?? []), CMD_ARGS_ENV]);
    assert.deepEqual([...documented].sort(), [...expected].sort());
  });

  it('documents every hook name', () => {
    assert.deepEqual(Object.keys(HOOK_DOCS).sort(), [...HOOK_NAMES].sort());
    for (const name of HOOK_NAMES) {
      assert.equal(doc.split('\n').filter((l) => l.startsWith(`| \`${name}(`)).length, 1, name);
    }
  });
});
