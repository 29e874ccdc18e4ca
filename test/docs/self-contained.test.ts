// The repository explains itself: no file points outside it (to the design brief it was built from), none calls
// the Python Gunicorn Prometheus Exporter by a private nickname, and every law (L1-L6) or pitfall a comment or a
// page cites is defined in docs/design.md, cited there by its section. docs/design.md names, for each law, test
// files that exist.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DESIGN = path.join(ROOT, 'docs', 'design.md');
const SKIP_DIRS = new Set(['node_modules', 'dist', '.git']);
const TEXT = /\.(?:ts|js|mjs|cjs|json|ya?ml|md|sh|service|txt)$|^(?:run|Dockerfile)$/;

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP_DIRS.has(name)) continue;
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) files(p, out);
    else if (TEXT.test(name)) out.push(p);
  }
  return out;
}

const ALL = [
  ...['README.md', 'package.json'].map((f) => path.join(ROOT, f)),
  ...['docs', 'examples', 'src', 'test', 'bench', 'dashboards', 'deploy', 'scripts', '.ci']
    .map((d) => path.join(ROOT, d))
    .filter(existsSync)
    .flatMap((d) => files(d)),
];
const rel = (p: string) => path.relative(ROOT, p);
const SELF = fileURLToPath(import.meta.url);

const design = readFileSync(DESIGN, 'utf8');
const LAWS = new Set([...design.matchAll(/^### L(\d+) /gm)].map((m) => Number(m[1])));
const pitfallSection = design.slice(design.indexOf('## 3. Pitfalls'));
const PITFALLS = new Set([...pitfallSection.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1])));

/** Law and pitfall citations: [kind, number, index in the text]. */
function citations(text: string): ['law' | 'pitfall', number, number][] {
  const out: ['law' | 'pitfall', number, number][] = [];
  // "law L3", "laws L1-L6", "(L1, L6)", "docs/design.md, L3", "design.md#l3-...": every L<n> that names a law.
  for (const m of text.matchAll(/\bL(\d+)\b/g)) {
    const before = text.slice(Math.max(0, m.index! - 20), m.index!);
    if (/(?:\blaws?\s+|design\.md,\s+|\(|L\d+(?:\s*(?:-|,|and)\s*)|,\s+)$/i.test(before)) out.push(['law', Number(m[1]), m.index!]);
  }
  for (const m of text.matchAll(/design\.md#l(\d+)-/g)) out.push(['law', Number(m[1]), m.index!]);
  for (const m of text.matchAll(/\bpitfalls?\s+(\d+)/gi)) out.push(['pitfall', Number(m[1]), m.index!]);
  return out;
}

describe('the repository stands on its own', () => {
  it('was read: the files, six laws and 22 pitfalls', () => {
    assert.ok(ALL.length > 100, `${ALL.length} files`);
    assert.deepEqual([...LAWS].sort(), [1, 2, 3, 4, 5, 6]);
    assert.equal(PITFALLS.size, 22);
  });

  it('no file points to the design brief outside the repository or names the exporter by a nickname', () => {
    const forbidden = [/\.\.\/shared\b/, /\/work\/shared\b/, new RegExp('\\bthe ' + 'seeds?\\b', 'i'), new RegExp('\\bseed' + "['’]s\\b", 'i'), new RegExp('\\bseed' + ' (?:api|name|metrics?|variable|default)s?\\b', 'i')];
    const found: string[] = [];
    for (const file of ALL) {
      if (file === SELF) continue;
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        for (const re of forbidden) if (re.test(line)) found.push(`${rel(file)}:${i + 1}: ${line.trim()}`);
      });
      if (/seed/i.test(path.basename(file))) found.push(`${rel(file)}: file name`);
    }
    assert.deepEqual(found, []);
  });

  it('every law or pitfall cited is defined in docs/design.md, and cited with it', () => {
    const bad: string[] = [];
    for (const file of ALL) {
      if (file === DESIGN || file === SELF) continue;
      const text = readFileSync(file, 'utf8');
      const markdown = file.endsWith('.md');
      for (const [kind, n, at] of citations(text)) {
        const line = text.slice(0, at).split('\n').length;
        const where = `${rel(file)}:${line}: ${kind} ${n}`;
        if (kind === 'law' ? !LAWS.has(n) : !PITFALLS.has(n)) bad.push(`${where} is not defined in docs/design.md`);
        // Code cites "docs/design.md, L3" (or "law L3 (docs/design.md)"); pages link design.md near the citation.
        const around = text.slice(Math.max(0, at - 60), at + 60);
        if (!around.includes(markdown ? 'design.md' : 'docs/design.md')) bad.push(`${where} does not cite docs/design.md`);
      }
    }
    assert.deepEqual(bad, []);
  });

  it('docs/architecture.md sends readers to docs/design.md for the contract and the laws', () => {
    const arch = readFileSync(path.join(ROOT, 'docs', 'architecture.md'), 'utf8');
    assert.match(arch, /\]\(design\.md\)/);
  });

  it('docs/design.md names, for each law, test files that exist', () => {
    const sections = design.split(/^### /m).filter((s) => /^L\d+ /.test(s));
    assert.equal(sections.length, 6);
    for (const section of sections) {
      const cited = [...section.matchAll(/`((?:test|bench)\/[\w/.-]+\.ts)`/g)].map((m) => m[1]!);
      assert.ok(cited.some((f) => f.startsWith('test/')), `${section.slice(0, 2)} cites a test`);
      for (const f of cited) assert.ok(existsSync(path.join(ROOT, f)), `${section.slice(0, 2)}: ${f} exists`);
    }
  });

  it("docs/design.md's option table names real flags and config keys", async () => {
    const { SETTINGS, CLI_OPTIONS } = await import('../../src/config/settings.js');
    const flags = new Set([...SETTINGS.flatMap((d) => d.flags), ...CLI_OPTIONS.flatMap((o) => o.flags), '--no-metrics']);
    const keys = new Set(SETTINGS.map((d) => d.key as string));
    const table = design.slice(design.indexOf('| Option | Config key | Default |'), design.indexOf('Worker classes: '));
    for (const row of table.split('\n').slice(2).filter((l) => l.startsWith('| '))) {
      const [options, key] = row.slice(2).split(' | ');
      for (const m of options!.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)) assert.ok(flags.has(m[1]!), `${m[1]} is a flag`);
      for (const m of (key ?? '').matchAll(/`(\w+)`/g)) assert.ok(keys.has(m[1]!), `${m[1]} is a config key`);
    }
  });
});
