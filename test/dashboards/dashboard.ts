// Reading dashboards/promfork.json and dashboards/alerts.yml for the tests: the expressions are taken from the
// files themselves, never duplicated in a test.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { ROOT } from '../helpers/server.js';

export const DASHBOARD_FILE = path.join(ROOT, 'dashboards', 'promfork.json');
export const ALERTS_FILE = path.join(ROOT, 'dashboards', 'alerts.yml');
export const ALERTS_TEST_FILE = path.join(ROOT, 'dashboards', 'alerts.test.yml');

export interface Datasource {
  type?: string;
  uid?: string;
}

export interface Target {
  refId: string;
  expr: string;
  datasource?: Datasource;
  instant?: boolean;
  format?: string;
}

export interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: Datasource;
  targets?: Target[];
  panels?: Panel[];
}

export interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: Datasource;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
}

export interface Dashboard {
  __inputs: { name: string; type: string; pluginId: string }[];
  __requires: { type: string; id: string }[];
  schemaVersion: number;
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Variable[] };
  annotations: { list: { name: string; expr?: string; datasource?: Datasource }[] };
}

export interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Dashboard;
}

export function loadRules(): { groups: { name: string; rules: Rule[] }[] } {
  return YAML.parse(readFileSync(ALERTS_FILE, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
}

/** Every panel, rows' nested panels included (a collapsed row keeps its panels inside). */
export function allPanels(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every query of every panel: where it is, and its PromQL. */
export function panelTargets(d: Dashboard): { panel: Panel; target: Target; where: string }[] {
  return allPanels(d).flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({ panel, target, where: `panel ${panel.id} "${panel.title}" ${target.refId}` })),
  );
}

/** Annotation queries with a PromQL expression. */
export function annotationExprs(d: Dashboard): { where: string; expr: string; datasource?: Datasource }[] {
  return d.annotations.list
    .filter((a) => typeof a.expr === 'string')
    .map((a) => ({ where: `annotation "${a.name}"`, expr: a.expr!, datasource: a.datasource }));
}

export function variableQuery(v: Variable): string {
  return typeof v.query === 'string' ? v.query : v.query.query;
}

/** `label_values(selector, label)` → [selector, label]; null for another kind of variable query. */
export function parseLabelValues(q: string): [string, string] | null {
  const m = /^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$/s.exec(q.trim());
  return m ? [m[1]!.trim(), m[2]!] : null;
}

/** Metrics that carry a worker_id label: their selectors must filter by $worker. */
export function hasWorkerLabel(metric: string): boolean {
  return /^(gunicorn_worker_|promfork_worker_)/.test(metric);
}

/** Each `metric{...}` or bare metric name of promfork (and `up`, `scrape_duration_seconds`) in an expression. */
export function selectors(expr: string): { metric: string; matchers: string | null }[] {
  const out: { metric: string; matchers: string | null }[] = [];
  const re = /\b(gunicorn_[a-z0-9_]+|promfork_[a-z0-9_]+|up|scrape_duration_seconds)\b(\{[^}]*\})?/g;
  for (const m of expr.matchAll(re)) out.push({ metric: m[1]!, matchers: m[2] ?? null });
  return out;
}

/**
 * The signal part of an alert expression: the expression without its final threshold comparison
 * (`... > 30` → `...`). Null when the expression does not end with a comparison to a number.
 */
export function signalPart(expr: string): string | null {
  const m = /^([\s\S]*?)\s*(?:>|<|>=|<=|==|!=)\s*-?[0-9.]+(?:e-?[0-9]+)?\s*$/.exec(expr.trim());
  return m ? m[1]!.trim() : null;
}
