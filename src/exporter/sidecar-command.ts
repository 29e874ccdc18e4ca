// `promfork exporter [options]`: runs the sidecar exporter until TERM or INT.

import { resolveConfig } from '../config/index.js';
import { Logger } from '../logging/logger.js';
import { VERSION } from '../version.js';
import { MetricsServer, metricsServerOptions } from './metrics-server.js';
import { SidecarSource } from './sidecar.js';
import { checkStoreDirectory } from '../store/directory-store.js';

export const SIDECAR_USAGE = `Usage: promfork exporter [options]

Serves /metrics from the metrics store without a primary: the directory (--multiproc-dir,
PROMETHEUS_MULTIPROC_DIR) or Redis (--redis, REDIS_ENABLED and the REDIS_* settings).
It takes the metrics server options of promfork (--metrics-port, --metrics-bind, TLS, auth),
--metrics-instance (which server to serve) and --all-instances (every server, labelled server="NAME").
See promfork --help for each option and its default.
`;

export async function runSidecar(argv: string[]): Promise<void> {
  const { config, help, version } = await resolveConfig(argv, process.env, process.cwd(), { requireApp: false });
  if (help) {
    process.stdout.write(SIDECAR_USAGE);
    return;
  }
  if (version) {
    process.stdout.write(`promfork ${VERSION}\n`);
    return;
  }
  const s = config.settings;
  // An unsafe store directory stops the start (one line, exit 1), as it does the primary's.
  if (!s.redisEnabled) await checkStoreDirectory(s.multiprocDir);
  const log = new Logger({ errorlog: s.errorlog, loglevel: s.loglevel, accesslog: null });
  const store = s.redisEnabled ? 'redis' : `directory ${s.multiprocDir}`;
  log.info(`Starting promfork exporter ${VERSION} (store: ${store}, ${s.allInstances ? 'all instances' : `instance ${s.metricsInstance}`})`);
  for (const line of config.notices ?? []) log.warning(line);
  const source = new SidecarSource(s, log);
  const server = new MetricsServer(metricsServerOptions(s, source, log));
  await server.start();
  const stop = async (signal: string) => {
    log.info(`Handling signal: ${signal}`);
    await server.close();
    await source.close();
    log.info('Shutting down: exporter');
    await log.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('term'));
  process.once('SIGINT', () => void stop('int'));
}
