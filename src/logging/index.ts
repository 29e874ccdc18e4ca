export { Logger, createNullLogger, nullLogger, formatLogTime, utcOffset } from './logger.js';
export type { LoggerOptions } from './logger.js';
export {
  compileAccessLog,
  formatAccessLog,
  formatAccessTime,
  DEFAULT_ACCESS_LOG_FORMAT,
} from './access-log.js';
export type { AccessInfo, AccessLogFormatter } from './access-log.js';
