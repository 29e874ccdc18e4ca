// Public surface of the config module.

export type { Config, Hooks, HookName, LogLevel, SettingKey, Settings } from './types.js';
export { HOOK_NAMES } from './types.js';
export {
  CLI_OPTIONS,
  CMD_ARGS_ENV,
  SETTINGS,
  SETTINGS_BY_KEY,
  defaultSettings,
  mainFlag,
  settingDef,
  settingDefault,
  type AnySettingDef,
  type CliOptionDef,
  type SettingDef,
  type SettingType,
} from './settings.js';
export { BIND_FORMS, DEFAULT_BIND_PORT, parseBind, tryParseBind, type BindAddress } from './bind.js';
export { parseArgs, type ParsedArgs } from './parse-args.js';
export { shellSplit } from './shell-split.js';
export { CONFIG_EXTENSIONS, loadConfigFile, loadHooksFromFile, type LoadedConfigFile } from './load-file.js';
export { DEFAULT_CONFIG_FILES, resolveConfig, type ResolvedConfig } from './resolve.js';
export { defaultText, renderHelp, renderSettings } from './help.js';
